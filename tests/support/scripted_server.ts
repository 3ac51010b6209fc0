/**
 * Test support: a scripted TFTP server on 127.0.0.1 for client tests. Each request is answered
 * from a fresh port as the script says: an ERROR with a given code, or the first step of the
 * transfer (DATA 1 of a download, ACK 0 of an upload) and then nothing, holding the client
 * mid-transfer. Everything the client sends to a transfer port is recorded.
 *
 * @module
 */

import { decode, encode, type Packet, type RequestPacket } from "../../src/wire/packet.ts";

/** Receives datagrams until the socket is closed (no timers: nothing leaks at close). */
async function* datagrams(conn: Deno.DatagramConn) {
  const buf = new Uint8Array(65536);
  for (;;) {
    let got: [Uint8Array, Deno.Addr];
    try {
      got = await conn.receive(buf);
    } catch {
      return;
    }
    yield { data: got[0].slice(), from: got[1] as Deno.NetAddr };
  }
}

function socket(): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
}

/** How to answer one request. */
export type Script =
  | { error: number; message: string }
  | { hold: true };

/** One packet the client sent to a transfer port, and when (`performance.now()`). */
export interface Seen {
  packet: Packet;
  at: number;
}

/** A running scripted server. */
export interface ScriptedServer {
  /** Its listening port. */
  port: number;
  /** The requests received, in order. */
  requests: RequestPacket[];
  /** Packets the client sent to transfer ports after the first answer. */
  seen: Seen[];
  /** Resolves with the first packet the client sends to a transfer port that `match` accepts. */
  waitFor(match: (p: Packet) => boolean, timeoutMs?: number): Promise<Seen>;
  /** Stops it. */
  close(): Promise<void>;
}

/**
 * Starts a scripted server; `script(request)` decides each answer.
 *
 * @example
 * ```ts ignore
 * const s = startScripted(() => ({ error: 1, message: "File not found" }));
 * ```
 */
export function startScripted(script: (r: RequestPacket) => Script): ScriptedServer {
  const listener = socket();
  const requests: RequestPacket[] = [];
  const seen: Seen[] = [];
  const peers: Deno.DatagramConn[] = [];
  const transfers: Promise<void>[] = [];
  const waiters: Array<() => void> = [];
  const notify = () => waiters.splice(0).forEach((w) => w());

  const serveTransfer = async (peer: Deno.DatagramConn) => {
    for await (const got of datagrams(peer)) {
      try {
        seen.push({ packet: decode(got.data), at: performance.now() });
        notify();
      } catch { /* not a packet */ }
    }
  };

  const done = (async () => {
    for await (const got of datagrams(listener)) {
      let request: RequestPacket;
      try {
        const p = decode(got.data);
        if (p.op !== "RRQ" && p.op !== "WRQ") continue;
        request = p;
      } catch {
        continue;
      }
      requests.push(request);
      notify();
      const peer = socket();
      peers.push(peer);
      const answer = script(request);
      const reply = (p: Packet) => peer.send(encode(p), got.from).catch(() => 0);
      if ("error" in answer) {
        await reply({ op: "ERROR", code: answer.error, message: answer.message });
        peer.close();
        continue;
      }
      await reply(
        request.op === "RRQ"
          ? { op: "DATA", block: 1, data: new Uint8Array(512).fill(0x41) }
          : { op: "ACK", block: 0 },
      );
      transfers.push(serveTransfer(peer));
    }
  })();

  return {
    port: (listener.addr as Deno.NetAddr).port,
    requests,
    seen,
    async waitFor(match, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = seen.find((s) => match(s.packet));
        if (hit) return hit;
        if (Date.now() > deadline) {
          throw new Error(`no matching packet within ${timeoutMs} ms: ${JSON.stringify(seen)}`);
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, 50);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
    async close() {
      listener.close();
      for (const p of peers) {
        try {
          p.close();
        } catch { /* closed */ }
      }
      await done;
      await Promise.all(transfers);
    },
  };
}
