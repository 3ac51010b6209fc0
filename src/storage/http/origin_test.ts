/**
 * Unit tests of `HttpFileSource` (src/http/origin.ts): single-URL and tree mode, how names become
 * percent-encoded URLs, names refused before any request, credentials in the URL, and which URLs
 * are accepted.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { parseMapRules } from "../names.ts";
import type { FileSource } from "../source.ts";
import { HttpFileSource, treeUrl } from "./origin.ts";
import { bytesRoute, testBytes } from "../../../tests/support/http_origin.ts";
import { expectCode, info, readAll, withOrigin } from "../../../tests/support/http_unit.ts";

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
