import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { TftpError } from "../errors.ts";
import type { ReadHandle, RequestInfo } from "../source.ts";
import { HttpCache } from "./cache.ts";
import { cacheKey } from "./cache_store.ts";
import { HttpFileSource } from "./origin.ts";
import {
  bytesRoute,
  startOrigin,
  testBytes,
  type TestOrigin,
} from "../../tests/support/http_origin.ts";

const info: RequestInfo = {
  peer: { transport: "udp", hostname: "127.0.0.1", port: 1 },
  mode: "octet",
};

async function readAll(h: ReadHandle, bufSize = 65536): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(bufSize);
  try {
    for (;;) {
      const n = await h.read(buf);
      if (n === null) break;
      parts.push(buf.slice(0, n));
    }
  } finally {
    h.close();
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function fetchVia(source: HttpFileSource, name: string): Promise<Uint8Array> {
  return await readAll(await source.openRead(name, info));
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

interface Fixture {
  origin: TestOrigin;
  dir: string;
  clock: { now: number };
  open(options?: { maxBytes?: number; ttlSeconds?: number }): Promise<{
    cache: HttpCache;
    source: HttpFileSource;
  }>;
}

/** An origin, a cache directory, a fake clock; everything closed and removed afterwards. */
async function withCache(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const origin = await startOrigin();
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-cache-" });
  const clock = { now: 1_700_000_000_000 };
  const sources: HttpFileSource[] = [];
  try {
    await fn({
      origin,
      dir,
      clock,
      async open(options = {}) {
        const cache = await HttpCache.open(`${dir}/cache`, { ...options, now: () => clock.now });
        const source = new HttpFileSource(`${origin.base}/`, {
          tree: true,
          cache,
          headersTimeoutMs: 2000,
          idleTimeoutMs: 1000,
        });
        sources.push(source);
        return { cache, source };
      },
    });
  } finally {
    for (const s of sources) await s.close();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function expectCode(p: Promise<unknown>, code: number, message?: RegExp): Promise<void> {
  await rejects(p, (e: unknown) => {
    ok(e instanceof TftpError, `expected a TftpError, got ${e}`);
    equal(e.code, code, `code for "${e.message}"`);
    if (message) match(e.message, message);
    return true;
  });
}

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

Deno.test("concurrent requests for an uncached URL share one origin GET", async (t) => {
  await withCache(async ({ origin, open }) => {
    const data = testBytes(500_000, 5);
    await t.step("all arriving before the headers", async () => {
      const slow = bytesRoute(origin, () => data);
      origin.route("/cold", async (req, seen) => {
        await origin.delay(300);
        return slow(req, seen);
      });
      const { cache, source } = await open();
      const results = await Promise.all(
        Array.from({ length: 6 }, () => fetchVia(source, "cold")),
      );
      for (const r of results) deepEqual(r, data);
      equal(origin.count("/cold"), 1);
      equal(cache.stats.joined, 5);
      await cache.settled();
      ok(cache.entry(`${origin.base}/cold`));
    });
    await t.step("joining while the body is still arriving", async () => {
      let pos = 0;
      const step = 50_000;
      origin.route("/trickle", () =>
        new Response(
          origin.stream({
            async pull(c) {
              if (pos >= data.length) return c.close();
              await origin.delay(30);
              c.enqueue(data.slice(pos, pos + step));
              pos += step;
            },
          }),
          { headers: { "content-length": String(data.length) } },
        ));
      const { cache, source } = await open();
      const first = await source.openRead("trickle", info);
      const buf = new Uint8Array(1000);
      equal(await first.read(buf), 1000);
      const late = await Promise.all([1, 2, 3].map(() => source.openRead("trickle", info)));
      ok(pos > 0 && pos < data.length, "joined mid-download");
      for (const h of late) equal(h.size, data.length);
      const rest = await Promise.all([readAll(first), ...late.map((h) => readAll(h, 777))]);
      deepEqual(rest[0], data.subarray(1000));
      for (const r of rest.slice(1)) deepEqual(r, data);
      equal(origin.count("/trickle"), 1);
      await cache.settled();
      equal(cache.entry(`${origin.base}/trickle`)!.size, data.length);
    });
  });
});

Deno.test("a requester that gives up does not stop the shared download", async () => {
  await withCache(async ({ origin, open }) => {
    const data = testBytes(400_000, 6);
    origin.route("/f", bytesRoute(origin, () => data, { chunk: 8192 }));
    const { cache, source } = await open();
    const quitter = await source.openRead("f", info);
    const stayer = await source.openRead("f", info);
    equal(await quitter.read(new Uint8Array(10)), 10);
    quitter.close();
    deepEqual(await readAll(stayer), data);
    await cache.settled();
    equal(origin.count("/f"), 1);
    deepEqual(await fetchVia(source, "f"), data);
    equal(origin.count("/f"), 1);
  });
});

Deno.test("a failed origin fetch leaves nothing in the cache", async (t) => {
  await withCache(async ({ origin, dir, open }) => {
    const part = testBytes(100_000, 7);
    origin.route("/cut", () =>
      new Response(
        origin.stream({
          start(c) {
            c.enqueue(part);
            setTimeout(() => c.error(new Error("cut")), 50);
          },
        }),
        { headers: { "content-length": "300000" } },
      ));
    origin.route("/stall", () =>
      new Response(origin.stream({ start: (c) => c.enqueue(part) }), {
        headers: { "content-length": "300000" },
      }));
    origin.route("/boom", () => new Response("no", { status: 500 }));
    const { cache, source } = await open();
    await t.step("truncated body: every reader fails, no partial file stays", async () => {
      const a = await source.openRead("cut", info);
      const b = await source.openRead("cut", info);
      await expectCode(readAll(a), 0, /origin connection broken/);
      await expectCode(readAll(b), 0, /origin connection broken/);
      await cache.settled();
      deepEqual(await listDir(`${dir}/cache`), []);
    });
    await t.step("stalled body: 'origin stalled', nothing kept", async () => {
      const h = await source.openRead("stall", info);
      await expectCode(readAll(h), 0, /origin stalled/);
      await cache.settled();
      deepEqual(await listDir(`${dir}/cache`), []);
    });
    await t.step("error statuses: nothing kept", async () => {
      await expectCode(source.openRead("boom", info), 0, /HTTP 500/);
      await expectCode(source.openRead("missing", info), 1);
      await cache.settled();
      deepEqual(await listDir(`${dir}/cache`), []);
      equal(cache.entries, 0);
    });
  });
});

Deno.test("a stale copy is served when the origin fails, and dropped when it is gone", async (t) => {
  await withCache(async ({ origin, clock, open }) => {
    const data = testBytes(20_000, 9);
    origin.route("/f", bytesRoute(origin, () => data, { etag: '"1"' }));
    const { cache, source } = await open({ ttlSeconds: 10 });
    deepEqual(await fetchVia(source, "f"), data);
    await cache.settled();
    await t.step("HTTP 503: stale copy served", async () => {
      origin.route("/f", () => new Response("down", { status: 503 }));
      clock.now += 20_000;
      deepEqual(await fetchVia(source, "f"), data);
      equal(cache.stats.staleServed, 1);
    });
    await t.step("HTTP 403: refused, copy kept", async () => {
      origin.route("/f", () => new Response("no", { status: 403 }));
      await expectCode(source.openRead("f", info), 2);
      ok(cache.entry(`${origin.base}/f`));
    });
    await t.step("HTTP 404: refused and the copy dropped", async () => {
      origin.route("/f", () => new Response("gone", { status: 404 }));
      await expectCode(source.openRead("f", info), 1);
      equal(cache.entry(`${origin.base}/f`), undefined);
      equal(cache.entries, 0);
    });
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

Deno.test("closing the cache cancels a download in progress and removes its partial file", async () => {
  await withCache(async ({ origin, dir, open }) => {
    origin.route("/slow", () =>
      new Response(
        origin.stream({
          async pull(c) {
            await origin.delay(50);
            c.enqueue(new Uint8Array(10_000));
          },
        }),
        { headers: { "content-length": "100000000" } },
      ));
    const { source } = await open();
    const h = await source.openRead("slow", info);
    ok((await h.read(new Uint8Array(100))) !== null);
    await source.close();
    await expectCode(readAll(h), 0, /shutting down/);
    deepEqual(await listDir(`${dir}/cache`), []);
    await expectCode(source.openRead("slow", info), 0, /shutting down/);
  });
});
