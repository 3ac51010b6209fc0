/**
 * Unit tests of `HttpCache` (src/http/cache.ts) when things go wrong: a failed origin fetch
 * leaves nothing behind, a stale copy is served while the origin fails and dropped when it is
 * gone, and closing the cache cancels a download in progress.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { bytesRoute, testBytes } from "../../../tests/support/http_origin.ts";
import {
  expectCode,
  fetchVia,
  info,
  listDir,
  readAllAndClose as readAll,
  withCache,
} from "../../../tests/support/http_unit.ts";

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
