/**
 * The sending side (`sendBlocks`) against a scripted peer over an in-memory channel: duplicate
 * ACKs (Sorcerer's Apprentice), ACKs inside the window, ERRORs from the peer.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { PeerError } from "../errors.ts";
import { ack, blockOf, errorPacket, Opcode, opcodeOf } from "../wire/packet.ts";
import { ErrorCode } from "../errors.ts";
import { memoryChannelPair, type MemoryPlan } from "../testing/memory_channel.ts";
import {
  collector,
  dataPacket,
  expectAck,
  expectData,
  makeBytes,
  receive,
  ROLES,
  runTransfer,
  sameBytes,
  send,
  settings,
  sourceFor,
  wireRange,
} from "../testing/engine_harness.ts";

// ---------------------------------------------------------------------------------------------
// Sorcerer's Apprentice

Deno.test("duplicated ACKs never make the sender send a DATA block twice (Sorcerer's Apprentice)", async (t) => {
  const dupAcks = {
    script: (p: Uint8Array) => (opcodeOf(p) === Opcode.ACK ? "duplicate" as const : undefined),
  };
  for (const windowsize of [1, 4]) {
    for (const { role, oack } of ROLES) {
      await t.step(`${role}${oack ? " with OACK" : ""}, windowsize ${windowsize}`, async () => {
        const data = makeBytes(512 * 20 + 7, 99);
        const plan: MemoryPlan = role === "download" ? { bToA: dupAcks } : { aToB: dupAcks };
        const r = await runTransfer({
          role,
          oack,
          data,
          settings: settings(512, windowsize),
          plan,
        });
        sameBytes(r.received, data, "file");
        ok(r.receiverEnd.counters.duplicated > 0, "the plan duplicated ACKs");
        deepEqual(r.senderEnd.dataBlocks(), wireRange(1, 21), "each DATA block exactly once");
        equal(r.sender.retransmits, 0);
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Windowed rewind

Deno.test("an ACK inside the window makes the sender resend from the block after it", async () => {
  const [a, b] = memoryChannelPair();
  // A settle time long enough that the test's steps surely fall within it.
  const s = { ...settings(8, 4), settleMs: 200 };
  const data = makeBytes(8 * 10 + 3, 5);
  const p = send(a, sourceFor(data, s), s);
  try {
    const first: Uint8Array[] = [];
    for (const k of [1, 2, 3, 4]) first.push(await expectData(b, k));
    await b.send(ack(2)); // blocks 3 and 4 "lost"
    deepEqual(await expectData(b, 3), first[2], "block 3 resent with the same bytes");
    deepEqual(await expectData(b, 4), first[3], "block 4 resent with the same bytes");
    await expectData(b, 5);
    await expectData(b, 6);
    // Another ACK inside the window within a round trip of going back: it only slides the
    // window (block 7 goes out) ...
    await b.send(ack(3));
    await expectData(b, 7);
    // ... and when the window has not moved past it a round trip later, the sender goes back.
    for (const k of [4, 5, 6, 7]) await expectData(b, k);
    await b.send(ack(7));
    for (const k of [8, 9, 10, 11]) await expectData(b, k);
    await b.send(ack(11));
    const stats = await p;
    deepEqual(stats, { bytes: data.length, blocks: 11, retransmits: 6 });
    deepEqual(a.dataBlocks(), [1, 2, 3, 4, 3, 4, 5, 6, 7, 4, 5, 6, 7, 8, 9, 10, 11]);
  } finally {
    a.close();
    b.close();
    await p.catch(() => {});
  }
});

Deno.test("a second duplicate ACK rewinds the window, the first one does not", async () => {
  const [a, b] = memoryChannelPair();
  const s = settings(8, 2);
  const data = makeBytes(8 * 4 + 1, 6);
  const p = send(a, sourceFor(data, s), s);
  try {
    await expectData(b, 1);
    await expectData(b, 2);
    await b.send(ack(2));
    await expectData(b, 3);
    await expectData(b, 4);
    await b.send(ack(2)); // first duplicate: ignored
    // (Less than the adaptive timeout, which is 60 ms once a round trip was measured.)
    equal(await b.receive(b.clock.now() + 30), null, "the first duplicate ACK must not resend");
    await b.send(ack(2)); // second duplicate: resend the window
    await expectData(b, 3);
    await expectData(b, 4);
    await b.send(ack(4));
    await expectData(b, 5);
    await b.send(ack(5));
    deepEqual(await p, { bytes: data.length, blocks: 5, retransmits: 2 });
  } finally {
    a.close();
    b.close();
    await p.catch(() => {});
  }
});

Deno.test("a client repeating its ACK gets the window again on each repeat, a round trip apart", async () => {
  const [a, b] = memoryChannelPair();
  // Lock-step; busybox repeats its ACK from 100 ms on and gives up after ~13 s of them. Each
  // resend below must come before the adaptive timeout (60 ms at least) could have sent it.
  const s = { ...settings(8, 1), settleMs: 10, timeoutMs: 5000 };
  const data = makeBytes(8 * 2 + 1, 7);
  const p = send(a, sourceFor(data, s), s);
  try {
    await expectData(b, 1);
    await b.send(ack(1));
    await expectData(b, 2); // "lost"
    await b.send(ack(1)); // first repeat: ignored
    equal(await b.receive(b.clock.now() + 30), null, "the first duplicate ACK must not resend");
    await b.send(ack(1));
    await expectData(b, 2); // "lost" again
    await new Promise((r) => setTimeout(r, 15)); // a round trip later, the client repeats
    await b.send(ack(1));
    const again = await b.receive(b.clock.now() + 20);
    ok(again && opcodeOf(again) === Opcode.DATA && blockOf(again) === 2, "DATA 2 on the repeat");
    await b.send(ack(2));
    await expectData(b, 3);
    await b.send(ack(3));
    deepEqual(await p, { bytes: data.length, blocks: 3, retransmits: 2 });
  } finally {
    a.close();
    b.close();
    await p.catch(() => {});
  }
});

// ---------------------------------------------------------------------------------------------
// Errors

Deno.test("an ERROR from the peer mid-transfer ends the engine with PeerError", async (t) => {
  await t.step("sender", async () => {
    const [a, b] = memoryChannelPair();
    const s = settings(8, 1);
    const p = send(a, sourceFor(makeBytes(100, 1), s), s);
    try {
      await expectData(b, 1);
      await b.send(ack(1));
      await expectData(b, 2);
      await b.send(errorPacket(ErrorCode.DISK_FULL, "disk full"));
      await rejects(p, (e: unknown) => {
        ok(e instanceof PeerError, String(e));
        equal(e.code, 3);
        equal(e.peerMessage, "disk full");
        return true;
      });
      deepEqual(a.dataBlocks(), [1, 2], "nothing sent after the ERROR");
    } finally {
      a.close();
      b.close();
    }
  });

  await t.step("receiver", async () => {
    const [a, b] = memoryChannelPair();
    const s = settings(8, 1);
    const sink = collector();
    const p = receive(a, sink, s, { reply: ack(0) });
    try {
      await expectAck(b, 0);
      await b.send(dataPacket(1, makeBytes(8, 1)));
      await expectAck(b, 1);
      await b.send(errorPacket(ErrorCode.FILE_NOT_FOUND, "gone"));
      await rejects(p, (e: unknown) => {
        ok(e instanceof PeerError, String(e));
        equal(e.code, 1);
        equal(e.peerMessage, "gone");
        return true;
      });
      equal(sink.finishes, 0, "an aborted transfer is not finished");
      deepEqual(a.ackBlocks(), [0, 1]);
      equal(a.sentWith(Opcode.ERROR).length, 0, "no ERROR answers an ERROR");
    } finally {
      a.close();
      b.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// A client that ends with ERROR 0 once it has every byte (pxelinux)

Deno.test("a client's ERROR 0 once it holds every byte it was told of completes the transfer", async (t) => {
  const blksize = 8;
  const data = makeBytes(blksize * 3, 9); // a multiple of blksize: an empty block 4 follows
  await t.step("after the last full block: ok, every byte counted, with a note", async () => {
    const [a, b] = memoryChannelPair();
    const s = { ...settings(blksize, 1), tsize: data.length };
    const p = send(a, sourceFor(data, s), s);
    try {
      for (const k of [1, 2]) {
        await expectData(b, k);
        await b.send(ack(k));
      }
      await expectData(b, 3);
      await b.send(errorPacket(0, "No error, file close"));
      const stats = await p;
      equal(stats.bytes, data.length);
      equal(stats.blocks, 3);
      ok(stats.note?.includes("No error, file close"), stats.note);
    } finally {
      a.close();
      b.close();
    }
  });
  await t.step("before every byte was sent: the peer's error", async () => {
    const [a, b] = memoryChannelPair();
    const s = { ...settings(blksize, 1), tsize: data.length };
    const p = send(a, sourceFor(data, s), s);
    try {
      await expectData(b, 1);
      await b.send(errorPacket(0, "No error, file close"));
      await rejects(p, PeerError);
    } finally {
      a.close();
      b.close();
    }
  });
  await t.step("without a size the client was told of: the peer's error", async () => {
    const [a, b] = memoryChannelPair();
    const s = settings(blksize, 1);
    const p = send(a, sourceFor(data, s), s);
    try {
      for (const k of [1, 2]) {
        await expectData(b, k);
        await b.send(ack(k));
      }
      await expectData(b, 3);
      await b.send(errorPacket(0, "No error, file close"));
      await rejects(p, PeerError);
    } finally {
      a.close();
      b.close();
    }
  });
});
