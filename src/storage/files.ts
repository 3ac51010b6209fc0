/**
 * File sources on the local disk: a directory tree ({@linkcode DirectorySource}) and one file
 * served under every name ({@linkcode SingleFileSource}).
 *
 * Reads resolve every name to a real path and refuse it unless it lies inside the root's real
 * path, so `..`, absolute names and symbolic links cannot lead out. Uploads go to a temporary file
 * beside the target and appear under their final name only when complete.
 *
 * @module
 */

import { statfs } from "node:fs/promises";
import { basename, join, sep } from "node:path";
import { ErrorCode, RefusedError } from "../errors.ts";
import { getLogger } from "../log.ts";
import { AtomicFile } from "./atomic.ts";
import { fsErrorToTftp } from "./fs_errors.ts";
import { applyMapRules, type MapRule, splitName } from "./names.ts";
import type { FileSource, ReadHandle, RequestInfo, WriteHandle } from "./source.ts";

/** Temporary upload files end with this; requests for them are refused. */
export const PARTIAL_SUFFIX = ".tftpkit-partial";

const log = getLogger("files");

/** Options of {@linkcode DirectorySource}. */
export interface DirectoryOptions {
  /** Accept uploads of new files. */
  write?: boolean;
  /** With `write`: also replace existing files. */
  overwrite?: boolean;
  /** When no file has the exact name, accept one that differs only in letter case. */
  ignoreCase?: boolean;
  /** `--map` rewrite rules, applied to the name as received. */
  rules?: readonly MapRule[];
}

function fileHandle(file: Deno.FsFile, name: string, size: number): ReadHandle {
  let closed = false;
  return {
    name,
    size,
    read: (p) => file.read(p),
    close() {
      if (closed) return;
      closed = true;
      file.close();
    },
  };
}

async function openRegular(path: string, shownAs: string): Promise<ReadHandle> {
  let info: Deno.FileInfo;
  try {
    // stat before open: opening a FIFO would block until a writer appears.
    info = await Deno.stat(path);
  } catch (e) {
    throw fsErrorToTftp(e);
  }
  if (!info.isFile) throw new RefusedError(ErrorCode.ACCESS_VIOLATION, "not a regular file");
  try {
    const file = await Deno.open(path, { read: true });
    return fileHandle(file, shownAs, info.size);
  } catch (e) {
    throw fsErrorToTftp(e);
  }
}

/**
 * Serves a directory tree, optionally accepting uploads.
 *
 * If `ignoreCase` is set and several entries match a name segment ignoring case, the exact
 * match wins; otherwise the first in code-point order is used and a warning is logged.
 *
 * @example
 * ```ts
 * import { DirectorySource } from "../mod.ts";
 * import { equal, rejects } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir(); // e.g. "/srv/tftp"
 * await Deno.mkdir(`${dir}/pxelinux.cfg`);
 * await Deno.writeTextFile(`${dir}/pxelinux.cfg/default`, "DEFAULT linux\n");
 * const source = await DirectorySource.open(dir, { write: true });
 * equal(source.describe(), `directory ${source.root} (uploads of new files)`);
 *
 * // What the server does with a request: open the name (relative to the root).
 * const peer: Deno.NetAddr = { transport: "udp", hostname: "10.0.0.9", port: 2000 };
 * const info = { peer, mode: "octet" };
 * const file = await source.openRead("/pxelinux.cfg/default", info);
 * equal(file.size, 14);
 * file.close();
 * await rejects(source.openRead("../etc/passwd", info)); // never outside the root
 *
 * // Uploads appear under their name only once complete.
 * const upload = await source.openWrite("new.cfg", info);
 * await upload.write(new TextEncoder().encode("hostname sw1\n"));
 * await upload.commit();
 * equal(await Deno.readTextFile(`${dir}/new.cfg`), "hostname sw1\n");
 *
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class DirectorySource implements FileSource {
  /** The root's real path (symbolic links resolved). */
  readonly root: string;
  readonly #options: DirectoryOptions;
  readonly #uploading = new Set<string>();

  private constructor(root: string, options: DirectoryOptions) {
    this.root = root;
    this.#options = options;
  }

  /**
   * Opens a root directory.
   *
   * @throws {Deno.errors.NotADirectory} When `root` is not a directory (or a `Deno.errors` error
   *   when it cannot be resolved).
   */
  static async open(root: string, options?: DirectoryOptions): Promise<DirectorySource> {
    const real = await Deno.realPath(root);
    if (!(await Deno.stat(real)).isDirectory) {
      throw new Deno.errors.NotADirectory(`${root} is not a directory`);
    }
    return new DirectorySource(real, options ?? {});
  }

  describe(): string {
    const o = this.#options;
    const mode = o.write
      ? (o.overwrite ? "uploads may overwrite" : "uploads of new files")
      : "read-only";
    return `directory ${this.root} (${mode})`;
  }

  #inside(real: string): boolean {
    return real === this.root ||
      real.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep);
  }

  #segments(name: string): string[] {
    return splitName(applyMapRules(name, this.#options.rules ?? []));
  }

  /** Resolves `segments` below the root, ignoring case where an exact entry is missing. */
  async #resolve(segments: string[]): Promise<string> {
    const exact = join(this.root, ...segments);
    if (!this.#options.ignoreCase) return exact;
    try {
      await Deno.lstat(exact);
      return exact;
    } catch {
      // fall through to the case-insensitive walk
    }
    let dir = this.root;
    for (const segment of segments) {
      const wanted = segment.toLowerCase();
      const matches: string[] = [];
      try {
        for await (const entry of Deno.readDir(dir)) {
          if (entry.name === segment) {
            matches.length = 0;
            matches.push(entry.name);
            break;
          }
          if (entry.name.toLowerCase() === wanted) matches.push(entry.name);
        }
      } catch {
        return exact;
      }
      if (matches.length === 0) return exact;
      matches.sort();
      if (matches.length > 1) {
        log.warn("{name} matches {count} entries ignoring case; using {chosen}", {
          name: segment,
          count: matches.length,
          chosen: matches[0],
        });
      }
      dir = join(dir, matches[0]);
    }
    return dir;
  }

  async openRead(name: string, _info: RequestInfo): Promise<ReadHandle> {
    const segments = this.#segments(name);
    if (segments[segments.length - 1].endsWith(PARTIAL_SUFFIX)) {
      throw new RefusedError(ErrorCode.FILE_NOT_FOUND, "file not found");
    }
    let real: string;
    try {
      real = await Deno.realPath(await this.#resolve(segments));
    } catch (e) {
      throw fsErrorToTftp(e);
    }
    if (!this.#inside(real)) {
      throw new RefusedError(ErrorCode.ACCESS_VIOLATION, "path leads outside the served directory");
    }
    return openRegular(real, real);
  }

  async openWrite(name: string, _info: RequestInfo): Promise<WriteHandle> {
    if (!this.#options.write) {
      throw new RefusedError(ErrorCode.ACCESS_VIOLATION, "uploads are disabled on this server");
    }
    const segments = this.#segments(name);
    const base = segments[segments.length - 1];
    if (base.endsWith(PARTIAL_SUFFIX)) {
      throw new RefusedError(ErrorCode.ACCESS_VIOLATION, "reserved file name");
    }
    let dir: string;
    try {
      dir = await Deno.realPath(await this.#resolve(segments.slice(0, -1)));
    } catch (e) {
      throw new RefusedError(ErrorCode.FILE_NOT_FOUND, "directory not found", { cause: e });
    }
    if (!this.#inside(dir)) {
      throw new RefusedError(ErrorCode.ACCESS_VIOLATION, "path leads outside the served directory");
    }
    const target = join(dir, base);
    let existing: Deno.FileInfo | null = null;
    try {
      existing = await Deno.lstat(target);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw fsErrorToTftp(e);
    }
    if (existing) {
      if (!this.#options.overwrite) {
        throw new RefusedError(ErrorCode.FILE_EXISTS, "file already exists");
      }
      if (!existing.isFile) {
        throw new RefusedError(ErrorCode.ACCESS_VIOLATION, "not a regular file");
      }
    }
    if (this.#uploading.has(target)) {
      throw new RefusedError(ErrorCode.ACCESS_VIOLATION, "an upload of this file is in progress");
    }
    this.#uploading.add(target);
    try {
      return await AtomicFile.create(target, {
        overwrite: !!this.#options.overwrite,
        suffix: PARTIAL_SUFFIX,
        onSettled: () => this.#uploading.delete(target),
      });
    } catch (e) {
      this.#uploading.delete(target);
      throw e;
    }
  }

  /**
   * Free bytes on the root's file system (`statfs`, which needs `--allow-sys=statfs`); undefined
   * when that is not granted or fails, and the check is skipped.
   */
  async freeSpace(_name: string): Promise<number | undefined> {
    try {
      const s = await statfs(this.root);
      return Number(s.bavail) * Number(s.bsize);
    } catch (e) {
      log.debug("cannot read the free space of {root} ({error}): upload sizes are not checked", {
        root: this.root,
        error: (e as Error).message,
      });
      return undefined;
    }
  }
}

/**
 * Serves one file under every requested name (the "give the BMC this floppy image" use).
 *
 * @example
 * ```ts
 * import { SingleFileSource } from "../mod.ts";
 * import { equal } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/floppy.img`, new Uint8Array(1_474_560));
 * const source = await SingleFileSource.open(`${dir}/floppy.img`);
 *
 * const peer: Deno.NetAddr = { transport: "udp", hostname: "10.0.0.9", port: 2000 };
 * const info = { peer, mode: "octet" };
 * for (const name of ["floppy.img", "anything/else.bin"]) {
 *   const file = await source.openRead(name, info);
 *   equal(file.name, "floppy.img");
 *   equal(file.size, 1_474_560);
 *   file.close();
 * }
 *
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class SingleFileSource implements FileSource {
  /** The file's real path. */
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Opens the file to serve.
   *
   * @throws {Deno.errors.IsADirectory} When `path` is a directory.
   * @throws {Deno.errors.InvalidData} When `path` is not a regular file.
   */
  static async open(path: string): Promise<SingleFileSource> {
    const real = await Deno.realPath(path);
    const info = await Deno.stat(real);
    if (info.isDirectory) throw new Deno.errors.IsADirectory(`${path} is a directory`);
    if (!info.isFile) throw new Deno.errors.InvalidData(`${path} is not a regular file`);
    return new SingleFileSource(real);
  }

  describe(): string {
    return `file ${this.path} under every name (read-only)`;
  }

  openRead(_name: string, _info: RequestInfo): Promise<ReadHandle> {
    return openRegular(this.path, basename(this.path));
  }
}
