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
import { newStats, type TransferStats } from "./settings.ts";
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
 * @example
 * ```ts ignore
 * import { receiveBlocks } from "./receive.ts";
 * import { Rto } from "./rto.ts";
 * const stats = await receiveBlocks(channel, sink, { blksize: 512, windowsize: 1 }, {
 *   rto: new Rto(1000, 5),
 *   reply: ack(0),
 * });
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
  const clock = channel.clock;
  const maxBytes = options.maxBytes ?? Infinity;
  let expected = 1;
  let lastAck = options.reply ?? null;
  let inWindow = 0;
  let outOfOrder = 0;
  // When the last ACK went out (for round-trip samples: ACK out, next DATA in), else -1.
  let ackedAt = -1;
  let deadline = 0;
  let first = options.first;
  if (!first && options.reply) {
    first = await exchange(channel, options.reply, isData, rto, {
      what: "DATA block 1",
      sent: "replies",
      stats,
    });
  }

  for await (const packet of packets(channel, () => deadline, first)) {
    if (packet === null) {
      ackedAt = -1;
      if (!rto.retry()) throw new TimeoutError(`no DATA block ${expected} ${rto.describe()}`);
      if (lastAck) {
        stats.retransmits++;
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
    const block = blockOf(packet);
    if (block !== (expected & 0xffff)) {
      // A repeated block (our ACK was lost) or a gap: ACK the last block we have, at once and
      // then once per window's worth of further out-of-order blocks, so a burst does not draw a
      // burst of ACKs but a window that is resent again (its ACK lost again) is answered again.
      if (outOfOrder % windowsize === 0) {
        if (expected > 1 || !lastAck) lastAck = ack(expected - 1);
        stats.retransmits++;
        await channel.send(lastAck);
      }
      outOfOrder++;
      inWindow = 0;
      continue;
    }
    const length = packet.length - 4;
    const final = length < blksize;
    if (length > blksize) {
      throw new RefusedError(ErrorCode.ILLEGAL_OPERATION, `DATA larger than blksize ${blksize}`);
    }
    if (stats.bytes + length > maxBytes) {
      throw new RefusedError(ErrorCode.DISK_FULL, `upload exceeds ${maxBytes} bytes`);
    }
    const total = stats.bytes + length;
    if (
      options.expectBytes !== undefined &&
      (final ? total !== options.expectBytes : total > options.expectBytes)
    ) {
      throw new RefusedError(
        ErrorCode.ILLEGAL_OPERATION,
        `received ${
          final ? "" : "more than "
        }${total} bytes, tsize announced ${options.expectBytes}`,
      );
    }
    try {
      const r = sink.write(packet.subarray(4));
      if (r) await r;
      if (final) await sink.finish();
    } catch (e) {
      throw asTftpError(e, "write error");
    }
    if (ackedAt >= 0) {
      rto.sample(clock.now() - ackedAt);
      ackedAt = -1;
    } else rto.progress();
    stats.bytes = total;
    stats.blocks++;
    expected++;
    outOfOrder = 0;
    if (final) {
      await channel.send(ack(block));
      onProgress?.(stats.bytes);
      return stats;
    }
    if (++inWindow >= windowsize) {
      inWindow = 0;
      lastAck = ack(block);
      await channel.send(lastAck);
      ackedAt = clock.now();
      onProgress?.(stats.bytes);
    }
  }
  throw new TftpError("unreachable: a channel's packets never end");
}

/**
 * Stays `ms` after the final ACK of block `finalBlock`. A sender whose final ACK was lost resends
 * from its oldest unacknowledged block, so any DATA up to the final block is answered with the
 * final ACK again (at most 64 times); anything else is ignored. Ends after `ms` without such a
 * repeat, or when the channel is closed or aborted; never throws.
 *
 * @example
 * ```ts ignore
 * import { dally } from "./receive.ts";
 * await dally(channel, stats.blocks, 2000);
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
