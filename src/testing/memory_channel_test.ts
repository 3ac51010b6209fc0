/**
 * The in-memory channel pair the engine tests run on (`memory_channel.ts`): its seeded fault plan
 * is deterministic, scripts override it, and closing ends a pending receive.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { ack, blockOf } from "../wire/packet.ts";
import { memoryChannelPair } from "./memory_channel.ts";

Deno.test("the memory channel applies its fault plan deterministically", async (t) => {
  const packets = Array.from({ length: 200 }, (_, i) => ack(i));
  async function run(seed: number): Promise<number[]> {
    const [a, b] = memoryChannelPair({
      seed,
      aToB: { drop: 0.2, duplicate: 0.1, reorder: 0.1 },
    });
    try {
      for (const p of packets) await a.send(p);
      await new Promise((r) => setTimeout(r, 5)); // release a held datagram
      const got: number[] = [];
      for (
        let p = await b.receive(b.clock.now() + 0);
        p !== null;
        p = await b.receive(b.clock.now() + 0)
      ) got.push(blockOf(p));
      const c = a.counters;
      equal(c.packets, 200);
      equal(c.bytes, 800);
      equal(c.delivered, 200 - c.dropped + c.duplicated);
      equal(got.length, c.delivered);
      ok(c.dropped > 0 && c.duplicated > 0 && c.reordered > 0, JSON.stringify(c));
      deepEqual(a.ackBlocks(), packets.map((_, i) => i), "sent records what was sent");
      return got;
    } finally {
      a.close();
      b.close();
    }
  }
  await t.step("same seed, same arrivals; another seed, other arrivals", async () => {
    const one = await run(7);
    deepEqual(await run(7), one);
    ok(JSON.stringify(await run(8)) !== JSON.stringify(one));
    ok(one.some((k, i) => i > 0 && k < one[i - 1]), "some datagrams arrived out of order");
  });
  await t.step("scripts override the probabilities; the other direction is clean", async () => {
    const [a, b] = memoryChannelPair({
      aToB: { drop: 1, script: (_p, i) => (i === 1 ? "deliver" : undefined) },
    });
    try {
      await a.send(ack(1));
      await a.send(ack(2));
      await a.send(ack(3));
      deepEqual(await b.receive(b.clock.now() + 0), ack(2));
      equal(await b.receive(b.clock.now() + 10), null);
      equal(b.timeouts, 1);
      await b.send(ack(9));
      deepEqual(await a.receive(a.clock.now() + 0), ack(9));
    } finally {
      a.close();
      b.close();
    }
  });
  await t.step("close rejects a pending receive", async () => {
    const [a, b] = memoryChannelPair();
    const pending = a.receive(a.clock.now() + 5000);
    a.close();
    b.close();
    await rejects(pending, /closed/);
    await rejects(a.receive(a.clock.now() + 10), /closed/);
  });
});
