/**
 * The one converter from file-system errors to the TFTP errors a peer sees.
 *
 * @module
 */

import { ErrorCode, RefusedError } from "../errors.ts";

/**
 * Maps a file-system error to the {@linkcode RefusedError} a peer should see. Typed errors pass
 * (`RefusedError`) pass through; an error nothing matches becomes ERROR 0 with `what` ("read error", …).
 *
 * @param e What was thrown.
 * @param what The message for an error that maps to no TFTP code.
 * @returns The TFTP error.
 *
 * @example
 * ```ts
 * import { fsErrorToTftp } from "./fs_errors.ts";
 * import { equal } from "node:assert/strict";
 * equal(fsErrorToTftp(new Deno.errors.NotFound("x")).message, "file not found");
 * ```
 */
export function fsErrorToTftp(e: unknown, what = "I/O error"): RefusedError {
  if (e instanceof RefusedError) return e;
  const refuse = (code: number, message: string) => new RefusedError(code, message, { cause: e });
  if (e instanceof Deno.errors.NotFound) return refuse(ErrorCode.FILE_NOT_FOUND, "file not found");
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
    return refuse(ErrorCode.ACCESS_VIOLATION, "permission denied");
  }
  if (e instanceof Deno.errors.AlreadyExists) {
    return refuse(ErrorCode.FILE_EXISTS, "file already exists");
  }
  if (e instanceof Deno.errors.IsADirectory || e instanceof Deno.errors.NotADirectory) {
    return refuse(ErrorCode.FILE_NOT_FOUND, "file not found");
  }
  const msg = e instanceof Error ? e.message : String(e);
  if (/ENOSPC|No space left|EDQUOT|quota/i.test(msg)) {
    return refuse(ErrorCode.DISK_FULL, "disk full");
  }
  if (/ENAMETOOLONG|name too long/i.test(msg)) {
    return refuse(ErrorCode.ACCESS_VIOLATION, "file name too long");
  }
  if (e instanceof Deno.errors.FilesystemLoop || /ELOOP/.test(msg)) {
    return refuse(ErrorCode.ACCESS_VIOLATION, "too many levels of symbolic links");
  }
  if (/EISDIR|ENOTDIR|Not a directory|Is a directory/i.test(msg)) {
    return refuse(ErrorCode.FILE_NOT_FOUND, "file not found");
  }
  return refuse(ErrorCode.NOT_DEFINED, what);
}
