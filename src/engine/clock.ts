/**
 * The transfer clock. A timer per wait (setTimeout + clearTimeout) costs more than the rest of a
 * lock-step round trip in Deno, so every channel shares one ticking clock: while anything watches
 * it, an interval ticks and lets each watcher expire what is due. Deadlines are therefore met to
 * within one tick, while readings (`now()`, from `performance.now()`, about 0.1 µs) are exact, so
 * round trips of a fraction of a millisecond are measured as such. Engines and channels read time
 * only through a {@linkcode Clock} they are given, so tests run on the same logic as production.
 *
 * @module
 */

/** A source of milliseconds for deadlines. */
export interface Clock {
  /** Milliseconds between ticks: deadlines closer than this need a timer of their own. */
  readonly tickMs: number;
  /** Milliseconds, monotonic enough for deadlines. */
  now(): number;
  /** Starts calling `watcher.expire(now)` every tick. */
  watch(watcher: Watcher): void;
  /** Stops calling `watcher`. */
  unwatch(watcher: Watcher): void;
}

/** Something with deadlines: called on every tick. */
export interface Watcher {
  /** Resolves whatever is due at `now`. */
  expire(now: number): void;
}

/**
 * A clock that ticks every `tickMs` while anything watches it; `now()` is `performance.now()`.
 *
 * @example
 * ```ts
 * import { TickingClock } from "./clock.ts";
 * import { ok } from "node:assert/strict";
 * const clock = new TickingClock(20);
 * const seen: number[] = [];
 * const watcher = { expire: (now: number) => void seen.push(now) };
 * clock.watch(watcher);
 * await new Promise((r) => setTimeout(r, 70));
 * clock.unwatch(watcher);
 * ok(seen.length >= 2);
 * ```
 */
export class TickingClock implements Clock {
  /** Milliseconds between ticks. */
  readonly tickMs: number;
  #watchers = new Set<Watcher>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /** @param tickMs Milliseconds between ticks. */
  constructor(tickMs = 20) {
    this.tickMs = tickMs;
  }

  now(): number {
    return performance.now();
  }

  watch(watcher: Watcher): void {
    this.#watchers.add(watcher);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.tickMs);
    }
  }

  unwatch(watcher: Watcher): void {
    this.#watchers.delete(watcher);
    if (this.#watchers.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #tick(): void {
    const now = performance.now();
    for (const w of this.#watchers) w.expire(now);
  }
}

/** The clock every channel uses unless given another: 20 ms ticks. */
export const transferClock: TickingClock = new TickingClock(20);
