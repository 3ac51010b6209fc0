/**
 * The receiving side of a transfer — server WRQ and client GET alike: take DATA in order, ACK the
 * end of each window (or the last in-order block on a gap), re-ACK on a timeout, and after the
 * final block commit the sink, ACK, and dally so a lost final ACK is answered again.
 *
 * @module
 */

import { type Channel, coarseNow } from "./channel.ts";
import { PeerError, TftpError, TimeoutError } from "../errors.ts";
import {
  ack,
  blockOf,
  ErrorCode,
  errorPacket,
  Opcode,
  opcodeOf,
  readError,
} from "../wire/packet.ts";
import { Rto } from "./rto.ts";
import type { TransferSettings, TransferStats } from "./window.ts";

/** Where received payloads go. */
export interface ReceiveSink {
  /** Takes a copy of one block's payload. */
  write(data: Uint8Array): void | Promise<void>;
  /** Called once after the last block, before its ACK: make the data durable. */
  finish(): Promise<void>;
}

/** Options of {@linkcode receiveBlocks}. */
export interface ReceiveOptions {
  /** What to send first and repeat until DATA 1 arrives: an OACK or ACK 0 (server side). */
  reply?: Uint8Array;
  /** A DATA packet that already arrived (client side, when the server answered with DATA 1). */
  first?: Uint8Array;
  /** Largest number of payload bytes to accept in total; more gets ERROR 3. */
  maxBytes?: number;
  /**
   * How long to stay for a repeated final DATA after the final ACK (default: twice the timeout,
   * so that a sender retransmitting after the same timeout — as when the timeout option was
   * negotiated — is still answered).
   */
  dallyMs?: number;
  /** Called after each block with the payload bytes received so far. */
  onProgress?: (bytes: number) => void;
  /** Called once the final ACK is sent, before dallying. */
  onComplete?: () => void;
}

/**
 * Receives a whole file from `channel` into `sink`.
 *
 * @throws {PeerError} The peer sent an ERROR.
 * @throws {TimeoutError} The peer stopped sending.
 * @throws {TftpError} The sink failed (sent to the peer as ERROR first).
 *
 * @example
 * ```ts ignore
 * import { receiveBlocks } from "./receive.ts";
 * const stats = await receiveBlocks(channel, sink, {
 *   blksize: 512,
 *   windowsize: 1,
 *   timeoutMs: 1000,
 *   retries: 5,
 * }, { reply: ack(0) });
 * ```
 */
export async function receiveBlocks(
  channel: Channel,
  sink: ReceiveSink,
  settings: TransferSettings,
  options: ReceiveOptions = {},
): Promise<TransferStats> {
  const stats: TransferStats = { bytes: 0, blocks: 0, retransmits: 0 };
  const { blksize, windowsize } = settings;
  const maxBytes = options.maxBytes ?? Infinity;
  let expected = 1;
  let lastAck = options.reply ?? null;
  let inWindow = 0;
  let outOfOrder = 0;
  let tries = 0;
  const rto = new Rto(settings.timeoutMs);
  // When the last ACK went out (for round-trip samples: ACK out, next DATA in), else -1.
  let ackedAt = -1;
  let packet: Uint8Array | null = options.first ?? null;
  if (lastAck) await channel.send(lastAck);

  for (;;) {
    if (packet === null) packet = await channel.receive(rto.ms);
    if (packet === null) {
      ackedAt = -1;
      if (rto.backoff() && ++tries > settings.retries) {
        throw new TimeoutError(`no DATA block ${expected} after ${settings.retries} retries`);
      }
      if (lastAck) {
        stats.retransmits++;
        await channel.send(lastAck);
      }
      continue;
    }
    const op = opcodeOf(packet);
    if (op === Opcode.DATA && packet.length >= 4) {
      const block = blockOf(packet);
      if (block === (expected & 0xffff)) {
        const length = packet.length - 4;
        if (length > blksize) {
          await fail(channel, ErrorCode.ILLEGAL_OPERATION, `DATA larger than blksize ${blksize}`);
        }
        if (stats.bytes + length > maxBytes) {
          await fail(channel, ErrorCode.DISK_FULL, `upload exceeds ${maxBytes} bytes`);
        }
        try {
          const r = sink.write(packet.subarray(4));
          if (r) await r;
          if (length < blksize) await sink.finish();
        } catch (e) {
          const err = e instanceof TftpError
            ? e
            : new TftpError(ErrorCode.NOT_DEFINED, "I/O error");
          await channel.send(errorPacket(err.code, err.message)).catch(() => {});
          throw e;
        }
        if (ackedAt >= 0) {
          rto.sample(coarseNow() - ackedAt);
          ackedAt = -1;
        } else rto.progress();
        stats.bytes += length;
        stats.blocks++;
        expected++;
        tries = 0;
        outOfOrder = 0;
        if (length < blksize) {
          lastAck = ack(block);
          await channel.send(lastAck);
          options.onProgress?.(stats.bytes);
          options.onComplete?.();
          const dallyMs = options.dallyMs ?? 2 * settings.timeoutMs;
          if (dallyMs > 0) await dally(channel, lastAck, block, dallyMs);
          return stats;
        }
        if (++inWindow >= windowsize) {
          inWindow = 0;
          lastAck = ack(block);
          await channel.send(lastAck);
          ackedAt = coarseNow();
          options.onProgress?.(stats.bytes);
        }
      } else {
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
      }
    } else if (op === Opcode.ERROR) {
      const e = readError(packet);
      throw new PeerError(e.code, e.message);
    }
    packet = null;
  }
}

async function fail(channel: Channel, code: number, message: string): Promise<never> {
  const e = new TftpError(code, message);
  await channel.send(errorPacket(code, message)).catch(() => {});
  throw e;
}

/**
 * Stays a while after the final ACK. A sender whose final ACK was lost resends from its oldest
 * unacknowledged block, so any DATA up to the final block is answered with the final ACK again;
 * anything else is ignored. Ends after `ms` without such a repeat.
 */
async function dally(
  channel: Channel,
  finalAck: Uint8Array,
  block: number,
  ms: number,
): Promise<void> {
  let deadline = coarseNow() + ms;
  for (let replies = 0; replies < 64;) {
    const left = deadline - coarseNow();
    if (left <= 0) return;
    const p = await channel.receive(left).catch(() => null);
    if (p === null) return;
    if (opcodeOf(p) !== Opcode.DATA || p.length < 4) continue;
    // Any block up to the final one (the sender may be further back than the last window when
    // several ACKs were lost) is answered with the final ACK, which acknowledges them all.
    if (((block - blockOf(p)) & 0xffff) >= 0x8000) continue;
    await channel.send(finalAck).catch(() => {});
    replies++;
    deadline = coarseNow() + ms;
  }
}
