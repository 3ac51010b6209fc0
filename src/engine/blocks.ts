/**
 * The engine's two storage interfaces: where a sender takes block payloads from, and where a
 * receiver puts them. Storage (files, HTTP, memory) implements them; the engine knows nothing else
 * about it.
 *
 * @module
 */

/**
 * Where the sender takes block payloads from.
 *
 * @example Blocks from bytes in memory
 * ```ts
 * import type { BlockSource } from "./blocks.ts";
 * const bytes = new Uint8Array(1000);
 * let at = 0;
 * const source: BlockSource = {
 *   fill(into, offset, length) {
 *     const n = Math.min(length, bytes.length - at);
 *     into.set(bytes.subarray(at, at + n), offset);
 *     at += n;
 *     return n;
 *   },
 * };
 * ```
 */
export interface BlockSource {
  /**
   * Copies up to `length` bytes into `into` at `offset`; fewer than `length` means the end.
   * Synchronous while buffered data lasts. Throws a `TftpError` on failure.
   */
  fill(into: Uint8Array, offset: number, length: number): number | Promise<number>;
}

/**
 * Where the receiver puts block payloads.
 *
 * @example Collect blocks in memory
 * ```ts
 * import type { BlockSink } from "./blocks.ts";
 * const chunks: Uint8Array[] = [];
 * const sink: BlockSink = {
 *   write: (data) => void chunks.push(data.slice()),
 *   finish: () => Promise.resolve(),
 * };
 * ```
 */
export interface BlockSink {
  /** Takes a copy of one block's payload (the view is reused once the call settles). */
  write(data: Uint8Array): void | Promise<void>;
  /** Called once after the last block, before its ACK: make the data durable. */
  finish(): Promise<void>;
}
