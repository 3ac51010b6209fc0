/**
 * The sending side of a transfer — server RRQ and client PUT alike: fill the window, send it,
 * wait for an ACK or the deadline, repeat. Retransmits only on a timeout, on an ACK that reports
 * a gap, or on a repeated duplicate ACK, never on the first duplicate (Sorcerer's Apprentice).
 *
 * @module
 */

import type { BlockSource } from "../storage/chunks.ts";
import { type Channel, coarseNow } from "./channel.ts";
import { PeerError, TimeoutError } from "../errors.ts";
import { blockOf, Opcode, opcodeOf, readError } from "../wire/packet.ts";
import { Rto } from "./rto.ts";
import { SendWindow, type TransferSettings, type TransferStats } from "./window.ts";

/** How long after going back an ACK inside the window is taken for a stale one (see below). */
const SETTLE_MS = 40;

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
  const rto = new Rto(settings.timeoutMs);
  // When the window last went out with new blocks only (for round-trip samples), else -1.
  let sentFreshAt = -1;
  // Gap handling (RFC 7440: an ACK inside the window means "resend from the block after it").
  // Right after going back, copies sent before are still arriving, and some receivers (atftp)
  // answer each old copy with an ACK inside the window again; with large windows, going back on
  // those would resend the same blocks over and over. So with windows over 16 blocks, within
  // SETTLE_MS of the last rewind a gap only slides the window, and if the window has not moved
  // past it when SETTLE_MS are up, we go back then. Small windows go back at once: few blocks
  // are in flight, and waiting would cost more than the odd extra copy.
  const settleMs = settings.windowsize > 16 ? SETTLE_MS : 0;
  let rewoundAt = -Infinity;
  let pendingGap = -1; // base at a deferred gap, or -1

  for (;;) {
    if (w.canSend()) {
      let fresh = true;
      do {
        if (w.needsFill()) {
          const slot = w.slotForFill();
          const r = source.fill(slot, 4, settings.blksize);
          w.filledWith(typeof r === "number" ? r : await r);
        } else if (w.isResend()) {
          stats.retransmits++;
          fresh = false;
        }
        sends.push(channel.send(w.take()));
      } while (w.canSend());
      await Promise.all(sends);
      sends.length = 0;
      const now = coarseNow();
      sentFreshAt = fresh ? now : -1;
      deadline = now + rto.ms;
    }

    const until = pendingGap < 0 ? deadline : Math.min(deadline, rewoundAt + settleMs);
    const packet = await channel.receive(Math.max(0, until - coarseNow()));
    if (packet === null && until < deadline) {
      if (w.base === pendingGap) {
        w.rewind();
        rewoundAt = coarseNow();
      }
      pendingGap = -1;
      continue;
    }
    if (packet === null) {
      if (rto.backoff() && ++tries > settings.retries) {
        // Every block was sent and no ACK for the last window came: most clients do not stay
        // after their final ACK, so if only that ACK was lost the client has the whole file.
        const tail = w.next > w.last
          ? " (every block was sent: if only the final ACK was lost, the client has the file)"
          : "";
        throw new TimeoutError(
          `no ACK for block ${w.base} after ${settings.retries} retransmissions${tail}`,
        );
      }
      w.rewind();
      rewoundAt = coarseNow();
      pendingGap = -1;
      duplicates = 0;
      continue;
    }
    const op = opcodeOf(packet);
    if (op === Opcode.ACK && packet.length >= 4) {
      const before = w.base;
      const result = w.ack(blockOf(packet));
      if (result === "duplicate") {
        // The first duplicate is ignored (Sorcerer's Apprentice: it is most often the echo of an
        // ACK that was duplicated or of a DATA we sent twice); a second one means the peer
        // really misses the block, and the (adaptive) timeout covers the rest.
        if (duplicates === 1) {
          w.rewind();
          rewoundAt = coarseNow();
        }
        if (duplicates < 2) duplicates++;
        continue;
      }
      if (result === "stale") continue;
      if (result === "gap") {
        if (coarseNow() - rewoundAt >= settleMs) {
          w.rewind();
          rewoundAt = coarseNow();
          pendingGap = -1;
        } else {
          pendingGap = w.base;
        }
      } else if (pendingGap >= 0 && w.base > pendingGap) {
        pendingGap = -1;
      }
      if (result === "progress" && sentFreshAt >= 0) rto.sample(coarseNow() - sentFreshAt);
      else rto.progress();
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
