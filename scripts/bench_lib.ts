/**
 * Helpers for `scripts/bench.ts`: child-process bookkeeping (so every process the benchmark
 * starts can be killed on exit, error or Ctrl-C), server start-up / readiness detection, running
 * the `atftp` client with a wall-clock timer, parsing `atftp --trace` output, hashing files and
 * reading `/proc/PID/status`.
 *
 * Only Deno built-ins and `node:` modules are used (no JSR).
 *
 * @module
 */

import { createSocket } from "node:dgram";
import { createHash } from "node:crypto";

/** Bytes in one MiB; all sizes and throughputs in the benchmark use binary megabytes. */
export const MiB = 1024 * 1024;

/** Promise-based sleep. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Median of a non-empty list (mean of the two middle values for even lengths). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Error message of an unknown thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------
// Child-process tracking

const live = new Map<number, Deno.ChildProcess>();

/** Spawns `command` and remembers the child until it exits, so {@link killAllTracked} finds it. */
export function spawnTracked(command: Deno.Command): Deno.ChildProcess {
  const child = command.spawn();
  live.set(child.pid, child);
  child.status.then(() => live.delete(child.pid), () => live.delete(child.pid));
  return child;
}

/** Number of tracked children that are still running. */
export function liveChildren(): number {
  return live.size;
}

/** Sends `signal` to a child (ignoring "already exited" errors). */
function tryKill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // already gone
  }
}

/** PIDs of all (transitive) child processes of `roots`, read from /proc (Linux only). */
export function descendants(roots: Iterable<number>): number[] {
  const parentOf = new Map<number, number>();
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
        // pid (comm) state ppid ... ; comm may contain spaces and parentheses
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        parentOf.set(Number(e.name), ppid);
      } catch {
        // process vanished
      }
    }
  } catch {
    return [];
  }
  const found = new Set<number>(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parentOf) {
      if (!found.has(pid) && found.has(ppid)) {
        found.add(pid);
        grew = true;
      }
    }
  }
  for (const r of roots) found.delete(r);
  return [...found];
}

/** SIGKILLs the given PIDs (e.g. the per-transfer processes a forking server left behind). */
export function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Stops one child: SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopChild(child: Deno.ChildProcess, graceMs = 1000): Promise<void> {
  if (!live.has(child.pid)) {
    await child.status.catch(() => {});
    return;
  }
  const kids = descendants([child.pid]);
  tryKill(child, "SIGTERM");
  const exited = await Promise.race([child.status.then(() => true, () => true), delay(graceMs)]);
  if (!exited) tryKill(child, "SIGKILL");
  await Promise.race([child.status.catch(() => {}), delay(5000)]);
  killPids(kids);
}

/** Kills every tracked child that is still running (SIGTERM, then SIGKILL after `graceMs`). */
export async function killAllTracked(graceMs = 1000): Promise<void> {
  const children = [...live.values()];
  if (children.length === 0) return;
  const kids = descendants(children.map((c) => c.pid));
  for (const c of children) tryKill(c, "SIGTERM");
  await Promise.race([Promise.allSettled(children.map((c) => c.status)), delay(graceMs)]);
  for (const c of live.values()) tryKill(c, "SIGKILL");
  await Promise.race([Promise.allSettled(children.map((c) => c.status)), delay(5000)]);
  killPids(kids);
}

// ---------------------------------------------------------------------------------------------
// Small system helpers

/** Finds an executable file named `name` in `$PATH`, or returns null. */
export function which(name: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const candidate = `${dir}/${name}`;
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

/** True if `path` is a regular file with an execute bit set. */
export function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0o755) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Runs a short command and returns its trimmed stdout ("" on failure). */
export async function commandOutput(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdin: "null", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}

const handedOutPorts = new Set<number>();

/** Asks the kernel for a free UDP port on `host` (never returns the same port twice per run). */
export async function freeUdpPort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const sock = createSocket("udp4");
      sock.once("error", reject);
      sock.bind(0, host, () => {
        const p = sock.address().port;
        sock.close(() => resolve(p));
      });
    });
    if (!handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
  throw new Error("could not find a free UDP port");
}

/**
 * Sends a TFTP RRQ for a file that does not exist and waits for any reply (normally an ERROR
 * packet). Retries every 150 ms until `timeoutMs`. Returns true if the server answered.
 */
export async function probeTftp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const sock = createSocket("udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.bind(0, "127.0.0.1", () => resolve());
    });
    const answered = new Promise<boolean>((resolve) => sock.once("message", () => resolve(true)));
    const rrq = new Uint8Array([
      0,
      1,
      ...new TextEncoder().encode("__tftpkit_bench_probe_does_not_exist__"),
      0,
      ...new TextEncoder().encode("octet"),
      0,
    ]);
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      sock.send(rrq, port, host);
      const ok = await Promise.race([answered, delay(150).then(() => false)]);
      if (ok) return true;
    }
    return false;
  } catch {
    return false;
  } finally {
    try {
      sock.close();
    } catch {
      // ignore
    }
  }
}

/** VmRSS / VmHWM (in KiB) of a process, or null if it is gone. */
export function readProcMemory(pid: number): { rssKiB: number; hwmKiB: number } | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return null;
  }
  const field = (name: string): number => {
    const m = text.match(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m"));
    return m ? Number(m[1]) : NaN;
  };
  return { rssKiB: field("VmRSS"), hwmKiB: field("VmHWM") };
}

/** The process name (`/proc/PID/comm`) of a process, or "" if it is gone. */
export function processName(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return "";
  }
}

// ---------------------------------------------------------------------------------------------
// Files

/** Writes `size` random bytes to `path` and returns their SHA-256 (hex). */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o644 });
  try {
    const chunk = new Uint8Array(MiB);
    let left = size;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      const part = chunk.subarray(0, n);
      for (let off = 0; off < n; off += 65536) {
        crypto.getRandomValues(part.subarray(off, Math.min(n, off + 65536)));
      }
      hash.update(part);
      let written = 0;
      while (written < n) written += await file.write(part.subarray(written));
      left -= n;
    }
  } finally {
    file.close();
  }
  await Deno.chmod(path, 0o644);
  return hash.digest("hex");
}

/** Size and SHA-256 (hex) of a file. */
export async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  const file = await Deno.open(path, { read: true });
  // The readable stream closes the file when it is done.
  for await (const chunk of file.readable) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: hash.digest("hex") };
}

// ---------------------------------------------------------------------------------------------
// Servers

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
