/**
 * The exit codes of `tftpkit`, in one place: the client's follow curl's TFTP codes, so a script
 * can branch on why a transfer failed; the server's say why it stopped. The tables printed by
 * `--help` and in the README are rendered from here.
 *
 * @module
 */

import { AbortedError, ErrorCode, PeerError, RefusedError, TimeoutError } from "../errors.ts";
import { HostNotFoundError } from "../net.ts";
import { UsageError } from "./args.ts";

/**
 * A local file could not be read or written; the peer is sent the due ERROR (e.g. 3).
 *
 * @example
 * ```ts
 * import { clientExitCode, LocalFileError } from "./exit_codes.ts";
 * import { equal } from "node:assert/strict";
 * const e = new LocalFileError("write", "fw.bin", 3, "disk full", "disk full (No space left)");
 * equal(clientExitCode(e), 23);
 * ```
 */
export class LocalFileError extends RefusedError {
  /** The local path, as the user gave it. */
  readonly path: string;
  /** Whether reading or writing failed. */
  readonly op: "read" | "write";
  /** What went wrong locally, for the user (the peer gets the shorter `message`). */
  readonly reason: string;

  /**
   * Creates the error.
   *
   * @param op Reading or writing.
   * @param path The local path.
   * @param code The TFTP code sent to the peer.
   * @param message The message sent to the peer ("disk full", "write error").
   * @param reason What the user is told.
   * @param options `cause`.
   */
  constructor(
    op: "read" | "write",
    path: string,
    code: number,
    message: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.name = "LocalFileError";
    this.op = op;
    this.path = path;
    this.reason = reason;
  }
}

/**
 * `LOCAL` exists and `--no-clobber` was given.
 *
 * @example
 * ```ts
 * import { ClobberError, clientExitCode } from "./exit_codes.ts";
 * import { equal } from "node:assert/strict";
 * equal(clientExitCode(new ClobberError("fw.bin")), 73);
 * ```
 */
export class ClobberError extends Error {
  /**
   * Creates the error.
   *
   * @param path The local path.
   */
  constructor(path: string) {
    super(`${path} exists (--no-clobber)`);
    this.name = "ClobberError";
  }
}

/**
 * Exit codes of `tftpkit get` and `tftpkit put`: curl's codes for TFTP (68-74 for the TFTP
 * errors 1-7, 71 also for ERROR 0, 42 for ERROR 8 and codes beyond, as curl does), 28 for a
 * timeout, 6 for a host that does not resolve, 23/26 for local write/read errors.
 *
 * @example
 * ```ts
 * import { ClientExit } from "./exit_codes.ts";
 * import { equal } from "node:assert/strict";
 * equal(ClientExit.NOT_FOUND, 68);
 * ```
 */
export const ClientExit = {
  /** The transfer completed. */
  OK: 0,
  /** Any other failure (a local error that is not a read or write error). */
  ERROR: 1,
  /** Bad command line. */
  USAGE: 2,
  /** The host name does not resolve (curl: couldn't resolve host). */
  HOST_NOT_FOUND: 6,
  /** Writing LOCAL failed: not writable, a directory, disk full (curl: write error). */
  WRITE_ERROR: 23,
  /** Reading LOCAL failed: missing, unreadable, a directory (curl: read error). */
  READ_ERROR: 26,
  /** The server stopped answering (curl: operation timed out). */
  TIMEOUT: 28,
  /** ERROR 8 (options refused) or a code beyond 8 (curl: aborted). */
  OTHER_TFTP_ERROR: 42,
  /** ERROR 1, file not found. */
  NOT_FOUND: 68,
  /** ERROR 2, access violation. */
  ACCESS_VIOLATION: 69,
  /** ERROR 3, disk full on the server. */
  DISK_FULL: 70,
  /** ERROR 4 illegal operation; also ERROR 0, not defined (as curl). */
  ILLEGAL_OPERATION: 71,
  /** ERROR 5, unknown transfer ID. */
  UNKNOWN_TID: 72,
  /** ERROR 6, file exists on the server; or LOCAL exists with `--no-clobber`. */
  FILE_EXISTS: 73,
  /** ERROR 7, no such user. */
  NO_SUCH_USER: 74,
  /** Stopped by SIGINT (Ctrl-C); the server was sent ERROR 0. */
  SIGINT: 130,
  /** Stopped by SIGTERM; the server was sent ERROR 0. */
  SIGTERM: 143,
} as const;

const BY_TFTP_CODE: Record<number, number> = {
  [ErrorCode.NOT_DEFINED]: ClientExit.ILLEGAL_OPERATION,
  [ErrorCode.FILE_NOT_FOUND]: ClientExit.NOT_FOUND,
  [ErrorCode.ACCESS_VIOLATION]: ClientExit.ACCESS_VIOLATION,
  [ErrorCode.DISK_FULL]: ClientExit.DISK_FULL,
  [ErrorCode.ILLEGAL_OPERATION]: ClientExit.ILLEGAL_OPERATION,
  [ErrorCode.UNKNOWN_TID]: ClientExit.UNKNOWN_TID,
  [ErrorCode.FILE_EXISTS]: ClientExit.FILE_EXISTS,
  [ErrorCode.NO_SUCH_USER]: ClientExit.NO_SUCH_USER,
};

/**
 * The exit code of `get`/`put` for what the transfer threw.
 *
 * @param e What was thrown.
 * @param signal The signal that stopped the transfer, if one did.
 * @returns The exit code (see {@linkcode ClientExit}).
 *
 * @example
 * ```ts
 * import { clientExitCode } from "./exit_codes.ts";
 * import { PeerError, TimeoutError } from "../errors.ts";
 * import { equal } from "node:assert/strict";
 * equal(clientExitCode(new PeerError(1, "File not found")), 68);
 * equal(clientExitCode(new TimeoutError("no answer")), 28);
 * ```
 */
export function clientExitCode(e: unknown, signal?: Deno.Signal): number {
  if (e instanceof UsageError) return ClientExit.USAGE;
  if (e instanceof AbortedError && signal) {
    return signal === "SIGTERM" ? ClientExit.SIGTERM : ClientExit.SIGINT;
  }
  if (e instanceof LocalFileError) {
    return e.op === "read" ? ClientExit.READ_ERROR : ClientExit.WRITE_ERROR;
  }
  if (e instanceof ClobberError) return ClientExit.FILE_EXISTS;
  if (e instanceof HostNotFoundError) return ClientExit.HOST_NOT_FOUND;
  if (e instanceof TimeoutError) return ClientExit.TIMEOUT;
  if (e instanceof PeerError) return BY_TFTP_CODE[e.code] ?? ClientExit.OTHER_TFTP_ERROR;
  // We ended the transfer over something the server did (a bad OACK, a wrong packet).
  if (e instanceof RefusedError && e.code !== ErrorCode.NOT_DEFINED) {
    return BY_TFTP_CODE[e.code] ?? ClientExit.OTHER_TFTP_ERROR;
  }
  return ClientExit.ERROR;
}

/**
 * Exit codes of `tftpkit serve`.
 *
 * @example
 * ```ts
 * import { ServeExit } from "./exit_codes.ts";
 * import { equal } from "node:assert/strict";
 * equal(ServeExit.IDLE, 3);
 * ```
 */
export const ServeExit = {
  /**
   * Stopped by SIGINT/SIGTERM (without `--once`/`--max-transfers`), `--max-transfers` reached,
   * or `--idle-exit` without `--max-transfers`.
   */
  OK: 0,
  /** Could not start (bad path, unreadable file, port in use, origin down with `--once`). */
  ERROR: 1,
  /** Bad command line. */
  USAGE: 2,
  /** `--idle-exit` with `--max-transfers`: no request came at all. */
  IDLE: 3,
  /** `--idle-exit` with `--max-transfers`: requests came, but too few transfers succeeded. */
  UNFINISHED: 4,
  /** SIGINT before `--once`/`--max-transfers` was reached. */
  SIGINT: 130,
  /** SIGTERM before `--once`/`--max-transfers` was reached. */
  SIGTERM: 143,
} as const;

/** The client's exit codes as a table for `--help` (README has the same). */
export const CLIENT_EXIT_HELP = `Exit codes (curl's, for TFTP):
  0    done                          68   ERROR 1 file not found
  1    any other failure             69   ERROR 2 access violation
  2    bad command line              70   ERROR 3 disk full (on the server)
  6    host name does not resolve    71   ERROR 4 illegal operation, or ERROR 0
  23   cannot write LOCAL            72   ERROR 5 unknown transfer ID
  26   cannot read LOCAL             73   ERROR 6 file exists; LOCAL exists (--no-clobber)
  28   timeout: the server stopped   74   ERROR 7 no such user
       answering                     42   ERROR 8 (options refused) or another code
  130  SIGINT, 143 SIGTERM: the server is sent ERROR 0 "cancelled"
`;

/** The server's exit codes as a table for `--help` (README has the same). */
export const SERVE_EXIT_HELP = `Exit codes:
  0    stopped by a signal; --max-transfers reached; --idle-exit without --max-transfers
  1    could not start: bad PATH, unreadable file, unwritable --write directory, port in use,
       origin down (with --once)
  2    bad command line
  3    --idle-exit with --once/--max-transfers, and no request came at all
  4    --idle-exit with --once/--max-transfers, requests came but fewer transfers succeeded
  130  SIGINT, 143 SIGTERM before --once/--max-transfers was reached
`;
