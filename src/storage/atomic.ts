/**
 * Writing a file so that it appears under its name only when complete: bytes go to a temporary
 * file beside the target, which is made durable and then renamed into place (or hard-linked, when
 * an existing file must not be replaced). Uploads, client downloads and the HTTP cache all write this
 * way. Also the one write-all loop.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { fsErrorToTftp } from "./fs_errors.ts";
import type { WriteHandle } from "./source.ts";

/**
 * Writes all of `p` (a write may take fewer bytes than offered).
 *
 * @example
 * ```ts
 * import { writeAll } from "./atomic.ts";
 * const seen: number[] = [];
 * await writeAll({ write: (p) => Promise.resolve(seen.push(p.length) && Math.min(p.length, 2)) }, new Uint8Array(5));
 * ```
 */
export async function writeAll(
  w: { write(p: Uint8Array): Promise<number> },
  p: Uint8Array,
): Promise<void> {
  for (let done = 0; done < p.length;) done += await w.write(p.subarray(done));
}

/**
 * Writes all of `p` synchronously.
 *
 * @example
 * ```ts
 * import { writeAllSync } from "./atomic.ts";
 * writeAllSync({ writeSync: (p) => p.length }, new Uint8Array(3));
 * ```
 */
export function writeAllSync(w: { writeSync(p: Uint8Array): number }, p: Uint8Array): void {
  for (let done = 0; done < p.length;) done += w.writeSync(p.subarray(done));
}

/** Options of {@linkcode AtomicFile.create}. */
export interface AtomicOptions {
  /**
   * Replace an existing file (rename over it; the default); when false, commit fails with ERROR 6
   * if the name exists, even if it appeared while the file was written.
   */
  overwrite?: boolean;
  /** The temporary file's path (default: `.NAME.RANDOM.part` beside the target). */
  temp?: string;
  /** Ending of the default temporary name (default `.part`). */
  suffix?: string;
  /** Permission bits of the new file (default 0o644). */
  mode?: number;
  /** Called once when the file is committed or aborted. */
  onSettled?: () => void;
}

/**
 * A file written under a temporary name and moved into place by {@linkcode AtomicFile.commit}.
 * Errors are thrown as `RefusedError`s (disk full, permission denied, file exists, …).
 *
 * @example
 * ```ts
 * import { AtomicFile } from "./atomic.ts";
 * import { equal } from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * const file = await AtomicFile.create(`${dir}/a.txt`);
 * await file.write(new TextEncoder().encode("hello"));
 * await file.commit();
 * equal(await Deno.readTextFile(`${dir}/a.txt`), "hello");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class AtomicFile implements WriteHandle {
  /** The final path. */
  readonly name: string;
  /** The temporary path, removed on abort. */
  readonly temp: string;
  #file: Deno.FsFile;
  #overwrite: boolean;
  #open = true;
  #settled = false;
  #onSettled?: () => void;

  private constructor(file: Deno.FsFile, target: string, temp: string, options: AtomicOptions) {
    this.#file = file;
    this.name = target;
    this.temp = temp;
    this.#overwrite = options.overwrite ?? true;
    this.#onSettled = options.onSettled;
  }

  /**
   * Creates the temporary file (never an existing one).
   *
   * @throws {RefusedError} When it cannot be created.
   */
  static async create(target: string, options: AtomicOptions = {}): Promise<AtomicFile> {
    const random = crypto.randomUUID().slice(0, 8);
    const temp = options.temp ??
      join(dirname(target), `.${basename(target)}.${random}${options.suffix ?? ".part"}`);
    try {
      const file = await Deno.open(temp, {
        write: true,
        createNew: true,
        mode: options.mode ?? 0o644,
      });
      return new AtomicFile(file, target, temp, options);
    } catch (e) {
      throw fsErrorToTftp(e, "cannot create a temporary file");
    }
  }

  /** Writes all of `p`. */
  async write(p: Uint8Array): Promise<void> {
    try {
      await writeAll(this.#file, p);
    } catch (e) {
      throw fsErrorToTftp(e, "write error");
    }
  }

  /**
   * Makes the data durable and moves the file into place: `place(temp)` when given (it must
   * move or remove the temporary file), else a rename (overwrite) or a hard link (no overwrite:
   * fails with "file already exists" if the name appeared meanwhile). On failure the temporary
   * file is removed.
   */
  async commit(place?: (temp: string) => void | Promise<void>): Promise<void> {
    try {
      await this.#file.syncData();
      this.#close();
      if (place) await place(this.temp);
      else if (this.#overwrite) await Deno.rename(this.temp, this.name);
      else {
        await Deno.link(this.temp, this.name);
        await Deno.remove(this.temp);
      }
    } catch (e) {
      this.#close();
      await Deno.remove(this.temp).catch(() => {});
      throw fsErrorToTftp(e, "cannot move the file into place");
    } finally {
      this.#settle();
    }
  }

  /** Discards everything written; safe to call more than once and after `commit`. */
  async abort(): Promise<void> {
    if (this.#settled) return;
    this.#close();
    this.#settle();
    await Deno.remove(this.temp).catch(() => {});
  }

  #close(): void {
    if (!this.#open) return;
    this.#open = false;
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#onSettled?.();
  }
}
