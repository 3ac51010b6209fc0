/**
 * The one exchange step: send a packet, then wait for the matching reply or the deadline, and
 * send it again on each timeout until the retransmission timer gives up. The client's request
 * and each engine's first reply (an OACK, ACK 0 or ACK of an OACK) are such steps.
 *
 * @module
 */

import { PeerError, TimeoutError } from "../errors.ts";
import { Opcode, opcodeOf, readError } from "../wire/packet.ts";
import { type Channel, packets } from "./channel.ts";
import type { Rto } from "./rto.ts";
import type { TransferStats } from "./settings.ts";

/** Options of {@linkcode exchange}. */
export interface ExchangeOptions {
  /** What is waited for, for the timeout's message (e.g. "answer from 10.0.0.1:69"). */
  what: string;
  /** What the packet is, plural, for the timeout's message (default "copies"). */
  sent?: string;
  /** Counts the resends. */
  stats?: TransferStats;
}

/**
 * Sends `packet` and resolves with the first reply that `accept` takes (other datagrams from the
 * peer are ignored). The reply is a view valid until the channel's next receive. A reply packet
 * sent once gives `rto` a round-trip sample.
 *
 * @throws {PeerError} The peer answered with an ERROR.
 * @throws {TimeoutError} The timer gave up.
 * @throws {AbortedError} The channel's signal aborted.
 *
 * @example
 * ```ts ignore
 * import { exchange } from "./exchange.ts";
 * const reply = await exchange(channel, request, (p) => opcodeOf(p) === Opcode.OACK, rto, {
 *   what: "answer from the server",
 * });
 * ```
 */
export async function exchange(
  channel: Channel,
  packet: Uint8Array,
  accept: (reply: Uint8Array) => boolean,
  rto: Rto,
  options: ExchangeOptions,
): Promise<Uint8Array> {
  const clock = channel.clock;
  const sentAt = clock.now();
  let sends = 1;
  let deadline = sentAt + rto.ms;
  await channel.send(packet);
  for await (const reply of packets(channel, () => deadline)) {
    if (reply === null) {
      if (!rto.retry()) {
        throw new TimeoutError(`no ${options.what} after ${sends} ${options.sent ?? "copies"}`);
      }
      sends++;
      if (options.stats) options.stats.retransmits++;
      await channel.send(packet);
      deadline = clock.now() + rto.ms;
      continue;
    }
    if (opcodeOf(reply) === Opcode.ERROR) {
      const e = readError(reply);
      throw new PeerError(e.code, e.message);
    }
    if (!accept(reply)) continue;
    if (sends > 1) rto.progress();
    else rto.sample(clock.now() - sentAt);
    return reply;
  }
  throw new Error("unreachable: a channel's packets never end");
}
