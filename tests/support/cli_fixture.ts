/**
 * Test support for the command-line tests: run `main.ts` with exactly the permissions the README
 * documents for serving, and check that a message is one line without a stack trace.
 *
 * @module
 */

import { equal, ok } from "node:assert/strict";
import { MAIN, ROOT, run } from "./server.ts";

const PERMS = ["--allow-net", "--allow-read"];

/** `deno run --allow-net --allow-read main.ts ARGS…`. */
export function tftpkit(
  args: string[],
  options: Parameters<typeof run>[2] = {},
): ReturnType<typeof run> {
  return run(Deno.execPath(), ["run", ...PERMS, MAIN, ...args], { cwd: ROOT, ...options });
}

/** Asserts `text` is exactly one non-empty line without a stack trace, and returns it. */
export function oneLine(text: string, what: string): string {
  const lines = text.trimEnd().split("\n");
  equal(lines.length, 1, `${what}: expected one line, got:\n${text}`);
  ok(lines[0].length > 0, `${what}: empty message`);
  ok(!/^\s+at |Uncaught|error: /m.test(text), `${what}: looks like a stack trace:\n${text}`);
  return lines[0];
}
