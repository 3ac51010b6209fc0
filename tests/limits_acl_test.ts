/**
 * Access control of `tftpkit serve`: --allow/--deny for IPv4 and IPv6, where a refused peer gets
 * no answer at all.
 */

import assert from "node:assert/strict";
import { get } from "../src/mod.ts";
import { decode } from "../src/wire/packet.ts";
import { RawPeer, request } from "./support/raw.ts";
import { makeFile, type ServerProcess, startServer } from "./support/server.ts";
import { finishDownload, holdDownload } from "../src/testing/proc.ts";
import { assertBytes, HOST, withDir } from "./support/limits_fixture.ts";

/**
 * The listening port from the server's "listening on" line. (`startServer().port` misreads an
 * IPv6 line such as `listening on [::1]:40856` as port 1, so IPv6 servers use this.)
 */
function listeningPort(srv: ServerProcess): number {
  const line = srv.lines.find((l) => l.includes("listening on "));
  const m = line && /listening on (?:\[[^\]]*\]|[^\s:]+):(\d+)/.exec(line);
  if (!m) throw new Error(`no listening line in ${srv.lines.join("\n")}`);
  return Number(m[1]);
}

/** Asserts that nothing at all arrives at `peer` within `ms`. */
async function assertSilence(peer: RawPeer, ms: number, what: string) {
  const got = await peer.drain(ms);
  assert.deepEqual(
    got.map((g) => `${g.from.port}: ${JSON.stringify(decode(g.data))}`),
    [],
    `${what}: no datagram may arrive`,
  );
}

Deno.test("--allow and --deny: refused peers get no answer at all, IPv4 and IPv6", async (t) => {
  await withDir("limits_acl_", async (dir) => {
    const file = await makeFile(`${dir}/f.bin`, 1200, 5);
    const data = (block: number) => new Uint8Array([0, 3, 0, block, 1, 2, 3]);

    await t.step("--allow 127.0.0.2/32 serves 127.0.0.2 and ignores 127.0.0.1", async () => {
      const srv = await startServer([dir, "-v", "--allow", "127.0.0.2/32"]);
      const ok = new RawPeer("127.0.0.2");
      const no = new RawPeer("127.0.0.1");
      try {
        const h = await holdDownload(ok, request("RRQ", "f.bin"), srv.port);
        assertBytes(await finishDownload(h), file, "download from 127.0.0.2");
        await no.send(request("RRQ", "f.bin"), srv.port);
        await no.send(request("WRQ", "w.bin"), srv.port);
        await no.send(data(1), srv.port); // would draw ERROR 5 from an allowed peer
        await no.send(new Uint8Array([0, 9, 1]), srv.port); // would draw ERROR 4
        await assertSilence(no, 1500, "127.0.0.1 is not in --allow");
        await srv.waitFor(new RegExp(`from 127\\.0\\.0\\.1:${no.port}: not allowed`));
      } finally {
        ok.close();
        no.close();
        await srv.stop();
      }
    });

    await t.step("--deny 127.0.0.2 wins over --allow 127.0.0.0/8", async () => {
      const srv = await startServer([
        dir,
        "-v",
        "--allow",
        "127.0.0.0/8",
        "--deny",
        "127.0.0.2",
      ]);
      const no = new RawPeer("127.0.0.2");
      try {
        assertBytes(await get({ hostname: HOST, port: srv.port }, "f.bin"), file, "127.0.0.1");
        await no.send(request("RRQ", "f.bin"), srv.port);
        await no.send(data(1), srv.port);
        await assertSilence(no, 1500, "127.0.0.2 is denied");
        await srv.waitFor(new RegExp(`from 127\\.0\\.0\\.2:${no.port}: not allowed`));
      } finally {
        no.close();
        await srv.stop();
      }
    });

    await t.step(
      "IPv6 on ::1: --deny ::1/128 and an IPv4-only --allow ignore ::1, --allow ::1/128 serves it",
      async () => {
        const deny = await startServer([dir, "-v", "--address", "::1", "--deny", "::1/128"]);
        const v4only = await startServer([
          dir,
          "-v",
          "--address",
          "::1",
          "--allow",
          "127.0.0.0/8",
        ]);
        const allow = await startServer([dir, "--address", "::1", "--allow", "::1/128"]);
        const p1 = new RawPeer("::1");
        const p2 = new RawPeer("::1");
        try {
          assertBytes(
            await get({ hostname: "::1", port: listeningPort(allow) }, "f.bin"),
            file,
            "::1 allowed",
          );
          await p1.send(request("RRQ", "f.bin"), listeningPort(deny), "::1");
          await p2.send(request("RRQ", "f.bin"), listeningPort(v4only), "::1");
          await Promise.all([
            assertSilence(p1, 1500, "::1 is denied"),
            assertSilence(p2, 1500, "::1 is not in an IPv4 --allow"),
          ]);
          // The datagrams did arrive and were ignored on purpose.
          await deny.waitFor(new RegExp(`from \\[::1\\]:${p1.port}: not allowed`));
          await v4only.waitFor(new RegExp(`from \\[::1\\]:${p2.port}: not allowed`));
        } finally {
          p1.close();
          p2.close();
          await Promise.all([deny.stop(), v4only.stop(), allow.stop()]);
        }
      },
    );
  });
});
