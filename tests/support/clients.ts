/**
 * Test support for the real-client tests (`tests/clients*_test.ts`): the server's JSON transfer
 * records and waiting for them, byte-for-byte comparison, and invocations of the Debian TFTP
 * clients (tftp-hpa, atftp, busybox, curl) against a server on 127.0.0.1.
 *
 * @module
 */

import { ok } from "node:assert/strict";
import type { TransferRecord } from "../../src/server/record.ts";
import { run, type ServerProcess } from "./server.ts";
import { HOST } from "../../src/testing/loopback.ts";

/** One JSON transfer record of the server's log. */
export type Rec = TransferRecord & { event: string };

/** The transfer records of the server's log from line `from` on. */
export function records(server: ServerProcess, from = 0): Rec[] {
  const out: Rec[] = [];
  for (const line of server.lines.slice(from)) {
    if (!line.startsWith("{")) continue;
    try {
      const r = JSON.parse(line);
      if (r.event === "transfer") out.push(r as Rec);
    } catch { /* not JSON */ }
  }
  return out;
}

/** Waits until at least `count` transfer records from line `from` on satisfy `pred`. */
export async function waitRecords(
  server: ServerProcess,
  pred: (r: Rec) => boolean,
  count = 1,
  from = 0,
  timeoutMs = 30_000,
): Promise<Rec[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = records(server, from).filter(pred);
    if (found.length >= count) return found;
    if (Date.now() > deadline) {
      throw new Error(
        `expected ${count} matching transfer records, saw ${found.length}:\n` +
          server.lines.join("\n"),
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits for the record of `file` (from line `from` on). */
export async function recordOf(server: ServerProcess, file: string, from = 0): Promise<Rec> {
  return (await waitRecords(server, (r) => r.file === file, 1, from))[0];
}

export { listDir, sameBytes } from "./client_peers.ts";

// --- client invocations -----------------------------------------------------------------------

/** tftp-hpa: exits 0 even on failure, so callers check the output and the file. */
export function hpa(port: number, command: string[], mode = "octet", cwd?: string) {
  return run("tftp", ["-m", mode, HOST, String(port), "-c", ...command], { cwd });
}

/** atftp with a 2 s timeout and the given `--option`s. */
export function atftp(port: number, args: string[], options: string[] = []) {
  return run("atftp", [
    "--tftp-timeout",
    "2",
    ...options.flatMap((o) => ["--option", o]),
    ...args,
    HOST,
    String(port),
  ]);
}

/** busybox tftp. */
export function busybox(port: number, args: string[]) {
  return run("busybox", ["tftp", ...args, HOST, String(port)]);
}

/** curl downloading `tftp://HOST:port/remote` to `local`. */
export function curl(port: number, remote: string, local: string, extra: string[] = []) {
  return run("curl", ["-sS", ...extra, "-o", local, `tftp://${HOST}:${port}/${remote}`]);
}

/** A client's standard output and error together. */
export function output(r: { stdout: string; stderr: string }): string {
  return r.stdout + r.stderr;
}

/** Asserts tftp-hpa (which exits 0 even on failure) printed no error. */
export function doesNotReportError(r: { stdout: string; stderr: string }) {
  ok(!/error/i.test(output(r)), `tftp-hpa reported: ${output(r)}`);
}
