/**
 * What crosses between the server's isolate and a transfer worker (`pool.ts`, `worker.ts`): the
 * messages, the transfer's progress in shared memory, and file handles used from the other side.
 *
 * A worker never opens files itself: the server prepared the transfer (name rules, open,
 * negotiate) and keeps the handles; the worker reads and writes through them in large chunks
 * (32 KiB to 1 MiB, see `chunkSizeFor`), each chunk one message each way with its buffer
 * transferred, not copied. So every kind of source — a directory, an HTTP origin with its cache,
 * a library user's own — behaves the same with workers as without.
 *
 * @module
 */

import type { Knobs, TransferState } from "../engine/settings.ts";
import { ErrorCode, RefusedError } from "../errors.ts";
import type { ReadHandle, WriteHandle } from "../storage/source.ts";
import type { Negotiated } from "../wire/options.ts";
import type { PortRange } from "./addresses.ts";
import type { TransferView } from "./executor.ts";
import type { TransferRecord } from "./record.ts";

/** A prepared transfer as a worker receives it. */
export interface Job {
  /** The transfer's number in its pool. */
  id: number;
  op: "RRQ" | "WRQ";
  peer: { hostname: string; port: number };
  mode: "octet" | "netascii";
  negotiated: Negotiated;
  oack?: Uint8Array;
  /** RRQ: the file's size, if known. */
  size?: number;
  /** The names of the handles, for the remote ones. */
  name: string;
  record: TransferRecord;
  /** When the request came, in ms since the epoch (each isolate has its own time origin). */
  requestedAt: number;
  knobs: Knobs;
  maxUploadSize?: number;
  /** Where the transfer's socket goes: a port of its own on this address, or the shared port. */
  bind: { hostname: string; portRange?: PortRange } | "shared";
  /** The transfer's progress, written by the worker, read by the server. */
  state: SharedArrayBuffer;
}

/** What a worker asks of the server's file handle. */
export type IoOp = "read" | "write" | "commit" | "abort" | "close";

/** Messages to a worker. */
export type ToWorker =
  | { t: "run"; job: Job }
  | { t: "io"; id: number; seq: number; n?: number | null; buf?: ArrayBuffer; error?: Fault }
  | { t: "packet"; id: number; data: ArrayBuffer }
  | { t: "abort"; id: number; reason: string; superseded: boolean };

/** Messages from a worker. */
export type FromWorker =
  | { t: "ready" }
  | { t: "bound"; id: number; port: number }
  | { t: "no-port"; id: number; message: string }
  | { t: "io"; id: number; seq: number; op: IoOp; size?: number; buf?: ArrayBuffer }
  | { t: "send"; id: number; packets: ArrayBuffer[] }
  | { t: "record"; id: number; record: TransferRecord }
  | { t: "closed"; id: number };

/** A failure on the other side, as data. */
export interface Fault {
  code: number;
  message: string;
}

/**
 * A failure as data (a `RefusedError` keeps its code; anything else is ERROR 0 with `what`).
 *
 * @example
 * ```ts
 * import { toFault } from "./remote.ts";
 * import { RefusedError } from "../errors.ts";
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(toFault(new RefusedError(3, "disk full"), "write error"), { code: 3, message: "disk full" });
 * ```
 */
export function toFault(e: unknown, what: string): Fault {
  if (e instanceof RefusedError) return { code: e.code, message: e.message };
  return { code: ErrorCode.NOT_DEFINED, message: what };
}

/** Field offsets in a transfer's shared state. */
const ANSWERED = 0, HEARD = 1, ENDING = 2;

/** A new shared state (three float64s). */
export function sharedStateBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(3 * Float64Array.BYTES_PER_ELEMENT);
}

/**
 * The engine's {@linkcode TransferState} kept in shared memory, on the worker's side. Times are
 * kept as ms since the epoch, since the server's isolate has another time origin.
 */
export class SharedState implements TransferState {
  readonly #f: Float64Array;

  /** @param buffer From {@linkcode sharedStateBuffer}. */
  constructor(buffer: SharedArrayBuffer) {
    this.#f = new Float64Array(buffer);
  }

  get answered(): boolean {
    return this.#f[ANSWERED] === 1;
  }
  set answered(v: boolean) {
    this.#f[ANSWERED] = v ? 1 : 0;
  }
  get heardAt(): number {
    const at = this.#f[HEARD];
    return at === 0 ? 0 : at - performance.timeOrigin;
  }
  set heardAt(v: number) {
    this.#f[HEARD] = performance.timeOrigin + v;
  }
  get ending(): boolean {
    return this.#f[ENDING] === 1;
  }
  set ending(v: boolean) {
    this.#f[ENDING] = v ? 1 : 0;
  }
}

/**
 * The server's view of a transfer a worker runs.
 *
 * @example
 * ```ts
 * import { SharedState, sharedStateBuffer, sharedView } from "./remote.ts";
 * import { equal, ok } from "node:assert/strict";
 * const buffer = sharedStateBuffer();
 * const view = sharedView(buffer);
 * equal(view.answered, false);
 * new SharedState(buffer).heardAt = performance.now();
 * ok(view.heardAgoMs() < 1000);
 * ```
 */
export function sharedView(buffer: SharedArrayBuffer): TransferView {
  const f = new Float64Array(buffer);
  return {
    get answered() {
      return f[ANSWERED] === 1;
    },
    get ending() {
      return f[ENDING] === 1;
    },
    heardAgoMs: () =>
      f[HEARD] === 0 ? Infinity : performance.timeOrigin + performance.now() - f[HEARD],
  };
}

/** Sends an I/O request to the server and resolves with its answer. */
export type IoCall = (op: IoOp, size?: number, buf?: ArrayBuffer) => Promise<IoAnswer>;

/** The server's answer to an I/O request. */
export interface IoAnswer {
  n?: number | null;
  buf?: ArrayBuffer;
  error?: Fault;
}

function fail(a: IoAnswer): void {
  if (a.error) throw new RefusedError(a.error.code, a.error.message);
}

/**
 * A read handle whose reads are done by the server (worker side).
 *
 * @example A file on the server's side, read from the worker's
 * ```ts
 * import { remoteReader, serveIo } from "./remote.ts";
 * import type { ReadHandle } from "../storage/source.ts";
 * import { equal } from "node:assert/strict";
 *
 * // The server's open file.
 * const bytes = new TextEncoder().encode("hello\n");
 * let at = 0;
 * const file: ReadHandle = {
 *   name: "hello.txt",
 *   size: bytes.length,
 *   read(p) {
 *     if (at === bytes.length) return Promise.resolve(null);
 *     const n = Math.min(p.length, bytes.length - at);
 *     p.set(bytes.subarray(at, at + n));
 *     at += n;
 *     return Promise.resolve(n);
 *   },
 *   close() {},
 * };
 * // In a pool each call is a message to the server's isolate; here it is a direct call.
 * const reader = remoteReader(file.name, file.size, (op, size, buf) =>
 *   serveIo(file, undefined, op, size, buf));
 *
 * const into = new Uint8Array(64);
 * const n = await reader.read(into);
 * equal(new TextDecoder().decode(into.subarray(0, n!)), "hello\n");
 * equal(await reader.read(into), null); // the end
 * reader.close();
 * ```
 */
export function remoteReader(name: string, size: number | undefined, call: IoCall): ReadHandle {
  return {
    name,
    size,
    // A ChunkReader's buffers travel to the server and back, filled, without a copy.
    async readChunk(buffer: Uint8Array): Promise<Uint8Array | null> {
      const whole = buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength;
      const a = await call("read", buffer.length, whole ? buffer.buffer as ArrayBuffer : undefined);
      fail(a);
      if (a.n === null || a.n === undefined) return null;
      return new Uint8Array(a.buf!, 0, a.n);
    },
    async read(p: Uint8Array): Promise<number | null> {
      const a = await call("read", p.length);
      fail(a);
      if (a.n === null || a.n === undefined) return null;
      p.set(new Uint8Array(a.buf!, 0, a.n));
      return a.n;
    },
    close: () => void call("close").catch(() => {}),
  };
}

/**
 * A write handle whose writes and commit are done by the server (worker side).
 *
 * @example An upload written through the server's handle, and a refusal that comes back
 * ```ts
 * import { remoteWriter, serveIo } from "./remote.ts";
 * import { ErrorCode, RefusedError } from "../errors.ts";
 * import type { WriteHandle } from "../storage/source.ts";
 * import { equal, rejects } from "node:assert/strict";
 *
 * // The server's handle: keeps what is written; the disk is full when it comes to commit.
 * const written: Uint8Array[] = [];
 * const handle: WriteHandle = {
 *   name: "backup.cfg",
 *   write(p) {
 *     written.push(p.slice());
 *     return Promise.resolve();
 *   },
 *   commit: () => Promise.reject(new RefusedError(ErrorCode.DISK_FULL, "disk full")),
 *   abort: () => Promise.resolve(),
 * };
 * // In a pool each call is a message to the server's isolate; here it is a direct call.
 * const writer = remoteWriter(handle.name, (op, size, buf) =>
 *   serveIo(undefined, handle, op, size, buf));
 *
 * await writer.write(new TextEncoder().encode("hostname sw1\n"));
 * equal(new TextDecoder().decode(written[0]), "hostname sw1\n");
 * // The refusal crosses as data and is thrown again on the worker's side, code and all.
 * await rejects(
 *   writer.commit(),
 *   (e) => e instanceof RefusedError && e.code === ErrorCode.DISK_FULL,
 * );
 * await writer.abort();
 * ```
 */
export function remoteWriter(name: string, call: IoCall): WriteHandle {
  // The server answers a write with its buffer, which carries the next chunk: no fresh buffer per
  // chunk for V8 to collect.
  let spare: ArrayBuffer | undefined;
  return {
    name,
    async write(p: Uint8Array): Promise<void> {
      const buf = spare !== undefined && spare.byteLength === p.length
        ? spare
        : new ArrayBuffer(p.length);
      spare = undefined;
      new Uint8Array(buf).set(p);
      const a = await call("write", p.length, buf);
      fail(a);
      spare = a.buf;
    },
    async commit(): Promise<void> {
      fail(await call("commit"));
    },
    async abort(): Promise<void> {
      await call("abort").catch(() => {});
    },
  };
}

/**
 * Does what a worker asks of a transfer's file handle (server side).
 *
 * @example
 * ```ts
 * import { serveIo } from "./remote.ts";
 * import type { ReadHandle } from "../storage/source.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const file: ReadHandle = {
 *   name: "hello.txt",
 *   read: (p) => Promise.resolve(p.length), // a file of endless zeros
 *   close() {},
 * };
 * const answer = await serveIo(file, undefined, "read", 65536);
 * equal(answer.n, 65536);
 * equal(answer.buf?.byteLength, 65536); // the buffer to transfer to the worker
 *
 * const broken: ReadHandle = { ...file, read: () => Promise.reject(new Error("EIO")) };
 * // A failure is an answer too: ERROR 0 "read error" for the worker to end the transfer with.
 * deepEqual(await serveIo(broken, undefined, "read", 65536), {
 *   error: { code: 0, message: "read error" },
 * });
 * ```
 */
export async function serveIo(
  reader: ReadHandle | undefined,
  writer: WriteHandle | undefined,
  op: IoOp,
  size = 0,
  buf?: ArrayBuffer,
): Promise<IoAnswer> {
  try {
    switch (op) {
      case "read": {
        // Into the buffer the worker's ChunkReader handed over (readChunk), when it did.
        const into = buf !== undefined && buf.byteLength >= size
          ? new Uint8Array(buf, 0, size)
          : new Uint8Array(size);
        const n = await reader!.read(into);
        return { n, buf: into.buffer };
      }
      case "write":
        await writer!.write(new Uint8Array(buf!));
        return { buf };
      case "commit":
        await writer!.commit();
        return {};
      case "abort":
        await writer?.abort();
        return {};
      case "close":
        reader?.close();
        return {};
    }
  } catch (e) {
    return { error: toFault(e, op === "read" ? "read error" : "write error") };
  }
}
