/**
 * The client (`client.ts`) against a scripted server on loopback sockets: the request port
 * (`listen`) takes requests, a second socket (`tid`) answers from a new port as a real server
 * does. Covers an unacceptable OACK, ERROR 8 to a request with options, aborting a download, and a
 * server that never answers.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { AbortedError, ErrorCode, PeerError, RefusedError, TimeoutError } from "../errors.ts";
import { HOST } from "../testing/loopback.ts";
import type { BlockSink } from "../engine/blocks.ts";
import { decode, type Packet, type RequestPacket } from "../wire/packet.ts";
import { RawPeer } from "../../tests/support/raw.ts";
import { download } from "./client.ts";

interface Script {
  /** The server's request port. */
  listen: RawPeer;
  /** The server's transfer port (its TID). */
  tid: RawPeer;
  target: { hostname: string; port: number };
}

async function withScript(fn: (s: Script) => Promise<void>): Promise<void> {
  const listen = new RawPeer(HOST);
  const tid = new RawPeer(HOST);
  try {
    await fn({ listen, tid, target: { hostname: HOST, port: listen.port } });
  } finally {
    listen.close();
    tid.close();
  }
}

function sink(): BlockSink & { chunks: Uint8Array[] } {
  const chunks: Uint8Array[] = [];
  return { chunks, write: (d) => void chunks.push(d.slice()), finish: () => Promise.resolve() };
}

/** `p`, marked as handled: a test that fails before awaiting it still reports its own error. */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** The next request at the request port, and where it came from. */
async function nextRequest(s: Script): Promise<{ packet: RequestPacket; from: Deno.NetAddr }> {
  const got = await s.listen.expect(3000);
  ok(got.packet.op === "RRQ" || got.packet.op === "WRQ", `got ${got.packet.op}`);
  return { packet: got.packet as RequestPacket, from: got.from };
}

/** Every packet arriving at `peer` within `ms`, decoded. */
async function collect(peer: RawPeer, ms: number): Promise<Packet[]> {
  const got = await peer.drain(ms);
  return got.map((g) => decode(g.data));
}

Deno.test("REGRESSION: an OACK with a larger blksize gets exactly one ERROR 8 naming it", async () => {
  await withScript(async (s) => {
    const result = handled(download(s.target, "boot.img", sink()));
    const req = await nextRequest(s);
    equal(req.packet.options.get("blksize"), "1468");
    await s.tid.send({ op: "OACK", options: new Map([["blksize", "9999"]]) }, req.from.port);
    await rejects(result, (e: unknown) => {
      ok(e instanceof RefusedError, `expected RefusedError, got ${e}`);
      ok(!(e instanceof PeerError));
      equal(e.code, ErrorCode.OPTION_REFUSED);
      equal(e.message, "server answered blksize=9999");
      return true;
    });
    const sent = await collect(s.tid, 1000);
    deepEqual(sent, [{
      op: "ERROR",
      code: ErrorCode.OPTION_REFUSED,
      message: "server answered blksize=9999",
    }]);
    deepEqual(await collect(s.listen, 200), [], "no second request");
  });
});

Deno.test("ERROR 8 to a request with options: the client asks again without options", async () => {
  await withScript(async (s) => {
    const into = sink();
    const result = handled(download(s.target, "boot.img", into));
    const first = await nextRequest(s);
    ok(first.packet.options.size > 0, "the first request has options");
    deepEqual([...first.packet.options.keys()], ["blksize", "windowsize", "tsize"]);
    await s.tid.send(
      { op: "ERROR", code: ErrorCode.OPTION_REFUSED, message: "no options" },
      first.from.port,
    );
    const second = await nextRequest(s);
    equal(second.packet.op, "RRQ");
    equal(new TextDecoder().decode(second.packet.filename), "boot.img");
    equal(second.packet.mode, "octet");
    equal(second.packet.options.size, 0, "the second request has no options");
    const payload = new Uint8Array(100).fill(7);
    await s.tid.send({ op: "DATA", block: 1, data: payload }, second.from.port);
    const ackOf1 = await s.tid.expect(3000);
    deepEqual(ackOf1.packet, { op: "ACK", block: 1 });
    equal(ackOf1.from.port, second.from.port);
    const r = await result;
    equal(r.bytes, 100);
    deepEqual(r.negotiated, { blksize: 512, windowsize: 1 });
    equal(r.acknowledged.size, 0);
    deepEqual(into.chunks, [payload]);
    deepEqual(await collect(s.listen, 200), [], "no third request");
  });
});

Deno.test("aborting a download sends ERROR 0 with the reason's message and rejects with it", async () => {
  await withScript(async (s) => {
    const controller = new AbortController();
    const reason = new Error("cancelled");
    const into = sink();
    const result = handled(download(s.target, "boot.img", into, {
      blksize: 512,
      windowsize: 1,
      signal: controller.signal,
    }));
    const req = await nextRequest(s);
    const client = req.from.port;
    await s.tid.send({ op: "OACK", options: new Map([["tsize", "2048"]]) }, client);
    deepEqual((await s.tid.expect(3000)).packet, { op: "ACK", block: 0 });
    await s.tid.send({ op: "DATA", block: 1, data: new Uint8Array(512) }, client);
    deepEqual((await s.tid.expect(3000)).packet, { op: "ACK", block: 1 });
    controller.abort(reason);
    await rejects(result, (e: unknown) => {
      ok(e instanceof AbortedError, `expected AbortedError, got ${e}`);
      ok(e.cause === reason, "cause is the abort reason itself");
      equal(e.message, "cancelled");
      return true;
    });
    deepEqual(await collect(s.tid, 1000), [{ op: "ERROR", code: 0, message: "cancelled" }]);
    equal(into.chunks.length, 1);
  });
});

Deno.test("a server that never answers: TimeoutError after exactly 1 + retries requests", async (t) => {
  for (const retries of [0, 2]) {
    await t.step(`retries ${retries}`, async () => {
      await withScript(async (s) => {
        const timeoutMs = 150;
        const started = Date.now();
        const result = handled(download(s.target, "boot.img", sink(), { timeoutMs, retries }));
        await rejects(result, (e: unknown) => {
          ok(e instanceof TimeoutError, `expected TimeoutError, got ${e}`);
          equal(e.message, `no answer from ${HOST}:${s.listen.port} after ${1 + retries} requests`);
          return true;
        });
        const elapsed = Date.now() - started;
        ok(elapsed >= (1 + retries) * timeoutMs - 30, `gave up after ${elapsed} ms`);
        const got = await s.listen.drain(400);
        equal(got.length, 1 + retries, "requests received");
        for (const g of got) {
          equal(decode(g.data).op, "RRQ");
          equal(g.from.port, got[0].from.port, "all copies from one client port");
        }
      });
    });
  }
});
