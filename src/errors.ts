/**
 * The error family of tftpkit. Every failure of a transfer is one of four kinds, all
 * {@linkcode TftpError}s:
 *
 * - {@linkcode RefusedError}: we refuse or end the transfer, with the TFTP code and message the
 *   peer is sent (file not found, access violation, disk full, a malformed packet, …);
 * - {@linkcode PeerError}: the peer ended it with an ERROR packet;
 * - {@linkcode TimeoutError}: the peer stopped answering;
 * - {@linkcode AbortedError}: it was stopped locally through an `AbortSignal` (`cause` is the
 *   signal's reason, which callers compare by identity).
 *
 * @module
 */

/**
 * TFTP error codes by name (RFC 1350, RFC 2347): 0 not defined, 1 file not found, 2 access
 * violation, 3 disk full, 4 illegal operation, 5 unknown transfer ID, 6 file exists, 7 no such
 * user, 8 option refused.
 *
 * @example
 * ```ts
 * import { ErrorCode } from "./mod.ts";
 * import { equal } from "node:assert/strict";
 * equal(ErrorCode.FILE_NOT_FOUND, 1);
 * ```
 */
export const ErrorCode: {
  /** 0: not defined, see the message. */
  readonly NOT_DEFINED: 0;
  /** 1: file not found. */
  readonly FILE_NOT_FOUND: 1;
  /** 2: access violation. */
  readonly ACCESS_VIOLATION: 2;
  /** 3: disk full or allocation exceeded. */
  readonly DISK_FULL: 3;
  /** 4: illegal TFTP operation. */
  readonly ILLEGAL_OPERATION: 4;
  /** 5: unknown transfer ID. */
  readonly UNKNOWN_TID: 5;
  /** 6: file already exists. */
  readonly FILE_EXISTS: 6;
  /** 7: no such user. */
  readonly NO_SUCH_USER: 7;
  /** 8: the transfer should be terminated during option negotiation (RFC 2347). */
  readonly OPTION_REFUSED: 8;
} = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
};

/** A TFTP error code: one of {@linkcode ErrorCode}'s values, or another number from a peer. */
export type ErrorCodeValue = number;

const CODE_NAMES = [
  "not defined",
  "file not found",
  "access violation",
  "disk full",
  "illegal operation",
  "unknown transfer ID",
  "file exists",
  "no such user",
  "option refused",
];

/**
 * The name of a TFTP error code, for messages.
 *
 * @example
 * ```ts
 * import { errorCodeName } from "./errors.ts";
 * import { equal } from "node:assert/strict";
 * equal(errorCodeName(2), "access violation");
 * equal(errorCodeName(42), "error 42");
 * ```
 */
export function errorCodeName(code: number): string {
  return CODE_NAMES[code] ?? `error ${code}`;
}

/**
 * The base of every transfer failure; see the module documentation for the four kinds.
 *
 * @example Tell the kinds apart
 * ```ts
 * import { PeerError, TftpError } from "./mod.ts";
 * import { equal } from "node:assert/strict";
 * const e: unknown = new PeerError(1, "File not found");
 * equal(e instanceof TftpError && e instanceof PeerError, true);
 * ```
 */
export class TftpError extends Error {
  /**
   * Creates the error.
   *
   * @param message What happened.
   * @param options `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TftpError";
  }
}

/**
 * We refuse (or end) a transfer: the peer is sent ERROR `code` with this message. Thrown by the
 * name rules, file sources, the packet decoder, option checks and policy.
 *
 * @example Refuse a request
 * ```ts
 * import { ErrorCode, RefusedError } from "./mod.ts";
 * const e = new RefusedError(ErrorCode.FILE_NOT_FOUND, "file not found");
 * ```
 */
export class RefusedError extends TftpError {
  /** The TFTP error code sent to the peer (see {@linkcode ErrorCode}: 1 file not found, …). */
  readonly code: number;
  /**
   * Creates the error.
   *
   * @param code TFTP error code (see {@linkcode ErrorCode}).
   * @param message Short text sent to the peer.
   * @param options `cause`.
   */
  constructor(code: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RefusedError";
    this.code = code;
  }
}

/**
 * The peer ended the transfer with an ERROR packet.
 *
 * @example
 * ```ts
 * import { PeerError } from "./mod.ts";
 * import { equal } from "node:assert/strict";
 * const e = new PeerError(1, "File not found");
 * equal(e.message, "peer sent ERROR 1 (file not found): File not found");
 * ```
 */
export class PeerError extends TftpError {
  /** The code the peer sent (see {@linkcode ErrorCode}: 1 file not found, …). */
  readonly code: number;
  /** The message the peer sent. */
  readonly peerMessage: string;
  /**
   * Creates the error.
   *
   * @param code Code from the peer's ERROR packet.
   * @param message Message from the peer's ERROR packet.
   */
  constructor(code: number, message: string) {
    super(`peer sent ERROR ${code} (${errorCodeName(code)}): ${message || "(no message)"}`);
    this.name = "PeerError";
    this.code = code;
    this.peerMessage = message;
  }
}

/**
 * The peer stopped answering.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "./mod.ts";
 * const e = new TimeoutError("no ACK for block 3 for 30 s");
 * ```
 */
export class TimeoutError extends TftpError {
  /**
   * Creates the error.
   *
   * @param message What was waited for.
   */
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/**
 * The transfer was stopped locally through its `AbortSignal`; `cause` is the signal's reason.
 *
 * @example
 * ```ts
 * import { AbortedError } from "./mod.ts";
 * import { equal } from "node:assert/strict";
 * const controller = new AbortController();
 * const reason = new Error("server shutting down");
 * controller.abort(reason);
 * const e = AbortedError.from(controller.signal);
 * equal(e.cause, reason);
 * equal(e.message, "server shutting down");
 * ```
 */
export class AbortedError extends TftpError {
  /**
   * Creates the error.
   *
   * @param message Why the transfer was stopped.
   * @param options `cause`: the abort reason.
   */
  constructor(message?: string, options?: ErrorOptions) {
    super(message ?? "transfer aborted", options);
    this.name = "AbortedError";
  }

  /**
   * The error for an aborted `signal`: its reason's message, the reason itself as `cause`.
   *
   * @param signal An aborted signal.
   * @returns The error.
   */
  static from(signal: AbortSignal): AbortedError {
    return new AbortedError(reasonText(signal.reason), { cause: signal.reason });
  }
}

/**
 * A short text for an abort reason (an Error's message, a string, or "transfer aborted").
 *
 * @example
 * ```ts
 * import { reasonText } from "./errors.ts";
 * import { equal } from "node:assert/strict";
 * equal(reasonText(new Error("cancelled")), "cancelled");
 * ```
 */
export function reasonText(reason: unknown): string {
  if (reason instanceof Error) {
    // AbortController.abort() without a reason gives a DOMException "AbortError".
    return reason.name === "AbortError" ? "transfer aborted" : reason.message;
  }
  return typeof reason === "string" && reason ? reason : "transfer aborted";
}

/**
 * Text fit for an ERROR message or a log line: characters outside printable ASCII are escaped
 * (`\xNN`, `\u{…}`), so a peer's odd bytes are neither garbled nor able to forge log lines.
 * Escaping twice changes nothing.
 *
 * @example
 * ```ts
 * import { printable } from "./errors.ts";
 * import { equal } from "node:assert/strict";
 * equal(printable("octét\n"), "oct\\xe9t\\x0a");
 * ```
 */
export function printable(text: string): string {
  let out = "";
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x20 && c < 0x7f) out += ch;
    else if (c <= 0xff) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += `\\u{${c.toString(16)}}`;
  }
  return out;
}

/**
 * Any thrown value as a {@linkcode TftpError}: typed errors pass through, anything while
 * `signal` is aborted becomes {@linkcode AbortedError}, anything else ERROR 0 with `what`
 * (the underlying error is kept as `cause`).
 *
 * @example
 * ```ts
 * import { asTftpError, RefusedError } from "./errors.ts";
 * import { equal } from "node:assert/strict";
 * const e = asTftpError(new Error("boom"), "read error");
 * equal(e instanceof RefusedError && e.message, "read error");
 * ```
 */
export function asTftpError(e: unknown, what = "internal error", signal?: AbortSignal): TftpError {
  if (e instanceof TftpError) return e;
  if (signal?.aborted) return AbortedError.from(signal);
  return new RefusedError(ErrorCode.NOT_DEFINED, what, { cause: e });
}

/**
 * A failure for logs: its message, and for an ERROR 0 that wraps another error, that error's
 * message too (the peer is sent only the first part).
 *
 * @example
 * ```ts
 * import { describeError, RefusedError } from "./errors.ts";
 * import { equal } from "node:assert/strict";
 * const e = new RefusedError(0, "read error", { cause: new Error("EIO") });
 * equal(describeError(e), "read error (EIO)");
 * ```
 */
export function describeError(e: TftpError): string {
  const cause = e.cause;
  if (e instanceof RefusedError && e.code === ErrorCode.NOT_DEFINED && cause instanceof Error) {
    if (!(cause instanceof TftpError) && cause.message) return `${e.message} (${cause.message})`;
  }
  return e.message;
}
