import { equal } from "node:assert/strict";
import { MIN_RTO_MS, Rto } from "./rto.ts";

Deno.test("the timeout is the configured one until the peer has answered once", () => {
  const rto = new Rto(1000, 5);
  equal(rto.ms, 1000);
  equal(rto.retry(), true, "a timeout at the configured value is a retry");
  rto.progress();
  equal(rto.ms, 1000, "progress without a round-trip sample keeps the configured timeout");
});

Deno.test("an unanswered peer is given up after 1 + retries timeouts at the configured value", () => {
  const rto = new Rto(1000, 3);
  for (let i = 0; i < 3; i++) equal(rto.retry(), true, `retry ${i + 1}`);
  equal(rto.retry(), false, "the fourth timeout gives up");
});

Deno.test("a round trip brings the timeout down to the floor, backoff doubles it", () => {
  const rto = new Rto(1000, 1);
  rto.sample(0);
  equal(rto.ms, MIN_RTO_MS);
  equal(rto.retry(), true);
  equal(rto.ms, 2 * MIN_RTO_MS);
  for (let i = 0; i < 4; i++) equal(rto.retry(), true, "doubling does not count as a retry");
  equal(rto.ms, 1000, "capped at the configured timeout");
  equal(rto.retry(), true, "the one retry at the ceiling");
  equal(rto.retry(), false);
});

Deno.test("progress drops the backoff back to what the round trips call for", () => {
  const rto = new Rto(5000, 5);
  rto.sample(100); // srtt 100 ms -> 3 * 100 + 40
  equal(rto.ms, 340);
  rto.retry();
  rto.retry();
  equal(rto.ms, 1360);
  rto.progress();
  equal(rto.ms, 340);
});

Deno.test("slow round trips raise the timeout, never above the configured one", () => {
  const rto = new Rto(1000, 5);
  rto.sample(800);
  equal(rto.ms, 1000);
  const fast = new Rto(1000, 5);
  for (let i = 0; i < 50; i++) fast.sample(20);
  equal(fast.ms, 100);
});
