/**
 * Requests from an address and port that already has a transfer, driven with a raw UDP peer: a
 * request repeated before the server's first reply got through is the same transfer, but once the
 * client has answered, a request from the same port is a new transfer (the old one, most often
 * repeating a final DATA the client no longer waits for, ends quietly) — with a port per transfer
 * and in `--single-port` mode.
 */

import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import { type Packet } from "../src/wire/packet.ts";
import { RawPeer, request } from "./support/raw.ts";
import { ackOf, waitForRecord, withPeer } from "./support/raw_transfer.ts";
import { expectData, file, fixture, withServer } from "./support/protocol_fixture.ts";

type Got = { packet: Packet; from: Deno.NetAddr; data: Uint8Array };

/**
 * Reads packets until DATA `block` of the transfer at `tid` (any port when null) arrives; returns
 * it and every other packet seen on the way.
 */
async function dataFrom(
  peer: RawPeer,
  block: number,
  tid: number | null,
): Promise<{ got: Got; others: Got[] }> {
  const others: Got[] = [];
  for (;;) {
    const got = await peer.expect(10_000);
    const p = got.packet;
    if (p.op === "DATA" && p.block === block && (tid === null || got.from.port === tid)) {
      return { got, others };
    }
    others.push(got);
  }
}

/** Downloads the rest of a lock-step transfer from DATA 2 on and returns every payload. */
async function finish(peer: RawPeer, tid: number, first: Uint8Array): Promise<Uint8Array> {
  const parts = [first];
  let last = first;
  for (let block = 2; last.length === 512; block++) {
    await peer.send(ackOf(block - 1), tid);
    const { got } = await dataFrom(peer, block, tid);
    if (got.packet.op !== "DATA") throw new Error("unreachable");
    last = got.packet.data.slice();
    parts.push(last);
  }
  await peer.send(ackOf(parts.length), tid);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("a request repeated before the first reply arrived draws one transfer", async () => {
  await using fx = await fixture();
  await withServer([fx.dir, "--log-format", "json"], async (server) => {
    await withPeer(async (peer) => {
      await peer.send(request("RRQ", "three.bin"), server.port);
      await peer.send(request("RRQ", "three.bin"), server.port);
      const d1 = await expectData(peer, 1);
      // Only the one transfer answers: nothing from a second port, no second DATA 1.
      const extra = await peer.drain(1500);
      ok(extra.every((x) => x.from.port === d1.from.port), "a second transfer answered");
      const data = await finish(peer, d1.from.port, d1.data);
      deepEqual(data, file(fx, "three.bin"));
    });
    await waitForRecord(server, (r) => r.file === "three.bin" && r.outcome === "ok");
  });
});

for (const singlePort of [false, true]) {
  const how = singlePort ? "in --single-port mode" : "with a port per transfer";
  Deno.test(`a new request from the same port after the client answered is served ${how}`, async () => {
    await using fx = await fixture();
    const args = [fx.dir, "--log-format", "json", ...(singlePort ? ["--single-port"] : [])];
    await withServer(args, async (server) => {
      await withPeer(async (peer) => {
        // A long download, answered once and then left: the client has moved on.
        await peer.send(request("RRQ", "big.bin"), server.port);
        const old = await expectData(peer, 1);
        await peer.send(ackOf(1), old.from.port);
        await expectData(peer, 2);
        // The same port asks for another file.
        await peer.send(request("RRQ", "three.bin"), server.port);
        const { got, others } = await dataFrom(peer, 1, null);
        if (got.packet.op !== "DATA") throw new Error("unreachable");
        if (singlePort) equal(got.from.port, server.port);
        else notEqual(got.from.port, old.from.port, "the new transfer has its own port");
        deepEqual(got.packet.data, file(fx, "three.bin").subarray(0, 512));
        const data = await finish(peer, got.from.port, got.packet.data.slice());
        deepEqual(data, file(fx, "three.bin"));
        // The old transfer ended without an ERROR to the peer (it may share the new one's port).
        const late = await peer.drain(1500);
        const errors = [...others, ...late.map((x) => ({ from: x.from, data: x.data }))]
          .filter((x) => x.data[1] === 5);
        deepEqual(errors, [], "no ERROR reached the peer");
        if (!singlePort) {
          ok(late.every((x) => x.from.port !== old.from.port), "the old transfer went on sending");
        }
      });
      const oldRecord = await waitForRecord(server, (r) => r.file === "big.bin");
      equal(oldRecord.outcome, "aborted");
      equal(oldRecord.error, "superseded by a new request from the same address and port");
      await waitForRecord(server, (r) => r.file === "three.bin" && r.outcome === "ok");
    });
  });
}

/** ACKs `block` and reads on in lock-step to the end; returns the payloads from `block + 1` on. */
async function rest(peer: RawPeer, tid: number, block: number): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for (;; block++) {
    await peer.send(ackOf(block), tid);
    const { got, others } = await dataFrom(peer, block + 1, tid);
    ok(others.every((o) => o.packet.op !== "DATA" || o.packet.block !== 1), "a second transfer");
    if (got.packet.op !== "DATA") throw new Error("unreachable");
    parts.push(got.packet.data.slice());
    if (got.packet.data.length < 512) {
      await peer.send(ackOf(block + 1), tid);
      return parts;
    }
  }
}

for (const singlePort of [false, true]) {
  const how = singlePort ? "in --single-port mode" : "with a port per transfer";

  Deno.test(`a late copy of the request never ends a download that moves ${how}`, async () => {
    await using fx = await fixture();
    const args = [fx.dir, "--log-format", "json", ...(singlePort ? ["--single-port"] : [])];
    await withServer(args, async (server) => {
      await withPeer(async (peer) => {
        await peer.send(request("RRQ", "big.bin"), server.port);
        const d1 = await expectData(peer, 1);
        const tid = d1.from.port;
        await peer.send(ackOf(1), tid);
        const { got: d2 } = await dataFrom(peer, 2, tid);
        // The network delivers the request again, late, while the transfer moves.
        await peer.send(request("RRQ", "big.bin"), server.port);
        const parts = [d1.data, d2.data.subarray(4), ...await rest(peer, tid, 2)];
        const size = parts.reduce((n, p) => n + p.length, 0);
        equal(size, file(fx, "big.bin").length);
      });
      const record = await waitForRecord(server, (r) => r.file === "big.bin");
      equal(record.outcome, "ok", JSON.stringify(record));
    });
  });

  Deno.test(`the same request from a port whose transfer is at its end is served again ${how}`, async () => {
    await using fx = await fixture();
    const args = [fx.dir, "--log-format", "json", ...(singlePort ? ["--single-port"] : [])];
    await withServer(args, async (server) => {
      await withPeer(async (peer) => {
        // Every block of three.bin arrives, but the final ACK is "lost": the transfer is ending.
        await peer.send(request("RRQ", "three.bin"), server.port);
        const d1 = await expectData(peer, 1);
        let block = 1;
        for (let last = d1.data; last.length === 512; block++) {
          await peer.send(ackOf(block), d1.from.port);
          const { got } = await dataFrom(peer, block + 1, d1.from.port);
          last = got.data.subarray(4);
        }
        // The client asks for the same file again from the same port: a new transfer.
        await peer.send(request("RRQ", "three.bin"), server.port);
        const { got } = await dataFrom(peer, 1, null);
        if (got.packet.op !== "DATA") throw new Error("unreachable");
        const data = await finish(peer, got.from.port, got.packet.data.slice());
        deepEqual(data, file(fx, "three.bin"));
      });
      await waitForRecord(server, (r) => r.file === "three.bin" && r.outcome === "ok");
    });
  });
}
