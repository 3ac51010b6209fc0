/**
 * Test support: start `main.ts serve` as a subprocess with exactly the permissions the README
 * documents, wait for its "listening" line, read its log, and stop it.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));
/** Path of main.ts. */
export const MAIN: string = `${ROOT}main.ts`;

/** A running server subprocess. */
export interface ServerProcess {
  /** The UDP port it listens on. */
  port: number;
  /** Every line it has printed so far (stdout and stderr). */
  lines: string[];
  /** The child process. */
  child: Deno.ChildProcess;
  /** Waits until a printed line matches `pattern` (default timeout 10 s). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends SIGTERM (or `signal`) and resolves with the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** Resolves with the exit code when the process ends by itself. */
  exited: Promise<number>;
}

/** Options of {@linkcode startServer}. */
export interface StartOptions {
  /** Grant --allow-write as well (uploads). */
  write?: boolean;
  /** Extra `deno run` flags before main.ts. */
  denoFlags?: string[];
  /** Expect the process to fail at start: resolve once it exits instead of waiting to listen. */
  expectExit?: boolean;
  /** A command to run deno under (e.g. `setpriv …`), its arguments before deno's path. */
  wrap?: string[];
  /**
   * The whole command line before `serve` (e.g. a deno task's words), instead of
   * `deno run PERMISSIONS main.ts`.
   */
  command?: string[];
}

/**
 * Starts `deno run --allow-net --allow-read [--allow-write] main.ts serve ARGS…`. Unless ARGS
 * give them, `--address 127.0.0.1 --port 0` are added.
 */
export async function startServer(
  args: string[],
  options: StartOptions = {},
): Promise<ServerProcess> {
  const full = ["serve", ...args];
  if (!args.includes("--address")) full.push("--address", "127.0.0.1");
  // `--address ADDR:PORT` gives the port.
  const withPort = args.some((a) => /^(\d+\.){3}\d+:\d+$|^\[.*\]:\d+$/.test(a));
  if (!args.includes("--port") && !withPort) full.push("--port", "0");
  const perms = ["--allow-net", "--allow-read", ...(options.write ? ["--allow-write"] : [])];
  const base = options.command ??
    [Deno.execPath(), "run", ...perms, ...(options.denoFlags ?? []), MAIN];
  const argv = [...(options.wrap ?? []), ...base, ...full];
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += decoder.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
      for (const w of waiters.splice(0)) w();
    }
    if (rest) lines.push(rest);
    for (const w of waiters.splice(0)) w();
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const exited = pumps.then(() => child.status).then((s) => s.code);
  let done = false;
  exited.then(() => (done = true));
  const waitFor = async (pattern: RegExp, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    for (;;) {
      for (; seen < lines.length; seen++) if (pattern.test(lines[seen])) return lines[seen];
      if (done) throw new Error(`server exited before printing ${pattern}:\n${lines.join("\n")}`);
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${pattern}:\n${lines.join("\n")}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    if (!done) {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    }
    return await exited;
  };
  let port = 0;
  if (!options.expectExit) {
    try {
      // A guard against a server that never starts, not a timing: a pool of worker isolates
      // compiling on a loaded 2-core machine (the suite runs in parallel) has taken over 10 s.
      const line = await waitFor(/listening on /, 30_000);
      port = Number(/listening on (?:\[[^\]]*\]|[^\s:]+):(\d+)/.exec(line)?.[1]);
    } catch (e) {
      await stop("SIGKILL");
      throw e;
    }
  } else {
    await exited;
  }
  return { port, lines, child, waitFor, stop, exited };
}

/**
 * Runs a command to completion and returns its exit code and output.
 *
 * @example
 * ```ts ignore
 * const r = await run("tftp", ["127.0.0.1", "6969", "-c", "get", "x"]);
 * ```
 */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; stdin?: Uint8Array; timeoutMs?: number; env?: Record<string, string> } =
    {},
): Promise<{ code: number; stdout: string; stderr: string; out: Uint8Array }> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin) {
    const w = child.stdin.getWriter();
    await w.write(options.stdin);
    await w.close();
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, options.timeoutMs ?? 60_000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    out: out.stdout,
  };
}

/** Runs `deno run -A main.ts ARGS…` (the CLI, e.g. `get`/`put`). */
export function cli(args: string[], options: Parameters<typeof run>[2] = {}) {
  return run(Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    MAIN,
    ...args,
  ], {
    cwd: ROOT,
    ...options,
  });
}

/** Writes `size` deterministic pseudo-random bytes (seeded) to `path` and returns them. */
export async function makeFile(path: string, size: number, seed = 1): Promise<Uint8Array> {
  const data = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  await Deno.writeFile(path, data);
  return data;
}

/** SHA-256 of bytes, as hex. */
export async function sha256(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Path of atftpd (from $ATFTPD, PATH, or .tools). Throws if missing: tests must not skip. */
export function atftpdPath(): string {
  const candidates = [
    Deno.env.get("ATFTPD"),
    `${ROOT}.tools/atftpd/usr/sbin/atftpd`,
    "/usr/sbin/atftpd",
  ];
  for (const c of candidates) {
    if (!c) continue;
    try {
      if (Deno.statSync(c).isFile) return c;
    } catch { /* next */ }
  }
  throw new Error("atftpd not found: run bash scripts/setup.sh --peers");
}
