/**
 * An on-disk cache in front of an HTTP origin (`--cache DIR`, `--cache-max-bytes N`,
 * `--cache-ttl SECONDS`).
 *
 * - A fresh entry (younger than the TTL) is served from disk without contacting the origin.
 * - A stale entry is revalidated with a conditional GET (`If-None-Match` / `If-Modified-Since`):
 *   304 serves the copy and restarts its TTL, 200 replaces it. If the origin is unreachable or
 *   answers 5xx, the stale copy is served (with a warning); 404/410 drop it.
 * - Single flight: all requests for a URL that is being fetched share that one origin request.
 *   The download is pumped into a temporary file in the cache directory by a background task
 *   (not by any one client), and every requester — the first one included — reads that growing
 *   file at its own pace ("tails" it). Nobody waits for the whole download before its first
 *   block, slow or vanishing clients do not slow the download or each other, and memory stays
 *   bounded (the disk is the buffer).
 * - The temporary file is renamed into place only once complete (after `fsync`); a failed or
 *   truncated download is deleted, so it never appears in the cache.
 * - After each insert, least recently used entries are evicted down to `maxBytes`; a file larger
 *   than `maxBytes` is streamed through the temporary file but not kept.
 *
 * One process owns a cache directory (give each instance its own).
 *
 * @module
 */

import { ErrorCode, RefusedError } from "../../errors.ts";
import { getLogger } from "../../log.ts";
import type { ReadHandle } from "../source.ts";
import { AtomicFile } from "../atomic.ts";
import { diskHandle, Flight, TailHandle } from "./cache_handles.ts";
import { fsErrorToTftp } from "../fs_errors.ts";
import { type CacheEntry, cacheKey, CacheStore } from "./cache_store.ts";
import { type OriginBody, type OriginClient, redactUrl, type Validators } from "./origin_client.ts";

export type { CacheEntry } from "./cache_store.ts";

const log = getLogger("http");

/** Default `maxBytes`: 1 GiB. */
export const DEFAULT_CACHE_MAX_BYTES = 1024 ** 3;
/** Default `ttlSeconds`. */
export const DEFAULT_CACHE_TTL_SECONDS = 60;

const PUMP_CHUNK = 64 * 1024;

/** Options of {@linkcode HttpCache.open}. */
export interface CacheOptions {
  /** Bytes the cached files may take together (default 1 GiB). */
  maxBytes?: number;
  /** Seconds a copy is served without asking the origin (default 60; 0 = always revalidate). */
  ttlSeconds?: number;
  /** The clock, in ms since the epoch (default `Date.now`; for tests). */
  now?: () => number;
}

/** Counters, for logs and tests. */
export interface CacheStats {
  /** Served from disk without contacting the origin. */
  hits: number;
  /** Revalidated with a 304 and served from disk. */
  revalidated: number;
  /** Stale copies served because the origin failed. */
  staleServed: number;
  /** Origin downloads started (200 responses). */
  downloads: number;
  /** Downloads completed and kept. */
  stored: number;
  /** Requests that joined a request already in flight. */
  joined: number;
}

/**
 * The cache. Open it with {@linkcode HttpCache.open} and hand it to `HttpFileSource`.
 *
 * @example
 * ```ts
 * import { HttpCache } from "../../mod.ts";
 * import { HttpFileSource } from "../../mod.ts";
 * import { equal } from "node:assert/strict";
 *
 * let requests = 0; // at the origin: any HTTP server
 * const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
 *   requests++;
 *   return new Response("DEFAULT linux\n");
 * });
 * const dir = await Deno.makeTempDir(); // e.g. "/var/cache/tftpkit"
 * const cache = await HttpCache.open(dir, { maxBytes: 2 ** 30, ttlSeconds: 60 });
 * const base = `http://127.0.0.1:${origin.addr.port}/pxe/`;
 * const source = new HttpFileSource(base, { tree: true, cache });
 *
 * const peer: Deno.NetAddr = { transport: "udp", hostname: "10.0.0.9", port: 2000 };
 * for (let i = 0; i < 2; i++) {
 *   const file = await source.openRead("pxelinux.cfg/default", { peer, mode: "octet" });
 *   const buf = new Uint8Array(1024);
 *   let n = 0;
 *   for (let got; (got = await file.read(buf.subarray(n))) !== null;) n += got;
 *   file.close();
 *   equal(new TextDecoder().decode(buf.subarray(0, n)), "DEFAULT linux\n");
 *   await cache.settled();
 * }
 * equal(requests, 1); // the second read came from the cache
 * equal(cache.stats.hits, 1);
 *
 * await source.close(); // closes the cache too
 * await origin.shutdown();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class HttpCache {
  /** Counters since the cache was opened. */
  readonly stats: CacheStats = {
    hits: 0,
    revalidated: 0,
    staleServed: 0,
    downloads: 0,
    stored: 0,
    joined: 0,
  };
  readonly #store: CacheStore;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #flights = new Map<string, Flight>();
  #closing = false;

  private constructor(store: CacheStore, ttlMs: number, now: () => number) {
    this.#store = store;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  /**
   * Opens (creating it if needed) a cache directory. Partial downloads left by a crash are
   * removed; entries over `maxBytes` are evicted.
   *
   * @throws {RangeError} For a negative or non-finite `maxBytes` or `ttlSeconds`.
   * @throws {Deno.errors.NotCapable} Without write permission for `dir` (`--allow-write=DIR`).
   */
  static async open(dir: string, options?: CacheOptions): Promise<HttpCache> {
    options ??= {};
    const maxBytes = options.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
    const ttl = options.ttlSeconds ?? DEFAULT_CACHE_TTL_SECONDS;
    if (!(maxBytes >= 0) || !Number.isFinite(maxBytes)) {
      throw new RangeError(`cache size must be a non-negative number of bytes, got ${maxBytes}`);
    }
    if (!(ttl >= 0) || !Number.isFinite(ttl)) {
      throw new RangeError(`cache TTL must be a non-negative number of seconds, got ${ttl}`);
    }
    const store = await CacheStore.open(dir, maxBytes);
    return new HttpCache(store, ttl * 1000, options.now ?? Date.now);
  }

  /** The cache directory (real path). */
  get dir(): string {
    return this.#store.dir;
  }

  /** Number of cached files. */
  get entries(): number {
    return this.#store.size;
  }

  /** Bytes the cached files take together. */
  get bytes(): number {
    return this.#store.bytes;
  }

  /** The entry of `url`, if cached (a copy). */
  entry(url: URL | string): CacheEntry | undefined {
    const e = this.#store.get(cacheKey(String(url)));
    return e ? { ...e } : undefined;
  }

  /** Resolves once no origin request or download is in progress. */
  async settled(): Promise<void> {
    while (this.#flights.size > 0) {
      await Promise.all([...this.#flights.values()].map((f) => f.finished));
    }
  }

  /**
   * Opens `url` for reading: from disk when fresh, else through one shared origin request.
   *
   * @throws {RefusedError} As {@linkcode OriginClient.get} does (unless a stale copy can be served).
   */
  openRead(url: URL, origin: OriginClient): Promise<ReadHandle> {
    if (this.#closing) {
      return Promise.reject(new RefusedError(ErrorCode.NOT_DEFINED, "server shutting down"));
    }
    const key = cacheKey(url.href);
    const name = redactUrl(url);
    const running = this.#flights.get(key);
    if (running) {
      this.stats.joined++;
      return this.#join(running);
    }
    const entry = this.#store.get(key);
    if (entry && this.#now() - entry.fetchedAt < this.#ttlMs) {
      const file = this.#store.openSync(key, this.#now());
      if (file) {
        this.stats.hits++;
        log.debug("cache hit {url}", { url: name });
        return Promise.resolve(diskHandle(file, name));
      }
    }
    const flight = new Flight(key, url, name);
    this.#flights.set(key, flight);
    const joined = this.#join(flight);
    flight.finished = this.#run(flight, origin);
    return joined;
  }

  /** Registers a requester; synchronous except for the wait, so no state change slips between. */
  #join(f: Flight): Promise<ReadHandle> {
    if (f.state === "downloading") {
      try {
        return Promise.resolve(this.#tail(f));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => f.waiters.push({ resolve, reject }));
  }

  #tail(f: Flight): ReadHandle {
    try {
      return new TailHandle(f, Deno.openSync(f.temp, { read: true }));
    } catch (e) {
      throw fsErrorToTftp(e, "cache read error");
    }
  }

  /** Answers every waiter with `make()` (or its error). */
  #settle(f: Flight, make: () => ReadHandle): void {
    for (const w of f.waiters.splice(0)) {
      try {
        w.resolve(make());
      } catch (e) {
        w.reject(e);
      }
    }
  }

  #fromDisk(f: Flight): ReadHandle {
    const file = this.#store.openSync(f.key, this.#now());
    if (!file) throw new RefusedError(ErrorCode.NOT_DEFINED, "cache entry vanished; try again");
    return diskHandle(file, f.name);
  }

  async #run(f: Flight, origin: OriginClient): Promise<void> {
    let revalidate = true;
    for (;;) {
      const entry = this.#store.get(f.key);
      const validators: Validators | undefined = revalidate && entry
        ? { etag: entry.etag, lastModified: entry.lastModified }
        : undefined;
      const useful = validators && (validators.etag || validators.lastModified);
      let res;
      try {
        res = await origin.get(f.url, useful ? validators : undefined, f.controller.signal);
      } catch (e) {
        const error = this.#closing
          ? new RefusedError(ErrorCode.NOT_DEFINED, "server shutting down")
          : fsErrorToTftp(e, "origin unreachable");
        this.#flights.delete(f.key);
        const stale = this.#store.get(f.key);
        if (stale && error.code === ErrorCode.NOT_DEFINED && !this.#closing) {
          log.warn("origin failed for {url} ({error}): serving the cached copy", {
            url: f.name,
            error: error.message,
          });
          this.stats.staleServed += f.waiters.length;
          this.#settle(f, () => this.#fromDisk(f));
        } else {
          if (stale && error.code === ErrorCode.FILE_NOT_FOUND) this.#store.removeSync(f.key);
          for (const w of f.waiters.splice(0)) w.reject(error);
        }
        f.state = "failed";
        f.error = error;
        return;
      }
      if (res.status === 304) {
        if (!this.#store.get(f.key)) {
          // Evicted while we asked: fetch it again, unconditionally.
          revalidate = false;
          continue;
        }
        this.#store.refreshSync(f.key, {
          fetchedAt: this.#now(),
          etag: res.etag,
          lastModified: res.lastModified,
        });
        this.#flights.delete(f.key);
        this.stats.revalidated += f.waiters.length;
        log.debug("cache revalidated {url} (304)", { url: f.name });
        this.#settle(f, () => this.#fromDisk(f));
        f.state = "done";
        return;
      }
      return await this.#download(f, res.body!, res);
    }
  }

  async #download(f: Flight, body: OriginBody, res: Validators & { size?: number }) {
    this.stats.downloads++;
    f.body = body;
    f.size = res.size;
    let file: AtomicFile;
    try {
      file = await AtomicFile.create(this.#store.dataPath(f.key), {
        temp: this.#store.tempPath(f.key),
      });
      f.temp = file.temp;
    } catch (e) {
      body.cancel();
      this.#fail(f, fsErrorToTftp(e, "cache write error"));
      return;
    }
    f.state = "downloading";
    this.#settle(f, () => this.#tail(f));
    const buf = new Uint8Array(PUMP_CHUNK);
    try {
      for (;;) {
        const n = await body.read(buf);
        if (this.#closing) throw new RefusedError(ErrorCode.NOT_DEFINED, "server shutting down");
        if (n === null) break;
        await file.write(buf.subarray(0, n));
        f.written += n;
        f.notify();
      }
      // One synchronous step once the data is durable: move into place, index, evict, leave
      // the flight map.
      await file.commit((temp) => this.#keep(f, temp, res));
    } catch (e) {
      body.cancel();
      await file.abort();
      this.#fail(f, fsErrorToTftp(e, "cache write error"));
      return;
    }
  }

  /** Moves a complete download into the store (or drops it) and ends its flight. */
  #keep(f: Flight, temp: string, res: Validators): void {
    const now = this.#now();
    try {
      const kept = this.#store.commitSync(f.key, temp, {
        url: f.name,
        etag: res.etag,
        lastModified: res.lastModified,
        size: f.written,
        fetchedAt: now,
        lastUsed: now,
      });
      if (kept) this.stats.stored++;
      log.debug("cached {url} ({size} bytes)", { url: f.name, size: f.written });
    } catch (e) {
      log.warn("cannot store {url} in the cache: {error}", { url: f.name, error: String(e) });
      this.#removeTemp(f);
    }
    this.#flights.delete(f.key);
    f.state = "done";
    f.notify();
  }

  #fail(f: Flight, error: RefusedError): void {
    this.#flights.delete(f.key);
    f.error = error;
    f.state = "failed";
    for (const w of f.waiters.splice(0)) w.reject(error);
    this.#removeTemp(f);
    f.notify();
    if (!this.#closing) {
      log.warn("download of {url} failed: {error}", { url: f.name, error: error.message });
    }
  }

  #removeTemp(f: Flight): void {
    if (!f.temp) return;
    try {
      Deno.removeSync(f.temp);
    } catch {
      // already gone
    }
  }

  /**
   * Cancels origin requests and downloads in progress (their partial files are removed) and
   * resolves when they have stopped. Later `openRead` calls fail. Safe to call more than once.
   */
  async close(): Promise<void> {
    this.#closing = true;
    for (const f of this.#flights.values()) {
      f.controller.abort();
      f.body?.cancel();
    }
    await this.settled();
  }
}
