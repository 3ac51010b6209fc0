/**
 * Servers and clients of the benchmark: start a server and wait until it is ready (its ready line
 * and a TFTP probe), stop it, tell why it died; run the `atftp` client with a wall-clock timer and
 * a watchdog, and parse `atftp --trace` output.
 *
 * @module
 */

import { delay, errorMessage, probeTftp, spawnTracked, stopChild, tryKill } from "./lib.ts";

/** How to start one server. */
export interface ServerSpec {
  /** Display name, e.g. "tftpkit", "tftpd-hpa", "atftpd". */
  name: string;
  cmd: string;
  args: string[];
  cwd?: string;
  /** If set, the server is ready once a stdout/stderr line contains this text. */
  readyLine?: string;
  /** A log file the server writes to (its tail is shown if start-up fails). */
  logFile?: string;
  /** Not a TFTP server: ready on `readyLine` alone, without a TFTP probe. */
  noProbe?: boolean;
}

/** A started server process. */
export class RunningServer {
  readonly lines: string[] = [];
  #readyResolve: (() => void) | null = null;
  readonly readyLineSeen: Promise<void>;
  /** Exit status once the process has exited (null while it runs). */
  exitStatus: Deno.CommandStatus | null = null;
  #stopping = false;

  constructor(
    readonly spec: ServerSpec,
    readonly port: number,
    readonly child: Deno.ChildProcess,
  ) {
    this.readyLineSeen = new Promise((resolve) => (this.#readyResolve = resolve));
    child.status.then((s) => (this.exitStatus = s), () => {});
    void this.#drain(child.stdout);
    void this.#drain(child.stderr);
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Last lines the server printed (stdout+stderr, plus its log file if any). */
  tail(n = 8): string {
    const lines = [...this.lines];
    if (this.spec.logFile) {
      try {
        lines.push(...Deno.readTextFileSync(this.spec.logFile).split("\n"));
      } catch {
        // no log file yet
      }
    }
    return lines.filter((l) => l.trim() !== "").slice(-n).join(" | ");
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    let buf = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          this.#line(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      }
    } catch {
      // stream error: process died
    }
    if (buf) this.#line(buf);
  }

  #line(raw: string): void {
    // deno-lint-ignore no-control-regex
    const line = raw.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").trimEnd();
    this.lines.push(line.length > 300 ? `${line.slice(0, 300)}...` : line);
    if (this.lines.length > 200) this.lines.splice(0, this.lines.length - 100);
    if (this.spec.readyLine && line.includes(this.spec.readyLine)) this.#readyResolve?.();
  }

  /**
   * If the server died on its own (not stopped by us): a description with its exit code and last
   * output lines, otherwise "".
   */
  async deathNote(): Promise<string> {
    await delay(100); // let the exit status and output arrive
    const st = this.exitStatus;
    if (!st || this.#stopping) return "";
    const how = st.signal ? `signal ${st.signal}` : `code ${st.code}`;
    const tail = this.tail(6);
    return `${this.spec.name} server exited with ${how}` + (tail ? `; output: ${tail}` : "");
  }

  /** Stops the server (SIGTERM, SIGKILL after a grace period). */
  async stop(): Promise<void> {
    this.#stopping = true;
    await stopChild(this.child, 1000);
  }
}

/**
 * Starts a server on 127.0.0.1:`port` and waits until it is ready: the `readyLine` (if any) was
 * printed AND it answers a TFTP probe (unless `noProbe`). Throws an Error whose message explains why otherwise.
 */
export async function startServer(
  spec: ServerSpec,
  port: number,
  timeoutMs: number,
): Promise<RunningServer> {
  let child: Deno.ChildProcess;
  try {
    child = spawnTracked(
      new Deno.Command(spec.cmd, {
        args: spec.args,
        cwd: spec.cwd,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }),
    );
  } catch (err) {
    throw new Error(`cannot start ${spec.cmd}: ${errorMessage(err)}`);
  }
  const server = new RunningServer(spec, port, child);
  const deadline = performance.now() + timeoutMs;
  const exited = child.status.then((s) => s);

  const waitFor = async (p: Promise<unknown>): Promise<"ok" | "exited" | "timeout"> => {
    const left = Math.max(0, deadline - performance.now());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      p.then(() => "ok" as const),
      exited.then(() => "exited" as const),
      new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), left))),
    ]);
    clearTimeout(timer);
    return r;
  };

  const fail = async (why: string): Promise<never> => {
    await server.stop();
    await delay(50); // let the output drain
    const tail = server.tail();
    throw new Error(tail ? `${why}; output: ${tail}` : why);
  };

  if (spec.readyLine) {
    const r = await waitFor(server.readyLineSeen);
    if (r === "exited") {
      const s = await exited;
      return await fail(`exited with code ${s.code} before printing "${spec.readyLine}"`);
    }
    if (r === "timeout") {
      return await fail(`did not print "${spec.readyLine}" within ${timeoutMs / 1000} s`);
    }
  }
  if (spec.noProbe) return server;
  const probe = (async () => {
    while (performance.now() < deadline) {
      if (await probeTftp("127.0.0.1", port, 300)) return;
    }
    throw new Error("probe timed out");
  })();
  const r = await waitFor(probe.catch(() => new Promise(() => {})));
  if (r === "exited") {
    const s = await exited;
    return await fail(`exited with code ${s.code} during start-up`);
  }
  if (r === "timeout") {
    return await fail(
      `did not answer a TFTP request on 127.0.0.1:${port} within ${timeoutMs / 1000} s`,
    );
  }
  return server;
}

// ---------------------------------------------------------------------------------------------
// Client

/** Result of one client process. */
export interface ClientResult {
  code: number;
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a client command with a wall-clock timer and a watchdog (SIGKILL after `timeoutMs`). */
export async function runClient(
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<ClientResult> {
  const t0 = performance.now();
  const child = spawnTracked(
    new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" }),
  );
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    tryKill(child, "SIGKILL");
  }, timeoutMs);
  try {
    const out = await child.output();
    const ms = performance.now() - t0;
    const dec = new TextDecoder();
    return {
      code: out.code,
      ms,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      timedOut,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** One-line description of a failed client run. */
export function describeClientFailure(r: ClientResult): string {
  const text = `${r.stderr}\n${r.stdout}`.split("\n").map((l) => l.trim()).filter((l) =>
    l && !l.startsWith("received ") && !l.startsWith("sent ")
  );
  const tail = text.slice(-3).join(" | ");
  const what = r.timedOut ? "timed out (killed)" : `exit code ${r.code}`;
  return tail ? `atftp ${what}: ${tail}` : `atftp ${what}`;
}

/** What `atftp --trace` shows about a transfer's negotiation. */
export interface TraceInfo {
  /** Options the server acknowledged in its OACK (null: no OACK was received). */
  oack: Record<string, number> | null;
  /** Payload size of DATA block 1. */
  firstDataSize: number | null;
  dataPackets: number;
  acksSent: number;
}

/** Parses the output of `atftp --trace`. */
export function parseTrace(text: string): TraceInfo {
  let oack: Record<string, number> | null = null;
  const m = text.match(/received OACK <([^>]*)>/);
  if (m) {
    oack = {};
    for (const kv of m[1].matchAll(/([A-Za-z]+):\s*(\d+)/g)) {
      oack[kv[1].toLowerCase()] = Number(kv[2]);
    }
  }
  const first = text.match(/DATA <block: 1, size:? (\d+)>/);
  const dataPackets = text.match(/^received \d+\. DATA /gm)?.length ?? 0;
  const acksSent = text.match(/^sent ACK /gm)?.length ?? 0;
  return { oack, firstDataSize: first ? Number(first[1]) : null, dataPackets, acksSent };
}
