/**
 * `tftpkit serve URL` and `serve --origin URL/` from the command line, with exactly
 * `--allow-net --allow-read`, against a real HTTP origin in the test and a real TFTP client.
 */

import { deepEqual, equal, match } from "node:assert/strict";
import { join } from "node:path";
import { makeFile, run, startServer } from "./support/server.ts";

Deno.test("serve URL and serve --origin URL/ fetch through HTTP", async (t) => {
  const dir = await Deno.makeTempDir();
  const image = await makeFile(join(dir, "image.bin"), 300_000, 3);
  const sub = new Uint8Array(5000).fill(7);
  const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/pxe/image.bin" || path === "/one") {
      return new Response(image as Uint8Array<ArrayBuffer>);
    }
    if (path === "/pxe/a%20b/c") return new Response(sub);
    return new Response("no", { status: 404 });
  });
  const base = `http://127.0.0.1:${origin.addr.port}`;
  try {
    await t.step("serve URL answers every name with the resource", async () => {
      const s = await startServer([`${base}/one`]);
      try {
        match(s.lines.join("\n"), /listening on .* serving/);
        const out = join(dir, "got1");
        await run("tftp", [
          "127.0.0.1",
          String(s.port),
          "-m",
          "binary",
          "-c",
          "get",
          "any/name",
          out,
        ]);
        deepEqual(await Deno.readFile(out), image);
      } finally {
        equal(await s.stop(), 0);
      }
    });
    await t.step("serve --origin URL/ maps names below the URL, 404 is ERROR 1", async () => {
      const s = await startServer(["--origin", `${base}/pxe/`]);
      try {
        const out = join(dir, "got2");
        await run("tftp", [
          "127.0.0.1",
          String(s.port),
          "-m",
          "binary",
          "-c",
          "get",
          "/image.bin",
          out,
        ]);
        deepEqual(await Deno.readFile(out), image);
        const out3 = join(dir, "got3");
        await run("tftp", [
          "127.0.0.1",
          String(s.port),
          "-m",
          "binary",
          "-c",
          "get",
          "a b/c",
          out3,
        ]);
        deepEqual(await Deno.readFile(out3), sub);
        const r = await run("tftp", [
          "127.0.0.1",
          String(s.port),
          "-m",
          "binary",
          "-c",
          "get",
          "missing",
          join(dir, "m"),
        ]);
        match(r.stdout + r.stderr, /Error code 1/);
      } finally {
        equal(await s.stop(), 0);
      }
    });
    await t.step("--cache without an HTTP source is a usage error", async () => {
      const s = await startServer([dir, "--cache", dir], { expectExit: true });
      equal(await s.exited, 2);
      match(s.lines.join("\n"), /--cache/);
    });
  } finally {
    await origin.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
