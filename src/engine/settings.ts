/**
 * What one transfer runs with besides the negotiated settings (`Negotiated`, in the wire layer):
 * the local knobs that are never sent, their defaults (defined here once), and the counters.
 *
 * @module
 */

/** Retransmission timeout, in milliseconds, when none is configured or negotiated. */
export const DEFAULT_TIMEOUT_MS = 1000;

/** Retransmissions at the full timeout before a silent peer is given up. */
export const DEFAULT_RETRIES = 5;

/** Local knobs of a transfer: never sent to the peer. */
export interface Knobs {
  /** Retransmission timeout in milliseconds when none was negotiated. */
  timeoutMs: number;
  /** Retransmissions at the full timeout before giving up. */
  retries: number;
  /**
   * The retransmission timer assumed for a peer that negotiated none, in milliseconds: a silent
   * peer is waited for 10 of them (see `Rto`).
   */
  peerTimeoutMs?: number;
}

/** Counters of a transfer, kept up to date while it runs (so a failed one reports them too). */
export interface TransferStats {
  /** Payload bytes transferred (on the wire, i.e. after netascii translation). */
  bytes: number;
  /** DATA blocks transferred. */
  blocks: number;
  /** Packets sent again after a timeout or a rewind. */
  retransmits: number;
  /** How the peer ended a transfer that is complete all the same, if unusually. */
  note?: string;
}

/**
 * Fresh counters.
 *
 * @example
 * ```ts
 * import { newStats } from "./settings.ts";
 * import { equal } from "node:assert/strict";
 * equal(newStats().bytes, 0);
 * ```
 */
export function newStats(): TransferStats {
  return { bytes: 0, blocks: 0, retransmits: 0 };
}

/**
 * What a server needs to know about a running transfer to judge a new request from its client's
 * address and port; the engine keeps it up to date.
 */
export interface TransferState {
  /** The peer has answered our first reply: the transfer is under way. */
  answered: boolean;
  /** When (transfer clock) the peer last moved the transfer (a new ACK or DATA), or 0. */
  heardAt: number;
  /** Every block was sent (sender), or the final ACK was (receiver): only the end remains. */
  ending: boolean;
}

/**
 * A fresh state.
 *
 * @example
 * ```ts
 * import { newState } from "./settings.ts";
 * import { equal } from "node:assert/strict";
 * equal(newState().answered, false);
 * ```
 */
export function newState(): TransferState {
  return { answered: false, heardAt: 0, ending: false };
}
