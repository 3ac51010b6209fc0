/**
 * The retransmission timer of one transfer, and when to give up. Until the peer has answered
 * once, the timeout is the configured one (so an unanswered request draws at most 1 + retries
 * packets). Once round trips are measured, it adapts to them — a lost packet on a LAN then costs
 * tens of milliseconds instead of a whole second — and doubles after each timeout up to the
 * configured value; only timeouts at the configured value count as retries.
 *
 * Times come from the transfer clock (about 20 ms), which is plenty: on a LAN every round trip
 * measures 0 and the floor applies; on slow links the measurement is fine enough.
 *
 * @module
 */

/** The shortest adaptive timeout, in milliseconds. */
export const MIN_RTO_MS = 60;

/**
 * An adaptive retransmission timer with its give-up rule.
 *
 * @example
 * ```ts
 * import { Rto } from "./rto.ts";
 * import { equal } from "node:assert/strict";
 * const rto = new Rto(1000, 5);
 * equal(rto.ms, 1000);
 * rto.sample(0);
 * equal(rto.ms, 60);
 * ```
 */
export class Rto {
  #max: number;
  #retries: number;
  #tries = 0;
  #srtt = -1;
  /** The timeout the round trips call for, before any backoff. */
  #base: number;
  /** The current timeout, in milliseconds. */
  ms: number;

  /**
   * @param maxMs The configured (or negotiated) timeout: the start and the ceiling.
   * @param retries Timeouts at the ceiling before giving up.
   */
  constructor(maxMs: number, retries: number) {
    this.#max = maxMs;
    this.#retries = retries;
    this.ms = this.#base = maxMs;
  }

  /** Records a round trip (milliseconds) of a packet that was sent once; the peer is alive. */
  sample(rttMs: number): void {
    this.#srtt = this.#srtt < 0 ? rttMs : (7 * this.#srtt + rttMs) / 8;
    this.ms = this.#base = Math.min(this.#max, Math.max(MIN_RTO_MS, 3 * this.#srtt + 40));
    this.#tries = 0;
  }

  /**
   * The peer made progress (new blocks acknowledged or received): drops the backoff. Without
   * this, a lossy transfer whose windows are mostly resends would rarely take a fresh sample and
   * keep a doubled timeout for good.
   */
  progress(): void {
    this.ms = this.#base;
    this.#tries = 0;
  }

  /**
   * After a timeout: backs off and returns true to retransmit, or false when the peer has been
   * silent for good and the transfer is to be given up.
   */
  retry(): boolean {
    if (this.ms < this.#max) {
      this.ms = Math.min(this.#max, this.ms * 2);
      return true;
    }
    return ++this.#tries <= this.#retries;
  }

  /** A few words on how long the peer was waited for, for messages. */
  describe(): string {
    return `after ${this.#retries} retransmissions`;
  }
}
