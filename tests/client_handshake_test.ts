/**
 * Our client's handshake against a scripted server on real sockets: only a packet that could
 * answer the request fixes the server's transfer port, so a stray DATA or ACK of an older transfer
 * to a reused local port (seen in the soak: a server still repeating a final window the previous
 * client no longer waited for) cannot capture the new transfer.
 */

import { deepEqual, equal } from "node:assert/strict";
import { get, put } from "../src/mod.ts";
import { decode, encode } from "../src/wire/packet.ts";
import { HOST } from "../src/testing/loopback.ts";

const enc = new TextEncoder();

function udp(): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname: HOST, port: 0 });
}

/** The next packet on `conn`, or an error after 5 s (the socket's closing ends the wait). */
async function recv(conn: Deno.DatagramConn): Promise<[ReturnType<typeof decode>, Deno.NetAddr]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("the client sent nothing here within 5 s")), 5000);
  });
  try {
    const [data, from] = await Promise.race([conn.receive(), timeout]);
    return [decode(data), from as Deno.NetAddr];
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A server that takes one request on `listener`, lets `stray` (another port of the same host) send
 * `strays` to the client first, then answers from `tid`: an OACK for `blksize 1468`, and the
 * given script. Returns what the client sent to the stray port.
 */
async function scripted(
  listener: Deno.DatagramConn,
  strays: Uint8Array[],
  answer: (tid: Deno.DatagramConn, client: Deno.NetAddr) => Promise<void>,
): Promise<void> {
  const [req, client] = await recv(listener);
  equal(req.op === "RRQ" || req.op === "WRQ", true);
  const stray = udp();
  const tid = udp();
  try {
    for (const s of strays) await stray.send(s, client);
    await new Promise((r) => setTimeout(r, 50)); // the strays arrive first
    await answer(tid, client);
  } finally {
    stray.close();
    tid.close();
  }
}

Deno.test("a stray DATA of an older transfer does not capture a download", async () => {
  const listener = udp();
  const port = (listener.addr as Deno.NetAddr).port;
  const content = enc.encode("the new file\n");
  // An older transfer's window, negotiated at blksize 1468: DATA 1 and 2 with 1468 bytes each.
  const old = new Uint8Array(1468).fill(0x41);
  const strays = [1, 2].map((block) => encode({ op: "DATA", block, data: old }));
  const server = scripted(listener, strays, async (tid, client) => {
    const oack = new Map([["blksize", "1468"], ["windowsize", "1"]]);
    await tid.send(encode({ op: "OACK", options: oack }), client);
    const [a0] = await recv(tid);
    deepEqual(a0, { op: "ACK", block: 0 });
    await tid.send(encode({ op: "DATA", block: 1, data: content }), client);
    const [a1] = await recv(tid);
    deepEqual(a1, { op: "ACK", block: 1 });
  });
  try {
    const got = await get({ hostname: HOST, port }, "new.bin", {
      blksize: 1468,
      windowsize: 4,
      retries: 2,
    });
    deepEqual(got, content);
    await server;
  } finally {
    listener.close();
    await server.catch(() => {});
  }
});

Deno.test("a stray ACK of an older upload does not capture an upload", async () => {
  const listener = udp();
  const port = (listener.addr as Deno.NetAddr).port;
  const content = enc.encode("config backup\n");
  const strays = [encode({ op: "ACK", block: 7 })];
  let received: Uint8Array | null = null;
  const server = scripted(listener, strays, async (tid, client) => {
    await tid.send(encode({ op: "ACK", block: 0 }), client);
    const [d1] = await recv(tid);
    if (d1.op !== "DATA") throw new Error(`expected DATA 1, got ${d1.op}`);
    received = d1.data.slice();
    await tid.send(encode({ op: "ACK", block: 1 }), client);
  });
  try {
    await put({ hostname: HOST, port }, "backup.cfg", content, { noOptions: true, retries: 2 });
    await server;
    deepEqual(received, content);
  } finally {
    listener.close();
    await server.catch(() => {});
  }
});
