/**
 * What the server reports about each transfer: the {@linkcode TransferRecord} (also the fields
 * of the JSON log line) and its one log line.
 *
 * @module
 */

import { ErrorCode, RefusedError, type TftpError } from "../errors.ts";
import { getLogger, literal } from "../log.ts";

const log = getLogger("transfer");

/** How a transfer ended. */
export type Outcome =
  | "ok"
  | "size-probe"
  | "refused"
  | "peer-error"
  | "timeout"
  | "error"
  | "aborted";

/** What the server reports about each finished transfer (also the JSON log fields). */
export interface TransferRecord {
  /** `RRQ` (the client downloads) or `WRQ` (the client uploads). */
  op: "RRQ" | "WRQ";
  /** The client's address and port. */
  peer: string;
  /** The name the client asked for. */
  file: string;
  /** What was served or written (a path or URL), when it got that far. */
  path?: string;
  /** The transfer mode as asked (`octet`, `netascii`, or what was refused). */
  mode: string;
  /** Payload bytes transferred (as sent on the wire). */
  bytes: number;
  /** The options the client asked for (name → value as sent). */
  asked?: Record<string, string>;
  /** The options the server answered in its OACK (empty: none, RFC 1350). */
  answered?: Record<string, string>;
  /** Negotiated block size. */
  blksize: number;
  /** Negotiated window size. */
  windowsize: number;
  /** Packets sent again (timeouts, rewinds). */
  retransmits: number;
  /** From the request to the final ACK, in milliseconds. */
  durationMs: number;
  /** Payload bytes per second. */
  rateBps: number;
  /** How it ended. */
  outcome: Outcome;
  /** The error's message, for outcomes other than `ok`. */
  error?: string;
  /** Something worth knowing about an `ok` transfer (how the client ended it). */
  note?: string;
}

/**
 * A record for a request that is just starting.
 *
 * @example
 * ```ts
 * import { newRecord } from "./record.ts";
 * import { equal } from "node:assert/strict";
 * equal(newRecord("RRQ", "10.0.0.9:1234", "pxelinux.0", "octet").outcome, "error");
 * ```
 */
export function newRecord(
  op: "RRQ" | "WRQ",
  peer: string,
  file: string,
  mode: string,
): TransferRecord {
  return {
    op,
    peer,
    file,
    mode,
    bytes: 0,
    blksize: 512,
    windowsize: 1,
    retransmits: 0,
    durationMs: 0,
    rateBps: 0,
    outcome: "error",
  };
}

/**
 * Fills in the duration (from `startedMs`, a `performance.now()` reading) and the rate.
 *
 * @example
 * ```ts
 * import { finishRecord, newRecord } from "./record.ts";
 * const r = newRecord("RRQ", "10.0.0.9:1234", "x", "octet");
 * finishRecord(r, performance.now() - 1000);
 * ```
 */
export function finishRecord(r: TransferRecord, startedMs: number): void {
  r.durationMs = Math.round(performance.now() - startedMs);
  r.rateBps = r.durationMs > 0 ? Math.round(r.bytes / (r.durationMs / 1000)) : r.bytes;
}

/**
 * Logs a record as one line: INFO for successes, size probes and routine refusals (PXE ROMs
 * and Raspberry Pis probe for files that do not exist), WARNING for the rest and for refusals
 * caused by the server's own set-up (`operatorProblem`).
 *
 * @example
 * ```ts
 * import { newRecord, reportTransfer } from "./record.ts";
 * reportTransfer(newRecord("RRQ", "10.0.0.9:1234", "x", "octet"));
 * ```
 */
export function reportTransfer(r: TransferRecord, operatorProblem = false): void {
  const props = { event: "transfer", ...r };
  const dir = r.op === "RRQ" ? "sent" : "received";
  const what = `${r.peer} ${r.op} ${JSON.stringify(r.file)}`;
  // Peer text (names, errors) is printed as is: no placeholders in these messages.
  const info = (m: string) => log.info(literal(m), props);
  const warn = (m: string) => log.warn(literal(m), props);
  switch (r.outcome) {
    case "ok": {
      const note = r.note ? ` (${r.note})` : "";
      const rate = formatRate(r.rateBps);
      info(`${what} ok: ${dir} ${r.bytes} bytes in ${r.durationMs} ms (${rate})${note}`);
      break;
    }
    case "size-probe":
      info(`${what} size probe: client read the OACK and ended the transfer`);
      break;
    case "refused":
      (operatorProblem ? warn : info)(`${what} refused: ${r.error}`);
      break;
    default:
      warn(`${what} failed (${r.outcome}): ${r.error}; ${dir} ${r.bytes} bytes`);
  }
}

/**
 * Is a refusal the operator's to fix rather than the client's: the served tree or file cannot be
 * read or written for lack of permission (of the system or of Deno), or the HTTP origin cannot be
 * reached or fails (HTTP 5xx)? Such refusals are logged at WARNING.
 *
 * @example
 * ```ts
 * import { isOperatorProblem } from "./record.ts";
 * import { RefusedError } from "../errors.ts";
 * import { equal } from "node:assert/strict";
 * const denied = new RefusedError(2, "permission denied", {
 *   cause: new Deno.errors.PermissionDenied("open"),
 * });
 * equal(isOperatorProblem(denied), true);
 * equal(isOperatorProblem(new RefusedError(1, "file not found")), false);
 * ```
 */
export function isOperatorProblem(e: TftpError): boolean {
  if (!(e instanceof RefusedError)) return false;
  const cause = e.cause;
  if (cause instanceof Deno.errors.PermissionDenied || cause instanceof Deno.errors.NotCapable) {
    return true;
  }
  if (e.code !== ErrorCode.NOT_DEFINED) return false;
  return /^origin (unreachable|returned HTTP 5|redirected|sent an (invalid|unsupported))/.test(
    e.message,
  );
}

/**
 * A rate for people, in bytes per second with SI prefixes (the unit of every rate tftpkit logs).
 *
 * @example
 * ```ts
 * import { formatRate } from "./record.ts";
 * import { equal } from "node:assert/strict";
 * equal(formatRate(2_500_000), "2.5 MB/s");
 * ```
 */
export function formatRate(bps: number): string {
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)} MB/s`;
  if (bps >= 1e3) return `${(bps / 1e3).toFixed(1)} kB/s`;
  return `${bps} B/s`;
}
