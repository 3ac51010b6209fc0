/**
 * Uploads (WRQ) to `tftpkit serve --write` as seen on the wire, driven packet by packet with a
 * raw UDP peer: the final ACK repeated during the dally, no replacing without --overwrite, and
 * --max-upload-size.
 */

import { deepEqual, equal, notEqual } from "node:assert/strict";
import { join } from "node:path";
import { request } from "./support/raw.ts";
import { dataOf, errorOf, waitForRecord, withPeer } from "./support/raw_transfer.ts";
import { expectError, file, fixture, withServer } from "./support/protocol_fixture.ts";

Deno.test("an upload's final DATA repeated during the dally gets the final ACK again", async () => {
  await using fx = await fixture();
  await withServer([fx.dir, "--write"], async (server) => {
    await withPeer(async (peer) => {
      const content = file(fx, "three.bin");
      await peer.send(request("WRQ", "up.bin"), server.port);
      const a0 = await peer.expect();
      deepEqual(a0.packet, { op: "ACK", block: 0 });
      const tid = a0.from.port;
      notEqual(tid, server.port);
      for (let b = 1; b <= 3; b++) {
        await peer.send(dataOf(b, content.subarray((b - 1) * 512, b * 512)), tid);
        const a = await peer.expect();
        deepEqual(a.packet, { op: "ACK", block: b });
        equal(a.from.port, tid);
      }
      // The file is committed before the final ACK.
      deepEqual(await Deno.readFile(join(fx.dir, "up.bin")), content);
      await peer.send(dataOf(3, content.subarray(1024)), tid);
      const again = await peer.expect(3000);
      deepEqual(again.packet, { op: "ACK", block: 3 });
      equal(again.from.port, tid);
      deepEqual(await Deno.readFile(join(fx.dir, "up.bin")), content);
      const left = [...Deno.readDirSync(fx.dir)].filter((e) => e.name.includes("partial"));
      deepEqual(left, []);
    });
  }, { write: true });
});

Deno.test("an existing file is not replaced by an upload without --overwrite", async () => {
  await using fx = await fixture();
  await withServer([fx.dir, "--write"], async (server) => {
    await withPeer(async (peer) => {
      await peer.send(request("WRQ", "three.bin"), server.port);
      const e = await expectError(peer, 6);
      equal(e.from.port, server.port);
      equal(await peer.recv(300), null);
    });
    deepEqual(await Deno.readFile(join(fx.dir, "three.bin")), file(fx, "three.bin"));
  }, { write: true });
});

Deno.test("--max-upload-size refuses an announced size and stops a growing upload", async (t) => {
  await using fx = await fixture();
  const names = () => [...Deno.readDirSync(fx.dir)].map((e) => e.name).sort();
  const before = names();
  await withServer(
    [fx.dir, "--write", "--max-upload-size", "2000", "--log-format", "json"],
    async (server) => {
      await t.step("tsize 5000 > 2000 gets ERROR 3 before anything is written", async () => {
        await withPeer(async (peer) => {
          await peer.send(request("WRQ", "big.up", "octet", { tsize: "5000" }), server.port);
          const e = await expectError(peer, 3);
          equal(e.from.port, server.port);
          equal(await peer.recv(300), null);
          await waitForRecord(server, (r) => r.peer === `127.0.0.1:${peer.port}`);
          deepEqual(names(), before);
        });
      });
      await t.step("tsize 2000 (at the limit) is accepted", async () => {
        await withPeer(async (peer) => {
          await peer.send(request("WRQ", "ok.up", "octet", { tsize: "2000" }), server.port);
          const o = await peer.expect();
          equal(o.packet.op, "OACK");
          if (o.packet.op === "OACK") equal(o.packet.options.get("tsize"), "2000");
          await peer.send(errorOf(0, "changed my mind"), o.from.port);
          const rec = await waitForRecord(server, (r) => r.peer === `127.0.0.1:${peer.port}`);
          equal(rec.outcome, "peer-error");
          deepEqual(names(), before);
        });
      });
      await t.step("an upload without tsize growing past 2000 bytes gets ERROR 3", async () => {
        await withPeer(async (peer) => {
          await peer.send(request("WRQ", "grow.up"), server.port);
          const a0 = await peer.expect();
          deepEqual(a0.packet, { op: "ACK", block: 0 });
          const tid = a0.from.port;
          const block = new Uint8Array(512).fill(0x41);
          for (let b = 1; b <= 3; b++) {
            await peer.send(dataOf(b, block), tid);
            deepEqual((await peer.expect()).packet, { op: "ACK", block: b });
          }
          await peer.send(dataOf(4, block), tid); // 2048 bytes > 2000
          const e = await expectError(peer, 3);
          equal(e.from.port, tid);
          const rec = await waitForRecord(server, (r) => r.peer === `127.0.0.1:${peer.port}`);
          notEqual(rec.outcome, "ok");
          deepEqual(names(), before, "no file and no partial file is left");
        });
      });
    },
    { write: true },
  );
});
