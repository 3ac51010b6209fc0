import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { TftpError } from "../errors.ts";
import { parseMapRules } from "../names.ts";
import type { FileSource, ReadHandle, RequestInfo } from "../source.ts";
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  HttpFileSource,
  treeUrl,
} from "./origin.ts";
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
  for (;;) {
    const n = await h.read(buf);
    if (n === null) break;
    ok(n > 0 && n <= bufSize, `read returned ${n}`);
    parts.push(buf.slice(0, n));
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function withOrigin(fn: (origin: TestOrigin) => Promise<void>): Promise<void> {
  const origin = await startOrigin();
  try {
    await fn(origin);
  } finally {
    await origin.close();
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

Deno.test("single-URL mode serves the one resource under every name, with its size", async () => {
  await withOrigin(async (origin) => {
    const data = testBytes(300_000, 7);
    origin.route("/fw.bin", bytesRoute(origin, () => data));
    const source = new HttpFileSource(`${origin.base}/fw.bin`);
    try {
      match(source.describe(), /fw\.bin under every name \(read-only\)/);
      equal((source as FileSource).openWrite, undefined);
      for (const name of ["fw.bin", "anything/else", "../../etc/passwd", "\\x"]) {
        const h = await source.openRead(name, info);
        equal(h.size, data.length);
        equal(h.name, `${origin.base}/fw.bin`);
        deepEqual(await readAll(h), data);
        h.close();
        h.close();
      }
      equal(origin.count("/fw.bin"), 4);
      equal(origin.count(), 4);
    } finally {
      await source.close();
    }
  });
});

Deno.test("tree mode maps names onto percent-encoded URL paths", async (t) => {
  await withOrigin(async (origin) => {
    const data = testBytes(5000, 3);
    const paths = [
      "/pxe/a%20b/c%3Fd",
      "/pxe/Boot/BCD",
      "/pxe/leading",
      "/pxe/100%25%23x",
      "/pxe/text/readme.txt",
      "/pxe/%C3%A9t%C3%A9",
    ];
    for (const p of paths) origin.route(p, bytesRoute(origin, () => data));
    const rules = parseMapRules("^(.*)\\.TXT$ text/$1.txt\n");
    const source = new HttpFileSource(`${origin.base}/pxe/`, { tree: true, rules });
    try {
      match(source.describe(), /^HTTP origin http:\/\/127\.0\.0\.1:\d+\/pxe\/ \(read-only\)$/);
      const cases: Array<[string, string]> = [
        ["a b/c?d", "/pxe/a%20b/c%3Fd"],
        ["\\Boot\\BCD", "/pxe/Boot/BCD"],
        ["//leading", "/pxe/leading"],
        ["100%#x", "/pxe/100%25%23x"],
        ["readme.TXT", "/pxe/text/readme.txt"],
        ["./été", "/pxe/%C3%A9t%C3%A9"],
      ];
      for (const [name, path] of cases) {
        await t.step(`${JSON.stringify(name)} → ${path}`, async () => {
          const before = origin.count(path);
          const h = await source.openRead(name, info);
          deepEqual(await readAll(h), data);
          h.close();
          equal(origin.count(path), before + 1);
        });
      }
      equal(origin.count(), cases.length, "no request went anywhere else");
    } finally {
      await source.close();
    }
  });
});

Deno.test("tree URLs keep the base's query and treat the base as a directory", () => {
  equal(treeUrl(new URL("http://h/pxe"), "a").href, "http://h/pxe/a");
  equal(treeUrl(new URL("http://h/pxe/?t=1"), "a/b c").href, "http://h/pxe/a/b%20c?t=1");
  equal(treeUrl(new URL("http://h/"), "%2e%2e/x").href, "http://h/%252e%252e/x");
  equal(treeUrl(new URL("http://h/"), "a;b=c&d").href, "http://h/a%3Bb%3Dc%26d");
});

Deno.test("tree mode refuses '..' and bad names before any HTTP request", async (t) => {
  await withOrigin(async (origin) => {
    const source = new HttpFileSource(`${origin.base}/pxe/`, { tree: true });
    try {
      for (const name of ["../x", "a/../../x", "a\\..\\x", "/..", "ctl\u0001", "bad\uFFFD", "/"]) {
        await t.step(JSON.stringify(name), async () => {
          await expectCode(source.openRead(name, info), 2);
        });
      }
      equal(origin.count(), 0, "no request reached the origin");
    } finally {
      await source.close();
    }
  });
});

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

Deno.test("credentials in the URL are sent as Basic auth and never shown", async () => {
  await withOrigin(async (origin) => {
    origin.route(
      "/private",
      (req) =>
        req.headers.get("authorization") === `Basic ${btoa("user:s3cret")}`
          ? new Response("ok")
          : new Response("no", { status: 401 }),
    );
    const url = origin.base.replace("http://", "http://user:s3cret@") + "/private";
    const source = new HttpFileSource(url);
    const anonymous = new HttpFileSource(`${origin.base}/private`);
    try {
      ok(!source.describe().includes("s3cret"), source.describe());
      const h = await source.openRead("x", info);
      equal(new TextDecoder().decode(await readAll(h)), "ok");
      ok(!h.name.includes("s3cret"), h.name);
      h.close();
      await expectCode(anonymous.openRead("x", info), 2);
    } finally {
      await source.close();
      await anonymous.close();
    }
  });
});

Deno.test("only http and https URLs are accepted", () => {
  for (const bad of ["ftp://h/x", "file:///etc/passwd", "not a url", "/relative"]) {
    let error: unknown;
    try {
      new HttpFileSource(bad);
    } catch (e) {
      error = e;
    }
    ok(error instanceof TypeError, `${bad}: ${error}`);
  }
});
