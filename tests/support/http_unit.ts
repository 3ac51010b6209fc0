/**
 * Test support for the unit tests of src/http: a request description, reading a handle to the
 * end, a test origin or an origin + cache directory + fake clock around a test, and checking the
 * TFTP error a promise rejects with.
 *
 * @module
 */

import { equal, match, ok, rejects } from "node:assert/strict";
import { RefusedError } from "../../src/errors.ts";
import { HttpCache } from "../../src/storage/http/cache.ts";
import { HttpFileSource } from "../../src/storage/http/origin.ts";
import type { ReadHandle, RequestInfo } from "../../src/storage/source.ts";
import { startOrigin, type TestOrigin } from "./http_origin.ts";
export { listDir } from "./files.ts";

/** The request every `openRead` in these tests passes: an octet RRQ from 127.0.0.1:1. */
export const info: RequestInfo = {
  peer: { transport: "udp", hostname: "127.0.0.1", port: 1 },
  mode: "octet",
};

/** Reads `h` to the end in `bufSize` reads, checking each read's count; leaves `h` open. */
export async function readAll(h: ReadHandle, bufSize = 65536): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(bufSize);
  for (;;) {
    const n = await h.read(buf);
    if (n === null) break;
    ok(n > 0 && n <= bufSize, `read returned ${n}`);
    parts.push(buf.slice(0, n));
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Reads `h` to the end in `bufSize` reads, then closes it (also on failure). */
export async function readAllAndClose(h: ReadHandle, bufSize = 65536): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(bufSize);
  try {
    for (;;) {
      const n = await h.read(buf);
      if (n === null) break;
      parts.push(buf.slice(0, n));
    }
  } finally {
    h.close();
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Runs `fn` with a test origin, closed afterwards. */
export async function withOrigin(fn: (origin: TestOrigin) => Promise<void>): Promise<void> {
  const origin = await startOrigin();
  try {
    await fn(origin);
  } finally {
    await origin.close();
  }
}

/** Asserts `p` rejects with a `RefusedError` of `code` (and a message matching `message`). */
export async function expectCode(
  p: Promise<unknown>,
  code: number,
  message?: RegExp,
): Promise<void> {
  await rejects(p, (e: unknown) => {
    ok(e instanceof RefusedError, `expected a RefusedError, got ${e}`);
    equal(e.code, code, `code for "${e.message}"`);
    if (message) match(e.message, message);
    return true;
  });
}

/** Opens `name` through `source` and reads it to the end (closing the handle). */
export async function fetchVia(source: HttpFileSource, name: string): Promise<Uint8Array> {
  return await readAllAndClose(await source.openRead(name, info));
}

/** What a test gets from {@linkcode withCache}. */
export interface CacheFixture {
  /** The HTTP origin. */
  origin: TestOrigin;
  /** A temp dir; the cache lives in `${dir}/cache`. */
  dir: string;
  /** The fake clock every cache opened here reads. */
  clock: { now: number };
  /** Opens the cache and a tree-mode source over the origin's `/` that uses it. */
  open(options?: { maxBytes?: number; ttlSeconds?: number }): Promise<{
    cache: HttpCache;
    source: HttpFileSource;
  }>;
}

/** An origin, a cache directory, a fake clock; everything closed and removed afterwards. */
export async function withCache(fn: (f: CacheFixture) => Promise<void>): Promise<void> {
  const origin = await startOrigin();
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-cache-" });
  const clock = { now: 1_700_000_000_000 };
  const sources: HttpFileSource[] = [];
  try {
    await fn({
      origin,
      dir,
      clock,
      async open(options = {}) {
        const cache = await HttpCache.open(`${dir}/cache`, { ...options, now: () => clock.now });
        const source = new HttpFileSource(`${origin.base}/`, {
          tree: true,
          cache,
          headersTimeoutMs: 2000,
          idleTimeoutMs: 1000,
        });
        sources.push(source);
        return { cache, source };
      },
    });
  } finally {
    for (const s of sources) await s.close();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
}
