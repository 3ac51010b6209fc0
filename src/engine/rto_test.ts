import { equal } from "node:assert/strict";
import { MIN_RTO_MS, Rto } from "./rto.ts";

Deno.test("the timeout is the configured one until the peer has answered once", () => {
  const rto = new Rto(1000);
  equal(rto.ms, 1000);
  equal(rto.backoff(), true, "a timeout at the configured value counts as a retry");
  rto.progress();
  equal(rto.ms, 1000, "progress without a round-trip sample keeps the configured timeout");
});

Deno.test("a round trip brings the timeout down to the floor, backoff doubles it", () => {
  const rto = new Rto(1000);
  rto.sample(0);
  equal(rto.ms, MIN_RTO_MS);
  equal(rto.backoff(), false);
  equal(rto.ms, 2 * MIN_RTO_MS);
  for (let i = 0; i < 4; i++) equal(rto.backoff(), false);
  equal(rto.ms, 1000, "capped at the configured timeout");
  equal(rto.backoff(), true);
});

Deno.test("progress drops the backoff back to what the round trips call for", () => {
  const rto = new Rto(5000);
  rto.sample(100); // srtt 100 ms -> 3 * 100 + 40
  equal(rto.ms, 340);
  rto.backoff();
  rto.backoff();
  equal(rto.ms, 1360);
  rto.progress();
  equal(rto.ms, 340);
});

Deno.test("slow round trips raise the timeout, never above the configured one", () => {
  const rto = new Rto(1000);
  rto.sample(800);
  equal(rto.ms, 1000);
  const fast = new Rto(1000);
  for (let i = 0; i < 50; i++) fast.sample(20);
  equal(fast.ms, 100);
});
