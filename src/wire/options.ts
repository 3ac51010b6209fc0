/**
 * Option negotiation (RFC 2347 blksize/timeout/tsize RFC 2348/2349, windowsize RFC 7440) as one
 * pure function: what the client asked for, what the server allows, and what is known about the
 * file go in; the settings of the transfer and the OACK to send come out.
 *
 * @module
 */

import { TftpError } from "../errors.ts";
import { ErrorCode } from "./packet.ts";
import type { TransferSettings } from "../engine/window.ts";

/** Bounds from the RFCs. */
export const LIMITS = {
  blksize: { min: 8, max: 65464 },
  timeout: { min: 1, max: 255 },
  windowsize: { min: 1, max: 65535 },
} as const;

/**
 * A window is kept in memory until acknowledged: windowsize is lowered so that one window holds
 * at most this many bytes (1 MiB), whatever blksize was granted.
 */
export const MAX_WINDOW_BYTES = 1024 * 1024;

/**
 * The default largest window, in payload bytes (64 KiB). A window leaves the sender as one burst,
 * and the receiver's socket must hold what it has not read yet: a default Linux UDP receive buffer
 * (`net.core.rmem_default`, 208 KiB) holds about 12 datagrams of 8 KiB, because the kernel charges
 * each about twice its payload. A bigger window overflows it on a fast path: measured on loopback,
 * 50 MiB at windowsize 64 / blksize 8192 took 3.8 s to atftp and 51 s to our client, against 0.1 s
 * and 0.3 s with the window capped at 8. So windowsize is lowered to fit this many bytes (blksize
 * 1468: 44 blocks, 8192: 8, 65464: 1); raise it for receivers with large buffers on slow links.
 */
export const DEFAULT_MAX_WINDOW_BYTES = 64 * 1024;

/**
 * The largest windowsize whose payload fits in `maxBytes` (at least 1), given `blksize`.
 *
 * @example
 * ```ts
 * import { windowFit } from "./options.ts";
 * import { equal } from "node:assert/strict";
 * equal(windowFit(8192), 8);
 * equal(windowFit(1468), 44);
 * ```
 */
export function windowFit(blksize: number, maxBytes = DEFAULT_MAX_WINDOW_BYTES): number {
  return Math.max(1, Math.floor(Math.min(maxBytes, MAX_WINDOW_BYTES) / blksize));
}

/** The server's side of the negotiation. */
export interface NegotiationPolicy {
  /** Largest blksize granted (clients asking for more get this). */
  maxBlksize: number;
  /** Largest windowsize granted. */
  maxWindowsize: number;
  /**
   * Largest window in payload bytes (default {@linkcode DEFAULT_MAX_WINDOW_BYTES}, at most
   * {@linkcode MAX_WINDOW_BYTES}): windowsize is lowered to fit.
   */
  maxWindowBytes?: number;
  /** Retransmission timeout (ms) when the client does not ask for one. */
  timeoutMs: number;
  /** Retransmissions before giving up. */
  retries: number;
  /** Largest upload accepted, in bytes (`tsize` over it is refused with ERROR 3). */
  maxUploadSize?: number;
}

/** What is known about the transfer when negotiating. */
export interface NegotiationContext {
  /** RRQ (we send) or WRQ (we receive). */
  op: "RRQ" | "WRQ";
  /** The transfer mode (`octet` or `netascii`). */
  mode: string;
  /** RRQ: the file's size if known (octet mode only). */
  fileSize?: number;
  /** WRQ: free bytes where the file will be written, if known. */
  freeSpace?: number;
}

/** The outcome: the transfer's settings and the OACK options (empty: send no OACK). */
export interface Negotiated {
  settings: TransferSettings;
  /** Options to acknowledge, in the client's order. Empty when nothing was accepted. */
  oack: Map<string, string>;
  /** WRQ: the size the client announced. */
  tsize?: number;
}

function integer(value: string): number | undefined {
  if (!/^\s*\d{1,10}\s*$/.test(value)) return undefined;
  return Number(value);
}

/**
 * Negotiates a request's options.
 *
 * - `blksize`: 8–65464; larger values are lowered to the server's cap, smaller or malformed ones
 *   are left out (RFC 2348).
 * - `timeout`: 1–255 seconds, else left out (RFC 2349).
 * - `tsize`: RRQ answers the file size when known and non-zero (an empty file gets no tsize:
 *   curl rejects `tsize 0`); WRQ echoes the announced size, refusing it with ERROR 3 when it
 *   exceeds `maxUploadSize` or the free space.
 * - `windowsize`: 1–65535, lowered to the server's cap and to what fits in `maxWindowBytes`
 *   (see {@linkcode DEFAULT_MAX_WINDOW_BYTES}), else left out (RFC 7440).
 * - Unknown options are ignored; names arrive lower-cased from the decoder.
 *
 * @throws {TftpError} ERROR 3 when an announced upload size is too large.
 *
 * @example
 * ```ts
 * import { negotiate } from "./options.ts";
 * import { equal } from "node:assert/strict";
 * const { settings, oack } = negotiate(
 *   new Map([["blksize", "1468"], ["tsize", "0"]]),
 *   { op: "RRQ", mode: "octet", fileSize: 1000 },
 *   { maxBlksize: 1468, maxWindowsize: 64, timeoutMs: 1000, retries: 5 },
 * );
 * equal(settings.blksize, 1468);
 * equal(oack.get("tsize"), "1000");
 * ```
 */
export function negotiate(
  requested: Map<string, string>,
  context: NegotiationContext,
  policy: NegotiationPolicy,
): Negotiated {
  const settings: TransferSettings = {
    blksize: 512,
    windowsize: 1,
    timeoutMs: policy.timeoutMs,
    retries: policy.retries,
  };
  const oack = new Map<string, string>();
  let tsize: number | undefined;
  for (const [name, raw] of requested) {
    const value = integer(raw);
    if (value === undefined) continue;
    switch (name) {
      case "blksize": {
        if (value < LIMITS.blksize.min) break;
        settings.blksize = Math.min(value, LIMITS.blksize.max, policy.maxBlksize);
        oack.set(name, String(settings.blksize));
        break;
      }
      case "timeout": {
        if (value < LIMITS.timeout.min || value > LIMITS.timeout.max) break;
        settings.timeoutMs = value * 1000;
        oack.set(name, String(value));
        break;
      }
      case "windowsize": {
        if (value < LIMITS.windowsize.min || value > LIMITS.windowsize.max) break;
        settings.windowsize = Math.min(value, policy.maxWindowsize);
        oack.set(name, String(settings.windowsize));
        break;
      }
      case "tsize": {
        if (context.op === "RRQ") {
          if (context.fileSize && context.mode === "octet") {
            oack.set(name, String(context.fileSize));
          }
          break;
        }
        if (policy.maxUploadSize !== undefined && value > policy.maxUploadSize) {
          throw new TftpError(
            ErrorCode.DISK_FULL,
            `file too large: ${value} bytes, uploads are limited to ${policy.maxUploadSize}`,
          );
        }
        if (context.freeSpace !== undefined && value > context.freeSpace) {
          throw new TftpError(ErrorCode.DISK_FULL, `not enough free space for ${value} bytes`);
        }
        tsize = value;
        oack.set(name, String(value));
        break;
      }
    }
  }
  if (oack.has("windowsize")) {
    const fit = windowFit(settings.blksize, policy.maxWindowBytes);
    settings.windowsize = Math.min(settings.windowsize, fit);
    oack.set("windowsize", String(settings.windowsize));
  }
  return { settings, oack, tsize };
}
