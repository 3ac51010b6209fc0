/**
 * The sending side of a transfer — server RRQ and client PUT alike: fill the window, send it,
 * then take ACKs (or timeouts) as they come and slide, resend or give up. Retransmits only on a
 * timeout, on an ACK that reports a gap, or on a repeated duplicate ACK, never on the first
 * duplicate (Sorcerer's Apprentice).
 *
 * @module
 */

import { PeerError, TftpError, TimeoutError } from "../errors.ts";
import { blockOf, Opcode, opcodeOf, readError } from "../wire/packet.ts";
import type { BlockSource } from "./blocks.ts";
import { type Channel, packets } from "./channel.ts";
import { exchange } from "./exchange.ts";
import type { Rto } from "./rto.ts";
import { newStats, type TransferStats } from "./settings.ts";
import { type Negotiated } from "../wire/options.ts";
import { SendWindow } from "./window.ts";

/** How long after going back an ACK inside the window is taken for a stale one (see below). */
const SETTLE_MS = 40;

/** Options of {@linkcode sendBlocks}. */
export interface SendOptions {
  /** The retransmission timer (the caller sets its timeout and retries). */
  rto: Rto;
  /** An OACK to send first and repeat until the peer acknowledges it with ACK 0 (server side). */
  oack?: Uint8Array;
  /** Counters, updated as the transfer goes (default: fresh ones). */
  stats?: TransferStats;
  /** Called after each acknowledged window with the payload bytes acknowledged so far. */
  onProgress?: (bytes: number) => void;
}

const isAck0 = (p: Uint8Array) => opcodeOf(p) === Opcode.ACK && p.length >= 4 && blockOf(p) === 0;

/**
 * Sends everything `source` yields over `channel` and resolves when the last block is
 * acknowledged.
 *
 * @throws {PeerError} The peer sent an ERROR (for example ERROR 8 after an OACK).
 * @throws {TimeoutError} The peer stopped answering.
 * @throws {AbortedError} The channel's signal aborted.
 * @throws {RefusedError} The source failed.
 *
 * @example
 * ```ts ignore
 * import { sendBlocks } from "./send.ts";
 * import { Rto } from "./rto.ts";
 * const stats = await sendBlocks(channel, reader, { blksize: 512, windowsize: 1 }, {
 *   rto: new Rto(1000, 5),
 * });
 * ```
 */
export async function sendBlocks(
  channel: Channel,
  source: BlockSource,
  negotiated: Negotiated,
  options: SendOptions,
): Promise<TransferStats> {
  const { blksize, windowsize } = negotiated;
  const { rto, onProgress } = options;
  const stats = options.stats ?? newStats();
  const clock = channel.clock;
  if (options.oack) {
    await exchange(channel, options.oack, isAck0, rto, {
      what: "ACK of the OACK",
      sent: "OACKs",
      stats,
    });
    onProgress?.(0);
  }
  const w = new SendWindow(blksize, windowsize);
  const sends: Promise<void>[] = [];
  // 0: no duplicate ACK yet; 1: one ignored; 2: window resent for this base.
  let duplicates = 0;
  let deadline = 0;
  // When the window last went out with new blocks only (for round-trip samples), else -1.
  let sentFreshAt = -1;
  // Gap handling (RFC 7440: an ACK inside the window means "resend from the block after it").
  // Right after going back, copies sent before are still arriving, and some receivers (atftp)
  // answer each old copy with an ACK inside the window again; with large windows, going back on
  // those would resend the same blocks over and over. So with windows over 16 blocks, within
  // SETTLE_MS of the last rewind a gap only slides the window, and if the window has not moved
  // past it when SETTLE_MS are up, we go back then. Small windows go back at once: few blocks
  // are in flight, and waiting would cost more than the odd extra copy.
  const settleMs = windowsize > 16 ? SETTLE_MS : 0;
  let rewoundAt = -Infinity;
  let pendingGap = -1; // base at a deferred gap, or -1

  const sendWindow = async () => {
    let fresh = true;
    do {
      if (w.needsFill()) {
        const slot = w.slotForFill();
        const r = source.fill(slot, 4, blksize);
        w.filledWith(typeof r === "number" ? r : await r);
      } else if (w.isResend()) {
        stats.retransmits++;
        fresh = false;
      }
      sends.push(channel.send(w.take()));
    } while (w.canSend());
    await Promise.all(sends);
    sends.length = 0;
    const now = clock.now();
    sentFreshAt = fresh ? now : -1;
    deadline = now + rto.ms;
  };
  const rewind = () => {
    w.rewind();
    rewoundAt = clock.now();
  };
  const until = () => (pendingGap < 0 ? deadline : Math.min(deadline, rewoundAt + settleMs));

  await sendWindow();
  for await (const packet of packets(channel, until)) {
    if (packet === null) {
      if (pendingGap >= 0 && rewoundAt + settleMs < deadline) {
        // The settle time is up and the window has not moved past the gap: go back now.
        if (w.base === pendingGap) rewind();
        pendingGap = -1;
      } else {
        if (!rto.retry()) {
          // Every block was sent and no ACK for the last window came: most clients do not stay
          // after their final ACK, so if only that ACK was lost the client has the whole file.
          const tail = w.next > w.last
            ? " (every block was sent: if only the final ACK was lost, the client has the file)"
            : "";
          throw new TimeoutError(`no ACK for block ${w.base} ${rto.describe()}${tail}`);
        }
        rewind();
        pendingGap = -1;
        duplicates = 0;
      }
    } else if (opcodeOf(packet) === Opcode.ACK && packet.length >= 4) {
      const before = w.base;
      const result = w.ack(blockOf(packet));
      if (result === "duplicate") {
        // The first duplicate is ignored (Sorcerer's Apprentice: it is most often the echo of an
        // ACK that was duplicated or of a DATA we sent twice); a second one means the peer
        // really misses the block, and the (adaptive) timeout covers the rest.
        if (duplicates === 1) rewind();
        if (duplicates < 2) duplicates++;
      } else if (result !== "stale") {
        if (result === "gap") {
          if (clock.now() - rewoundAt >= settleMs) {
            rewind();
            pendingGap = -1;
          } else {
            pendingGap = w.base;
          }
        } else if (pendingGap >= 0 && w.base > pendingGap) {
          pendingGap = -1;
        }
        if (result === "progress" && sentFreshAt >= 0) rto.sample(clock.now() - sentFreshAt);
        else rto.progress();
        duplicates = 0;
        stats.blocks += w.base - before;
        if (result === "done") {
          stats.bytes = (stats.blocks - 1) * blksize + w.lastPayload;
          onProgress?.(stats.bytes);
          return stats;
        }
        stats.bytes = stats.blocks * blksize;
        onProgress?.(stats.bytes);
      }
    } else if (opcodeOf(packet) === Opcode.ERROR) {
      const e = readError(packet);
      throw new PeerError(e.code, e.message);
    }
    // Anything else from the peer (a stray DATA, an OACK) is ignored, as RFC 1350 allows.
    if (w.canSend()) await sendWindow();
  }
  throw new TftpError("unreachable: a channel's packets never end");
}
