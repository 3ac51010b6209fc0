/**
 * Unit tests of `HttpCache` (src/http/cache.ts) through a caching `HttpFileSource`: what is kept
 * on disk, freshness and revalidation after the TTL, LRU eviction down to `maxBytes`, files too
 * large to keep, and reopening a cache directory.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { cacheKey } from "./cache_store.ts";
import { bytesRoute, testBytes } from "../../../tests/support/http_origin.ts";
import {
  fetchVia,
  info,
  listDir,
  readAllAndClose as readAll,
  withCache,
} from "../../../tests/support/http_unit.ts";

Deno.test("a completed download is kept and the next request does not hit the origin", async () => {
  await withCache(async ({ origin, dir, clock, open }) => {
    const data = testBytes(150_000, 1);
    origin.route("/a.bin", bytesRoute(origin, () => data, { etag: '"v1"', lastModified: "x" }));
    const { cache, source } = await open({ ttlSeconds: 60 });
    deepEqual(await fetchVia(source, "a.bin"), data);
    await cache.settled();
    equal(origin.count("/a.bin"), 1);
    clock.now += 10_000;
    const h = await source.openRead("a.bin", info);
    equal(h.size, data.length);
    deepEqual(await readAll(h), data);
    equal(origin.count("/a.bin"), 1, "served from disk");
    equal(cache.stats.hits, 1);
    const url = `${origin.base}/a.bin`;
    const key = cacheKey(url);
    deepEqual(await listDir(`${dir}/cache`), [`${key}.data`, `${key}.json`]);
    const meta = JSON.parse(await Deno.readTextFile(`${dir}/cache/${key}.json`));
    deepEqual(meta, {
      url,
      etag: '"v1"',
      lastModified: "x",
      size: data.length,
      fetchedAt: clock.now - 10_000,
      lastUsed: clock.now,
    });
    deepEqual(await Deno.readFile(`${dir}/cache/${key}.data`), data);
  });
});

Deno.test("after the TTL a copy is revalidated with a conditional GET", async (t) => {
  await withCache(async ({ origin, clock, open }) => {
    let version = 1;
    const body = () => testBytes(40_000, version);
    origin.route(
      "/etag",
      (req, seen) => bytesRoute(origin, body, { etag: `"v${version}"` })(req, seen),
    );
    origin.route(
      "/lm",
      bytesRoute(origin, body, { lastModified: "Wed, 01 Jan 2025 00:00:00 GMT" }),
    );
    const { cache, source } = await open({ ttlSeconds: 60 });
    const start = clock.now;
    deepEqual(await fetchVia(source, "etag"), testBytes(40_000, 1));
    await t.step("fresh: no request", async () => {
      clock.now = start + 59_000;
      deepEqual(await fetchVia(source, "etag"), testBytes(40_000, 1));
      equal(origin.count("/etag"), 1);
    });
    await t.step("stale: If-None-Match, 304, served from disk, fetchedAt refreshed", async () => {
      clock.now = start + 61_000;
      deepEqual(await fetchVia(source, "etag"), testBytes(40_000, 1));
      equal(origin.count("/etag"), 2);
      equal(origin.requests.at(-1)!.headers.get("if-none-match"), '"v1"');
      equal(cache.stats.revalidated, 1);
      equal(cache.entry(`${origin.base}/etag`)!.fetchedAt, start + 61_000);
      clock.now = start + 100_000;
      deepEqual(await fetchVia(source, "etag"), testBytes(40_000, 1));
      equal(origin.count("/etag"), 2, "fresh again after the 304");
    });
    await t.step("stale and changed: 200 replaces the copy", async () => {
      version = 2;
      clock.now = start + 200_000;
      deepEqual(await fetchVia(source, "etag"), testBytes(40_000, 2));
      await cache.settled();
      equal(origin.count("/etag"), 3);
      equal(cache.entry(`${origin.base}/etag`)!.etag, '"v2"');
      equal(cache.entries, 1);
      equal(cache.bytes, 40_000);
      clock.now += 1000;
      deepEqual(await fetchVia(source, "etag"), testBytes(40_000, 2));
      equal(origin.count("/etag"), 3);
    });
    await t.step("Last-Modified only: If-Modified-Since", async () => {
      deepEqual(await fetchVia(source, "lm"), testBytes(40_000, 2));
      await cache.settled();
      clock.now += 61_000;
      deepEqual(await fetchVia(source, "lm"), testBytes(40_000, 2));
      const last = origin.requests.at(-1)!;
      equal(last.path, "/lm");
      equal(last.headers.get("if-modified-since"), "Wed, 01 Jan 2025 00:00:00 GMT");
      equal(last.headers.get("if-none-match"), null);
    });
  });
});

Deno.test("TTL 0 revalidates every request", async () => {
  await withCache(async ({ origin, open }) => {
    const data = testBytes(10_000, 4);
    origin.route("/f", bytesRoute(origin, () => data, { etag: '"e"' }));
    const { cache, source } = await open({ ttlSeconds: 0 });
    for (let i = 0; i < 3; i++) {
      deepEqual(await fetchVia(source, "f"), data);
      await cache.settled();
    }
    equal(origin.count("/f"), 3);
    equal(cache.stats.downloads, 1);
    equal(cache.stats.revalidated, 2);
  });
});

Deno.test("least recently used entries are evicted down to maxBytes", async () => {
  await withCache(async ({ origin, dir, clock, open }) => {
    for (const [name, seed] of [["a", 1], ["b", 2], ["c", 3]] as const) {
      origin.route(`/${name}`, bytesRoute(origin, () => testBytes(100_000, seed)));
    }
    const { cache, source } = await open({ maxBytes: 250_000, ttlSeconds: 3600 });
    const get = async (name: string, seed: number) => {
      clock.now += 1000;
      deepEqual(await fetchVia(source, name), testBytes(100_000, seed));
      await cache.settled();
    };
    await get("a", 1);
    await get("b", 2);
    await get("a", 1); // a is now more recently used than b
    equal(origin.count(), 2);
    await get("c", 3); // 300 000 > 250 000: b goes
    equal(cache.entries, 2);
    equal(cache.bytes, 200_000);
    ok(cache.entry(`${origin.base}/a`));
    ok(!cache.entry(`${origin.base}/b`));
    ok(cache.entry(`${origin.base}/c`));
    const files = await listDir(`${dir}/cache`);
    equal(files.length, 4);
    ok(!files.some((f) => f.startsWith(cacheKey(`${origin.base}/b`))));
    await get("a", 1);
    await get("c", 3);
    equal(origin.count(), 3);
    await get("b", 2); // fetched again; evicts a (least recently used now)
    equal(origin.count("/b"), 2);
    ok(!cache.entry(`${origin.base}/a`));
  });
});

Deno.test("a file larger than maxBytes is served but not kept", async () => {
  await withCache(async ({ origin, dir, open }) => {
    const data = testBytes(300_000, 8);
    origin.route("/big", bytesRoute(origin, () => data));
    const { cache, source } = await open({ maxBytes: 100_000 });
    deepEqual(await fetchVia(source, "big"), data);
    await cache.settled();
    deepEqual(await listDir(`${dir}/cache`), []);
    deepEqual(await fetchVia(source, "big"), data);
    equal(origin.count("/big"), 2);
  });
});

Deno.test("reopening a cache keeps complete entries and removes partial files", async () => {
  await withCache(async ({ origin, dir, open }) => {
    const data = testBytes(30_000, 10);
    origin.route("/f", bytesRoute(origin, () => data));
    const first = await open({ ttlSeconds: 3600 });
    deepEqual(await fetchVia(first.source, "f"), data);
    await first.source.close();
    const key = cacheKey(`${origin.base}/f`);
    const other = "0".repeat(64);
    await Deno.writeTextFile(`${dir}/cache/${key}.1234abcd.partial`, "half");
    await Deno.writeTextFile(`${dir}/cache/${other}.json`, "{not json");
    await Deno.writeTextFile(`${dir}/cache/${"1".repeat(64)}.data`, "orphan");
    await Deno.writeTextFile(`${dir}/cache/notes.txt`, "not ours");
    const second = await open({ ttlSeconds: 3600 });
    equal(second.cache.entries, 1);
    deepEqual(await listDir(`${dir}/cache`), [`${key}.data`, `${key}.json`, "notes.txt"]);
    deepEqual(await fetchVia(second.source, "f"), data);
    equal(origin.count("/f"), 1);
  });
});
