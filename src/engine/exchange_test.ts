/**
 * The exchange step (`exchange.ts`) over the in-memory channel pair: one send plus a resend per
 * timeout until the timer gives up, replies that do not match ignored, an ERROR reply as
 * `PeerError`, and a round-trip sample only for a packet sent once.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { AbortedError, ErrorCode, PeerError, TimeoutError } from "../errors.ts";
import { memoryChannelPair } from "../testing/memory_channel.ts";
import { ack, encode, errorPacket, Opcode, opcodeOf } from "../wire/packet.ts";
import { exchange } from "./exchange.ts";
import { MIN_RTO_MS, Rto } from "./rto.ts";
import { newStats } from "./settings.ts";

const REQUEST = encode({
  op: "RRQ",
  filename: new TextEncoder().encode("boot.img"),
  mode: "octet",
  options: new Map([["blksize", "1468"]]),
});
const OACK = encode({ op: "OACK", options: new Map([["blksize", "1468"]]) });
const isOack = (p: Uint8Array) => opcodeOf(p) === Opcode.OACK;

Deno.test("an unanswered exchange sends 1 + retries copies, one per timeout, then times out", async (t) => {
  for (const retries of [0, 1, 3]) {
    await t.step(`retries ${retries}`, async () => {
      const sentAt: number[] = [];
      const [a, b] = memoryChannelPair({
        aToB: { script: () => void sentAt.push(performance.now()) },
      });
      const stats = newStats();
      const timeoutMs = 100;
      try {
        await rejects(
          exchange(a, REQUEST, isOack, new Rto({ timeoutMs: timeoutMs, retries: retries }), {
            what: "answer from 10.0.0.1:69",
            sent: "requests",
            stats,
          }),
          (e: unknown) => {
            ok(e instanceof TimeoutError, `got ${e}`);
            equal(e.message, `no answer from 10.0.0.1:69 after ${1 + retries} requests`);
            return true;
          },
        );
        equal(a.sent.length, 1 + retries, "copies sent");
        ok(a.sent.every((p) => p.length === REQUEST.length && p[1] === Opcode.RRQ));
        equal(b.pending, 1 + retries, "every copy reached the peer");
        equal(stats.retransmits, retries);
        for (let i = 1; i < sentAt.length; i++) {
          const gap = sentAt[i] - sentAt[i - 1];
          // Deadlines are accurate to one clock tick (20 ms).
          ok(gap >= timeoutMs - 25, `resend ${i} came ${gap.toFixed(0)} ms after the last copy`);
        }
      } finally {
        a.close();
        b.close();
      }
    });
  }
});

Deno.test("the timeout's message says 'copies' unless told what was sent", async () => {
  const [a, b] = memoryChannelPair();
  try {
    await rejects(
      exchange(a, ack(0), isOack, new Rto({ timeoutMs: 40, retries: 1 }), { what: "OACK" }),
      (e: unknown) => e instanceof TimeoutError && e.message === "no OACK after 2 copies",
    );
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("replies that accept rejects are ignored and do not cause a resend", async () => {
  const [a, b] = memoryChannelPair();
  const judged: number[] = [];
  try {
    const reply = exchange(
      a,
      REQUEST,
      (p) => {
        judged.push(opcodeOf(p));
        return isOack(p);
      },
      new Rto({ timeoutMs: 2000, retries: 5 }),
      { what: "answer" },
    );
    const got = await b.receive(b.clock.now() + 1000);
    ok(got !== null);
    await b.send(ack(3));
    await b.send(encode({ op: "DATA", block: 2, data: new Uint8Array(10) }));
    await b.send(OACK);
    const answer = await reply;
    deepEqual(answer, OACK);
    deepEqual(judged, [Opcode.ACK, Opcode.DATA, Opcode.OACK]);
    equal(a.sent.length, 1, "no resend");
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("an ERROR reply throws PeerError with its code and message, whatever accept says", async () => {
  for (const code of [ErrorCode.FILE_NOT_FOUND, ErrorCode.OPTION_REFUSED, 42]) {
    const [a, b] = memoryChannelPair();
    let asked = 0;
    try {
      const reply = exchange(
        a,
        REQUEST,
        () => (asked++, true),
        new Rto({ timeoutMs: 2000, retries: 5 }),
        {
          what: "answer",
        },
      );
      await b.receive(b.clock.now() + 1000);
      await b.send(errorPacket(code, "go away"));
      await rejects(reply, (e: unknown) => {
        ok(e instanceof PeerError, `got ${e}`);
        equal(e.code, code);
        equal(e.peerMessage, "go away");
        return true;
      });
      equal(asked, 0, "accept is not asked about an ERROR");
      equal(a.sent.length, 1);
    } finally {
      a.close();
      b.close();
    }
  }
});

Deno.test("a reply to a packet sent once gives a round-trip sample; after a resend it does not", async (t) => {
  await t.step("fast peer, answered at once: the timeout drops to the floor", async () => {
    const [a, b] = memoryChannelPair({ aToB: { script: () => void queueMicrotask(answer) } });
    const answer = () => void b.send(OACK);
    const rto = new Rto({ timeoutMs: 1000, retries: 5 });
    try {
      equal(rto.ms, 1000);
      await exchange(a, REQUEST, isOack, rto, { what: "answer" });
      equal(rto.ms, MIN_RTO_MS);
    } finally {
      a.close();
      b.close();
    }
  });
  await t.step("answered only after a resend: no sample, the timeout stays", async () => {
    let copies = 0;
    const [a, b] = memoryChannelPair({
      aToB: { script: () => (++copies === 2 ? void queueMicrotask(answer) : undefined) },
    });
    const answer = () => void b.send(OACK);
    const rto = new Rto({ timeoutMs: 80, retries: 5 });
    const stats = newStats();
    try {
      await exchange(a, REQUEST, isOack, rto, { what: "answer", stats });
      equal(copies, 2);
      equal(stats.retransmits, 1);
      equal(rto.ms, 80, "a reply after a resend is not a round-trip sample (Karn)");
    } finally {
      a.close();
      b.close();
    }
  });
});

Deno.test("closing the channel ends a pending exchange with AbortedError", async () => {
  const [a, b] = memoryChannelPair();
  try {
    const reply = exchange(a, REQUEST, isOack, new Rto({ timeoutMs: 2000, retries: 5 }), {
      what: "answer",
    });
    setTimeout(() => a.close(), 30);
    await rejects(reply, AbortedError);
    equal(a.sent.length, 1);
  } finally {
    a.close();
    b.close();
  }
});
