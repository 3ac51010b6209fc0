/**
 * The server side of `scripts/soak/soak.ts`: the `tftpkit serve` process under test, its JSON log
 * (outcome counts, the records other than ok, warnings); its descriptors and memory are read
 * from `/proc` with the test suite's helpers (`src/testing/proc.ts`).
 *
 * @module
 */

import { V8_FLAGS } from "../release/plan.ts";
export { fdCount, statusKb } from "../../src/testing/proc.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

/** The soak's server process and what its JSON log said so far. */
export interface Server {
  child: Deno.ChildProcess;
  pid: number;
  port: number;
  /** Outcome counts of the server's transfer records. */
  outcomes: Map<string, number>;
  /** Records other than `ok`, counted by "OP outcome: error" (numbers shown as N). */
  notOk: Map<string, number>;
  /** Transfer records seen so far. */
  records: number;
  /** Non-transfer lines at warning level or above. */
  warnings: string[];
  exited: Promise<number>;
}

/**
 * Starts `tftpkit serve DIR --write` (1 s timeout, 8 retries, JSON log) as the binaries run it and
 * resolves once it logs its `listening` event.
 */
export async function startServer(dir: string): Promise<Server> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      V8_FLAGS, // as the binaries and the deno tasks run it
      "--allow-net",
      "--allow-read",
      "--allow-write",
      MAIN,
      "serve",
      dir,
      "--address",
      "127.0.0.1",
      "--port",
      "0",
      "--write",
      "--timeout",
      "1",
      "--retries",
      "8",
      "--log-format",
      "json",
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const server: Server = {
    child,
    pid: child.pid,
    port: 0,
    outcomes: new Map(),
    notOk: new Map(),
    records: 0,
    warnings: [],
    exited: Promise.resolve(0),
  };
  let listening!: (port: number) => void;
  const ready = new Promise<number>((r) => (listening = r));
  const onLine = (line: string) => {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line);
    } catch {
      if (line.trim()) server.warnings.push(line);
      return;
    }
    if (rec.event === "listening") listening(Number(rec.port));
    else if (rec.event === "transfer") {
      server.records++;
      const o = String(rec.outcome);
      server.outcomes.set(o, (server.outcomes.get(o) ?? 0) + 1);
      if (o !== "ok") {
        const why = `${rec.op} ${o}: ${String(rec.error ?? "").replace(/\d+/g, "N")}`;
        server.notOk.set(why, (server.notOk.get(why) ?? 0) + 1);
      }
    } else if (rec.level === "warning" || rec.level === "error" || rec.level === "fatal") {
      server.warnings.push(String(rec.msg));
    }
  };
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += dec.decode(chunk, { stream: true });
      const lines = rest.split("\n");
      rest = lines.pop()!;
      lines.forEach(onLine);
    }
    if (rest) onLine(rest);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  server.exited = pumps.then(() => child.status).then((s) => s.code);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    ready,
    server.exited.then((code) => {
      throw new Error(`server exited (${code}) before listening: ${server.warnings.join("\n")}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("server did not start within 30 s")), 30_000);
    }),
  ]).finally(() => clearTimeout(timer));
  server.port = port;
  return server;
}

/** SIGTERM, then SIGKILL after 10 s; resolves with the exit code. */
export async function stopServer(s: Server): Promise<number> {
  try {
    s.child.kill("SIGTERM");
  } catch { /* already gone */ }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((r) => {
    timer = setTimeout(() => {
      try {
        s.child.kill("SIGKILL");
      } catch { /* gone */ }
      r();
    }, 10_000);
  });
  const code = await Promise.race([s.exited, killed.then(() => s.exited)]);
  clearTimeout(timer);
  return code;
}
