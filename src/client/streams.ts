/**
 * Client conveniences over {@linkcode download} and {@linkcode upload}: whole files as bytes, and
 * web streams in and out.
 *
 * @module
 */

import { type ClientOptions, type ClientResult, download, type Target, upload } from "./client.ts";
import type { ReadHandle } from "../storage/source.ts";

/**
 * Downloads `remote` into memory.
 *
 * @example
 * ```ts
 * import { get } from "../mod.ts";
 * import { DirectorySource, serve } from "../mod.ts";
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
 * const bytes = await get({ hostname: "127.0.0.1", port: server.port }, "hello.txt");
 * equal(new TextDecoder().decode(bytes), "hello\n");
 *
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function get(
  target: Target,
  remote: string,
  options?: ClientOptions,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  await download(target, remote, {
    write(d) {
      chunks.push(d.slice());
      length += d.length;
    },
    finish: () => Promise.resolve(),
  }, options);
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Downloads `remote` into a `WritableStream` (closed at the end, aborted on failure).
 *
 * @example Download into a file
 * ```ts
 * import { getToStream } from "../mod.ts";
 * import { DirectorySource, serve } from "../mod.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const image = new Uint8Array(100_000).map((_, i) => i % 251);
 * await Deno.writeFile(`${dir}/image.bin`, image);
 * const server = await serve({
 *   source: await DirectorySource.open(dir),
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 *
 * // Any WritableStream will do: Deno.stdout.writable, a file's, a CompressionStream's.
 * const local = await Deno.open(`${dir}/copy.bin`, { write: true, create: true });
 * const result = await getToStream(
 *   { hostname: "127.0.0.1", port: server.port },
 *   "image.bin",
 *   local.writable, // closed at the end
 * );
 * equal(result.bytes, image.length);
 * equal(result.tsize, image.length);
 * deepEqual(await Deno.readFile(`${dir}/copy.bin`), image);
 *
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function getToStream(
  target: Target,
  remote: string,
  stream: WritableStream<Uint8Array>,
  options?: ClientOptions,
): Promise<ClientResult> {
  const writer = stream.getWriter();
  try {
    const result = await download(target, remote, {
      write: (d) => writer.write(d.slice()),
      finish: () => writer.close(),
    }, options);
    return result;
  } catch (e) {
    await writer.abort(e).catch(() => {});
    throw e;
  }
}

/**
 * Uploads bytes or a stream as `remote`.
 *
 * @example Upload bytes, and a stream of unknown length
 * ```ts
 * import { put } from "../mod.ts";
 * import { DirectorySource, serve } from "../mod.ts";
 * import { equal } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const server = await serve({
 *   source: await DirectorySource.open(dir, { write: true }),
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 * const target = { hostname: "127.0.0.1", port: server.port };
 *
 * await put(target, "hello.txt", new TextEncoder().encode("hi\n"));
 * equal(await Deno.readTextFile(`${dir}/hello.txt`), "hi\n");
 *
 * const stream = ReadableStream.from(["one ", "two\n"]).pipeThrough(new TextEncoderStream());
 * const result = await put(target, "log.txt", stream);
 * equal(result.tsize, undefined); // a stream's size is not known in advance
 * equal(await Deno.readTextFile(`${dir}/log.txt`), "one two\n");
 *
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function put(
  target: Target,
  remote: string,
  data: Uint8Array | ReadableStream<Uint8Array>,
  options?: ClientOptions,
): Promise<ClientResult> {
  return upload(target, remote, readHandleOf(data), options);
}

/** Adapts bytes or a byte stream to a {@linkcode ReadHandle}. */
export function readHandleOf(data: Uint8Array | ReadableStream<Uint8Array>): ReadHandle {
  if (data instanceof Uint8Array) {
    let at = 0;
    return {
      name: "(bytes)",
      size: data.length,
      read(p) {
        if (at >= data.length) return Promise.resolve(null);
        const n = Math.min(p.length, data.length - at);
        p.set(data.subarray(at, at + n));
        at += n;
        return Promise.resolve(n);
      },
      close() {},
    };
  }
  const reader = data.getReader();
  let rest: Uint8Array = new Uint8Array(0);
  return {
    name: "(stream)",
    async read(p) {
      while (rest.length === 0) {
        const { value, done } = await reader.read();
        if (done) return null;
        rest = value;
      }
      const n = Math.min(p.length, rest.length);
      p.set(rest.subarray(0, n));
      rest = rest.subarray(n);
      return n;
    },
    close: () => reader.releaseLock(),
  };
}
