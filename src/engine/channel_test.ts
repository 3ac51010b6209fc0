/**
 * The channels (`channel.ts`) on real loopback sockets: the client-mode first-reply lock, ERROR 5
 * to strangers, a datagram kept for the next receive, deadlines on the clock, abort and close,
 * `packets()`, sends that fail locally, and the shared-socket `MuxChannel`.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { AbortedError, ErrorCode } from "../errors.ts";
import { HOST } from "../testing/loopback.ts";
import { ack, blockOf, decode, Opcode, opcodeOf } from "../wire/packet.ts";
import { RawPeer } from "../../tests/support/raw.ts";
import { MuxChannel, packets, SocketChannel } from "./channel.ts";
import { TickingClock } from "./clock.ts";

function udp(): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname: HOST, port: 0 });
}

function portOf(conn: Deno.DatagramConn): number {
  return (conn.addr as Deno.NetAddr).port;
}

function addr(port: number): Deno.NetAddr {
  return { transport: "udp", hostname: HOST, port };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A channel on a fresh socket, towards `peerPort`, with its own port. */
function channelTo(
  peerPort: number,
  options: ConstructorParameters<typeof SocketChannel>[2] = {},
): { ch: SocketChannel; port: number } {
  const conn = udp();
  return { ch: new SocketChannel(conn, addr(peerPort), options), port: portOf(conn) };
}

Deno.test("SocketChannel in client mode: the first reply firstReply accepts fixes the peer", async (t) => {
  const server = new RawPeer(); // the request port: never answers from here
  const stray = new RawPeer();
  const tid = new RawPeer();
  const judged: number[] = [];
  const { ch, port } = channelTo(server.port, {
    firstReply: (d) => {
      judged.push(opcodeOf(d));
      return opcodeOf(d) === Opcode.OACK;
    },
  });
  try {
    await t.step("a datagram firstReply rejects is dropped without an answer", async () => {
      const pending = ch.receive(ch.clock.now() + 2000);
      await stray.send(ack(7), port); // from the peer's host, but not an answer
      await sleep(100);
      await tid.send({ op: "OACK", options: new Map([["blksize", "1024"]]) }, port);
      const got = await pending;
      ok(got !== null, "the accepted reply arrives");
      equal(opcodeOf(got), Opcode.OACK, "receive returns the accepted reply, not the stray");
      deepEqual(judged, [Opcode.ACK, Opcode.OACK], "firstReply judged both datagrams");
      equal(await stray.recv(300), null, "the stray got nothing back before the lock");
    });
    await t.step("the accepted datagram fixed the peer's port", async () => {
      equal(ch.peer.port, tid.port);
      equal(ch.peer.hostname, HOST);
      await ch.send(ack(0));
      const got = await tid.expect(2000);
      equal(got.packet.op, "ACK", "sends now go to the new TID");
      equal(got.from.port, port);
      equal(await server.recv(200), null, "nothing goes to the request port any more");
    });
    await t.step(
      "after the lock, another port gets ERROR 5 and receive never sees it",
      async () => {
        const pending = ch.receive(ch.clock.now() + 400);
        await stray.send(ack(1), port);
        const reply = await stray.expect(2000);
        deepEqual(reply.packet, {
          op: "ERROR",
          code: ErrorCode.UNKNOWN_TID,
          message: "unknown transfer ID",
        });
        equal(reply.from.port, port, "ERROR 5 comes from the channel's socket");
        equal(await pending, null, "the stranger's datagram did not reach receive");
        equal(judged.length, 2, "firstReply is not asked after the lock");
        await tid.send(ack(2), port);
        const next = await ch.receive(ch.clock.now() + 2000);
        equal(next && decode(next).op, "ACK", "the peer is still heard");
      },
    );
  } finally {
    ch.close();
    server.close();
    stray.close();
    tid.close();
  }
});

Deno.test("SocketChannel keeps a datagram that arrives while nobody waits", async () => {
  const peer = new RawPeer();
  const { ch, port } = channelTo(peer.port);
  try {
    // Start the channel's read, let the wait time out, then send while nobody waits.
    equal(await ch.receive(ch.clock.now() + 40), null);
    await peer.send(ack(42), port);
    await sleep(150);
    // A deadline already passed: only a datagram the channel kept can come back.
    const kept = await ch.receive(ch.clock.now() - 1);
    ok(kept !== null, "the datagram was kept");
    deepEqual(decode(kept), { op: "ACK", block: 42 });
    equal(await ch.receive(ch.clock.now() + 40), null, "it is returned once");
  } finally {
    ch.close();
    peer.close();
  }
});

Deno.test("SocketChannel.receive resolves null once its deadline has passed on the clock", async () => {
  const clock = new TickingClock(20);
  const peer = new RawPeer();
  const { ch } = channelTo(peer.port, { clock });
  try {
    equal(ch.clock, clock);
    for (const ms of [100, 250]) {
      const start = Date.now();
      const deadline = clock.now() + ms;
      const got = await ch.receive(deadline);
      const elapsed = Date.now() - start;
      equal(got, null);
      ok(clock.now() >= deadline, `resolved at ${clock.now()}, before the deadline ${deadline}`);
      // The clock's reading may be up to one tick old when the deadline is set.
      ok(elapsed >= ms - 25, `${ms} ms deadline resolved after ${elapsed} ms`);
      ok(elapsed < ms + 500, `${ms} ms deadline resolved only after ${elapsed} ms`);
    }
  } finally {
    ch.close();
    peer.close();
  }
});

Deno.test("an aborted signal rejects receive with AbortedError whose cause is the reason", async (t) => {
  const peer = new RawPeer();
  const controller = new AbortController();
  const reason = { why: "a reason that is not an Error" };
  const { ch, port } = channelTo(peer.port, { signal: controller.signal });
  try {
    await t.step("a pending receive rejects", async () => {
      const pending = ch.receive(ch.clock.now() + 5000);
      setTimeout(() => controller.abort(reason), 30);
      const start = Date.now();
      await rejects(pending, (e: unknown) => {
        ok(e instanceof AbortedError, `got ${e}`);
        ok(e.cause === reason, "cause is the very reason object");
        return true;
      });
      ok(Date.now() - start < 1000, "the rejection did not wait for the deadline");
    });
    await t.step("later receives reject too, even with a datagram waiting", async () => {
      await peer.send(ack(1), port);
      await sleep(50);
      await rejects(ch.receive(ch.clock.now() + 1000), (e: unknown) => {
        ok(e instanceof AbortedError && e.cause === reason, `got ${e}`);
        return true;
      });
    });
    await t.step("sending still works after the abort (for the ERROR due)", async () => {
      await ch.send(ack(9));
      const got = await peer.expect(2000);
      deepEqual(got.packet, { op: "ACK", block: 9 });
      equal(ch.sendFailures.count, 0);
    });
  } finally {
    ch.close();
    peer.close();
  }
});

Deno.test("close() rejects a pending receive and every later one", async () => {
  const peer = new RawPeer();
  const { ch } = channelTo(peer.port);
  try {
    const pending = ch.receive(ch.clock.now() + 5000);
    setTimeout(() => ch.close(), 30);
    await rejects(pending, (e: unknown) => {
      ok(e instanceof AbortedError, `got ${e}`);
      equal(e.message, "channel closed");
      equal(e.cause, undefined);
      return true;
    });
    await rejects(ch.receive(ch.clock.now() + 1000), AbortedError);
    ch.close(); // idempotent
  } finally {
    ch.close();
    peer.close();
  }
});

Deno.test("packets() yields first, then datagrams, then null at each deadline", async () => {
  const peer = new RawPeer();
  const { ch, port } = channelTo(peer.port);
  const first = ack(100);
  const seen: Array<number | null> = [];
  let deadline = ch.clock.now() + 2000;
  const start = Date.now();
  try {
    for await (const p of packets(ch, () => deadline, first)) {
      seen.push(p === null ? null : blockOf(p));
      if (seen.length === 1) {
        ok(p === first, "first is yielded as given, before anything is received");
        await peer.send(ack(101), port);
      } else if (seen.length === 2) {
        deadline = ch.clock.now() + 60; // read afresh for the next step
      } else if (seen.length === 3) {
        deadline = ch.clock.now() + 60;
      } else break;
    }
    deepEqual(seen, [100, 101, null, null]);
    ok(Date.now() - start < 1500, "the shortened deadlines were used");
  } finally {
    ch.close();
    peer.close();
  }
});

Deno.test("a send that fails locally does not reject and is counted in sendFailures", async () => {
  const peer = new RawPeer();
  const { ch, port } = channelTo(peer.port);
  try {
    equal(ch.sendFailures.count, 0);
    // Larger than any UDP datagram: the kernel refuses it at once (EMSGSIZE). (A broadcast
    // address does not fail: Deno's UDP sockets are created with SO_BROADCAST.)
    const tooBig = new Uint8Array(70_000);
    const result = await ch.send(tooBig);
    equal(result, undefined, "send resolved");
    equal(ch.sendFailures.count, 1);
    ok(ch.sendFailures.last instanceof Error);
    ok(/too long/i.test(ch.sendFailures.last.message), ch.sendFailures.last.message);
    await ch.send(tooBig);
    equal(ch.sendFailures.count, 2);
    await ch.send(ack(5));
    equal(ch.sendFailures.count, 2, "a good send is not counted");
    const got = await peer.expect(2000);
    deepEqual(got.packet, { op: "ACK", block: 5 });
    equal(got.from.port, port);
    ch.close();
    await ch.send(tooBig);
    equal(ch.sendFailures.count, 2, "a failure after close is not counted");
  } finally {
    ch.close();
    peer.close();
  }
});

Deno.test("MuxChannel: push delivers or queues (bounded), sends leave the shared socket", async (t) => {
  const listening = udp();
  const client = new RawPeer();
  const ch = new MuxChannel(listening, addr(client.port));
  try {
    await t.step("a push to a waiting receive is delivered at once, as a copy", async () => {
      const pending = ch.receive(ch.clock.now() + 2000);
      const buf = ack(1);
      ch.push(buf);
      buf[3] = 99; // the listener reuses its buffer
      deepEqual(decode((await pending)!), { op: "ACK", block: 1 });
    });
    await t.step(`at most MAX_QUEUE (${MuxChannel.MAX_QUEUE}) datagrams are queued`, async () => {
      const n = MuxChannel.MAX_QUEUE + 10;
      const buf = new Uint8Array(4);
      for (let i = 0; i < n; i++) {
        buf.set(ack(i + 1000));
        ch.push(buf);
      }
      const blocks: number[] = [];
      for (;;) {
        const p = await ch.receive(ch.clock.now() - 1);
        if (p === null) break;
        blocks.push(blockOf(p));
      }
      equal(blocks.length, MuxChannel.MAX_QUEUE);
      deepEqual(blocks, Array.from({ length: MuxChannel.MAX_QUEUE }, (_, i) => i + 1000));
    });
    await t.step("sends go out of the listening socket to the peer", async () => {
      await ch.send(ack(7));
      const got = await client.expect(2000);
      deepEqual(got.packet, { op: "ACK", block: 7 });
      equal(got.from.port, portOf(listening));
    });
    await t.step(
      "after close: receive rejects, push is ignored, the socket stays open",
      async () => {
        ch.push(ack(1));
        ch.close();
        ch.push(ack(2));
        await rejects(ch.receive(ch.clock.now() + 100), AbortedError);
        await listening.send(ack(3), addr(client.port));
        equal(
          (await client.expect(2000)).from.port,
          portOf(listening),
          "not closed by the channel",
        );
      },
    );
  } finally {
    ch.close();
    listening.close();
    client.close();
  }
});
