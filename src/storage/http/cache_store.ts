/**
 * The on-disk side of the HTTP cache: one `KEY.data` file and one `KEY.json` metadata file per
 * URL (KEY is the SHA-256 of the URL), an in-memory index, and LRU eviction.
 *
 * Every change to the index and its files is made with synchronous calls, so that within the one
 * JavaScript thread a look-up, the `open` that follows it and an eviction or rename can never
 * interleave: a file found in the index is opened before anything can remove it (and once open,
 * removing or replacing its name does not disturb the reader).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { getLogger } from "../../log.ts";

const log = getLogger("http");

/** Temporary download files end with this; they never count as cache entries. */
export const CACHE_PARTIAL_SUFFIX = ".partial";

/** What the cache knows about one stored URL (also the JSON metadata file's content). */
export interface CacheEntry {
  /** The URL, without credentials. */
  url: string;
  /** The origin's `ETag`, if it sent one. */
  etag?: string;
  /** The origin's `Last-Modified`, if it sent one. */
  lastModified?: string;
  /** Bytes in the data file. */
  size: number;
  /** When the origin last confirmed this copy (download or 304), ms since the epoch. */
  fetchedAt: number;
  /** When this copy was last served, ms since the epoch. */
  lastUsed: number;
}

/**
 * The SHA-256 of `url` in hex: the cache file names' stem.
 *
 * @example
 * ```ts
 * import { cacheKey } from "./cache_store.ts";
 * import { equal } from "node:assert/strict";
 * equal(cacheKey("http://h/f").length, 64);
 * ```
 */
export function cacheKey(url: string): string {
  return createHash("sha256").update(url).digest("hex");
}

function isEntry(v: unknown): v is CacheEntry {
  const e = v as CacheEntry;
  return typeof e === "object" && e !== null && typeof e.url === "string" &&
    Number.isSafeInteger(e.size) && e.size >= 0 && typeof e.fetchedAt === "number" &&
    typeof e.lastUsed === "number";
}

/** The cache directory and its index. */
export class CacheStore {
  /** The directory. */
  readonly dir: string;
  /** Bytes the data files may take together. */
  readonly maxBytes: number;
  readonly #entries = new Map<string, CacheEntry>();
  #bytes = 0;

  private constructor(dir: string, maxBytes: number) {
    this.dir = dir;
    this.maxBytes = maxBytes;
  }

  /**
   * Opens (creating it if needed) a cache directory: loads every complete entry, removes partial
   * downloads and orphaned files, and evicts down to `maxBytes`.
   */
  static async open(dir: string, maxBytes: number): Promise<CacheStore> {
    await Deno.mkdir(dir, { recursive: true });
    const store = new CacheStore(await Deno.realPath(dir), maxBytes);
    await store.#load();
    return store;
  }

  async #load(): Promise<void> {
    const names = new Set<string>();
    for await (const e of Deno.readDir(this.dir)) if (e.isFile) names.add(e.name);
    const keep = new Set<string>();
    for (const name of names) {
      const m = /^([0-9a-f]{64})\.json$/.exec(name);
      if (!m) continue;
      const key = m[1];
      try {
        const entry: unknown = JSON.parse(await Deno.readTextFile(join(this.dir, name)));
        const info = await Deno.stat(this.dataPath(key));
        if (!isEntry(entry)) continue;
        if (!info.isFile || info.size !== entry.size) continue;
        this.#entries.set(key, entry);
        this.#bytes += entry.size;
        keep.add(`${key}.json`).add(`${key}.data`);
      } catch {
        // unreadable or without data: removed below
      }
    }
    for (const name of names) {
      if (keep.has(name)) continue;
      // Only remove what looks like ours: KEY.data, KEY.json, KEY.*.partial, KEY.json.tmp.
      if (!/^[0-9a-f]{64}\.(data|json|json\.tmp|[0-9a-z]+\.partial)$/.test(name)) continue;
      await Deno.remove(join(this.dir, name)).catch(() => {});
    }
    this.#evictSync();
  }

  /** Path of the data file of `key`. */
  dataPath(key: string): string {
    return join(this.dir, `${key}.data`);
  }

  /** A fresh temporary path for a download of `key`. */
  tempPath(key: string): string {
    return join(this.dir, `${key}.${crypto.randomUUID().slice(0, 8)}${CACHE_PARTIAL_SUFFIX}`);
  }

  /** The entry of `key`, if cached. */
  get(key: string): CacheEntry | undefined {
    return this.#entries.get(key);
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** Bytes the data files take together. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Opens the data file of `key` and marks it used; `null` (and the entry dropped) when the file
   * is gone.
   */
  openSync(key: string, now: number): Deno.FsFile | null {
    const entry = this.#entries.get(key);
    if (!entry) return null;
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(this.dataPath(key), { read: true });
    } catch (e) {
      log.warn("cache file of {url} is unreadable ({error}): dropping it", {
        url: entry.url,
        error: String(e),
      });
      this.removeSync(key);
      return null;
    }
    entry.lastUsed = now;
    this.#writeMetaSync(key, entry);
    return file;
  }

  /** Records a revalidation (304): new `fetchedAt` and any new validators. */
  refreshSync(key: string, fields: Pick<CacheEntry, "fetchedAt" | "etag" | "lastModified">): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    entry.fetchedAt = fields.fetchedAt;
    if (fields.etag !== undefined) entry.etag = fields.etag;
    if (fields.lastModified !== undefined) entry.lastModified = fields.lastModified;
    this.#writeMetaSync(key, entry);
  }

  /**
   * Moves a complete download into place as `key` (replacing an older copy), then evicts the
   * least recently used entries down to `maxBytes`. A download larger than `maxBytes` is
   * removed instead. Returns whether it was kept.
   */
  commitSync(key: string, temp: string, entry: CacheEntry): boolean {
    if (entry.size > this.maxBytes) {
      log.debug("{url} ({size} bytes) is larger than the cache: not kept", {
        url: entry.url,
        size: entry.size,
      });
      this.removeSync(key);
      Deno.removeSync(temp);
      return false;
    }
    const old = this.#entries.get(key);
    Deno.renameSync(temp, this.dataPath(key));
    if (old) this.#bytes -= old.size;
    this.#entries.set(key, entry);
    this.#bytes += entry.size;
    this.#writeMetaSync(key, entry);
    this.#evictSync(key);
    return true;
  }

  /** Forgets `key` and removes its files. */
  removeSync(key: string): void {
    const entry = this.#entries.get(key);
    if (entry) {
      this.#entries.delete(key);
      this.#bytes -= entry.size;
    }
    for (const path of [join(this.dir, `${key}.json`), this.dataPath(key)]) {
      try {
        Deno.removeSync(path);
      } catch {
        // already gone
      }
    }
  }

  #evictSync(keep?: string): void {
    if (this.#bytes <= this.maxBytes) return;
    const order = [...this.#entries].filter(([k]) => k !== keep)
      .sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, entry] of order) {
      if (this.#bytes <= this.maxBytes) break;
      log.debug("evicting {url} ({size} bytes) from the cache", {
        url: entry.url,
        size: entry.size,
      });
      this.removeSync(key);
    }
  }

  #writeMetaSync(key: string, entry: CacheEntry): void {
    const path = join(this.dir, `${key}.json`);
    try {
      Deno.writeTextFileSync(`${path}.tmp`, JSON.stringify(entry) + "\n");
      Deno.renameSync(`${path}.tmp`, path);
    } catch (e) {
      log.warn("cannot write cache metadata {path}: {error}", { path, error: String(e) });
    }
  }
}
