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
 * @example A request whose first copy is lost, sent again until the OACK comes
 * ```ts
 * import { exchange } from "./exchange.ts";
 * import { Rto } from "./rto.ts";
 * import { newStats } from "./settings.ts";
 * import { memoryChannelPair } from "../testing/memory_channel.ts";
 * import { decode, encode, Opcode, opcodeOf } from "../wire/packet.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * // The client's end loses the first datagram it sends.
 * const [client, server] = memoryChannelPair({
 *   aToB: { script: (_, index) => (index === 0 ? "drop" : undefined) },
 * });
 * const options = new Map([["blksize", "1468"]]);
 * const request = encode({
 *   op: "RRQ",
 *   filename: new TextEncoder().encode("boot.img"),
 *   mode: "octet",
 *   options,
 * });
 * // The server answers the request that reaches it with an OACK.
 * const answered = server.receive(server.clock.now() + 1000)
 *   .then(() => server.send(encode({ op: "OACK", options })));
 *
 * const stats = newStats();
 * const reply = await exchange(
 *   client,
 *   request,
 *   (p) => opcodeOf(p) === Opcode.OACK,
 *   new Rto({ timeoutMs: 100, retries: 5 }),
 *   { what: "answer from the server", sent: "requests", stats },
 * );
 * await answered;
 * deepEqual(decode(reply), { op: "OACK", options });
 * equal(stats.retransmits, 1);
 * client.close();
 * server.close();
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
