/**
 * Serving from an HTTP origin end to end through an `HttpCache`: repeat fetches, revalidation
 * after the TTL, LRU eviction, concurrent cold requests from real clients (tftp-hpa, curl) and
 * our own, and a failed origin fetch.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { get, PeerError } from "../src/mod.ts";
import { HttpCache } from "../src/storage/http/cache.ts";
import { curl, hpa, readOrEmpty, tree, withRig } from "./support/http_fixture.ts";
import { bytesRoute, testBytes } from "./support/http_origin.ts";
import { listDir } from "./support/files.ts";

Deno.test("with a cache", async (t) => {
  const clock = { now: 1_700_000_000_000 };
  let cache: HttpCache | undefined;
  const files = new Map<string, Uint8Array>([
    ["a.img", testBytes(120_000, 31)],
    ["b.img", testBytes(120_000, 32)],
    ["c.img", testBytes(120_000, 33)],
    ["cold.img", testBytes(900_000, 34)],
  ]);
  await withRig(async (origin, dir) => {
    for (const [name, data] of files) {
      const serveIt = bytesRoute(origin, () => data, { etag: `"${name}"` });
      origin.route(`/pxe/${name}`, async (req, seen) => {
        if (name === "cold.img") await origin.delay(300);
        return await serveIt(req, seen);
      });
    }
    origin.route("/pxe/cut.img", () =>
      new Response(
        origin.stream({
          start(c) {
            c.enqueue(testBytes(50_000, 35));
            setTimeout(() => c.error(new Error("cut")), 50);
          },
        }),
        { headers: { "content-length": "500000" } },
      ));
    cache = await HttpCache.open(join(dir, "cache"), {
      maxBytes: 300_000,
      ttlSeconds: 60,
      now: () => clock.now,
    });
    return tree(origin, { cache });
  }, async ({ origin, target, dir }) => {
    const c = cache!;
    await t.step("the second fetch does not hit the origin", async () => {
      const out1 = join(dir, "a1");
      await hpa(target.port, "a.img", out1);
      deepEqual(await readOrEmpty(out1), files.get("a.img"));
      await c.settled();
      clock.now += 1000;
      const out2 = join(dir, "a2");
      const r = await curl(target.port, "a.img", out2);
      equal(r.code, 0, r.stderr);
      deepEqual(await Deno.readFile(out2), files.get("a.img"));
      equal(origin.count("/pxe/a.img"), 1);
    });
    await t.step("after the TTL: If-None-Match, 304, served from the cache", async () => {
      clock.now += 61_000;
      deepEqual(await get(target, "a.img"), files.get("a.img"));
      equal(origin.count("/pxe/a.img"), 2);
      const last = origin.requests.at(-1)!;
      equal(last.path, "/pxe/a.img");
      equal(last.headers.get("if-none-match"), '"a.img"');
      equal(c.stats.revalidated, 1);
    });
    await t.step("LRU eviction at maxBytes", async () => {
      clock.now += 1000;
      deepEqual(await get(target, "b.img"), files.get("b.img"));
      await c.settled();
      clock.now += 1000;
      deepEqual(await get(target, "a.img"), files.get("a.img")); // a: most recently used
      clock.now += 1000;
      deepEqual(await get(target, "c.img"), files.get("c.img")); // 360 000 > 300 000: b goes
      await c.settled();
      equal(c.entries, 2);
      ok(c.entry(`${origin.base}/pxe/a.img`));
      ok(!c.entry(`${origin.base}/pxe/b.img`));
      const before = origin.count("/pxe/b.img");
      deepEqual(await get(target, "b.img"), files.get("b.img"));
      equal(origin.count("/pxe/b.img"), before + 1);
      await c.settled();
    });
    await t.step("concurrent cold requests from real clients: one origin GET", async () => {
      const want = files.get("cold.img")!;
      const outs = [0, 1, 2].map((i) => join(dir, `cold${i}`));
      const [h0, c1, c2, ours] = await Promise.all([
        hpa(target.port, "cold.img", outs[0]),
        curl(target.port, "cold.img", outs[1]),
        curl(target.port, "cold.img", outs[2], ["--tftp-blksize", "1468"]),
        get(target, "cold.img"),
      ]);
      deepEqual(await readOrEmpty(outs[0]), want, h0.stdout + h0.stderr);
      equal(c1.code, 0, c1.stderr);
      equal(c2.code, 0, c2.stderr);
      deepEqual(await Deno.readFile(outs[1]), want);
      deepEqual(await Deno.readFile(outs[2]), want);
      deepEqual(ours, want);
      equal(origin.count("/pxe/cold.img"), 1);
      await c.settled();
    });
    await t.step("a failed origin fetch leaves nothing in the cache", async () => {
      const before = await listDir(c.dir);
      await rejects(get(target, "cut.img"), (e: unknown) => {
        ok(e instanceof PeerError, String(e));
        equal(e.code, 0);
        return true;
      });
      await c.settled();
      deepEqual(await listDir(c.dir), before);
      ok(!(await listDir(c.dir)).some((n) => n.endsWith(".partial")));
      equal(c.entry(`${origin.base}/pxe/cut.img`), undefined);
    });
  });
});
