/**
 * The retransmission timer of one transfer, and when to give up.
 *
 * - Until the peer has answered once, every wait is the full timeout `T` (`--timeout` or the
 *   negotiated `timeout`), and the peer is given up after `1 + retries` sends: an unanswered
 *   request draws at most that many packets (6 by default).
 * - Once the peer has answered, the timeout adapts to the measured round trips (a lost packet on
 *   a LAN costs tens of milliseconds, not a second) and doubles after each timeout while it stays
 *   below `T`. Past that, the next waits are longer than the peer's own retransmission timer
 *   (1.2 × `peerTimeoutMs`): some clients (atftp, tftp-hpa) repeat their ACK or DATA only after
 *   that much silence, so resending every second would keep them from ever doing so.
 * - The peer is given up once it has been silent for `max(T × (retries + 1), 10 × peerTimeoutMs)`
 *   (at most 5 minutes unless `T × (retries + 1)` is longer): U-Boot, atftp and tftp-hpa
 *   retransmit every 5 s and U-Boot gives up after 10 of them, so by default 50 s.
 *
 * Times come from the transfer clock (about 20 ms), which is plenty: on a LAN every round trip
 * measures 0 and the floor applies; on slow links the measurement is fine enough.
 *
 * @module
 */

/** The shortest adaptive timeout, in milliseconds. */
export const MIN_RTO_MS = 60;

/**
 * The shortest wait, in milliseconds, to tell a gap from a packet that is only late: a sender
 * holds an ACK inside its window this long after going back (`send.ts`), and a receiver a block
 * that came early (`receive.ts`). It grows to {@linkcode SETTLE_RTTS} shortest round trips.
 */
export const SETTLE_MS = 1;

/** Round trips a gap is held before it is taken for a loss (see {@linkcode SETTLE_MS}). */
export const SETTLE_RTTS = 2;

/** The retransmission timer of the clients we serve when they negotiate none (5 s). */
export const USUAL_CLIENT_TIMEOUT_MS = 5000;

/** The longest silence waited for, unless `timeout × (retries + 1)` is longer (5 minutes). */
export const MAX_PATIENCE_MS = 300_000;

/** Quick resends of a receiver's ACK before it waits past the sender's timer. */
export const RECEIVER_QUICK_RETRIES = 2;

/** Options of {@linkcode Rto}. */
export interface RtoOptions {
  /** The configured (or negotiated) timeout `T`, in milliseconds: the start and the ceiling. */
  timeoutMs: number;
  /** Timeouts at `T` before an unanswered peer is given up (and part of the silence rule). */
  retries: number;
  /**
   * The peer's own retransmission timer, in milliseconds (default
   * {@linkcode USUAL_CLIENT_TIMEOUT_MS}; a negotiated `timeout` is the peer's too).
   */
  peerTimeoutMs?: number;
  /** The shortest wait to tell a gap from a late packet (default {@linkcode SETTLE_MS}). */
  settleMs?: number;
  /**
   * Quick resends, at most, before the waits grow past the peer's timer (default: as many as
   * fit under the timeout). A receiver keeps it small: many senders (tftp-hpa) ignore a repeated
   * ACK and resend only when their own timer fires — which each packet they get restarts.
   */
  quickRetries?: number;
}

/**
 * An adaptive retransmission timer with its give-up rule.
 *
 * @example
 * ```ts
 * import { Rto } from "./rto.ts";
 * import { equal } from "node:assert/strict";
 * const rto = new Rto({ timeoutMs: 1000, retries: 5 });
 * equal(rto.ms, 1000);
 * rto.sample(0);
 * equal(rto.ms, 60);
 * ```
 */
export class Rto {
  readonly #max: number;
  readonly #unanswered: number;
  readonly #patience: number;
  readonly #gap: number;
  readonly #settle: number;
  readonly #quick: number;
  #quickLeft: number;
  #heard = false;
  #silent = 0;
  #srtt = -1;
  #minRtt = Infinity;
  /** The timeout the round trips call for, before any backoff. */
  #base: number;
  /** The current timeout, in milliseconds. */
  ms: number;

  /** @param options The timeout, retries and the peer's timer. */
  constructor(options: RtoOptions) {
    const { timeoutMs, retries } = options;
    const peer = options.peerTimeoutMs ?? USUAL_CLIENT_TIMEOUT_MS;
    this.#max = timeoutMs;
    this.#unanswered = timeoutMs * (retries + 1);
    this.#patience = Math.max(this.#unanswered, Math.min(10 * peer, MAX_PATIENCE_MS));
    this.#gap = Math.max(timeoutMs, Math.ceil(1.2 * peer));
    this.ms = this.#base = timeoutMs;
    this.#settle = options.settleMs ?? SETTLE_MS;
    this.#quick = this.#quickLeft = options.quickRetries ?? Infinity;
  }

  /** How long a silent peer is waited for once it has answered, in milliseconds. */
  get patienceMs(): number {
    return this.#patience;
  }

  /** Has the peer answered at all? */
  get heard(): boolean {
    return this.#heard;
  }

  /** The smoothed round trip in milliseconds (0 until measured). */
  get rttMs(): number {
    return Math.max(0, this.#srtt);
  }

  /** The shortest round trip measured, in milliseconds (0 until measured). */
  get minRttMs(): number {
    return this.#minRtt === Infinity ? 0 : this.#minRtt;
  }

  /**
   * How long to hold a gap before taking it for a loss: {@linkcode SETTLE_RTTS} of the shortest
   * round trip (the longer ones include queues and held packets), at least
   * {@linkcode SETTLE_MS} (or the `settleMs` option).
   */
  get settleMs(): number {
    return Math.max(this.#settle, SETTLE_RTTS * this.minRttMs);
  }

  /** Records a round trip (milliseconds) of a packet that was sent once; the peer is alive. */
  sample(rttMs: number): void {
    this.#srtt = this.#srtt < 0 ? rttMs : (7 * this.#srtt + rttMs) / 8;
    if (rttMs < this.#minRtt) this.#minRtt = rttMs;
    this.#base = Math.min(this.#max, Math.max(MIN_RTO_MS, 3 * this.#srtt + 40));
    this.progress();
  }

  /**
   * The peer made progress (new blocks acknowledged or received): drops the backoff. Without
   * this, a lossy transfer whose windows are mostly resends would rarely take a fresh sample and
   * keep a doubled timeout for good.
   */
  progress(): void {
    this.#heard = true;
    this.#silent = 0;
    this.#quickLeft = this.#quick;
    this.ms = this.#base;
  }

  /**
   * After a timeout: returns true and sets the next wait, or false when the peer has been silent
   * for good and the transfer is to be given up.
   */
  retry(): boolean {
    this.#silent += this.ms;
    const limit = this.#heard ? this.#patience : this.#unanswered;
    const left = limit - this.#silent;
    if (left <= 0) return false;
    let next: number;
    if (!this.#heard) next = this.#max;
    else if (this.ms * 2 <= this.#max && this.#quickLeft-- > 1) next = this.ms * 2;
    else next = this.#gap;
    this.ms = Math.min(next, left);
    return true;
  }

  /** How long the peer has been silent, for messages ("for 50 s"). */
  describe(): string {
    return `for ${Math.round(this.#silent / 100) / 10} s`;
  }
}
