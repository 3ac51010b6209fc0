/**
 * Option negotiation (RFC 2347 / 2348 / 2349 / 7440) of `tftpkit serve` as seen on the wire,
 * driven packet by packet with a raw UDP peer: the OACK, windowed sending, and an ERROR in
 * answer to the OACK (a size probe).
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { request } from "./support/raw.ts";
import { ackOf, errorOf, rawDownload, waitForRecord, withPeer } from "./support/raw_transfer.ts";
import { expectData, file, fixture, SIZES, withServer } from "./support/protocol_fixture.ts";

Deno.test("options are negotiated per RFC 2347/2348/2349/7440", async (t) => {
  await using fx = await fixture();
  const size = String(SIZES["opt.bin"]);
  await withServer([fx.dir, "--max-blksize", "1400"], async (server) => {
    const get = async (options: Record<string, string>) =>
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "opt.bin", { options });
        deepEqual(r.data, file(fx, "opt.bin"));
        return r;
      });
    const oackOf = (r: { oack: Map<string, string> | null }) =>
      r.oack ? Object.fromEntries(r.oack) : null;

    await t.step(
      "blksize, tsize, timeout and windowsize are echoed with their values",
      async () => {
        const r = await get({ blksize: "1024", tsize: "0", timeout: "3", windowsize: "2" });
        deepEqual(oackOf(r), { blksize: "1024", tsize: size, timeout: "3", windowsize: "2" });
        deepEqual([...r.oack!.keys()], ["blksize", "tsize", "timeout", "windowsize"]);
        equal(r.firstLength, 1024);
      },
    );
    await t.step("blksize above --max-blksize is lowered to it", async () => {
      const r = await get({ blksize: "1468" });
      deepEqual(oackOf(r), { blksize: "1400" });
      equal(r.firstLength, 1400);
    });
    await t.step("blksize 7, windowsize 0, timeout 0 and timeout 256 are left out", async () => {
      let r = await get({ blksize: "7", windowsize: "0", timeout: "0", tsize: "0" });
      deepEqual(oackOf(r), { tsize: size });
      equal(r.firstLength, 512);
      r = await get({ timeout: "256", tsize: "0" });
      deepEqual(oackOf(r), { tsize: size });
    });
    await t.step("a request whose only option is out of range gets plain DATA 1", async () => {
      const r = await get({ blksize: "7" });
      equal(r.oack, null);
      equal(r.firstLength, 512);
    });
    await t.step("unknown options are ignored", async () => {
      const r = await get({ foo: "bar", blksize: "600", multicast: "" });
      deepEqual(oackOf(r), { blksize: "600" });
      equal(r.firstLength, 600);
    });
    await t.step("option names are case-insensitive", async () => {
      const r = await get({ BLKSIZE: "600", TSize: "0" });
      deepEqual(oackOf(r), { blksize: "600", tsize: size });
      equal(r.firstLength, 600);
    });
    await t.step("a request with only unknown options gets DATA 1 and no OACK", async () => {
      const r = await get({ foo: "bar", "x-rollover": "1" });
      equal(r.oack, null);
      equal(r.firstLength, 512);
    });
    await t.step("the OACK carries only the options the client asked for", async () => {
      deepEqual(oackOf(await get({ tsize: "0" })), { tsize: size });
      deepEqual(oackOf(await get({ windowsize: "3" })), { windowsize: "3" });
      deepEqual(oackOf(await get({ timeout: "4" })), { timeout: "4" });
    });
  });
});

Deno.test("a window of 4 is sent whole, rewound after a partial ACK, resent on timeout", async () => {
  await using fx = await fixture();
  const content = file(fx, "win.bin");
  const block = (n: number) => content.subarray((n - 1) * 512, n * 512);
  await withServer([fx.dir], async (server) => {
    await withPeer(async (peer) => {
      await peer.send(
        request("RRQ", "win.bin", "octet", { windowsize: "4", timeout: "2" }),
        server.port,
      );
      const o = await peer.expect();
      deepEqual(o.packet, {
        op: "OACK",
        options: new Map([["windowsize", "4"], ["timeout", "2"]]),
      });
      const tid = o.from.port;
      const window = async (from: number, to: number) => {
        for (let n = from; n <= to; n++) {
          const d = await expectData(peer, n);
          equal(d.from.port, tid);
          deepEqual(d.data, block(n));
        }
      };
      await peer.send(ackOf(0), tid);
      await window(1, 4);
      // (Less than the adaptive timeout, at least 60 ms once ACK 0 measured the round trip.)
      equal(await peer.recv(30), null, "the server waits after 4 blocks");
      // ACK of the 2nd block of the window: blocks 3 and 4 are missing, send from 3.
      await peer.send(ackOf(2), tid);
      await window(3, 6);
      const quiet = performance.now();
      // No ACK: after the timeout (adaptive: the round trip measured on ACK 0 makes it about
      // 60 ms, not the configured 2 s) the window is resent from the oldest unacknowledged block.
      await window(3, 6);
      ok(performance.now() - quiet >= 40, "the resend waited for the timeout");
      await peer.send(ackOf(6), tid);
      await window(7, 10);
      await peer.send(ackOf(10), tid);
      await window(11, 12);
      const last = await expectData(peer, 13);
      deepEqual(last.data, content.subarray(12 * 512));
      await peer.send(ackOf(13), tid);
      equal(await peer.recv(300), null);
    });
  });
});

Deno.test("an ERROR right after the OACK ends the transfer and is logged as a size probe", async (t) => {
  await using fx = await fixture();
  await withServer([fx.dir, "--timeout", "1", "--log-format", "json"], async (server) => {
    for (const code of [8, 0]) {
      await t.step(`ERROR ${code}`, async () => {
        await withPeer(async (peer) => {
          await peer.send(
            request("RRQ", "big.bin", "octet", { tsize: "0", blksize: "1024" }),
            server.port,
          );
          const o = await peer.expect();
          equal(o.packet.op, "OACK");
          if (o.packet.op === "OACK") {
            equal(o.packet.options.get("tsize"), String(SIZES["big.bin"]));
          }
          await peer.send(errorOf(code, "User aborted the transfer"), o.from.port);
          deepEqual(await peer.drain(2500), [], "no packet within 2 × the timeout");
          const rec = await waitForRecord(server, (r) => r.peer === `127.0.0.1:${peer.port}`);
          equal(rec.outcome, "size-probe");
          equal(rec.level, "info");
        });
      });
    }
  });
});
