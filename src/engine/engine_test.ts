/**
 * Deterministic tests of whole transfers (sendBlocks + receiveBlocks) over an in-memory channel
 * pair with seeded or scripted faults, in the server's and the client's roles. The sender's and
 * the receiver's answers to single events are in `send_test.ts` and `receive_test.ts`.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { TimeoutError } from "../errors.ts";
import { ack, Opcode, opcodeOf } from "../wire/packet.ts";
import { memoryChannelPair, type MemoryPlan, mulberry32 } from "../testing/memory_channel.ts";
import {
  blocksOf,
  collector,
  dataPacket,
  expectAck,
  expectData,
  makeBytes,
  next,
  oackFor,
  receive,
  ROLES,
  rtoFor,
  runTransfer,
  sameBytes,
  send,
  settings,
  sourceFor,
  type TransferSettings,
  wireRange,
} from "../testing/engine_harness.ts";

// ---------------------------------------------------------------------------------------------
// Clean transfers

Deno.test("clean transfers of every size arrive byte-identical at every blksize and windowsize", async (t) => {
  const rng = mulberry32(20240611);
  for (const blksize of [8, 512, 1468]) {
    for (const windowsize of [1, 4, 16]) {
      for (const { role, oack } of ROLES) {
        const name = `blksize ${blksize}, windowsize ${windowsize}, ${role}` +
          (oack ? " with OACK" : " without OACK");
        await t.step(name, async () => {
          const sizes = new Set([
            0,
            1,
            511,
            512,
            513,
            512 * 3,
            blksize - 1,
            blksize,
            blksize + 1,
            blksize * 3,
            blksize * windowsize,
            blksize * windowsize + 1,
            Math.floor(rng() * blksize * 40),
            Math.floor(rng() * blksize * 40),
            Math.floor(rng() * 70000),
          ]);
          for (const size of sizes) {
            const data = makeBytes(size, size + blksize);
            const s = settings(blksize, windowsize);
            const r = await runTransfer({ role, oack, data, settings: s, seed: size });
            const what = `${name}, ${size} bytes`;
            sameBytes(r.received, data, what);
            const n = blocksOf(size, blksize);
            equal(r.sink.finishes, 1, `${what}: finish() calls`);
            equal(r.sink.writesAfterFinish, 0, `${what}: writes after finish()`);
            deepEqual(r.sender, { bytes: size, blocks: n, retransmits: 0 }, `${what}: sender`);
            deepEqual(r.receiver, { bytes: size, blocks: n, retransmits: 0 }, `${what}: receiver`);
            // The wire: every DATA once, in order; an ACK per window and for the last block.
            deepEqual(r.senderEnd.dataBlocks(), wireRange(1, n), `${what}: DATA blocks`);
            const acks: number[] = [];
            if (oack === (role === "download")) acks.push(0);
            for (let k = 1; k <= n; k++) if (k % windowsize === 0 || k === n) acks.push(k);
            deepEqual(r.receiverEnd.ackBlocks(), acks, `${what}: ACK blocks`);
            const oackCount = r.server.sentWith(Opcode.OACK).length;
            equal(oackCount, oack ? 1 : 0, `${what}: OACKs sent`);
            equal(r.server.timeouts + r.client.timeouts, 0, `${what}: timeouts`);
            for (const p of r.server.sent.concat(r.client.sent)) {
              if (opcodeOf(p) === Opcode.DATA) ok(p.length - 4 <= blksize, `${what}: DATA size`);
            }
          }
        });
      }
    }
  }
});

Deno.test("an OACK goes alone as block 0 and data starts only after ACK 0", async () => {
  const [a, b] = memoryChannelPair();
  const s = settings(8, 4);
  const data = makeBytes(8 * 5 + 2, 3);
  const oack = oackFor(s);
  const p = send(a, sourceFor(data, s), s, { oack });
  try {
    deepEqual(await next(b), oack);
    // Nothing else until ACK 0: the window holds only the OACK.
    equal(await b.receive(b.clock.now() + 150), null, "a DATA was sent before ACK 0");
    await b.send(ack(0));
    const got: Uint8Array[] = [];
    for (const k of [1, 2, 3, 4]) got.push(await expectData(b, k));
    await b.send(ack(4));
    got.push(await expectData(b, 5), await expectData(b, 6));
    await b.send(ack(6));
    const stats = await p;
    deepEqual(stats, { bytes: data.length, blocks: 6, retransmits: 0 });
    sameBytes(new Uint8Array(got.flatMap((x) => [...x])), data, "payloads");
    deepEqual(a.sent.map(opcodeOf), [6, 3, 3, 3, 3, 3, 3]);
  } finally {
    a.close();
    b.close();
    await p.catch(() => {});
  }
});

// ---------------------------------------------------------------------------------------------
// Rollover

Deno.test("block numbers roll over from 65535 to 0 and the file stays byte-identical", async (t) => {
  const size = 65536 * 8 + 100;
  const data = makeBytes(size, 65536);
  const n = blocksOf(size, 8);
  equal(n, 65549);
  for (
    const c of [
      { role: "download", oack: true, windowsize: 1 },
      { role: "upload", oack: false, windowsize: 16 },
    ] as const
  ) {
    await t.step(`${c.role}, windowsize ${c.windowsize}`, async () => {
      const r = await runTransfer({
        role: c.role,
        oack: c.oack,
        data,
        settings: settings(8, c.windowsize, 5000),
      });
      sameBytes(r.received, data, "rolled-over file");
      deepEqual(r.sender, { bytes: size, blocks: n, retransmits: 0 });
      const blocks = r.senderEnd.dataBlocks();
      equal(blocks.length, n);
      deepEqual(blocks.slice(65533, 65538), [65534, 65535, 0, 1, 2]);
      deepEqual(blocks, wireRange(1, n));
      // ACK 0 (to the OACK, or the server's ACK 0), then one per window and the last.
      const expected = [0];
      for (let k = 1; k <= n; k++) {
        if (k % c.windowsize === 0 || k === n) expected.push(k & 0xffff);
      }
      deepEqual(r.receiverEnd.ackBlocks(), expected);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Timeouts

/** Resends an Rto allows a peer that has answered (a round trip of 0 measured), until it gives up. */
function resendsAfterAnswer(s: TransferSettings): number {
  const rto = rtoFor(s);
  rto.sample(0);
  let n = 0;
  while (rto.retry()) n++;
  return n;
}

Deno.test("a silent peer is given up: unanswered after 1 + retries sends, answered after its patience", async (t) => {
  const timeoutMs = 40;
  const retries = 3;

  await t.step("sender, windowsize 1", async () => {
    const [a, b] = memoryChannelPair();
    const s = settings(8, 1, timeoutMs, retries);
    const started = Date.now();
    try {
      await rejects(send(a, sourceFor(makeBytes(100, 1), s), s), TimeoutError);
      ok(Date.now() - started >= (retries + 1) * timeoutMs - 10, "waited for every timeout");
      deepEqual(a.dataBlocks(), [1, 1, 1, 1]);
      equal(a.counters.packets, 1 + retries);
    } finally {
      a.close();
      b.close();
    }
  });

  await t.step("sender with an OACK", async () => {
    const [a, b] = memoryChannelPair();
    const s = settings(8, 4, timeoutMs, retries);
    try {
      await rejects(
        send(a, sourceFor(makeBytes(100, 1), s), s, { oack: oackFor(s) }),
        TimeoutError,
      );
      deepEqual(a.sent.map(opcodeOf), [6, 6, 6, 6], "the OACK alone, 1 + retries times");
    } finally {
      a.close();
      b.close();
    }
  });

  await t.step("sender, windowsize 4: the whole window each time", async () => {
    const [a, b] = memoryChannelPair();
    const s = settings(8, 4, timeoutMs, retries);
    try {
      await rejects(send(a, sourceFor(makeBytes(100, 1), s), s), TimeoutError);
      deepEqual(a.dataBlocks(), [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
    } finally {
      a.close();
      b.close();
    }
  });

  await t.step("sender, peer stops mid-transfer", async () => {
    const [a, b] = memoryChannelPair();
    const s = settings(8, 1, timeoutMs, retries);
    const p = send(a, sourceFor(makeBytes(100, 1), s), s);
    try {
      await expectData(b, 1);
      await b.send(ack(1));
      await expectData(b, 2);
      await rejects(p, (e: Error) => {
        ok(e instanceof TimeoutError);
        ok(!e.message.includes("the client has the file"), e.message);
        return true;
      });
      // Once answered, the peer is waited for 10 of its timers (0.4 s here), not 3 retries.
      const resends = resendsAfterAnswer(s);
      ok(resends > retries, `${resends} resends`);
      deepEqual(a.dataBlocks(), [1, 2, ...Array(resends).fill(2)]);
    } finally {
      a.close();
      b.close();
      await p.catch(() => {});
    }
  });

  await t.step("sender, only the final ACK never comes: the error says so", async () => {
    // A client that does not stay after its final ACK has the file if that ACK was lost; the
    // server's record should say so rather than look like a broken transfer.
    const [a, b] = memoryChannelPair();
    const s = settings(8, 4, timeoutMs, retries);
    const p = send(a, sourceFor(makeBytes(20, 1), s), s);
    try {
      for (const k of [1, 2, 3]) await expectData(b, k);
      await rejects(p, (e: Error) => {
        ok(e instanceof TimeoutError);
        equal(
          e.message,
          "no ACK for block 1 for 0.2 s (every block was sent: if only the final " +
            "ACK was lost, the client has the file)",
        );
        return true;
      });
    } finally {
      a.close();
      b.close();
      await p.catch(() => {});
    }
  });

  await t.step("receiver waiting for DATA 1 after ACK 0", async () => {
    const [a, b] = memoryChannelPair();
    const s = settings(8, 1, timeoutMs, retries);
    const sink = collector();
    const started = Date.now();
    try {
      await rejects(receive(a, sink, s, { reply: ack(0) }), TimeoutError);
      ok(Date.now() - started >= (retries + 1) * timeoutMs - 10, "waited for every timeout");
      deepEqual(a.ackBlocks(), [0, 0, 0, 0]);
      equal(sink.chunks.length, 0);
      equal(sink.finishes, 0);
    } finally {
      a.close();
      b.close();
    }
  });

  await t.step("receiver, peer stops mid-transfer", async () => {
    const [a, b] = memoryChannelPair();
    const s = settings(8, 1, timeoutMs, retries);
    const sink = collector();
    const p = receive(a, sink, s, { reply: ack(0) });
    try {
      await expectAck(b, 0);
      await b.send(dataPacket(1, makeBytes(8, 1)));
      await expectAck(b, 1);
      await b.send(dataPacket(2, makeBytes(8, 2)));
      await rejects(p, TimeoutError);
      deepEqual(a.ackBlocks(), [0, 1, 2, ...Array(resendsAfterAnswer(s)).fill(2)]);
      equal(sink.finishes, 0);
    } finally {
      a.close();
      b.close();
      await p.catch(() => {});
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Loss, duplication, reordering

Deno.test("lossy transfers (10 % drop, 5 % duplicate, 5 % reorder) complete byte-identical", async (t) => {
  const faults = { drop: 0.1, duplicate: 0.05, reorder: 0.05 };
  const totals = { dropped: 0, duplicated: 0, reordered: 0 };
  for (const windowsize of [1, 8]) {
    for (const { role, oack } of [ROLES[0], ROLES[1], ROLES[2], ROLES[3]]) {
      for (const seed of [1, 2, 3]) {
        const name = `windowsize ${windowsize}, ${role}${oack ? " with OACK" : ""}, seed ${seed}`;
        await t.step(name, async () => {
          const data = makeBytes(512 * 30 + 77, seed);
          const s = settings(512, windowsize, 40, 20);
          const r = await runTransfer({
            role,
            oack,
            data,
            settings: s,
            plan: { seed, aToB: faults, bToA: faults },
            dallyMs: 200,
            seed,
          });
          sameBytes(r.received, data, name);
          equal(r.sink.finishes, 1);
          equal(r.sender.bytes, data.length);
          equal(r.receiver.bytes, data.length);
          ok(r.server.counters.dropped + r.client.counters.dropped > 0, "the plan dropped");
          for (const end of [r.server, r.client]) {
            totals.dropped += end.counters.dropped;
            totals.duplicated += end.counters.duplicated;
            totals.reordered += end.counters.reordered;
          }
        });
      }
    }
  }
  ok(totals.duplicated > 0 && totals.reordered > 0, `faults injected: ${JSON.stringify(totals)}`);
});

// Known limitation: over a channel without delay, a duplicated DATA makes the receiver report the
// copy, the sender goes back, and the same happens once per window to the end (each block is
// then sent about twice). Random loss breaks the cycle; the bound here keeps it from growing.

Deno.test("one duplicated DATA costs at most one resend of each block", async () => {
  // The 3rd DATA datagram is delivered twice; nothing else goes wrong.
  let dataSeen = 0;
  const plan: MemoryPlan = {
    aToB: {
      script: (p) => opcodeOf(p) === Opcode.DATA && ++dataSeen === 3 ? "duplicate" : undefined,
    },
  };
  const data = makeBytes(512 * 64 + 5, 8);
  const r = await runTransfer({
    role: "download",
    oack: true,
    data,
    settings: settings(512, 8),
    plan,
  });
  sameBytes(r.received, data, "file");
  ok(
    r.sender.retransmits <= 65,
    `a single duplicate caused ${r.sender.retransmits} retransmissions ` +
      `(${r.server.dataBlocks().length} DATA sent for 65 blocks)`,
  );
});
