/**
 * Unit tests of talking to the origin (src/http/origin_client.ts), through `HttpFileSource`:
 * HTTP statuses as TFTP errors, an unreachable origin, headers and idle timeouts, truncated
 * bodies, redirects, sizes and content encodings, reads into small buffers, and `close()`.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { HttpFileSource } from "./origin.ts";
import { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS } from "./origin_client.ts";
import { bytesRoute, testBytes } from "../../../tests/support/http_origin.ts";
import { expectCode, info, readAll, withOrigin } from "../../../tests/support/http_unit.ts";

Deno.test("HTTP status codes map to TFTP error codes", async (t) => {
  await withOrigin(async (origin) => {
    const cases: Array<[number, number, RegExp]> = [
      [404, 1, /file not found/],
      [410, 1, /file not found/],
      [401, 2, /access denied/],
      [403, 2, /access denied/],
      [500, 0, /^origin returned HTTP 500$/],
      [503, 0, /^origin returned HTTP 503$/],
      [204, 0, /^origin returned HTTP 204$/],
      [206, 0, /^origin returned HTTP 206$/],
      [304, 0, /^origin returned HTTP 304$/],
    ];
    for (const [status] of cases) {
      origin.route(
        `/s${status}`,
        () => new Response(status === 204 || status === 304 ? null : "x", { status }),
      );
    }
    const source = new HttpFileSource(`${origin.base}/`, { tree: true });
    try {
      for (const [status, code, message] of cases) {
        await t.step(`HTTP ${status} → ERROR ${code}`, async () => {
          await expectCode(source.openRead(`s${status}`, info), code, message);
        });
      }
    } finally {
      await source.close();
    }
  });
});

Deno.test("an unreachable origin is ERROR 0 'origin unreachable'", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const source = new HttpFileSource(`http://127.0.0.1:${port}/f`);
  try {
    await expectCode(source.openRead("f", info), 0, /^origin unreachable: /);
  } finally {
    await source.close();
  }
});

Deno.test("the default timeouts are shorter than a TFTP client's patience", () => {
  // A client at defaults (1 s timeout, 5 retries) gives up after about 6 s.
  ok(DEFAULT_HEADERS_TIMEOUT_MS < 6000);
  ok(DEFAULT_IDLE_TIMEOUT_MS < 6000);
});

Deno.test("slow headers time out with ERROR 0 well before the client would", async () => {
  await withOrigin(async (origin) => {
    origin.route("/slow", async () => {
      await origin.delay(5000);
      return new Response("late");
    });
    const source = new HttpFileSource(`${origin.base}/slow`, { headersTimeoutMs: 400 });
    try {
      const started = performance.now();
      await expectCode(
        source.openRead("x", info),
        0,
        /^origin unreachable: no response within 0\.4 s$/,
      );
      const took = performance.now() - started;
      ok(took >= 350 && took < 3000, `took ${took} ms`);
    } finally {
      await source.close();
    }
  });
});

Deno.test("a body that stalls makes read fail with ERROR 0 'origin stalled'", async () => {
  await withOrigin(async (origin) => {
    const first = testBytes(10_000, 5);
    let cancelled = false;
    origin.route("/stall", () =>
      new Response(
        origin.stream({
          start(c) {
            c.enqueue(first);
          },
          cancel() {
            cancelled = true;
          },
        }),
        { headers: { "content-length": "50000" } },
      ));
    const source = new HttpFileSource(`${origin.base}/stall`, { idleTimeoutMs: 400 });
    try {
      const h = await source.openRead("x", info);
      equal(h.size, 50000);
      const buf = new Uint8Array(65536);
      let got = 0;
      while (got < first.length) {
        const n = await h.read(buf.subarray(got));
        ok(n !== null && n > 0);
        got += n;
      }
      deepEqual(buf.subarray(0, got), first);
      const started = performance.now();
      await expectCode(h.read(buf), 0, /^origin stalled: no data for 0\.4 s$/);
      const took = performance.now() - started;
      ok(took >= 350 && took < 3000, `took ${took} ms`);
      await expectCode(h.read(buf), 0, /origin stalled/);
      h.close();
      // The origin sees the connection go away.
      for (let i = 0; i < 100 && !cancelled; i++) await new Promise((r) => setTimeout(r, 20));
      ok(cancelled, "the origin's stream was cancelled");
    } finally {
      await source.close();
    }
  });
});

Deno.test("a truncated body (connection closed early) fails with 'origin connection broken'", async (t) => {
  await withOrigin(async (origin) => {
    const part = testBytes(20_000, 9);
    // Content-Length promises more than is sent, then the connection is cut.
    origin.route("/cut", () =>
      new Response(
        origin.stream({
          start(c) {
            c.enqueue(part);
            setTimeout(() => c.error(new Error("cut")), 50);
          },
        }),
        { headers: { "content-length": "100000" } },
      ));
    const source = new HttpFileSource(`${origin.base}/`, { tree: true });
    try {
      await t.step("with a Content-Length", async () => {
        const h = await source.openRead("cut", info);
        equal(h.size, 100000);
        await expectCode(readAll(h), 0, /^origin connection broken/);
        h.close();
      });
    } finally {
      await source.close();
    }
  });
});

Deno.test("redirects are followed up to a limit and only to http(s)", async (t) => {
  await withOrigin(async (origin) => {
    const data = testBytes(4000, 11);
    origin.route("/data", bytesRoute(origin, () => data));
    origin.route("/r1", () => Response.redirect(`${origin.base}/r2`, 301));
    origin.route("/r2", () => new Response(null, { status: 307, headers: { location: "data" } }));
    origin.route(
      "/loop",
      () => new Response(null, { status: 302, headers: { location: "/loop" } }),
    );
    origin.route(
      "/file",
      () => new Response(null, { status: 302, headers: { location: "file:///etc/passwd" } }),
    );
    origin.route(
      "/ftp",
      () => new Response(null, { status: 308, headers: { location: "ftp://127.0.0.1/x" } }),
    );
    origin.route("/gone", () => Response.redirect(`${origin.base}/missing`, 302));
    const source = new HttpFileSource(`${origin.base}/`, { tree: true, maxRedirects: 3 });
    try {
      await t.step("a chain of two redirects (absolute, relative)", async () => {
        const h = await source.openRead("r1", info);
        equal(h.size, data.length);
        deepEqual(await readAll(h), data);
        h.close();
        equal(origin.count("/data"), 1);
      });
      await t.step("a loop stops after maxRedirects", async () => {
        await expectCode(source.openRead("loop", info), 0, /redirected more than 3 times/);
        equal(origin.count("/loop"), 4);
      });
      await t.step("file: and ftp: targets are refused", async () => {
        await expectCode(source.openRead("file", info), 0, /non-HTTP URL \(file:\)/);
        await expectCode(source.openRead("ftp", info), 0, /non-HTTP URL \(ftp:\)/);
      });
      await t.step("a redirect to a missing file is file not found", async () => {
        await expectCode(source.openRead("gone", info), 1);
      });
    } finally {
      await source.close();
    }
  });
});

Deno.test("size comes from Content-Length only for identity bodies", async (t) => {
  await withOrigin(async (origin) => {
    const data = testBytes(3000, 2);
    origin.route("/len", bytesRoute(origin, () => data));
    origin.route("/chunked", bytesRoute(origin, () => data, { noLength: true }));
    origin.route(
      "/identity",
      bytesRoute(origin, () => data, {
        headers: { "content-encoding": "identity" },
      }),
    );
    const encoded = (body: Uint8Array, encoding: string) => () =>
      new Response(body.slice(), {
        headers: { "content-encoding": encoding, "content-length": String(body.length) },
      });
    origin.route("/gz", encoded(gzipSync(data), "gzip"));
    origin.route("/zz", encoded(deflateSync(data), "deflate"));
    origin.route("/br", encoded(brotliCompressSync(data), "br"));
    const source = new HttpFileSource(`${origin.base}/`, { tree: true });
    try {
      for (const [name, size] of [["len", 3000], ["chunked", undefined], ["identity", 3000]]) {
        await t.step(`${name}: ${size}`, async () => {
          const h = await source.openRead(name as string, info);
          equal(h.size, size);
          deepEqual(await readAll(h), data);
          h.close();
        });
      }
      await t.step("a gzip or deflate body sent anyway is decoded, without a size", async () => {
        for (const name of ["gz", "zz"]) {
          const h = await source.openRead(name, info);
          equal(h.size, undefined);
          deepEqual(await readAll(h), data);
          h.close();
        }
      });
      await t.step("another encoding is refused with ERROR 0", async () => {
        await expectCode(source.openRead("br", info), 0, /unsupported Content-Encoding \(br\)/);
      });
      await t.step("the request asks for the bytes as they are", () => {
        for (const r of origin.requests) equal(r.headers.get("accept-encoding"), "identity");
      });
    } finally {
      await source.close();
    }
  });
});

Deno.test("read copies at most the buffer's length and keeps the rest of a chunk", async () => {
  await withOrigin(async (origin) => {
    const data = testBytes(200_000, 13);
    origin.route("/big", bytesRoute(origin, () => data, { chunk: 65536 }));
    const source = new HttpFileSource(`${origin.base}/big`);
    try {
      for (const size of [1, 100, 512, 65536, 300_000]) {
        const h = await source.openRead("x", info);
        if (size === 1) {
          // Byte by byte through the first few chunks, then the rest.
          const buf = new Uint8Array(1);
          for (let i = 0; i < 1000; i++) {
            equal(await h.read(buf), 1);
            equal(buf[0], data[i]);
          }
          const rest = await readAll(h, 4096);
          deepEqual(rest, data.subarray(1000));
        } else {
          deepEqual(await readAll(h, size), data);
        }
        h.close();
      }
    } finally {
      await source.close();
    }
  });
});

Deno.test("close() cancels the body and later reads return null", async () => {
  await withOrigin(async (origin) => {
    let cancelled = false;
    let sent = 0;
    origin.route("/endless", () =>
      new Response(origin.stream({
        pull(c) {
          sent += 65536;
          c.enqueue(new Uint8Array(65536));
        },
        cancel() {
          cancelled = true;
        },
      })));
    const source = new HttpFileSource(`${origin.base}/endless`);
    try {
      const h = await source.openRead("x", info);
      equal(h.size, undefined);
      const buf = new Uint8Array(1000);
      equal(await h.read(buf), 1000);
      h.close();
      equal(await h.read(buf), null);
      for (let i = 0; i < 100 && !cancelled; i++) await new Promise((r) => setTimeout(r, 20));
      ok(cancelled, "the origin saw the body cancelled");
      ok(sent < 64 * 1024 * 1024, `origin sent ${sent} bytes`);
    } finally {
      await source.close();
    }
  });
});
