/**
 * Where a server's files live: a directory tree, a single file, an HTTP origin, or a source of
 * your own. The server asks a {@linkcode FileSource} to open a name before it answers the
 * request, so every refusal is known before the first packet goes out.
 *
 * @module
 */

/** What a source knows about the request it serves. */
export interface RequestInfo {
  /** The peer's address and port. */
  peer: Deno.NetAddr;
  /** The transfer mode, lower-cased (`octet` or `netascii`). */
  mode: string;
}

/**
 * An open file to read. `read` follows `Deno.Reader`: bytes read, or `null` at the end; it may
 * be called again before an earlier read is awaited (read-ahead) and may reject with any error.
 */
export interface ReadHandle {
  /** The size in bytes, when known before reading (used for `tsize`). */
  readonly size?: number;
  /** A name for logs (the path or URL actually served). */
  readonly name: string;
  /** Reads up to `p.length` bytes into `p`. */
  read(p: Uint8Array): Promise<number | null>;
  /**
   * Optional: reads up to `buffer.length` bytes into a buffer the handle takes over, and resolves
   * with the bytes read (a view of `buffer`'s memory or of another buffer), or null at the end.
   * The caller must not touch `buffer` again. A worker's handle moves the buffer to the
   * listening isolate and back instead of copying (`server/remote.ts`).
   */
  readChunk?(buffer: Uint8Array): Promise<Uint8Array | null>;
  /** Releases the handle; safe to call more than once. */
  close(): void;
}

/** A file being written. Nothing appears under the final name before {@linkcode commit}. */
export interface WriteHandle {
  /** A name for logs (the final path). */
  readonly name: string;
  /** Writes all of `p`. */
  write(p: Uint8Array): Promise<void>;
  /** Makes the file durable and visible under its final name. */
  commit(): Promise<void>;
  /** Discards everything written; safe to call more than once and after `commit`. */
  abort(): Promise<void>;
}

/**
 * Where a server's files come from and go to.
 *
 * Implementations throw `RefusedError` (file not found, access violation, file exists, disk
 * full) from `openRead` and `openWrite`; the server sends that error to the peer. Anything else
 * thrown is sent as ERROR 0.
 *
 * @example A source that serves one in-memory file under every name
 * ```ts
 * import type { FileSource } from "./source.ts";
 * const bytes = new TextEncoder().encode("hello\n");
 * const source: FileSource = {
 *   describe: () => "hello (in memory)",
 *   openRead: () => {
 *     let done = false;
 *     return Promise.resolve({
 *       name: "hello",
 *       size: bytes.length,
 *       read(p: Uint8Array) {
 *         if (done) return Promise.resolve(null);
 *         done = true;
 *         p.set(bytes);
 *         return Promise.resolve(bytes.length);
 *       },
 *       close() {},
 *     });
 *   },
 * };
 * ```
 */
export interface FileSource {
  /** One line for the start-up message, e.g. `directory /srv/tftp (read-only)`. */
  describe(): string;
  /** Opens `name` (as the client sent it, decoded) for reading. */
  openRead(name: string, info: RequestInfo): Promise<ReadHandle>;
  /** Opens `name` for writing; absent when the source is read-only. */
  openWrite?(name: string, info: RequestInfo): Promise<WriteHandle>;
  /**
   * Free bytes where an upload of `name` would be written, if known: a WRQ announcing a larger
   * `tsize` is refused with ERROR 3 before anything is written.
   */
  freeSpace?(name: string): Promise<number | undefined>;
  /** Releases whatever the source holds (timers, caches). */
  close?(): void | Promise<void>;
}
