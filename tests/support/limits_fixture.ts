/**
 * Test support for the resource-limit and access-control tests: a temporary directory around a
 * test and a byte-for-byte comparison.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sameBytes } from "../../src/testing/proc.ts";
import { HOST } from "../../src/testing/loopback.ts";
export { HOST };

/** Runs `fn` with a new temporary directory named `prefix…`, removed afterwards. */
export async function withDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts that `got` equals `want` byte for byte, naming the first difference. */
export function assertBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  const diff = sameBytes(got, want);
  assert.equal(diff, null, `${what}: ${diff}`);
}
