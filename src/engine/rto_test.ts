import { equal, ok } from "node:assert/strict";
import { MAX_PATIENCE_MS, MIN_RTO_MS, Rto, USUAL_CLIENT_TIMEOUT_MS } from "./rto.ts";

/** The waits an Rto asks for until it gives up. */
function schedule(rto: Rto): number[] {
  const waits = [rto.ms];
  while (rto.retry()) waits.push(rto.ms);
  return waits;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

Deno.test("an unanswered peer gets 1 + retries sends, the full timeout apart", () => {
  const waits = schedule(new Rto({ timeoutMs: 1000, retries: 5 }));
  equal(waits.length, 6, "6 sends");
  ok(waits.every((w) => w === 1000), waits.join(","));
  const three = schedule(new Rto({ timeoutMs: 2000, retries: 3 }));
  equal(three.length, 4);
});

Deno.test("once answered: fast adaptive resends, then gaps longer than the client's timer", () => {
  const rto = new Rto({ timeoutMs: 1000, retries: 5 });
  rto.sample(0);
  equal(rto.ms, MIN_RTO_MS);
  const waits = schedule(rto);
  // 60, 120, 240, 480, 960: doubling while under the timeout ...
  equal(waits.slice(0, 5).join(","), "60,120,240,480,960");
  // ... then waits longer than the client's 5 s timer, so a client that repeats its ACK only
  // after 5 s of silence (atftp) gets that silence.
  equal(waits[5], 1.2 * USUAL_CLIENT_TIMEOUT_MS);
  // Given up once the peer was silent for 10 of its timers: 50 s.
  equal(sum(waits), 10 * USUAL_CLIENT_TIMEOUT_MS);
  equal(rto.describe(), "for 50 s");
});

Deno.test("a negotiated timeout is the client's timer too", () => {
  const rto = new Rto({ timeoutMs: 6000, retries: 5, peerTimeoutMs: 6000 });
  rto.progress();
  const waits = schedule(rto);
  equal(waits[0], 6000);
  equal(waits[1], 7200, "1.2 times the client's 6 s");
  equal(sum(waits), 60_000);
});

Deno.test("patience: at least timeout x (retries + 1), at most 5 minutes from the peer's timer", () => {
  equal(new Rto({ timeoutMs: 1000, retries: 5 }).patienceMs, 50_000);
  equal(new Rto({ timeoutMs: 20_000, retries: 5 }).patienceMs, 120_000);
  equal(new Rto({ timeoutMs: 255_000, retries: 5, peerTimeoutMs: 255_000 }).patienceMs, 1_530_000);
  equal(
    new Rto({ timeoutMs: 1000, retries: 5, peerTimeoutMs: 255_000 }).patienceMs,
    MAX_PATIENCE_MS,
  );
});

Deno.test("progress resets the silence and drops the backoff to what the round trips call for", () => {
  const rto = new Rto({ timeoutMs: 5000, retries: 5 });
  rto.sample(100); // srtt 100 ms -> 3 * 100 + 40
  equal(rto.ms, 340);
  rto.retry();
  rto.retry();
  equal(rto.ms, 1360);
  rto.progress();
  equal(rto.ms, 340);
  equal(sum(schedule(rto)), 50_000, "a full patience again after progress");
});

Deno.test("slow round trips raise the timeout, never above the configured one", () => {
  const rto = new Rto({ timeoutMs: 1000, retries: 5 });
  rto.sample(800);
  equal(rto.ms, 1000);
  const fast = new Rto({ timeoutMs: 1000, retries: 5 });
  for (let i = 0; i < 50; i++) fast.sample(20);
  equal(fast.ms, 100);
});
