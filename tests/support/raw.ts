/**
 * Test support: a hand-driven UDP peer, for sending exact bytes to the server and checking
 * exactly what comes back (and what does not).
 *
 * @module
 */

import { decode, encode, type Packet } from "../../src/wire/packet.ts";

/** A raw UDP socket with helpers for TFTP packets. */
export class RawPeer {
  readonly conn: Deno.DatagramConn;
  #buf = new Uint8Array(65536);
  #pending: Promise<[Uint8Array, Deno.NetAddr]> | null = null;

  /** @param hostname Local address to bind (default 127.0.0.1). */
  constructor(hostname = "127.0.0.1") {
    this.conn = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
  }

  /** The local port. */
  get port(): number {
    return (this.conn.addr as Deno.NetAddr).port;
  }

  /** Sends raw bytes or a packet to `port` on `hostname`. */
  async send(data: Uint8Array | Packet, port: number, hostname = "127.0.0.1"): Promise<void> {
    const bytes = data instanceof Uint8Array ? data : encode(data);
    await this.conn.send(bytes, { transport: "udp", hostname, port });
  }

  /** Receives the next datagram, or null after `timeoutMs`. The result is a copy. */
  async recv(timeoutMs = 3000): Promise<{ data: Uint8Array; from: Deno.NetAddr } | null> {
    this.#pending ??= this.conn.receive(this.#buf).then(([d, a]) => [
      d.slice(),
      a as Deno.NetAddr,
    ]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), timeoutMs)));
    const got = await Promise.race([this.#pending, timeout]);
    clearTimeout(timer);
    if (got === null) return null;
    this.#pending = null;
    return { data: got[0], from: got[1] };
  }

  /** Receives and decodes the next packet (throws on timeout). */
  async expect(
    timeoutMs = 3000,
  ): Promise<{ packet: Packet; from: Deno.NetAddr; data: Uint8Array }> {
    const got = await this.recv(timeoutMs);
    if (!got) throw new Error(`no packet within ${timeoutMs} ms`);
    return { packet: decode(got.data), from: got.from, data: got.data };
  }

  /** Collects every datagram arriving within `ms`. */
  async drain(ms: number): Promise<Array<{ data: Uint8Array; from: Deno.NetAddr }>> {
    const out = [];
    const end = Date.now() + ms;
    for (;;) {
      const left = end - Date.now();
      if (left <= 0) break;
      const got = await this.recv(left);
      if (!got) break;
      out.push(got);
    }
    return out;
  }

  /** Closes the socket (a pending receive is abandoned). */
  close(): void {
    this.conn.close();
    this.#pending?.catch(() => {});
  }
}

/** Encodes a request. */
export function request(
  op: "RRQ" | "WRQ",
  name: string | Uint8Array,
  mode = "octet",
  options: Record<string, string> = {},
): Uint8Array {
  return encode({
    op,
    filename: typeof name === "string" ? new TextEncoder().encode(name) : name,
    mode,
    options: new Map(Object.entries(options)),
  });
}
