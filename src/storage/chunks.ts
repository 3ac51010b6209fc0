/**
 * The engine's block source and sink over a {@linkcode ReadHandle} or {@linkcode WriteHandle}:
 * large reads and writes with read-ahead, so the engine's per-packet path copies bytes instead of
 * awaiting the disk, and netascii translation in between when the mode asks for it. Failures of
 * the handles become `RefusedError`s here.
 *
 * @module
 */

import type { BlockSink, BlockSource } from "../engine/blocks.ts";
import { NetasciiDecoder, NetasciiEncoder } from "../wire/netascii.ts";
import { fsErrorToTftp } from "./fs_errors.ts";
import type { ReadHandle, WriteHandle } from "./source.ts";

// 32 KiB, not 64: a transfer holds two chunks, and with the worker pool at 200 transfers at once
// 64 KiB chunks took the peak from 140 to 150 MiB for ~3 % of lock-step speed (BENCHMARKS.md).
const MIN_CHUNK = 32 * 1024;
const MAX_CHUNK = 1024 * 1024;

/**
 * Picks the read/write chunk size for a transfer: about two windows, 32 KiB to 1 MiB, and never
 * more than a file of known `size` needs.
 *
 * @example
 * ```ts
 * import { chunkSizeFor } from "./chunks.ts";
 * import { equal } from "node:assert/strict";
 * equal(chunkSizeFor(512, 1), 32 * 1024);
 * ```
 */
export function chunkSizeFor(blksize: number, windowsize: number, size?: number): number {
  const chunk = Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, blksize * windowsize * 2));
  // A small file needs no more than its size (plus one byte, so one read also sees the end).
  return size === undefined ? chunk : Math.max(1, Math.min(chunk, size + 1));
}

/**
 * Starts a read whose failure is reported only when it is awaited: a read-ahead that fails while
 * nobody awaits it yet must not become an unhandled rejection (which would end the process).
 * This is the one place that guards read-ahead; handles need not.
 */
function readAhead(handle: ReadHandle, into: Uint8Array): Promise<Uint8Array | null> {
  let p: Promise<Uint8Array | null>;
  try {
    p = handle.readChunk
      ? handle.readChunk(into)
      : handle.read(into).then((n) => (n === null ? null : into.subarray(0, n)));
  } catch (e) {
    p = Promise.reject(e);
  }
  p.catch(() => {});
  return p;
}

/**
 * Reads a handle in large chunks, double-buffered: while blocks are copied out of one chunk, the
 * next one is already being read.
 *
 * @example
 * ```ts
 * import { ChunkReader } from "./chunks.ts";
 * const bytes = new Uint8Array(1000);
 * let done = false;
 * const reader = new ChunkReader({
 *   name: "x",
 *   read(p) {
 *     if (done) return Promise.resolve(null);
 *     done = true;
 *     p.set(bytes);
 *     return Promise.resolve(bytes.length);
 *   },
 *   close() {},
 * }, 4096);
 * const block = new Uint8Array(516);
 * const n = await reader.fill(block, 4, 512); // 512
 * ```
 */
export class ChunkReader implements BlockSource {
  #handle: ReadHandle;
  /** The chunk blocks are copied from (bytes `#pos` to `#end`). */
  #cur: Uint8Array;
  #chunkSize: number;
  #pos = 0;
  #end = 0;
  #next: Promise<Uint8Array | null> | null = null;
  #eof = false;

  /**
   * @param handle What to read from.
   * @param chunkSize Bytes per read.
   */
  constructor(handle: ReadHandle, chunkSize: number = MIN_CHUNK) {
    this.#handle = handle;
    this.#chunkSize = chunkSize;
    this.#cur = new Uint8Array(0);
    // Two buffers, one being copied from and one being filled; a handle that takes its buffers
    // over (a worker's) is given each in turn.
    this.#next = readAhead(handle, new Uint8Array(chunkSize));
  }

  /** Copies up to `length` bytes into `into` at `offset`; fewer means end of file. */
  fill(into: Uint8Array, offset: number, length: number): number | Promise<number> {
    const available = this.#end - this.#pos;
    if (available >= length) {
      into.set(this.#cur.subarray(this.#pos, this.#pos + length), offset);
      this.#pos += length;
      return length;
    }
    return this.#fillSlow(into, offset, length);
  }

  async #fillSlow(into: Uint8Array, offset: number, length: number): Promise<number> {
    let done = 0;
    while (done < length) {
      const available = this.#end - this.#pos;
      if (available > 0) {
        const n = Math.min(available, length - done);
        into.set(this.#cur.subarray(this.#pos, this.#pos + n), offset + done);
        this.#pos += n;
        done += n;
        continue;
      }
      if (this.#eof || this.#next === null) break;
      let got: Uint8Array | null;
      try {
        got = await this.#next;
      } catch (e) {
        throw fsErrorToTftp(e, "read error");
      } finally {
        this.#next = null;
      }
      if (got === null) {
        this.#eof = true;
        break;
      }
      // The used-up chunk's memory is filled next (the first time, a new buffer).
      const cur = this.#cur;
      const used = cur.byteLength > 0 && cur.buffer.byteLength - cur.byteOffset >= this.#chunkSize
        ? new Uint8Array(cur.buffer, cur.byteOffset, this.#chunkSize)
        : new Uint8Array(this.#chunkSize);
      this.#cur = got;
      this.#pos = 0;
      this.#end = got.length;
      this.#next = readAhead(this.#handle, used);
    }
    return done;
  }
}

/**
 * Wraps a handle so that reading it yields netascii.
 *
 * @example
 * ```ts
 * import { netasciiReadHandle } from "./chunks.ts";
 * import { deepEqual } from "node:assert/strict";
 * let done = false;
 * const file = {
 *   name: "a.txt",
 *   read(p: Uint8Array) {
 *     if (done) return Promise.resolve(null);
 *     done = true;
 *     p.set([65, 10]);
 *     return Promise.resolve(2);
 *   },
 *   close() {},
 * };
 * const buf = new Uint8Array(16);
 * const n = await netasciiReadHandle(file).read(buf);
 * deepEqual([...buf.subarray(0, n!)], [65, 13, 10]);
 * ```
 */
export function netasciiReadHandle(handle: ReadHandle): ReadHandle {
  const encoder = new NetasciiEncoder();
  let pending: Uint8Array = new Uint8Array(0);
  let raw: Uint8Array | null = null;
  return {
    name: handle.name,
    async read(p: Uint8Array): Promise<number | null> {
      if (pending.length === 0) {
        raw ??= new Uint8Array(Math.max(1, p.length >> 1));
        const n = await handle.read(raw);
        if (n === null) return null;
        pending = encoder.encode(raw.subarray(0, n));
      }
      const n = Math.min(p.length, pending.length);
      p.set(pending.subarray(0, n));
      pending = pending.subarray(n);
      return n;
    },
    close: () => handle.close(),
  };
}

/**
 * Collects block payloads into large writes to a {@linkcode WriteHandle}, and commits the handle
 * in {@linkcode ChunkWriter.finish}.
 *
 * @example
 * ```ts
 * import { ChunkWriter } from "./chunks.ts";
 * import type { WriteHandle } from "./source.ts";
 * const written: number[] = [];
 * const handle: WriteHandle = {
 *   name: "x",
 *   write: (p) => Promise.resolve(void written.push(p.length)),
 *   commit: () => Promise.resolve(),
 *   abort: () => Promise.resolve(),
 * };
 * const writer = new ChunkWriter(handle, 65536);
 * await writer.write(new Uint8Array(512));
 * await writer.finish();
 * ```
 */
export class ChunkWriter implements BlockSink {
  #handle: WriteHandle;
  #buf: Uint8Array;
  #len = 0;
  /** Bytes handed to the handle so far. */
  written = 0;

  /**
   * @param handle Where the bytes go.
   * @param chunkSize Bytes per write.
   */
  constructor(handle: WriteHandle, chunkSize: number) {
    this.#handle = handle;
    this.#buf = new Uint8Array(chunkSize);
  }

  /** Buffers `data`; flushes when the buffer is full. */
  write(data: Uint8Array): void | Promise<void> {
    if (this.#len + data.length <= this.#buf.length) {
      this.#buf.set(data, this.#len);
      this.#len += data.length;
      return;
    }
    return this.#writeSlow(data.slice());
  }

  async #writeSlow(bytes: Uint8Array): Promise<void> {
    await this.#flush();
    if (bytes.length > this.#buf.length) {
      await this.#put(bytes);
      return;
    }
    this.#buf.set(bytes, 0);
    this.#len = bytes.length;
  }

  async #flush(): Promise<void> {
    if (this.#len === 0) return;
    const out = this.#buf.subarray(0, this.#len);
    this.#len = 0;
    await this.#put(out);
  }

  async #put(bytes: Uint8Array): Promise<void> {
    try {
      await this.#handle.write(bytes);
    } catch (e) {
      throw fsErrorToTftp(e, "write error");
    }
    this.written += bytes.length;
  }

  /** Writes what is buffered and commits the handle. */
  async finish(): Promise<void> {
    await this.#flush();
    try {
      await this.#handle.commit();
    } catch (e) {
      throw fsErrorToTftp(e, "write error");
    }
  }
}

/**
 * A sink that decodes netascii (CR LF to LF, CR NUL to CR) on the way to `sink`.
 *
 * @example
 * ```ts
 * import { netasciiSink } from "./chunks.ts";
 * import { deepEqual } from "node:assert/strict";
 * const got: number[] = [];
 * const sink = netasciiSink({ write: (d) => void got.push(...d), finish: () => Promise.resolve() });
 * await sink.write(new Uint8Array([65, 13]));
 * await sink.write(new Uint8Array([10]));
 * await sink.finish();
 * deepEqual(got, [65, 10]);
 * ```
 */
export function netasciiSink(sink: BlockSink): BlockSink {
  const decoder = new NetasciiDecoder();
  return {
    write: (data) => sink.write(decoder.decode(data)),
    async finish() {
      // A CR held back at the very end is kept as it is.
      const rest = decoder.flush();
      if (rest.length) await sink.write(rest);
      await sink.finish();
    },
  };
}
