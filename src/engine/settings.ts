/**
 * What one transfer runs with: the settings both ends negotiated, kept apart from the local knobs
 * that are never sent, and the defaults of those knobs (defined here once).
 *
 * @module
 */

/** Retransmission timeout, in milliseconds, when none is configured or negotiated. */
export const DEFAULT_TIMEOUT_MS = 1000;

/** Retransmissions at the full timeout before a silent peer is given up. */
export const DEFAULT_RETRIES = 5;

/** What the two ends agreed on (RFC 1350 defaults, RFC 2347–2349 and 7440 options). */
export interface Negotiated {
  /** Payload bytes per DATA packet (512 unless negotiated). */
  blksize: number;
  /** DATA packets per ACK (1 = lock-step, unless negotiated). */
  windowsize: number;
  /** The `timeout` option in milliseconds, when it was negotiated. */
  timeoutMs?: number;
  /** The `tsize` option: the file size a server announced, or an upload's announced size. */
  tsize?: number;
}

/** Local knobs of a transfer: never sent to the peer. */
export interface Knobs {
  /** Retransmission timeout in milliseconds when none was negotiated. */
  timeoutMs: number;
  /** Retransmissions at the full timeout before giving up. */
  retries: number;
}

/**
 * The settings of a transfer that negotiated nothing (RFC 1350).
 *
 * @example
 * ```ts
 * import { plainSettings } from "./settings.ts";
 * import { equal } from "node:assert/strict";
 * equal(plainSettings().blksize, 512);
 * ```
 */
export function plainSettings(): Negotiated {
  return { blksize: 512, windowsize: 1 };
}

/** Counters of a transfer, kept up to date while it runs (so a failed one reports them too). */
export interface TransferStats {
  /** Payload bytes transferred (on the wire, i.e. after netascii translation). */
  bytes: number;
  /** DATA blocks transferred. */
  blocks: number;
  /** Packets sent again after a timeout or a rewind. */
  retransmits: number;
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
