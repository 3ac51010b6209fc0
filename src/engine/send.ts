/**
 * The sending side of a transfer — server RRQ and client PUT alike: fill the window, send it,
 * then take ACKs (or timeouts) as they come and slide, resend or give up. Retransmits only on a
 * timeout, on an ACK that reports a gap, or on a repeated duplicate ACK (at most once per round
 * trip), never on the first duplicate (Sorcerer's Apprentice).
 *
 * @module
 */

import { PeerError, TftpError, TimeoutError } from "../errors.ts";
import { blockOf, Opcode, opcodeOf, readError } from "../wire/packet.ts";
import type { BlockSource } from "./blocks.ts";
import { type Channel, packets } from "./channel.ts";
import { exchange } from "./exchange.ts";
import type { Rto } from "./rto.ts";
import { newState, newStats, type TransferState, type TransferStats } from "./settings.ts";
import type { Negotiated } from "../wire/options.ts";
import { SendWindow } from "./window.ts";

/** Options of {@linkcode sendBlocks}. */
export interface SendOptions {
  /** The retransmission timer (the caller sets its timeout and retries). */
  rto: Rto;
  /** An OACK to send first and repeat until the peer acknowledges it with ACK 0 (server side). */
  oack?: Uint8Array;
  /** Counters, updated as the transfer goes (default: fresh ones). */
  stats?: TransferStats;
  /** Kept up to date for the server (answered, last heard, every block sent). */
  state?: TransferState;
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
 * @example Send 1200 bytes in lock-step to a peer that acknowledges each block
 * ```ts
 * import { sendBlocks } from "./send.ts";
 * import type { BlockSource } from "./blocks.ts";
 * import { Rto } from "./rto.ts";
 * import { memoryChannelPair } from "../testing/memory_channel.ts";
 * import { ack, blockOf } from "../wire/packet.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const [server, client] = memoryChannelPair();
 * const file = new Uint8Array(1200).fill(0x5a);
 * let at = 0;
 * const source: BlockSource = {
 *   fill(into, offset, length) {
 *     const n = Math.min(length, file.length - at);
 *     into.set(file.subarray(at, at + n), offset);
 *     at += n;
 *     return n;
 *   },
 * };
 * const sending = sendBlocks(server, source, { blksize: 512, windowsize: 1 }, {
 *   rto: new Rto({ timeoutMs: 1000, retries: 5 }),
 * });
 *
 * // The peer: ACK each DATA; a block shorter than blksize is the last.
 * const sizes: number[] = [];
 * for (;;) {
 *   const data = (await client.receive(client.clock.now() + 1000))!;
 *   sizes.push(data.length - 4);
 *   await client.send(ack(blockOf(data)));
 *   if (data.length - 4 < 512) break;
 * }
 * const stats = await sending;
 * deepEqual(sizes, [512, 512, 176]);
 * equal(stats.bytes, 1200);
 * equal(stats.blocks, 3);
 * equal(stats.retransmits, 0);
 * server.close();
 * client.close();
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
  const state = options.state ?? newState();
  const clock = channel.clock;
  if (options.oack) {
    await exchange(channel, options.oack, isAck0, rto, {
      what: "ACK of the OACK",
      sent: "OACKs",
      stats,
    });
    state.answered = true;
    state.heardAt = clock.now();
    onProgress?.(0);
  }
  const w = new SendWindow(blksize, windowsize);
  const sends: Promise<void>[] = [];
  // Duplicate ACKs of the block before the window since the window last moved.
  let duplicates = 0;
  let deadline = 0;
  // When the window last went out with new blocks only (for round-trip samples), else -1.
  let sentFreshAt = -1;
  // Gaps (RFC 7440: an ACK inside the window means "send again from the block after it"). Such
  // an ACK is not always a loss: receivers such as atftp also answer a repeated or reordered DATA
  // with an ACK of where they are, and the copies that going back sends draw more of them; going
  // back on each sends the same blocks over and over (BENCHMARKS.md). So the window goes
  // back at most once per round trip: a gap (or a second duplicate ACK) within a round trip of
  // the last rewind only slides the window, and if the window has not moved past it a round trip
  // later, it goes back then.
  let rewoundAt = -Infinity;
  let gap = -1; // the base at a deferred gap, or -1
  let gapDeadline = 0;
  const goBack = () => {
    const now = clock.now();
    if (now - rewoundAt >= rto.settleMs) rewind();
    else if (gap < 0) {
      gap = w.base;
      gapDeadline = rewoundAt + rto.settleMs;
    }
  };

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
      // Say so before the last block leaves: the client may answer it with a new request at once.
      if (w.next >= w.last) state.ending = true;
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
    gap = -1;
  };
  const until = () => (gap < 0 ? deadline : Math.min(deadline, gapDeadline));

  await sendWindow();
  for await (const packet of packets(channel, until)) {
    if (packet === null) {
      if (gap >= 0 && gapDeadline < deadline) {
        // A round trip after the deferred gap, the window has not moved past it: go back now.
        if (w.base === gap) rewind();
        else gap = -1;
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
        duplicates = 0;
      }
    } else if (opcodeOf(packet) === Opcode.ACK && packet.length >= 4) {
      const before = w.base;
      const result = w.ack(blockOf(packet));
      if (result === "duplicate") {
        // The first duplicate is ignored (Sorcerer's Apprentice: it is most often the echo of an
        // ACK that was duplicated or of a DATA we sent twice). Each further one is a client
        // repeating its ACK because the next DATA has not come — busybox does so after 100 ms,
        // backing off to 2 s, and gives up after 12 unanswered (about 13 s), sooner than our
        // backed-off timer would resend — so the window goes back, at most once per round trip.
        if (duplicates > 0) goBack();
        duplicates++;
      } else if (result !== "stale") {
        const now = clock.now();
        if (gap >= 0 && w.base > gap) gap = -1;
        if (result === "gap") goBack();
        if (result === "progress" && sentFreshAt >= 0) rto.sample(now - sentFreshAt);
        else rto.progress();
        state.answered = true;
        state.heardAt = now;
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
      // A client that knows the size may end with ERROR 0 once it holds every byte instead of
      // waiting for the last block (pxelinux does, when the size is a multiple of blksize).
      const size = negotiated.tsize;
      if (e.code === 0 && size !== undefined && w.sent >= Math.ceil(size / blksize)) {
        stats.blocks = Math.ceil(size / blksize);
        stats.bytes = size;
        stats.note = `the client ended with ERROR 0 "${e.message}" once it had every byte`;
        onProgress?.(stats.bytes);
        return stats;
      }
      throw new PeerError(e.code, e.message);
    }
    // Anything else from the peer (a stray DATA, an OACK) is ignored, as RFC 1350 allows.
    if (w.canSend()) await sendWindow();
  }
  throw new TftpError("unreachable: a channel's packets never end");
}
