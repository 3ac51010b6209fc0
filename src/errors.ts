/**
 * Typed errors shared by the engine, the server and the client.
 *
 * @module
 */

import { ErrorCode } from "./wire/packet.ts";

/**
 * A failure that maps to a TFTP ERROR packet: thrown by file sources and sinks, by the path
 * rules and by policy, and sent to the peer with its `code` and `message`.
 *
 * @example Refuse a request
 * ```ts
 * import { TftpError } from "./errors.ts";
 * import { ErrorCode } from "./wire/packet.ts";
 * const e = new TftpError(ErrorCode.FILE_NOT_FOUND, "file not found");
 * ```
 */
export class TftpError extends Error {
  /** The TFTP error code sent to the peer. */
  readonly code: number;
  /**
   * Creates the instance.
   *
   * @param code TFTP error code (see {@linkcode ErrorCode}).
   * @param message Short text sent to the peer.
   * @param options Standard error options (`cause`).
   */
  constructor(code: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TftpError";
    this.code = code;
  }
}

/**
 * The peer ended the transfer with an ERROR packet.
 *
 * @example
 * ```ts
 * import { PeerError } from "./errors.ts";
 * const e = new PeerError(1, "File not found");
 * ```
 */
export class PeerError extends Error {
  /** The code the peer sent. */
  readonly code: number;
  /** The message the peer sent. */
  readonly peerMessage: string;
  /**
   * Creates the instance.
   *
   * @param code Code from the peer's ERROR packet.
   * @param message Message from the peer's ERROR packet.
   */
  constructor(code: number, message: string) {
    super(`peer sent ERROR ${code}: ${message || "(no message)"}`);
    this.name = "PeerError";
    this.code = code;
    this.peerMessage = message;
  }
}

/**
 * The peer stopped answering: every retry timed out.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "./errors.ts";
 * const e = new TimeoutError("no ACK for block 3 after 5 retries");
 * ```
 */
export class TimeoutError extends Error {
  /**
   * Creates the instance.
   *
   * @param message What was waited for.
   */
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/**
 * The transfer was stopped locally through its `AbortSignal`.
 *
 * @example
 * ```ts
 * import { AbortedError } from "./errors.ts";
 * const e = new AbortedError("server shutting down");
 * ```
 */
export class AbortedError extends Error {
  /**
   * Creates the instance.
   *
   * @param message Why the transfer was stopped.
   */
  constructor(message = "transfer aborted") {
    super(message);
    this.name = "AbortedError";
  }
}

/**
 * Maps a file-system error to the TFTP error a peer should see.
 *
 * @example
 * ```ts
 * import { fsErrorToTftp } from "./errors.ts";
 * import { equal } from "node:assert/strict";
 * equal(fsErrorToTftp(new Deno.errors.NotFound("x")).code, 1);
 * ```
 */
export function fsErrorToTftp(e: unknown): TftpError {
  if (e instanceof TftpError) return e;
  if (e instanceof Deno.errors.NotFound) {
    return new TftpError(ErrorCode.FILE_NOT_FOUND, "file not found", { cause: e });
  }
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
    return new TftpError(ErrorCode.ACCESS_VIOLATION, "permission denied", { cause: e });
  }
  if (e instanceof Deno.errors.AlreadyExists) {
    return new TftpError(ErrorCode.FILE_EXISTS, "file already exists", { cause: e });
  }
  const msg = e instanceof Error ? e.message : String(e);
  if (/ENOSPC|No space left|EDQUOT|quota/i.test(msg)) {
    return new TftpError(ErrorCode.DISK_FULL, "disk full", { cause: e });
  }
  if (/ENAMETOOLONG|name too long/i.test(msg)) {
    return new TftpError(ErrorCode.ACCESS_VIOLATION, "file name too long", { cause: e });
  }
  if (/EISDIR|ENOTDIR|Not a directory|Is a directory/i.test(msg)) {
    return new TftpError(ErrorCode.FILE_NOT_FOUND, "file not found", { cause: e });
  }
  return new TftpError(ErrorCode.NOT_DEFINED, "I/O error", { cause: e });
}
