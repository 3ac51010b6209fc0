/**
 * The sending window (RFC 7440), shared by every sending role: server RRQ and client PUT.
 *
 * Blocks are numbered absolutely from 1; the wire carries the number modulo 65536, so transfers roll over past block 65535 to 0. Each block lives in
 * its own preallocated packet buffer (4-byte header, then the payload) until it is acknowledged, so
 * a retransmission resends the same bytes without reading the file again.
 *
 * @module
 */

import { Opcode, writeHeader } from "../wire/packet.ts";

/**
 * Maps a 16-bit block number from the wire to the absolute block it names, looking forward from
 * `base` (the absolute block the 16-bit value is most likely near).
 *
 * @example
 * ```ts
 * import { unwrap } from "./window.ts";
 * import { equal } from "node:assert/strict";
 * equal(unwrap(0, 65535), 65536); // block 0 after 65535 is absolute block 65536
 * ```
 */
export function unwrap(wire: number, base: number): number {
  return base + ((wire - (base & 0xffff)) & 0xffff);
}

/**
 * The sender's window: which blocks are filled, sent and acknowledged.
 *
 * @example
 * ```ts
 * import { SendWindow } from "./window.ts";
 * import { equal } from "node:assert/strict";
 * const w = new SendWindow(512, 4);
 * equal(w.canSend(), true);
 * ```
 */
export class SendWindow {
  readonly blksize: number;
  readonly size: number;
  #slots: Uint8Array[] = [];
  #lengths: Int32Array;
  /** Oldest absolute block not yet acknowledged. */
  base: number;
  /** Next absolute block to send. */
  next: number;
  /** Highest absolute block filled so far (base - 1 when none). */
  filled: number;
  /** Absolute number of the last block (the short one), once read. */
  last = Infinity;
  /** Payload bytes of the last block, once read. */
  lastPayload = 0;
  /** Highest absolute block sent so far. */
  sent: number;

  /**
   * @param blksize Payload size.
   * @param size Window size.
   */
  constructor(blksize: number, size: number) {
    this.blksize = blksize;
    this.size = size;
    this.#lengths = new Int32Array(size);
    this.base = this.next = 1;
    this.filled = 0;
    this.sent = 0;
  }

  /** Is there a block to send inside the window? */
  canSend(): boolean {
    return this.next < this.base + this.size && this.next <= this.last;
  }

  /** Does block `next` still need its payload? */
  needsFill(): boolean {
    return this.next > this.filled;
  }

  /** The packet buffer for block `next` (allocated on first use) with its header written. */
  slotForFill(): Uint8Array {
    const i = this.next % this.size;
    let slot = this.#slots[i];
    if (!slot) slot = this.#slots[i] = new Uint8Array(4 + this.blksize);
    writeHeader(slot, Opcode.DATA, this.next & 0xffff);
    return slot;
  }

  /** Records that block `next` was filled with `payload` bytes; a short block is the last. */
  filledWith(payload: number): void {
    this.#lengths[this.next % this.size] = 4 + payload;
    this.filled = this.next;
    if (payload < this.blksize) {
      this.last = this.next;
      this.lastPayload = payload;
    }
  }

  /** Is block `next` being sent again? */
  isResend(): boolean {
    return this.next <= this.sent;
  }

  /** Block `next`'s packet, ready to send; advances `next`. */
  take(): Uint8Array {
    if (this.next > this.sent) this.sent = this.next;
    const i = this.next % this.size;
    this.next++;
    return this.#slots[i].subarray(0, this.#lengths[i]);
  }

  /**
   * Applies an ACK. Returns "done" when the last block is acknowledged, "progress" when the window
   * moved to the end of what was sent, "gap" when it moved but the ACK lies inside what was sent
   * (RFC 7440: the peer is missing the block after it — or the ACK is stale, see `send.ts`),
   * "duplicate" for an ACK of the block before the window, "stale" for anything else.
   */
  ack(wire: number): "done" | "progress" | "gap" | "duplicate" | "stale" {
    const k = unwrap(wire, this.base - 1);
    if (k === this.base - 1) return "duplicate";
    if (k >= this.next) return "stale";
    this.base = k + 1;
    if (k === this.last) return "done";
    return k < this.next - 1 ? "gap" : "progress";
  }

  /** Goes back to the oldest unacknowledged block (after a timeout, a gap or duplicates). */
  rewind(): void {
    this.next = this.base;
  }
}
