/**
 * `tftpkit get` and `tftpkit put`: the client for runbooks. The local side is opened before the
 * transfer (see `local.ts`); SIGINT/SIGTERM sends the server ERROR 0 "cancelled", removes what
 * was written and exits 130/143; a failure prints one line naming the file and the server once
 * and exits with curl's code for it (see {@linkcode clientExitCode}); `--json` prints the outcome
 * as one JSON object.
 *
 * @module
 */

import { type ClientResult, download, upload } from "../client/client.ts";
import {
  AbortedError,
  describeError,
  errorCodeName,
  PeerError,
  printable,
  RefusedError,
  TftpError,
  TimeoutError,
} from "../errors.ts";
import { redactSecrets, setupLogging } from "../log.ts";
import { formatAddr, HostNotFoundError } from "../net.ts";
import { formatRate } from "../server/record.ts";
import { ChunkWriter } from "../storage/chunks.ts";
import { writeAllSync } from "../storage/atomic.ts";
import { UsageError } from "./args.ts";
import { ClientExit, clientExitCode, ClobberError, LocalFileError } from "./exit_codes.ts";
import { openDestination, openLocalSource } from "./local.ts";
import { Progress } from "./progress.ts";
import { GET_HELP, parseTransferArgs, PUT_HELP, type TransferPlan } from "./transfer_args.ts";

export { GET_HELP, parseWhere, PUT_HELP } from "./transfer_args.ts";

/** The abort reason of a transfer stopped by SIGINT/SIGTERM: the server is sent ERROR 0 with it. */
const CANCELLED = "cancelled";

/** What one `get`/`put` did, for `--json` and the summary line. */
interface Outcome {
  result?: ClientResult;
  bytes: number;
  durationMs: number;
  error?: unknown;
  exitCode: number;
}

/** Why the transfer failed, in words that do not repeat the server's address. */
function reasonOf(e: unknown, server: string, signal?: Deno.Signal): string {
  if (e instanceof AbortedError && signal) return `cancelled (${signal}); the server was told`;
  if (e instanceof PeerError) {
    const said = printable(e.peerMessage) || "-";
    return `server sent ERROR ${e.code} (${errorCodeName(e.code)}): ${said}`;
  }
  if (e instanceof LocalFileError) return `cannot ${e.op} ${e.path}: ${e.reason}`;
  if (e instanceof ClobberError) return e.message;
  if (e instanceof HostNotFoundError) return "cannot resolve the host name";
  if (e instanceof TimeoutError) return `timed out: ${e.message.replace(` from ${server}`, "")}`;
  if (e instanceof RefusedError) return describeError(e);
  if (e instanceof TftpError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

/** The TFTP error code of a failure (the server's, or the one we sent it), else null. */
function tftpCodeOf(e: unknown): number | null {
  return e instanceof PeerError || e instanceof RefusedError ? e.code : null;
}

/**
 * Runs `tftpkit get` or `tftpkit put` and resolves with the exit code.
 *
 * @example `tftpkit get` from a server on a free port
 * ```ts
 * import { runTransfer } from "./transfer.ts";
 * import { ClientExit } from "./exit_codes.ts";
 * import { serve } from "../server/server.ts";
 * import { DirectorySource } from "../storage/files.ts";
 * import { equal } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hello.txt`, "hello\n");
 * const server = await serve({
 *   source: await DirectorySource.open(dir),
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 *
 * const where = `127.0.0.1:${server.port}`;
 * equal(await runTransfer("get", [where, "hello.txt", `${dir}/copy.txt`, "--quiet"]), 0);
 * equal(await Deno.readTextFile(`${dir}/copy.txt`), "hello\n");
 * // A file the server does not have: curl's exit code for it, and one line on standard error
 * // naming the file, the server and its ERROR 1.
 * equal(await runTransfer("get", [where, "missing.txt", `${dir}/x`]), ClientExit.NOT_FOUND);
 *
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function runTransfer(command: "get" | "put", args: string[]): Promise<number> {
  const plan = parseTransferArgs(command, args);
  if (plan.help) {
    console.log(command === "get" ? GET_HELP : PUT_HELP);
    return 0;
  }
  const stderr = (line: string) => writeAllSync(Deno.stderr, new TextEncoder().encode(line));
  if (plan.verbose) await setupLogging({ level: "debug", write: stderr });
  const server = formatAddr({ hostname: plan.target.hostname, port: plan.target.port ?? 69 });
  const subject = command === "get"
    ? `${plan.remote} from ${server}`
    : `${plan.local} to ${server} as ${plan.remote}`;
  const progress = !plan.quiet && !plan.json && Deno.stderr.isTerminal()
    ? new Progress(command === "get" ? plan.remote : plan.local)
    : null;
  let bytes = 0;
  plan.options.onProgress = (b, total) => {
    bytes = b;
    progress?.update(b, total);
  };
  const controller = new AbortController();
  let signalled: Deno.Signal | undefined;
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handlers = signals.map((signal) => {
    const handler = () => {
      // A second signal while something local blocks (a FIFO without a reader, standard input
      // that sends nothing) exits at once.
      if (signalled) Deno.exit(clientExitCode(new AbortedError(), signalled));
      signalled = signal;
      controller.abort(new Error(CANCELLED));
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  plan.options.signal = controller.signal;
  const started = performance.now();
  const outcome: Outcome = { bytes: 0, durationMs: 0, exitCode: ClientExit.OK };
  try {
    outcome.result = command === "get" ? await getFile(plan) : await putFile(plan);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    outcome.error = e;
    outcome.exitCode = clientExitCode(e, signalled);
  } finally {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    progress?.done();
  }
  outcome.durationMs = Math.round(performance.now() - started);
  outcome.bytes = outcome.result ? (outcome.result.bytes ?? bytes) : bytes;
  if (plan.json) {
    console.log(JSON.stringify(jsonOf(command, plan, server, outcome, signalled)));
  } else if (outcome.error !== undefined) {
    stderr(`tftpkit ${command}: ${subject}: ${reasonOf(outcome.error, server, signalled)}\n`);
  } else if (!plan.quiet && !progress && !Deno.stdout.isTerminal() && plan.local !== "-") {
    const rate = formatRate(Math.round(outcome.bytes / Math.max(outcome.durationMs, 1) * 1000));
    const verb = command === "get" ? `received into ${plan.local}` : "sent";
    stderr(
      `tftpkit ${command}: ${subject}: ${verb}: ${outcome.bytes} bytes in ` +
        `${outcome.durationMs} ms (${rate})\n`,
    );
  }
  return outcome.exitCode;
}

function jsonOf(
  command: "get" | "put",
  plan: TransferPlan,
  server: string,
  o: Outcome,
  signal?: Deno.Signal,
) {
  const n = o.result?.negotiated;
  return {
    event: command,
    outcome: o.error === undefined ? "ok" : signal ? "cancelled" : "error",
    server,
    remote: plan.remote,
    local: plan.local,
    mode: plan.options.mode,
    bytes: o.bytes,
    durationMs: o.durationMs,
    rateBps: Math.round(o.bytes / Math.max(o.durationMs, 1) * 1000),
    tsize: o.result?.tsize ?? null,
    negotiated: n
      ? { blksize: n.blksize, windowsize: n.windowsize, timeoutMs: n.timeoutMs ?? null }
      : null,
    acknowledged: o.result ? Object.fromEntries(o.result.acknowledged) : null,
    retransmits: o.result?.retransmits ?? null,
    errorCode: o.error === undefined ? null : tftpCodeOf(o.error),
    error: o.error === undefined ? null : redactSecrets(reasonOf(o.error, server, signal)),
    exitCode: o.exitCode,
  };
}

async function getFile(plan: TransferPlan): Promise<ClientResult> {
  const { handle } = await openDestination(plan.local, plan.noClobber);
  // Buffer blocks into large writes: one write per block would cost more than the network.
  const writer = new ChunkWriter(handle, 256 * 1024);
  try {
    return await download(plan.target, plan.remote, writer, plan.options);
  } catch (e) {
    await handle.abort();
    throw e;
  }
}

async function putFile(plan: TransferPlan): Promise<ClientResult> {
  const handle = await openLocalSource(plan.local);
  try {
    return await upload(plan.target, plan.remote, handle, plan.options);
  } finally {
    handle.close();
  }
}
