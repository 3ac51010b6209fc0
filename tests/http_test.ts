/**
 * Serving from an HTTP origin end to end: an in-process tftpkit server (library `serve`) with an
 * `HttpFileSource`, a real HTTP origin (`Deno.serve`), and real clients (tftp-hpa, curl) plus our
 * own. Every transfer is compared byte for byte.
 */

import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { download, get, PeerError, serve, type Server, type TransferRecord } from "../src/mod.ts";
import { HttpCache } from "../src/http/cache.ts";
import { HttpFileSource, type HttpSourceOptions } from "../src/http/origin.ts";
import { bytesRoute, startOrigin, testBytes, type TestOrigin } from "./support/http_origin.ts";
import { RawPeer, request } from "./support/raw.ts";
import { run } from "./support/server.ts";

const HOST = "127.0.0.1";

interface Rig {
  origin: TestOrigin;
  server: Server;
  source: HttpFileSource;
  target: { hostname: string; port: number };
  records: TransferRecord[];
  dir: string;
}

/** Origin + tftpkit server over it + a temp dir; all closed and removed afterwards. */
async function withRig(
  setup: (origin: TestOrigin, dir: string) => Promise<HttpFileSource> | HttpFileSource,
  fn: (rig: Rig) => Promise<void>,
): Promise<void> {
  const origin = await startOrigin();
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-http-" });
  let source: HttpFileSource | undefined;
  let server: Server | undefined;
  try {
    source = await setup(origin, dir);
    const records: TransferRecord[] = [];
    server = await serve({
      source,
      hostname: HOST,
      port: 0,
      onTransfer: (r) => records.push(r),
    });
    await fn({
      origin,
      server,
      source,
      target: { hostname: HOST, port: server.port },
      records,
      dir,
    });
  } finally {
    await server?.close();
    await source?.close();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function tree(origin: TestOrigin, options: HttpSourceOptions = {}): HttpFileSource {
  return new HttpFileSource(`${origin.base}/pxe/`, { tree: true, ...options });
}

function hpa(port: number, remote: string, local: string) {
  return run("tftp", ["-m", "binary", HOST, String(port), "-c", "get", remote, local]);
}

function curl(port: number, remote: string, local: string, extra: string[] = []) {
  return run("curl", ["-sS", ...extra, "-o", local, `tftp://${HOST}:${port}/${remote}`]);
}

async function readOrEmpty(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch {
    return new Uint8Array(0);
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("real clients fetch files from an HTTP origin through tftpkit, byte for byte", async (t) => {
  const data = testBytes(1_500_000, 21);
  const small = testBytes(700, 22);
  await withRig((origin) => {
    origin.route("/pxe/images/boot.img", bytesRoute(origin, () => data));
    origin.route("/pxe/My%20File.bin", bytesRoute(origin, () => small));
    origin.route("/pxe/chunked.bin", bytesRoute(origin, () => data, { noLength: true }));
    origin.route("/pxe/old.img", () => Response.redirect(`${origin.base}/pxe/images/boot.img`));
    return tree(origin);
  }, async ({ origin, target, dir, records }) => {
    await t.step("tftp-hpa", async () => {
      const out = join(dir, "hpa.img");
      const r = await hpa(target.port, "images/boot.img", out);
      deepEqual(await readOrEmpty(out), data, r.stdout + r.stderr);
    });
    await t.step("curl, default and large block sizes", async () => {
      for (const extra of [[], ["--tftp-blksize", "8192"]]) {
        const out = join(dir, `curl${extra.length}.img`);
        const r = await curl(target.port, "images/boot.img", out, extra);
        equal(r.code, 0, r.stderr);
        deepEqual(await Deno.readFile(out), data);
      }
    });
    await t.step("our client, with tsize from Content-Length", async () => {
      const parts: Uint8Array<ArrayBuffer>[] = [];
      const result = await download(target, "\\images\\boot.img", {
        write: (d) => void parts.push(d.slice()),
        finish: () => Promise.resolve(),
      }, { blksize: 1468, windowsize: 16 });
      equal(result.tsize, data.length);
      deepEqual(new Uint8Array(await new Blob(parts).arrayBuffer()), data);
    });
    await t.step("a name with a space reaches the origin percent-encoded", async () => {
      deepEqual(await get(target, "My File.bin"), small);
      equal(origin.count("/pxe/My%20File.bin"), 1);
    });
    await t.step("a body without Content-Length (no tsize)", async () => {
      const parts: Uint8Array<ArrayBuffer>[] = [];
      const result = await download(target, "chunked.bin", {
        write: (d) => void parts.push(d.slice()),
        finish: () => Promise.resolve(),
      });
      equal(result.tsize, undefined);
      deepEqual(new Uint8Array(await new Blob(parts).arrayBuffer()), data);
    });
    await t.step("through a redirect", async () => {
      const out = join(dir, "redirected.img");
      const r = await curl(target.port, "old.img", out);
      equal(r.code, 0, r.stderr);
      deepEqual(await Deno.readFile(out), data);
    });
    await t.step("the server logs the URL it served", () => {
      const done = records.filter((r) => r.outcome === "ok" && r.file.includes("boot.img"));
      ok(done.length >= 4, JSON.stringify(records));
      for (const r of done) equal(r.path, `${origin.base}/pxe/images/boot.img`);
    });
  });
});

Deno.test("single-URL mode serves the one resource under every name", async () => {
  const data = testBytes(100_000, 23);
  await withRig((origin) => {
    origin.route("/floppy.img", bytesRoute(origin, () => data));
    return new HttpFileSource(`${origin.base}/floppy.img`);
  }, async ({ origin, target, dir }) => {
    deepEqual(await get(target, "whatever.bin"), data);
    const out = join(dir, "hpa.img");
    await hpa(target.port, "BOOT/FLOPPY.IMG", out);
    deepEqual(await readOrEmpty(out), data);
    equal(origin.count("/floppy.img"), 2);
    equal(origin.count(), 2);
  });
});

Deno.test("origin failures reach the client as TFTP errors before any OACK", async (t) => {
  const closed = Deno.listen({ hostname: HOST, port: 0 });
  const deadPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  await withRig((origin) => {
    origin.route("/pxe/forbidden", () => new Response("no", { status: 403 }));
    origin.route("/pxe/broken", () => new Response("oops", { status: 500 }));
    origin.route("/pxe/loop", () => Response.redirect(`${origin.base}/pxe/loop`));
    origin.route("/pxe/dead", () => Response.redirect(`http://${HOST}:${deadPort}/x`));
    return tree(origin);
  }, async ({ origin, target, dir, records }) => {
    const cases: Array<[string, number, RegExp]> = [
      ["missing", 1, /file not found/],
      ["forbidden", 2, /access denied/],
      ["broken", 0, /^origin returned HTTP 500$/],
      ["loop", 0, /redirected more than 5 times/],
      ["dead", 0, /^origin unreachable/],
      ["../etc/passwd", 2, /'\.\.'/],
    ];
    for (const [name, code, message] of cases) {
      await t.step(`${name}: ERROR ${code} as the first reply, even with options`, async () => {
        const peer = new RawPeer();
        try {
          await peer.send(
            request("RRQ", name, "octet", { blksize: "1428", tsize: "0" }),
            target.port,
          );
          const { packet } = await peer.expect(10_000);
          equal(packet.op, "ERROR");
          if (packet.op === "ERROR") {
            equal(packet.code, code);
            match(packet.message, message);
          }
          equal((await peer.drain(300)).length, 0, "nothing follows the ERROR");
        } finally {
          peer.close();
        }
      });
      await t.step(`${name}: our client reports PeerError ${code}`, async () => {
        await rejects(get(target, name), (e: unknown) => {
          ok(e instanceof PeerError, String(e));
          equal(e.code, code);
          match(e.peerMessage, message);
          return true;
        });
      });
    }
    await t.step("tftp-hpa shows the origin's refusal", async () => {
      const out = join(dir, "x");
      const r = await hpa(target.port, "forbidden", out);
      match(r.stdout + r.stderr, /Error code 2: access denied \(origin returned HTTP 403\)/);
      equal((await readOrEmpty(out)).length, 0);
    });
    equal(origin.count("/etc/passwd") + origin.count("/pxe/../etc/passwd"), 0);
    ok(
      records.every((r) => r.outcome === "refused"),
      JSON.stringify(records.map((r) => r.outcome)),
    );
  });
});

Deno.test("at default timeouts a slow origin is reported before the client gives up", async () => {
  await withRig((origin) => {
    origin.route("/pxe/slow", async () => {
      await origin.delay(20_000);
      return new Response("late");
    });
    return tree(origin);
  }, async ({ target }) => {
    const started = performance.now();
    // Our client at its defaults (1 s timeout, 5 retries) would give up after about 6 s.
    await rejects(get(target, "slow"), (e: unknown) => {
      ok(e instanceof PeerError, String(e));
      equal(e.code, 0);
      match(e.peerMessage, /^origin unreachable: no response within 4 s$/);
      return true;
    });
    const took = performance.now() - started;
    ok(took > 3500 && took < 5900, `took ${took} ms`);
  });
});

Deno.test("an origin that stalls or breaks mid-body ends the transfer with ERROR 0", async (t) => {
  const head = testBytes(300_000, 24);
  await withRig((origin) => {
    origin.route(
      "/pxe/stall",
      () =>
        new Response(origin.stream({ start: (c) => c.enqueue(head) }), {
          headers: { "content-length": "1000000" },
        }),
    );
    origin.route("/pxe/cut", () =>
      new Response(
        origin.stream({
          start(c) {
            c.enqueue(head);
            setTimeout(() => c.error(new Error("cut")), 100);
          },
        }),
        { headers: { "content-length": "1000000" } },
      ));
    return tree(origin);
  }, async ({ target, dir, records }) => {
    await t.step(
      "a stall: 'origin stalled' at the default 4 s, before our client gives up",
      async () => {
        let received = 0;
        const started = performance.now();
        await rejects(
          download(target, "stall", {
            write: (d) => void (received += d.length),
            finish: () => Promise.resolve(),
          }),
          (e: unknown) => {
            ok(e instanceof PeerError, String(e));
            equal(e.code, 0);
            match(e.peerMessage, /^origin stalled: no data for 4 s$/);
            return true;
          },
        );
        const took = performance.now() - started;
        ok(took > 3500 && took < 5900, `took ${took} ms`);
        ok(received <= head.length, `received ${received}`);
      },
    );
    await t.step("a truncated body: 'origin connection broken'; curl fails", async () => {
      await rejects(get(target, "cut"), (e: unknown) => {
        ok(e instanceof PeerError, String(e));
        equal(e.code, 0);
        match(e.peerMessage, /^origin connection broken/);
        return true;
      });
      const r = await curl(target.port, "cut", join(dir, "cut"));
      ok(r.code !== 0, "curl must fail");
    });
    await t.step("the server records the failures", () => {
      ok(records.some((r) => r.file === "stall" && r.outcome !== "ok" && /stalled/.test(r.error!)));
      ok(records.some((r) => r.file === "cut" && r.outcome !== "ok" && /broken/.test(r.error!)));
    });
  });
});

Deno.test("a 200 MB file streams through with flat memory", async () => {
  const CHUNK = 64 * 1024;
  const CHUNKS = 3200; // 200 MiB
  const template = testBytes(CHUNK, 25);
  const chunkAt = (i: number) => {
    const c = template.slice();
    new DataView(c.buffer).setUint32(0, i, true);
    return c;
  };
  const expected = createHash("sha256");
  for (let i = 0; i < CHUNKS; i++) expected.update(chunkAt(i));
  const want = expected.digest("hex");
  await withRig((origin) => {
    origin.route("/pxe/huge.img", () => {
      let i = 0;
      return new Response(
        origin.stream({
          pull(c) {
            if (i === CHUNKS) return c.close();
            c.enqueue(chunkAt(i++));
          },
        }),
        { headers: { "content-length": String(CHUNK * CHUNKS) } },
      );
    });
    return tree(origin);
  }, async ({ target }) => {
    const hash = createHash("sha256");
    let received = 0;
    let baseline = 0;
    let peak = 0;
    const sampler = setInterval(() => {
      const rss = Deno.memoryUsage().rss;
      if (baseline === 0 && received >= 16 * 1024 * 1024) baseline = rss;
      if (baseline) peak = Math.max(peak, rss);
    }, 50);
    try {
      const result = await download(target, "huge.img", {
        write(d) {
          hash.update(d);
          received += d.length;
        },
        finish: () => Promise.resolve(),
      }, { blksize: 1468, windowsize: 16 });
      equal(result.tsize, CHUNK * CHUNKS);
    } finally {
      clearInterval(sampler);
    }
    equal(received, CHUNK * CHUNKS);
    equal(hash.digest("hex"), want);
    ok(baseline > 0, "sampled during the transfer");
    const growth = (peak - baseline) / 1024 / 1024;
    ok(growth < 60, `RSS grew by ${growth.toFixed(1)} MB during the transfer`);
  });
});

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
