/**
 * Field compatibility, transfers: what UEFI firmware, bootloaders, BMCs and switches send (see
 * shared/notes/field-clients.md) — a tsize probe, options on an empty or missing file, and
 * `--single-port` — replayed with a raw UDP peer and curl.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { bytes, tree, withServer } from "./support/field_fixture.ts";
import { RawPeer, request } from "./support/raw.ts";
import { errorOf, rawDownload, withPeer } from "./support/raw_transfer.ts";
import { run } from "./support/server.ts";

Deno.test("a UEFI tsize probe ends quietly, is logged as a probe, then the file is served", async () => {
  await using fx = await tree();
  await withServer([fx.dir, "--timeout", "1"], async (server) => {
    const probe = new RawPeer();
    try {
      await probe.send(
        request("RRQ", "pxelinux.0", "octet", { tsize: "0", blksize: "1468" }),
        server.port,
      );
      const o = await probe.expect();
      deepEqual(o.packet, {
        op: "OACK",
        options: new Map([["tsize", "3000"], ["blksize", "1468"]]),
      });
      await probe.send(errorOf(8, "User aborted the transfer"), o.from.port);
      deepEqual(await probe.drain(2500), [], "no packet after the client's ERROR 8");
    } finally {
      probe.close();
    }
    const line = await server.waitFor(new RegExp(`127\\.0\\.0\\.1:${probe.port} RRQ`));
    match(line, /\bINFO\b.*size probe/);
    await withPeer(async (peer) => {
      const r = await rawDownload(peer, server.port, "pxelinux.0", {
        options: { blksize: "1468" },
      });
      deepEqual(Object.fromEntries(r.oack!), { blksize: "1468" });
      deepEqual(r.data, bytes(fx, "pxelinux.0"));
      const done = await server.waitFor(new RegExp(`127\\.0\\.0\\.1:${peer.port} RRQ`));
      match(done, /\bINFO\b.* ok: sent 3000 bytes/);
    });
    ok(!server.lines.some((l) => /WARN|ERROR/.test(l)), server.lines.join("\n"));
  });
});

Deno.test("an empty file gets an OACK without tsize, and curl downloads it", async (t) => {
  await using fx = await tree();
  await withServer([fx.dir], async (server) => {
    await t.step("tsize 0 + blksize on an empty file: OACK carries blksize only", async () => {
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "empty", {
          options: { tsize: "0", blksize: "1468" },
        });
        deepEqual(Object.fromEntries(r.oack!), { blksize: "1468" });
        equal(r.data.length, 0);
        deepEqual(r.wireBlocks, [1]);
      });
    });
    await t.step("curl tftp:// gets an empty file and a non-empty one", async () => {
      const out = await Deno.makeTempDir({ prefix: "tftpkit_field_curl_" });
      try {
        for (const name of ["empty", "pxelinux.0"]) {
          const r = await run("curl", [
            "-sS",
            "--max-time",
            "30",
            "-o",
            join(out, name),
            `tftp://127.0.0.1:${server.port}/${name}`,
          ], { timeoutMs: 40_000 });
          equal(r.code, 0, r.stderr);
          deepEqual(await Deno.readFile(join(out, name)), bytes(fx, name), name);
        }
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    });
  });
});

Deno.test("a missing file requested with options gets ERROR 1 and never an OACK", async () => {
  await using fx = await tree();
  await withServer([fx.dir, "--timeout", "1"], async (server) => {
    for (const name of ["bootcfg.txt", "/pxelinux.cfg/01-aa-bb-cc-dd-ee-ff", "Boot/missing"]) {
      await withPeer(async (peer) => {
        await peer.send(
          request("RRQ", name, "octet", { tsize: "0", blksize: "1468" }),
          server.port,
        );
        const first = await peer.expect();
        equal(first.packet.op, "ERROR", name);
        if (first.packet.op === "ERROR") equal(first.packet.code, 1);
        deepEqual(await peer.drain(1300), [], "nothing after the ERROR");
      });
    }
  });
});

Deno.test("--single-port runs every transfer over the listening port", async (t) => {
  await using fx = await tree();
  await withServer([fx.dir, "--single-port", "--timeout", "1"], async (server) => {
    await t.step("DATA comes from the listening port itself", async () => {
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "pxelinux.0");
        equal(r.tid.port, server.port);
        deepEqual(r.data, bytes(fx, "pxelinux.0"));
      });
    });
    await t.step("two concurrent clients each get their own file", async () => {
      let arrived = 0;
      let release!: () => void;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const both = new Promise<void>((resolve, reject) => {
        release = () => {
          clearTimeout(timer);
          resolve();
        };
        timer = setTimeout(() => reject(new Error("the other transfer never started")), 15_000);
      });
      // Each client holds its ACK 1 until both have DATA 1: the transfers overlap for sure.
      const hold = async (block: number) => {
        if (block !== 1) return;
        if (++arrived === 2) release();
        await both;
      };
      const [a, b] = await Promise.all([
        withPeer((peer) => rawDownload(peer, server.port, "big.img", { onBlock: hold })),
        withPeer((peer) => rawDownload(peer, server.port, "Boot/BCD", { onBlock: hold })),
      ]);
      equal(a.tid.port, server.port);
      equal(b.tid.port, server.port);
      deepEqual(a.data, bytes(fx, "big.img"));
      deepEqual(b.data, bytes(fx, "Boot/BCD"));
    });
    await t.step("a windowed transfer works", async () => {
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "big.img", {
          options: { windowsize: "4", blksize: "1024" },
        });
        equal(r.tid.port, server.port);
        equal(r.windowsize, 4);
        deepEqual(r.data, bytes(fx, "big.img"));
        for (const [block, n] of r.counts) equal(n, 1, `DATA ${block}`);
      });
    });
    await t.step("an unacknowledged DATA is resent after the timeout", async () => {
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "sub/file", {
          onBlock: async (block, tid) => {
            if (block !== 1) return;
            const start = performance.now();
            const again = await peer.expect(5000);
            deepEqual(again.packet.op === "DATA" && again.packet.block, 1);
            equal(again.from.port, tid.port);
            const waited = performance.now() - start;
            ok(waited >= 800, `resent after ${Math.round(waited)} ms`);
          },
        });
        equal(r.tid.port, server.port);
        deepEqual(r.data, bytes(fx, "sub/file"));
      });
    });
    await t.step("a stranger's ACK to the port gets ERROR 5 and disturbs nothing", async () => {
      await withPeer(async (peer) => {
        const stranger = new RawPeer();
        try {
          const r = await rawDownload(peer, server.port, "sub/file", {
            onBlock: async (block) => {
              if (block !== 2) return;
              await stranger.send(new Uint8Array([0, 4, 0, 2]), server.port);
              const e = await stranger.expect();
              deepEqual(e.packet.op === "ERROR" && e.packet.code, 5);
            },
          });
          deepEqual(r.data, bytes(fx, "sub/file"));
          for (const [block, n] of r.counts) equal(n, 1, `DATA ${block}`);
        } finally {
          stranger.close();
        }
      });
    });
  });
});
