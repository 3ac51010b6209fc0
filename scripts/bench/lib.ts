/**
 * Helpers for `scripts/bench/bench.ts`: child-process bookkeeping (so every process the benchmark
 * starts can be killed on exit, error or Ctrl-C), free ports and a TFTP readiness probe, hashing
 * files and reading `/proc/PID/status`. Starting servers and running clients: `bench_peers.ts`.
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
export function tryKill(child: Deno.ChildProcess, signal: Deno.Signal): void {
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
