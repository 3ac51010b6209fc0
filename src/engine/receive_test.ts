/**
 * The receiving side (`receiveBlocks`) against a scripted peer over an in-memory channel: lost
 * window ACKs, oversized DATA and size limits, and the dally after the final ACK.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { RefusedError } from "../errors.ts";
import { ack, blockOf, Opcode, opcodeOf, readError } from "../wire/packet.ts";
import { ErrorCode } from "../errors.ts";
import { memoryChannelPair } from "../testing/memory_channel.ts";
import {
  collector,
  dataPacket,
  expectAck,
  makeBytes,
  next,
  receive,
  settings,
} from "../testing/engine_harness.ts";

Deno.test("a window whose ACK is lost again and again is acknowledged again each time", async () => {
  // The sender's timeouts resend window 1-4 while the receiver already has it: every
  // resent window must draw ACK 4 again, or the two sides wait for each other forever.
  const [a, b] = memoryChannelPair();
  const sink = collector();
  const data = makeBytes(8 * 4 + 2, 12);
  const block = (k: number) => data.subarray((k - 1) * 8, k * 8);
  const s = settings(8, 4, 1000, 5);
  const p = receive(a, sink, s, { reply: ack(0), dallyMs: 0 });
  try {
    await expectAck(b, 0);
    for (const k of [1, 2, 3, 4]) await b.send(dataPacket(k, block(k)));
    await expectAck(b, 4);
    for (let round = 1; round <= 3; round++) {
      // ACK 4 "lost": the sender times out and resends the window.
      for (const k of [1, 2, 3, 4]) await b.send(dataPacket(k, block(k)));
      // Well before the receiver's own timeout (1000 ms) the resent window must be answered.
      const got = await b.receive(b.clock.now() + 500);
      ok(got !== null, `resent window ${round} got no ACK`);
      equal(opcodeOf(got), Opcode.ACK);
      equal(blockOf(got), 4, `resent window ${round}`);
      while (await b.receive(b.clock.now() + 50) !== null) { /* further ACK 4s are fine */ }
    }
    await b.send(dataPacket(5, data.subarray(32)));
    await expectAck(b, 5);
    await p;
    deepEqual(sink.bytes(), data);
  } finally {
    a.close();
    b.close();
    await p.catch(() => {});
  }
});

Deno.test("receiveBlocks refuses oversized DATA and uploads over maxBytes", async (t) => {
  await t.step("DATA larger than blksize gets ERROR 4", async () => {
    const [a, b] = memoryChannelPair();
    const sink = collector();
    const p = receive(a, sink, settings(8, 1), { reply: ack(0) });
    try {
      await expectAck(b, 0);
      await b.send(dataPacket(1, makeBytes(9, 1)));
      const err = readError(await next(b));
      equal(err.op, "ERROR");
      equal(err.code, ErrorCode.ILLEGAL_OPERATION);
      await rejects(p, (e: unknown) => {
        ok(e instanceof RefusedError, String(e));
        equal(e.code, ErrorCode.ILLEGAL_OPERATION);
        return true;
      });
      equal(sink.chunks.length, 0, "the oversized payload was not written");
      equal(sink.finishes, 0);
    } finally {
      a.close();
      b.close();
    }
  });

  await t.step("more than maxBytes gets ERROR 3", async () => {
    const [a, b] = memoryChannelPair();
    const sink = collector();
    const p = receive(a, sink, settings(8, 1), { reply: ack(0), maxBytes: 20 });
    try {
      await expectAck(b, 0);
      await b.send(dataPacket(1, makeBytes(8, 1)));
      await expectAck(b, 1);
      await b.send(dataPacket(2, makeBytes(8, 2)));
      await expectAck(b, 2);
      await b.send(dataPacket(3, makeBytes(8, 3)));
      const err = readError(await next(b));
      equal(err.op, "ERROR");
      equal(err.code, ErrorCode.DISK_FULL);
      await rejects(p, (e: unknown) => {
        ok(e instanceof RefusedError, String(e));
        equal(e.code, ErrorCode.DISK_FULL);
        return true;
      });
      equal(sink.bytes().length, 16, "only the accepted blocks were written");
      equal(sink.finishes, 0);
    } finally {
      a.close();
      b.close();
    }
  });

  await t.step("exactly maxBytes is accepted", async () => {
    const [a, b] = memoryChannelPair();
    const sink = collector();
    const data = makeBytes(20, 4);
    const p = receive(a, sink, settings(8, 1), { reply: ack(0), maxBytes: 20, dallyMs: 0 });
    try {
      await expectAck(b, 0);
      await b.send(dataPacket(1, data.subarray(0, 8)));
      await expectAck(b, 1);
      await b.send(dataPacket(2, data.subarray(8, 16)));
      await expectAck(b, 2);
      await b.send(dataPacket(3, data.subarray(16)));
      await expectAck(b, 3);
      deepEqual(await p, { bytes: 20, blocks: 3, retransmits: 0 });
      deepEqual(sink.bytes(), data);
      equal(sink.finishes, 1);
    } finally {
      a.close();
      b.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Dally

Deno.test("the final ACK is resent during dally when the last DATA repeats", async (t) => {
  await t.step("windowsize 1", async () => {
    const [a, b] = memoryChannelPair();
    const sink = collector();
    const data = makeBytes(8 + 3, 2);
    const p = receive(a, sink, settings(8, 1, 1000), { reply: ack(0), dallyMs: 300 });
    try {
      await expectAck(b, 0);
      await b.send(dataPacket(1, data.subarray(0, 8)));
      await expectAck(b, 1);
      await b.send(dataPacket(2, data.subarray(8)));
      await expectAck(b, 2);
      // Our side "lost" the final ACK twice: the final DATA comes again.
      await b.send(dataPacket(2, data.subarray(8)));
      await expectAck(b, 2);
      await b.send(dataPacket(2, data.subarray(8)));
      await expectAck(b, 2);
      const stats = await p;
      equal(stats.bytes, 11);
      deepEqual(sink.bytes(), data, "the repeated DATA is not written again");
      equal(sink.finishes, 1);
      deepEqual(a.ackBlocks(), [0, 1, 2, 2, 2]);
    } finally {
      a.close();
      b.close();
    }
  });

  await t.step(
    "by default the dally outlasts one timeout of a sender with the same timeout",
    async () => {
      // A sender whose final DATA drew no ACK repeats it after its timeout — the receiver's own
      // when the timeout option was negotiated — so the dally must be longer than that (2x).
      const [a, b] = memoryChannelPair();
      const sink = collector();
      const data = makeBytes(3, 4);
      const p = receive(a, sink, settings(8, 1, 200), { reply: ack(0) });
      try {
        await expectAck(b, 0);
        await b.send(dataPacket(1, data));
        await expectAck(b, 1);
        await new Promise((r) => setTimeout(r, 260)); // one timeout and then some
        await b.send(dataPacket(1, data));
        await expectAck(b, 1);
        await p;
        deepEqual(a.ackBlocks(), [0, 1, 1]);
      } finally {
        a.close();
        b.close();
      }
    },
  );

  await t.step("windowsize 4, the whole last window repeats", async () => {
    // Blocks 5-7 form the last window; its final ACK is lost, so the sender times out and
    // resends the window from its base (block 5): the receiver must answer with ACK 7 again.
    const [a, b] = memoryChannelPair();
    const sink = collector();
    const data = makeBytes(8 * 6 + 3, 3);
    const block = (k: number) => data.subarray((k - 1) * 8, k * 8);
    const p = receive(a, sink, settings(8, 4, 1000), { reply: ack(0), dallyMs: 300 });
    try {
      await expectAck(b, 0);
      for (const k of [1, 2, 3, 4]) await b.send(dataPacket(k, block(k)));
      await expectAck(b, 4);
      for (const k of [5, 6, 7]) await b.send(dataPacket(k, block(k)));
      await expectAck(b, 7);
      for (const k of [5, 6, 7]) await b.send(dataPacket(k, block(k)));
      await expectAck(b, 7, 1000);
      await p;
      deepEqual(sink.bytes(), data);
      equal(sink.finishes, 1);
    } finally {
      a.close();
      b.close();
      await p.catch(() => {});
    }
  });

  await t.step("a stale earlier DATA does not end the dally", async () => {
    const [a, b] = memoryChannelPair();
    const sink = collector();
    const data = makeBytes(8 + 3, 4);
    const p = receive(a, sink, settings(8, 1, 1000), { reply: ack(0), dallyMs: 300 });
    try {
      await expectAck(b, 0);
      await b.send(dataPacket(1, data.subarray(0, 8)));
      await expectAck(b, 1);
      await b.send(dataPacket(2, data.subarray(8)));
      await expectAck(b, 2);
      // A late duplicate of block 1, then the final DATA again (the final ACK was lost).
      await b.send(dataPacket(1, data.subarray(0, 8)));
      await b.send(dataPacket(2, data.subarray(8)));
      const acks: number[] = [];
      for (;;) {
        const got = await b.receive(b.clock.now() + 600);
        if (got === null) break;
        if (opcodeOf(got) === Opcode.ACK) acks.push(blockOf(got));
      }
      await p;
      ok(acks.includes(2), `the repeated final DATA got no ACK 2 (got ACKs ${acks})`);
      deepEqual(sink.bytes(), data);
    } finally {
      a.close();
      b.close();
      await p.catch(() => {});
    }
  });

  await t.step("without a repeat the receiver returns after the dally time", async () => {
    const [a, b] = memoryChannelPair();
    const sink = collector();
    const p = receive(a, sink, settings(8, 1, 1000), { reply: ack(0), dallyMs: 80 });
    try {
      await expectAck(b, 0);
      const started = Date.now();
      await b.send(dataPacket(1, makeBytes(3, 1)));
      await p;
      const took = Date.now() - started;
      ok(took >= 70, `returned after ${took} ms, before the dally time`);
      deepEqual(a.ackBlocks(), [0, 1]);
    } finally {
      a.close();
      b.close();
    }
  });
});
