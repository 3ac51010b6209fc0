/**
 * The grace period of a server's shutdown: transfers whose outcome is recorded (an upload in its
 * dally) end at once, running ones may finish until the grace period is over (or cut short),
 * then the rest are aborted.
 *
 * @module
 */

import { getLogger } from "../log.ts";

const log = getLogger("server");

/** What {@linkcode drain} needs of a session. */
export interface Drainable {
  /** Aborts the session (its reason decides the ERROR its peer gets). */
  controller: AbortController;
  /** Settles when the session has ended. */
  done: Promise<unknown>;
  /** The outcome is recorded; what is left may be cut short without an ERROR. */
  settled: boolean;
}

/**
 * Waits for `sessions()` to end: settled ones are aborted at once, running ones get `graceMs`
 * (or until `hurried` resolves), then are aborted with `reason`.
 *
 * @example A settled session is aborted at once; nothing waits for the grace period
 * ```ts
 * import { drain } from "./drain.ts";
 * import { equal } from "node:assert/strict";
 * const controller = new AbortController();
 * const done = new Promise((r) => controller.signal.addEventListener("abort", r));
 * const reason = new Error("server shutting down");
 * await drain(() => [{ controller, done, settled: true }], 60_000, new Promise(() => {}), reason);
 * equal(controller.signal.reason, reason);
 * ```
 */
export async function drain(
  sessions: () => Drainable[],
  graceMs: number,
  hurried: Promise<void>,
  reason: Error,
): Promise<void> {
  const pending = () => Promise.all(sessions().map((s) => s.done));
  for (const s of sessions()) if (s.settled) s.controller.abort(reason);
  const running = sessions().filter((s) => !s.settled).length;
  if (running > 0) {
    const what = running === 1 ? "transfer" : "transfers";
    log.info(`shutting down: waiting up to {ms} ms for {count} ${what}`, {
      event: "shutting-down",
      ms: graceMs,
      count: running,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([pending(), new Promise((r) => (timer = setTimeout(r, graceMs))), hurried]);
    clearTimeout(timer);
    for (const s of sessions()) s.controller.abort(reason);
  }
  await pending();
}
