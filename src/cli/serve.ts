/**
 * `tftpkit serve`: parse flags, check and open what is served, start the server, print where it
 * listens, and stop on SIGINT/SIGTERM (a second one ends running transfers at once),
 * `--max-transfers` or `--idle-exit`, with an exit code that says which (see
 * {@linkcode ServeExit}).
 *
 * @module
 */

import { formatAddr } from "../net.ts";
import { getLogger, setupLogging } from "../log.ts";
import { serve, type Server } from "../server/server.ts";
import { ServeExit } from "./exit_codes.ts";
import { parseServeArgs, SERVE_HELP } from "./serve_args.ts";
import { openSource } from "./serve_source.ts";

export { ServeExit } from "./exit_codes.ts";

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Runs `tftpkit serve` and resolves with its exit code.
 *
 * @example
 * ```ts
 * import { runServe, ServeExit } from "./serve.ts";
 * import { UsageError } from "./args.ts";
 * import { equal, rejects } from "node:assert/strict";
 *
 * // `tftpkit serve --help` prints the help and exits 0.
 * equal(await runServe(["--help"]), ServeExit.OK);
 * // Flags that do not fit together are refused before anything starts (`main` exits 2).
 * await rejects(runServe(["demo", "--once", "--max-transfers", "2"]), UsageError);
 * ```
 */
export async function runServe(args: string[]): Promise<number> {
  const config = parseServeArgs(args);
  if (config.help) {
    console.log(SERVE_HELP);
    return ServeExit.OK;
  }
  // The start line is what a script waits for: -q keeps it.
  await setupLogging({ level: config.level, format: config.logFormat, parts: { start: "info" } });
  const log = getLogger("server");
  const source = await openSource(config, log);
  const controller = new AbortController();
  let server: Server | undefined;
  let signalled: Deno.Signal | undefined;
  let stoppedBy: "signal" | "max-transfers" | "idle" | undefined;
  // Listen for signals before anything is printed: whoever waits for the start line may stop us
  // right after it, and an unhandled SIGTERM would kill the process instead of stopping it.
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handlers = signals.map((signal) => {
    const handler = () => {
      if (!controller.signal.aborted) {
        signalled = signal;
        stoppedBy ??= "signal";
        log.info(`${signal}: stopping`, { event: "signal", signal });
        controller.abort();
      } else if (server) {
        log.warn(`second ${signal}: ending running transfers now`, { event: "signal", signal });
        server.close({ graceMs: 0 });
      }
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  let succeeded = 0;
  let requests = 0;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  const armIdle = () => {
    if (config.idleExitMs === undefined) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if ((server?.activeTransfers ?? 0) > 0) return armIdle();
      const seconds = config.idleExitMs! / 1000;
      const tally = config.maxTransfers === undefined
        ? ""
        : `; ${plural(requests, "request")}, ${succeeded} of ${config.maxTransfers} transfers done`;
      log.info(`no transfer for ${seconds} s (--idle-exit): stopping${tally}`, {
        event: "idle-exit",
        seconds,
        requests,
        succeeded,
      });
      stoppedBy ??= "idle";
      controller.abort();
    }, config.idleExitMs);
  };
  try {
    server = await serve({
      ...config.server,
      source,
      signal: controller.signal,
      onTransfer: (record) => {
        requests++;
        armIdle();
        if (record.outcome !== "ok" || config.maxTransfers === undefined) return;
        if (++succeeded === config.maxTransfers) {
          log.info(`${plural(succeeded, "transfer")} done (--max-transfers): stopping`, {
            event: "max-transfers",
            count: succeeded,
          });
          stoppedBy ??= "max-transfers";
          controller.abort();
        }
      },
    });
    armIdle();
    const where = server.addresses.map(formatAddr);
    getLogger("start").info(`listening on ${where.join(" ")} serving ${source.describe()}`, {
      event: "listening",
      addresses: where,
      port: server.port,
      source: source.describe(),
    });
    await server.finished;
    log.info("stopped", { event: "stopped" });
    return exitCode();
  } finally {
    clearTimeout(idleTimer);
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  }

  function exitCode(): number {
    const unfinished = config.maxTransfers !== undefined && succeeded < config.maxTransfers;
    if (!unfinished) return ServeExit.OK;
    if (stoppedBy === "idle") return requests === 0 ? ServeExit.IDLE : ServeExit.UNFINISHED;
    if (stoppedBy === "signal") {
      return signalled === "SIGTERM" ? ServeExit.SIGTERM : ServeExit.SIGINT;
    }
    return ServeExit.OK;
  }
}
