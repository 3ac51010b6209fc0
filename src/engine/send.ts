/**
 * The sending side of a transfer — server RRQ and client PUT alike: fill the window, send it,
 * wait for an ACK or the deadline, repeat. Retransmits only on a timeout, on an ACK that reports
 * a gap, or on a repeated duplicate ACK, never on the first duplicate (Sorcerer's Apprentice).
 *
 * @module
 */

import type { BlockSource } from "../blocks.ts";
import { type Channel, coarseNow } from "../channel.ts";
import { PeerError, TimeoutError } from "../errors.ts";
import { blockOf, Opcode, opcodeOf, readError } from "../packet.ts";
import { SendWindow, type TransferSettings, type TransferStats } from "./window.ts";

/** Widens the pacing gap after a loss: 4 µs, then doubling, at most 1 ms. */
function slower(gap: number): number {
  return gap === 0 ? 0.004 : Math.min(gap * 2, 1);
}

/** Options of {@linkcode sendBlocks}. */
export interface SendOptions {
  /** An OACK to send first, as block 0, acknowledged by ACK 0 (server side). */
  oack?: Uint8Array;
  /** Called after each acknowledged window with the payload bytes acknowledged so far. */
  onProgress?: (bytes: number) => void;
}

/**
 * Sends everything `source` yields over `channel` and returns when the last block is acknowledged.
 *
 * @throws {PeerError} The peer sent an ERROR (for example ERROR 8 after an OACK).
 * @throws {TimeoutError} The peer stopped answering.
 * @throws {AbortedError} The channel's signal aborted.
 *
 * @example
 * ```ts ignore
 * import { sendBlocks } from "./send.ts";
 * const stats = await sendBlocks(channel, reader, {
 *   blksize: 512,
 *   windowsize: 1,
 *   timeoutMs: 1000,
 *   retries: 5,
 * });
 * ```
 */
export async function sendBlocks(
  channel: Channel,
  source: BlockSource,
  settings: TransferSettings,
  options: SendOptions = {},
): Promise<TransferStats> {
  const w = new SendWindow(settings.blksize, settings.windowsize, options.oack);
  const stats: TransferStats = { bytes: 0, blocks: 0, retransmits: 0 };
  const sends: Promise<unknown>[] = [];
  let tries = 0;
  // 0: no duplicate ACK yet; 1: one ignored; 2: window resent for this base.
  let duplicates = 0;
  let deadline = 0;
  // Pacing (ms between DATA packets of a window). A receiver that drains its socket more slowly
  // than we can send loses the tail of a large window (a full receive buffer), so after a loss
  // in windowed mode packets are spaced out; every clean window shrinks the gap again.
  let gap = 0;

  for (;;) {
    if (w.canSend()) {
      let at = gap > 0 ? performance.now() : 0;
      let first = true;
      do {
        if (gap > 0 && !first) {
          at += gap;
          while (performance.now() < at) { /* spin: timers are far too coarse */ }
        }
        first = false;
        if (w.needsFill()) {
          const slot = w.slotForFill();
          const r = source.fill(slot, 4, settings.blksize);
          w.filledWith(typeof r === "number" ? r : await r);
        } else if (w.isResend()) {
          stats.retransmits++;
        }
        sends.push(channel.send(w.take()));
      } while (w.canSend());
      await Promise.all(sends);
      sends.length = 0;
      deadline = coarseNow() + settings.timeoutMs;
    }

    const packet = await channel.receive(Math.max(0, deadline - coarseNow()));
    if (packet === null) {
      if (++tries > settings.retries) {
        throw new TimeoutError(
          `no ACK for block ${w.base} after ${settings.retries} retransmissions`,
        );
      }
      w.rewind();
      duplicates = 0;
      if (settings.windowsize > 1) gap = slower(gap);
      continue;
    }
    const op = opcodeOf(packet);
    if (op === Opcode.ACK && packet.length >= 4) {
      const before = w.base;
      const result = w.ack(blockOf(packet));
      if (result === "duplicate") {
        if (duplicates === 1) w.rewind();
        if (duplicates < 2) duplicates++;
        continue;
      }
      if (result === "stale") continue;
      if (result === "rewind") gap = slower(gap);
      else if (gap > 0) gap = gap < 0.002 ? 0 : gap * 0.95;
      tries = 0;
      duplicates = 0;
      // Block 0 (an OACK) carries no payload.
      stats.blocks += w.base - Math.max(before, 1);
      stats.bytes = stats.blocks * settings.blksize;
      if (result === "done") {
        stats.bytes = (stats.blocks - 1) * settings.blksize + w.lastPayload;
        options.onProgress?.(stats.bytes);
        return stats;
      }
      options.onProgress?.(stats.bytes);
    } else if (op === Opcode.ERROR) {
      const e = readError(packet);
      throw new PeerError(e.code, e.message);
    }
    // Anything else from the peer (a stray DATA, an OACK) is ignored, as RFC 1350 allows.
  }
}
