/**
 * Serving from an HTTP origin end to end: an in-process tftpkit server (library `serve`) with an
 * `HttpFileSource`, a real HTTP origin (`Deno.serve`), and real clients (tftp-hpa, curl) plus our
 * own — tree and single-URL mode; and a 200 MB file with flat memory through `serve --origin` in
 * a process of its own. Every transfer is compared byte for byte.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { download, get } from "../src/mod.ts";
import { HttpFileSource } from "../src/storage/http/origin.ts";
import { curl, HOST, hpa, readOrEmpty, tree, withRig } from "./support/http_fixture.ts";
import { bytesRoute, startOrigin, testBytes } from "./support/http_origin.ts";
import { type ServerProcess, startServer } from "./support/server.ts";
import { statusKb } from "../src/testing/proc.ts";
import { V8_FLAGS } from "../scripts/release/plan.ts";

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

Deno.test("a 200 MB file streams through a served origin with flat memory", async () => {
  // The server runs as its own process (as shipped: `serve URL`, the binaries' V8 flags), so its
  // resident memory is its own: `deno test --parallel` runs every test module in this one process,
  // and their allocations would otherwise count against this transfer.
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
  const origin = await startOrigin();
  let srv: ServerProcess | undefined;
  try {
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
    srv = await startServer(["--origin", `${origin.base}/pxe/`, "--workers", "1"], {
      denoFlags: [V8_FLAGS],
    });
    const pid = srv.child.pid;
    const hash = createHash("sha256");
    let received = 0;
    let baseline = 0;
    let peak = 0;
    let samples = 0;
    let sampling = Promise.resolve();
    const sampler = setInterval(() => {
      sampling = sampling.then(async () => {
        const rss = await statusKb(pid, "VmRSS").catch(() => 0);
        if (baseline === 0 && received >= 16 * 1024 * 1024) baseline = rss;
        if (baseline && rss) peak = Math.max(peak, rss), samples++;
      });
    }, 50);
    try {
      const result = await download({ hostname: HOST, port: srv.port }, "huge.img", {
        write(d) {
          hash.update(d);
          received += d.length;
        },
        finish: () => Promise.resolve(),
      }, { blksize: 1468, windowsize: 16 });
      equal(result.tsize, CHUNK * CHUNKS);
    } finally {
      clearInterval(sampler);
      await sampling;
    }
    equal(received, CHUNK * CHUNKS);
    equal(hash.digest("hex"), want);
    equal(origin.count("/pxe/huge.img"), 1, "one GET, streamed");
    ok(samples >= 10, `sampled the server during the transfer (${samples} samples)`);
    const growth = (peak - baseline) / 1024;
    ok(growth < 48, `the server's RSS grew by ${growth.toFixed(1)} MiB during the transfer`);
    console.log(`server RSS ${(baseline / 1024).toFixed(1)} -> ${(peak / 1024).toFixed(1)} MiB`);
  } finally {
    await srv?.stop();
    await origin.close();
  }
});
