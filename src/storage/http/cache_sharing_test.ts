/**
 * Unit tests of `HttpCache` (src/http/cache.ts) sharing downloads: concurrent requests for an
 * uncached URL, before the headers or mid-body, make one origin GET, and a requester that gives
 * up does not stop it.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { bytesRoute, testBytes } from "../../../tests/support/http_origin.ts";
import {
  fetchVia,
  info,
  readAllAndClose as readAll,
  withCache,
} from "../../../tests/support/http_unit.ts";

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
