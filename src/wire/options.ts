/**
 * Option negotiation (RFC 2347; blksize, timeout and tsize RFC 2348/2349; windowsize RFC 7440),
 * both halves as pure functions over data: the server's {@linkcode negotiate} (what the client
 * asked, what the server allows and what is known about the file in; the transfer's settings and
 * the OACK out), and the client's {@linkcode requestOptions} and {@linkcode acceptOack}.
 *
 * @module
 */

import { ErrorCode, RefusedError } from "../errors.ts";

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

/**
 * The settings of a transfer that negotiated nothing (RFC 1350).
 *
 * @example
 * ```ts
 * import { plainSettings } from "./options.ts";
 * import { equal } from "node:assert/strict";
 * equal(plainSettings().blksize, 512);
 * ```
 */
export function plainSettings(): Negotiated {
  return { blksize: 512, windowsize: 1 };
}

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
 * each about twice its payload, and a bigger window overflows it on a fast path (BENCHMARKS.md,
 * "window fit"). So windowsize is lowered to fit this many bytes (blksize 1468: 44 blocks, 8192: 8,
 * 65464: 1); raise it for receivers with large buffers on slow links.
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
export interface Negotiation {
  /** What the transfer runs with (`tsize`: for a WRQ, the size the client announced). */
  negotiated: Negotiated;
  /** Options to acknowledge, in the client's order. Empty when nothing was accepted. */
  oack: Map<string, string>;
}

/** A decimal option value (surrounding blanks allowed), or undefined when it is not one. */
function integer(value: string): number | undefined {
  if (!/^\s*\d{1,16}\s*$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
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
 * @throws {RefusedError} ERROR 3 when an announced upload size is too large.
 *
 * @example
 * ```ts
 * import { negotiate } from "./options.ts";
 * import { equal } from "node:assert/strict";
 * const { negotiated, oack } = negotiate(
 *   new Map([["blksize", "1468"], ["tsize", "0"]]),
 *   { op: "RRQ", mode: "octet", fileSize: 1000 },
 *   { maxBlksize: 1468, maxWindowsize: 64 },
 * );
 * equal(negotiated.blksize, 1468);
 * equal(oack.get("tsize"), "1000");
 * ```
 */
export function negotiate(
  requested: Map<string, string>,
  context: NegotiationContext,
  policy: NegotiationPolicy,
): Negotiation {
  const settings: Negotiated = { blksize: 512, windowsize: 1 };
  const oack = new Map<string, string>();
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
            settings.tsize = context.fileSize;
            oack.set(name, String(context.fileSize));
          }
          break;
        }
        if (policy.maxUploadSize !== undefined && value > policy.maxUploadSize) {
          throw new RefusedError(
            ErrorCode.DISK_FULL,
            `file too large: ${value} bytes, uploads are limited to ${policy.maxUploadSize}`,
          );
        }
        if (context.freeSpace !== undefined && value > context.freeSpace) {
          throw new RefusedError(ErrorCode.DISK_FULL, `not enough free space for ${value} bytes`);
        }
        settings.tsize = value;
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
  return { negotiated: settings, oack };
}

/** What a client asks for (see `ClientOptions`). */
export interface OptionRequest {
  /** Block size to ask for (default 1468; 512 asks for none). */
  blksize?: number;
  /** Window size to ask for (default 16; 1 asks for none), lowered to fit `maxWindowBytes`. */
  windowsize?: number;
  /** Largest window to ask for, in payload bytes (default {@linkcode DEFAULT_MAX_WINDOW_BYTES}). */
  maxWindowBytes?: number;
  /** A retransmission timeout to ask the server for, in milliseconds (sent in whole seconds). */
  timeoutMs?: number;
  /** Ask for no options at all: plain RFC 1350. */
  noOptions?: boolean;
}

/** The client's default block size: the largest that fits an Ethernet frame. */
export const CLIENT_BLKSIZE = 1468;
/** The client's default window size. */
export const CLIENT_WINDOWSIZE = 16;

/**
 * The options a client's request carries: blksize and windowsize unless they are RFC 1350's,
 * timeout when one was set, and tsize (0 on a read, so the server announces the size; the size on
 * a write when known).
 *
 * @example
 * ```ts
 * import { requestOptions } from "./options.ts";
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(
 *   [...requestOptions({ blksize: 8192, windowsize: 64 }, "RRQ")],
 *   [["blksize", "8192"], ["windowsize", "8"], ["tsize", "0"]],
 * );
 * ```
 */
export function requestOptions(
  ask: OptionRequest,
  op: "RRQ" | "WRQ",
  size?: number,
): Map<string, string> {
  const m = new Map<string, string>();
  if (ask.noOptions) return m;
  const blksize = ask.blksize ?? CLIENT_BLKSIZE;
  const windowsize = Math.min(
    ask.windowsize ?? CLIENT_WINDOWSIZE,
    windowFit(blksize, ask.maxWindowBytes),
  );
  if (blksize !== 512) m.set("blksize", String(blksize));
  if (windowsize !== 1) m.set("windowsize", String(windowsize));
  if (ask.timeoutMs !== undefined) m.set("timeout", String(timeoutSeconds(ask.timeoutMs)));
  if (op === "RRQ") m.set("tsize", "0");
  else if (size !== undefined) m.set("tsize", String(size));
  return m;
}

/**
 * Milliseconds as the `timeout` option's whole seconds (1–255).
 *
 * @example
 * ```ts
 * import { timeoutSeconds } from "./options.ts";
 * import { equal } from "node:assert/strict";
 * equal(timeoutSeconds(1500), 2);
 * ```
 */
export function timeoutSeconds(ms: number): number {
  return Math.min(LIMITS.timeout.max, Math.max(LIMITS.timeout.min, Math.round(ms / 1000)));
}

/**
 * Applies a server's OACK to what the client asked: the settings to run with. A value we did not
 * allow (an option we did not ask for, a larger blksize or windowsize, a timeout out of range)
 * is refused with ERROR 8, which the client sends the server.
 *
 * @throws {RefusedError} ERROR 8 naming the option.
 *
 * @example
 * ```ts
 * import { acceptOack } from "./options.ts";
 * import { equal, throws } from "node:assert/strict";
 * const asked = new Map([["blksize", "1468"], ["tsize", "0"]]);
 * equal(acceptOack(new Map([["blksize", "1024"], ["tsize", "9"]]), asked).blksize, 1024);
 * throws(() => acceptOack(new Map([["blksize", "9999"]]), asked), /server answered blksize=9999/);
 * ```
 */
export function acceptOack(oack: Map<string, string>, asked: Map<string, string>): Negotiated {
  const s: Negotiated = { blksize: 512, windowsize: 1 };
  for (const [name, value] of oack) {
    const mine = asked.get(name);
    if (mine === undefined) {
      throw new RefusedError(
        ErrorCode.OPTION_REFUSED,
        `server answered unrequested option ${name}`,
      );
    }
    const n = integer(value);
    const bad = () =>
      new RefusedError(ErrorCode.OPTION_REFUSED, `server answered ${name}=${value}`);
    if (n === undefined) throw bad();
    switch (name) {
      case "blksize":
        if (n < LIMITS.blksize.min || n > Number(mine)) throw bad();
        s.blksize = n;
        break;
      case "windowsize":
        if (n < LIMITS.windowsize.min || n > Number(mine)) throw bad();
        s.windowsize = n;
        break;
      case "timeout":
        if (n < LIMITS.timeout.min || n > LIMITS.timeout.max) throw bad();
        s.timeoutMs = n * 1000;
        break;
      case "tsize":
        s.tsize = n;
        break;
    }
  }
  return s;
}
