/**
 * Serving from an HTTP origin end to end: an in-process tftpkit server (library `serve`) with an
 * `HttpFileSource`, a real HTTP origin (`Deno.serve`), and real clients (tftp-hpa, curl) plus our
 * own — tree and single-URL mode, and a 200 MB file with flat memory. Every transfer is compared
 * byte for byte.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { download, get } from "../src/mod.ts";
import { HttpFileSource } from "../src/storage/http/origin.ts";
import { curl, hpa, readOrEmpty, tree, withRig } from "./support/http_fixture.ts";
import { bytesRoute, testBytes } from "./support/http_origin.ts";

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
