/**
 * The receiving side of a transfer — server WRQ and client GET alike: take DATA in order, ACK the
 * end of each window (or the last in-order block on a gap), re-ACK on a timeout, and after the
 * final block make the sink durable and ACK. {@linkcode dally} then stays a while so a lost final
 * ACK is answered again.
 *
 * @module
 */

import {
  asTftpError,
  ErrorCode,
  PeerError,
  RefusedError,
  TftpError,
  TimeoutError,
} from "../errors.ts";
import { ack, blockOf, Opcode, opcodeOf, readError } from "../wire/packet.ts";
import type { BlockSink } from "./blocks.ts";
import { type Channel, packets } from "./channel.ts";
import { exchange } from "./exchange.ts";
import type { Rto } from "./rto.ts";
import { newState, newStats, type TransferState, type TransferStats } from "./settings.ts";
import { type Negotiated } from "../wire/options.ts";

/** Options of {@linkcode receiveBlocks}. */
export interface ReceiveOptions {
  /** The retransmission timer (the caller sets its timeout and retries). */
  rto: Rto;
  /** What to send first and repeat until DATA arrives: an OACK or ACK 0. */
  reply?: Uint8Array;
  /** A DATA packet that already arrived (client side, when the server answered with DATA 1). */
  first?: Uint8Array;
  /** Largest number of payload bytes to accept in total; more gets ERROR 3. */
  maxBytes?: number;
  /** The size the sender announced (`tsize`): a transfer of another size fails, unwritten. */
  expectBytes?: number;
  /** Counters, updated as the transfer goes (default: fresh ones). */
  stats?: TransferStats;
  /** Kept up to date for the server (answered, last heard, final ACK sent). */
  state?: TransferState;
  /** Called after each acknowledged window with the payload bytes received so far. */
  onProgress?: (bytes: number) => void;
}

const isData = (p: Uint8Array) => opcodeOf(p) === Opcode.DATA && p.length >= 4;

/**
 * Receives a whole file from `channel` into `sink`; resolves once the final ACK is sent. The
 * final block's number is `stats.blocks` (modulo 65536), for {@linkcode dally}.
 *
 * @throws {PeerError} The peer sent an ERROR.
 * @throws {TimeoutError} The peer stopped sending.
 * @throws {RefusedError} The sink failed, or the data broke a limit (nothing was committed).
 * @throws {AbortedError} The channel's signal aborted.
 *
 * @example Take a 700-byte upload, as a server answering a WRQ without options does
 * ```ts
 * import { receiveBlocks } from "./receive.ts";
 * import type { BlockSink } from "./blocks.ts";
 * import { Rto } from "./rto.ts";
 * import { memoryChannelPair } from "../testing/memory_channel.ts";
 * import { ack, blockOf, encode } from "../wire/packet.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const [server, client] = memoryChannelPair();
 * const chunks: Uint8Array[] = [];
 * const sink: BlockSink = {
 *   write: (data) => void chunks.push(data.slice()),
 *   finish: () => Promise.resolve(),
 * };
 * // ACK 0 goes first (and again on each timeout) until DATA 1 comes.
 * const receiving = receiveBlocks(server, sink, { blksize: 512, windowsize: 1 }, {
 *   rto: new Rto({ timeoutMs: 1000, retries: 5 }),
 *   reply: ack(0),
 * });
 *
 * // The peer: each block once the one before is acknowledged.
 * const upload = new TextEncoder().encode("x".repeat(700));
 * const acks: number[] = [];
 * for (let block = 1, at = 0; at <= upload.length; block++, at += 512) {
 *   acks.push(blockOf((await client.receive(client.clock.now() + 1000))!));
 *   await client.send(encode({ op: "DATA", block, data: upload.subarray(at, at + 512) }));
 * }
 * const stats = await receiving;
 * acks.push(blockOf((await client.receive(client.clock.now() + 1000))!)); // the final ACK
 * deepEqual(acks, [0, 1, 2]);
 * equal(stats.bytes, 700);
 * equal(stats.blocks, 2);
 * deepEqual(chunks.map((c) => c.length), [512, 188]);
 * server.close();
 * client.close();
 * ```
 */
export async function receiveBlocks(
  channel: Channel,
  sink: BlockSink,
  negotiated: Negotiated,
  options: ReceiveOptions,
): Promise<TransferStats> {
  const { blksize, windowsize } = negotiated;
  const { rto, onProgress } = options;
  const stats = options.stats ?? newStats();
  const state = options.state ?? newState();
  const clock = channel.clock;
  const maxBytes = options.maxBytes ?? Infinity;
  let expected = 1;
  let lastAck = options.reply ?? null;
  let acked = 0; // the last block acknowledged
  let inWindow = 0;
  let repeats = 0; // acknowledged blocks sent again since the last new one
  // Blocks that came before their turn (reordered on the way), kept until it comes: a
  // reordered pair then costs nothing, where dropping the early block would cost a window.
  const early = new Map<number, Uint8Array>();
  let gapAckAt = -1; // when to report a gap that no late block has filled, or -1
  // When the last ACK went out (for round-trip samples: ACK out, next DATA in), else -1.
  let ackedAt = -1;
  let deadline = 0;
  const until = () => (gapAckAt < 0 ? deadline : Math.min(deadline, gapAckAt));
  let first = options.first;
  if (!first && options.reply) {
    first = await exchange(channel, options.reply, isData, rto, {
      what: "DATA block 1",
      sent: "replies",
      stats,
    });
  }

  for await (const packet of packets(channel, until, first)) {
    if (packet === null) {
      ackedAt = -1;
      if (gapAckAt >= 0 && gapAckAt < deadline) {
        // A block is still missing a round trip after a later one came: ask for it (RFC 7440).
        gapAckAt = -1;
        inWindow = 0;
        lastAck = ack(expected - 1);
        acked = expected - 1;
        await channel.send(lastAck);
        continue;
      }
      if (!rto.retry()) throw new TimeoutError(`no DATA block ${expected} ${rto.describe()}`);
      if (expected > 1) lastAck = ack(expected - 1);
      if (lastAck) {
        stats.retransmits++;
        inWindow = 0;
        acked = expected - 1;
        await channel.send(lastAck);
      }
      deadline = clock.now() + rto.ms;
      continue;
    }
    deadline = clock.now() + rto.ms;
    const op = opcodeOf(packet);
    if (op === Opcode.ERROR) {
      const e = readError(packet);
      throw new PeerError(e.code, e.message);
    }
    if (op !== Opcode.DATA || packet.length < 4) continue;
    const ahead = (blockOf(packet) - expected) & 0xffff;
    if (ahead !== 0) {
      if (ahead < windowsize) {
        if (packet.length - 4 <= blksize && !early.has(expected + ahead)) {
          early.set(expected + ahead, packet.slice(4));
        }
        if (gapAckAt < 0) gapAckAt = clock.now() + rto.settleMs;
      } else if (expected - (0x10000 - ahead) <= acked) {
        // A block we acknowledged came again: our ACK was lost. Answer at once, then once per
        // window's worth, so a resent window draws one ACK, not a burst.
        if (repeats % windowsize === 0 && lastAck) {
          stats.retransmits++;
          await channel.send(lastAck);
        }
        repeats++;
      }
      // Anything else is a copy of a block of this window already here: nothing to answer.
      continue;
    }
    let data = packet.subarray(4);
    for (;;) {
      const length = data.length;
      const final = length < blksize;
      if (length > blksize) {
        throw new RefusedError(ErrorCode.ILLEGAL_OPERATION, `DATA larger than blksize ${blksize}`);
      }
      const total = stats.bytes + length;
      if (total > maxBytes) {
        throw new RefusedError(ErrorCode.DISK_FULL, `upload exceeds ${maxBytes} bytes`);
      }
      const expect = options.expectBytes;
      if (expect !== undefined && (final ? total !== expect : total > expect)) {
        throw new RefusedError(
          ErrorCode.ILLEGAL_OPERATION,
          `received ${final ? "" : "more than "}${total} bytes, tsize announced ${expect}`,
        );
      }
      try {
        const r = sink.write(data);
        if (r) await r;
        if (final) await sink.finish();
      } catch (e) {
        throw asTftpError(e, "write error");
      }
      if (ackedAt >= 0) {
        rto.sample(clock.now() - ackedAt);
        ackedAt = -1;
      } else rto.progress();
      state.answered = true;
      state.heardAt = clock.now();
      stats.bytes = total;
      stats.blocks++;
      const block = expected++;
      if (final) {
        state.ending = true;
        await channel.send(ack(block));
        onProgress?.(stats.bytes);
        return stats;
      }
      if (++inWindow >= windowsize) {
        inWindow = 0;
        acked = block;
        lastAck = ack(block);
        await channel.send(lastAck);
        ackedAt = clock.now();
        onProgress?.(stats.bytes);
      }
      const next = early.get(expected);
      if (next === undefined) break;
      early.delete(expected);
      data = next;
    }
    repeats = 0;
    // A block that came early past a hole still waiting keeps the gap timer going.
    if (early.size === 0) gapAckAt = -1;
    else if (gapAckAt < 0) gapAckAt = clock.now() + rto.settleMs;
  }
  throw new TftpError("unreachable: a channel's packets never end");
}

/**
 * Stays `ms` after the final ACK of block `finalBlock`. A sender whose final ACK was lost resends
 * from its oldest unacknowledged block, so any DATA up to the final block is answered with the
 * final ACK again (at most 64 times); anything else is ignored. Ends after `ms` without such a
 * repeat, or when the channel is closed or aborted; never throws.
 *
 * @example Answer a final block that comes again (its ACK was lost)
 * ```ts
 * import { dally } from "./receive.ts";
 * import { memoryChannelPair } from "../testing/memory_channel.ts";
 * import { blockOf, encode, Opcode, opcodeOf } from "../wire/packet.ts";
 * import { equal } from "node:assert/strict";
 *
 * // The receiver has acknowledged block 2, the last; the sender did not hear it and resends.
 * const [receiver, sender] = memoryChannelPair();
 * await sender.send(encode({ op: "DATA", block: 2, data: new Uint8Array(188) }));
 * await dally(receiver, 2, 50); // ends 50 ms after the last repeat
 *
 * const again = (await sender.receive(sender.clock.now() + 100))!;
 * equal(opcodeOf(again), Opcode.ACK);
 * equal(blockOf(again), 2);
 * receiver.close();
 * sender.close();
 * ```
 */
export async function dally(channel: Channel, finalBlock: number, ms: number): Promise<void> {
  const clock = channel.clock;
  const finalAck = ack(finalBlock);
  const block = finalBlock & 0xffff;
  let deadline = clock.now() + ms;
  let replies = 0;
  try {
    for await (const p of packets(channel, () => deadline)) {
      if (p === null) return;
      if (opcodeOf(p) !== Opcode.DATA || p.length < 4) continue;
      // Any block up to the final one (the sender may be further back than the last window
      // when several ACKs were lost) is answered with the final ACK, which acknowledges them all.
      if (((block - blockOf(p)) & 0xffff) >= 0x8000) continue;
      await channel.send(finalAck);
      if (++replies >= 64) return;
      deadline = clock.now() + ms;
    }
  } catch {
    // Closed or aborted: the dally is over.
  }
}
