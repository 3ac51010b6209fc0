/**
 * Field compatibility, names: what PXE ROMs, iPXE and Windows boot clients ask for (see
 * shared/notes/field-clients.md) — leading slashes, backslashes, letter case with and without
 * `--ignore-case`, and `--map` rules — replayed with a raw UDP peer and the tftp-hpa client.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { bytes, tree, withServer } from "./support/field_fixture.ts";
import { rawDownload, RawErrorReply, withPeer } from "./support/raw_transfer.ts";
import { run, startServer } from "./support/server.ts";

/** Downloads `name` and returns the data, or the ERROR code as a number. */
async function getFile(
  port: number,
  name: string,
  options: Record<string, string> = {},
): Promise<Uint8Array | number> {
  return await withPeer(async (peer) => {
    try {
      return (await rawDownload(peer, port, name, { options })).data;
    } catch (e) {
      if (e instanceof RawErrorReply) return e.code;
      throw e;
    }
  });
}

Deno.test("names from PXE, iPXE and Windows boot clients resolve from the root", async (t) => {
  await using fx = await tree();
  await withServer([fx.dir], async (server) => {
    await t.step("/pxelinux.0, //pxelinux.0 and pxelinux.0 are the same file", async () => {
      for (const name of ["pxelinux.0", "/pxelinux.0", "//pxelinux.0", "/./pxelinux.0"]) {
        deepEqual(await getFile(server.port, name), bytes(fx, "pxelinux.0"), name);
      }
    });
    await t.step("\\Boot\\BCD finds Boot/BCD", async () => {
      deepEqual(await getFile(server.port, "\\Boot\\BCD"), bytes(fx, "Boot/BCD"));
      deepEqual(await getFile(server.port, "Boot\\BCD"), bytes(fx, "Boot/BCD"));
    });
    await t.step("without --ignore-case, BOOT/bcd is ERROR 1", async () => {
      equal(await getFile(server.port, "BOOT/bcd"), 1);
      equal(await getFile(server.port, "\\boot\\bcd"), 1);
    });
    await t.step("the tftp-hpa client fetches /sub/file", async () => {
      const out = await Deno.makeTempDir({ prefix: "tftpkit_field_out_" });
      try {
        const r = await run("tftp", [
          "-m",
          "binary",
          "127.0.0.1",
          String(server.port),
          "-c",
          "get",
          "/sub/file",
          join(out, "file"),
        ], { timeoutMs: 30_000 });
        equal(r.code, 0, r.stderr + r.stdout);
        deepEqual(await Deno.readFile(join(out, "file")), bytes(fx, "sub/file"));
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    });
  });
});

Deno.test("--ignore-case matches names that differ only in letter case", async (t) => {
  await using fx = await tree();
  await withServer([fx.dir, "--ignore-case"], async (server) => {
    await t.step("BOOT/bcd and \\boot\\bcd find Boot/BCD", async () => {
      deepEqual(await getFile(server.port, "BOOT/bcd"), bytes(fx, "Boot/BCD"));
      deepEqual(await getFile(server.port, "\\boot\\bcd"), bytes(fx, "Boot/BCD"));
      deepEqual(await getFile(server.port, "PXELINUX.0"), bytes(fx, "pxelinux.0"));
    });
    await t.step("a name matching no entry in any case is still ERROR 1", async () => {
      equal(await getFile(server.port, "BOOT/bcd.old"), 1);
    });
    // dup/ holds README and Readme. An exact match always wins; without one, the first match in
    // code-point order is used ("README" < "Readme" because 'E' < 'e') and a warning is logged.
    await t.step("of two files differing only in case, the exact match wins", async () => {
      deepEqual(await getFile(server.port, "dup/README"), bytes(fx, "dup/README"));
      deepEqual(await getFile(server.port, "dup/Readme"), bytes(fx, "dup/Readme"));
      deepEqual(await getFile(server.port, "DUP/Readme"), bytes(fx, "dup/Readme"));
    });
    await t.step("without an exact match, the first in code-point order wins", async () => {
      deepEqual(await getFile(server.port, "dup/readme"), bytes(fx, "dup/README"));
      deepEqual(await getFile(server.port, "DUP/rEADME"), bytes(fx, "dup/README"));
      await server.waitFor(/matches 2 entries ignoring case; using README/);
    });
  });
});

Deno.test("--map rewrites names by rule and cannot lead out of the root", async (t) => {
  await using fx = await tree();
  const rules = join(fx.dir, "..", `${fx.dir.split("/").pop()}.map`);
  await Deno.writeTextFile(
    rules,
    [
      "# firmware is kept under images/",
      "",
      "^fw/(.*)$ images/$1",
      "   # an indented comment",
      "^up/(.*)$ ../$1",
      "^(BCD)$ Boot/$1",
    ].join("\n") + "\n",
  );
  try {
    await withServer([fx.dir, "--map", rules], async (server) => {
      await t.step("fw/kernel is served from images/kernel", async () => {
        deepEqual(await getFile(server.port, "fw/kernel"), bytes(fx, "images/kernel"));
        deepEqual(await getFile(server.port, "BCD"), bytes(fx, "Boot/BCD"));
      });
      await t.step("names no rule matches are unchanged", async () => {
        deepEqual(await getFile(server.port, "images/kernel"), bytes(fx, "images/kernel"));
        equal(await getFile(server.port, "fw"), 1);
      });
      await t.step("a rule producing ../x is refused with ERROR 2", async () => {
        equal(await getFile(server.port, "up/pxelinux.0"), 2);
        equal(await getFile(server.port, "fw/../../pxelinux.0"), 2);
      });
    });
  } finally {
    await Deno.remove(rules);
  }
});

Deno.test("a --map file with an invalid expression on line 3 stops serve with exit 2", async () => {
  await using fx = await tree();
  const rules = join(fx.dir, "..", `${fx.dir.split("/").pop()}.bad.map`);
  await Deno.writeTextFile(rules, "# comment\n^a$ b\n^(unclosed x\n^c$ d\n");
  try {
    const server = await startServer([fx.dir, "--map", rules], { expectExit: true });
    equal(await server.exited, 2, server.lines.join("\n"));
    const text = server.lines.join("\n");
    match(text, /line 3/);
    ok(!/listening on/.test(text), "it never listened");
  } finally {
    await Deno.remove(rules);
  }
});
