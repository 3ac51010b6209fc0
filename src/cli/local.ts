/**
 * The local side of `get` and `put`. A download never destroys what LOCAL points at: a regular
 * file (or a missing one) is written beside itself and renamed into place when complete; through
 * a symbolic link, the link's target is replaced the same way and the link kept; a device, FIFO,
 * socket or `/dev/fd/N` is written straight into, never renamed over; `/dev/stdout` and friends
 * are the process's own streams. A directory is refused before the transfer. Every local failure
 * is a {@linkcode LocalFileError}: the server is sent the due ERROR (3 for a full disk).
 *
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import { AtomicFile, writeAll } from "../storage/atomic.ts";
import { fsErrorToTftp } from "../storage/fs_errors.ts";
import type { ReadHandle, WriteHandle } from "../storage/source.ts";
import { ClobberError, LocalFileError } from "./exit_codes.ts";

/**
 * Which standard stream a path names, if it names one: `/dev/stdout`, `/dev/fd/1`,
 * `/proc/self/fd/1` and the like (Deno refuses to open these by path without `--allow-all`).
 *
 * @example
 * ```ts
 * import { stdStreamOf } from "./local.ts";
 * import { equal } from "node:assert/strict";
 * equal(stdStreamOf("/dev/stdout"), "stdout");
 * equal(stdStreamOf("/dev/fd/2"), "stderr");
 * equal(stdStreamOf("/dev/fd/63"), undefined);
 * ```
 */
export function stdStreamOf(path: string): "stdin" | "stdout" | "stderr" | undefined {
  const named = /^\/dev\/(stdin|stdout|stderr)$/.exec(path)?.[1];
  if (named) return named as "stdin" | "stdout" | "stderr";
  const fd = /^\/(?:dev\/fd|proc\/(?:self|thread-self|\d+)\/fd)\/([012])$/.exec(path)?.[1];
  if (fd === undefined) return undefined;
  if (/^\/proc\/\d+\//.test(path) && !path.startsWith(`/proc/${Deno.pid}/`)) return undefined;
  return (["stdin", "stdout", "stderr"] as const)[Number(fd)];
}

/** The OS's words for a failure, without the path and error number. */
function osWords(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/ \(os error \d+\)/, "").replace(/:? ?(open|write|stat|rename|link)? ?'.*'$/, "")
    .trim();
}

/**
 * A {@linkcode LocalFileError} for a failure of `op` on `path`: the peer's ERROR code and message
 * from {@linkcode fsErrorToTftp}, the user's reason with the system's words.
 *
 * @example
 * ```ts
 * import { localError } from "./local.ts";
 * import { equal } from "node:assert/strict";
 * const e = localError("write", "fw.bin", new Error("No space left on device (os error 28)"));
 * equal(e.code, 3);
 * equal(e.reason, "disk full (No space left on device)");
 * ```
 */
export function localError(op: "read" | "write", path: string, e: unknown): LocalFileError {
  if (e instanceof LocalFileError) return e;
  const t = fsErrorToTftp(e, `${op} error`);
  const words = osWords((e as Error)?.cause ?? e);
  const reason = t.code === 0 || !words || words.toLowerCase() === t.message
    ? words || t.message
    : `${t.message} (${words})`;
  return new LocalFileError(op, path, t.code, t.message, reason, { cause: e });
}

/** A write handle for a standard stream or an open file, written straight into. */
function directHandle(
  name: string,
  w: { write(p: Uint8Array): Promise<number> },
  close = () => {},
) {
  let closed = false;
  const end = () => {
    if (closed) return;
    closed = true;
    close();
  };
  const handle: WriteHandle = {
    name,
    async write(p) {
      try {
        await writeAll(w, p);
      } catch (e) {
        throw localError("write", name, e);
      }
    },
    commit: () => Promise.resolve(end()),
    abort: () => Promise.resolve(end()),
  };
  return handle;
}

/** Follows symbolic links (also dangling ones) to the path they finally name. */
async function followLinks(path: string): Promise<string> {
  for (let hops = 0; hops < 40; hops++) {
    if (stdStreamOf(path)) return path;
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return path;
      throw e;
    }
    if (!info.isSymlink) return path;
    const to = await Deno.readLink(path);
    path = isAbsolute(to) ? to : join(dirname(path), to);
  }
  throw new Error("too many levels of symbolic links");
}

/** Where a download goes, and whether it is written straight into. */
export interface Destination {
  /** Receives the bytes; `commit` puts them in place, `abort` removes a temporary file. */
  handle: WriteHandle;
  /** The path written (a link's target), or `-`. */
  path: string;
  /** Written straight into (a stream, device or FIFO): nothing to rename or remove. */
  direct: boolean;
}

/**
 * Opens LOCAL for a download (see the module documentation), before the transfer starts.
 *
 * @throws {LocalFileError} LOCAL is a directory, its directory is missing, it cannot be written.
 * @throws {ClobberError} LOCAL is an existing file and `noClobber` is set.
 *
 * @example A regular file appears only when committed
 * ```ts
 * import { openDestination } from "./local.ts";
 * import { equal } from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * const { handle, direct } = await openDestination(`${dir}/fw.bin`);
 * equal(direct, false);
 * await handle.write(new TextEncoder().encode("image"));
 * await handle.commit();
 * equal(await Deno.readTextFile(`${dir}/fw.bin`), "image");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openDestination(local: string, noClobber = false): Promise<Destination> {
  const std = local === "-" ? "stdout" : stdStreamOf(local);
  if (std === "stdout" || std === "stderr") {
    const stream = std === "stdout" ? Deno.stdout : Deno.stderr;
    return { handle: directHandle(local, stream), path: "-", direct: true };
  }
  if (std === "stdin") throw localError("write", local, new Error("is standard input"));
  let path: string;
  let info: Deno.FileInfo | undefined;
  try {
    path = await followLinks(local);
    const followed = stdStreamOf(path);
    if (followed === "stdout" || followed === "stderr") return await openDestination(path);
    info = await Deno.stat(path).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    });
  } catch (e) {
    throw localError("write", local, e);
  }
  if (info?.isDirectory) {
    throw new LocalFileError("write", local, 0, "write error", "is a directory");
  }
  if (info && !info.isFile) {
    // A device, FIFO or socket: write into it (a FIFO's open waits for its reader).
    try {
      const file = await Deno.open(path, { write: true });
      return { handle: directHandle(local, file, () => file.close()), path, direct: true };
    } catch (e) {
      throw localError("write", local, e);
    }
  }
  if (info && noClobber) throw new ClobberError(local);
  let file: AtomicFile;
  try {
    file = await AtomicFile.create(path, {
      overwrite: !noClobber,
      mode: info?.mode ? info.mode & 0o777 : undefined,
    });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || (e as Error).cause instanceof Deno.errors.NotFound) {
      throw new LocalFileError("write", local, 1, "write error", "its directory does not exist");
    }
    throw localError("write", local, e);
  }
  const handle: WriteHandle = {
    name: local,
    async write(p) {
      try {
        await file.write(p);
      } catch (e) {
        throw localError("write", local, e);
      }
    },
    async commit() {
      try {
        await file.commit();
      } catch (e) {
        if (noClobber && (e as Error).cause instanceof Deno.errors.AlreadyExists) {
          throw new ClobberError(local);
        }
        throw localError("write", local, e);
      }
    },
    abort: () => file.abort(),
  };
  return { handle, path, direct: false };
}

/**
 * Opens LOCAL for an upload: a regular file (with its size), a FIFO or device (size unknown),
 * or standard input (`-`).
 *
 * @throws {LocalFileError} LOCAL is missing, a directory, or cannot be read.
 *
 * @example
 * ```ts
 * import { openLocalSource } from "./local.ts";
 * import { LocalFileError } from "./exit_codes.ts";
 * import { equal, rejects } from "node:assert/strict";
 * const handle = await openLocalSource("deno.json");
 * equal(typeof handle.size, "number");
 * handle.close();
 * await rejects(openLocalSource("no-such-file"), LocalFileError);
 * ```
 */
export async function openLocalSource(local: string): Promise<ReadHandle> {
  if (local === "-" || stdStreamOf(local) === "stdin") {
    return { name: "-", read: (p) => Deno.stdin.read(p), close() {} };
  }
  let file: Deno.FsFile;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(local);
    if (info.isDirectory) {
      throw new LocalFileError("read", local, 0, "read error", "is a directory");
    }
    file = await Deno.open(local, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new LocalFileError("read", local, 1, "file not found", "no such file");
    }
    throw localError("read", local, e);
  }
  let closed = false;
  return {
    name: local,
    size: info.isFile ? info.size : undefined,
    async read(p) {
      try {
        return await file.read(p);
      } catch (e) {
        throw localError("read", local, e);
      }
    },
    close() {
      if (closed) return;
      closed = true;
      file.close();
    },
  };
}
