/**
 * RFC 1350 / 2347 / 2348 / 2349 / 7440 behaviour of `tftpkit serve` as seen on the wire, driven
 * packet by packet with a raw UDP peer: plain reads, errors at the request stage, duplicate
 * ACKs, retransmission, and block-number rollover.
 */

import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import { join } from "node:path";
import { decode } from "../src/wire/packet.ts";
import { RawPeer, request } from "./support/raw.ts";
import { makeFile } from "./support/server.ts";
import {
  ackOf,
  concat,
  dataOf,
  rawDownload,
  waitForRecord,
  withPeer,
} from "./support/raw_transfer.ts";
import {
  expectData,
  expectError,
  file,
  fixture,
  SIZES,
  withServer,
} from "./support/protocol_fixture.ts";

const enc = new TextEncoder();

Deno.test("a plain read is served in 512-byte lock-step blocks from a new port", async (t) => {
  await using fx = await fixture();
  await withServer([fx.dir, "--log-format", "json"], async (server) => {
    await t.step("DATA 1 is 512 bytes from a port other than the listening port", async () => {
      await withPeer(async (peer) => {
        await peer.send(request("RRQ", "three.bin"), server.port);
        const d1 = await expectData(peer, 1);
        notEqual(d1.from.port, server.port);
        equal(d1.from.hostname, "127.0.0.1");
        equal(d1.data.length, 512);
        await peer.send(ackOf(1), d1.from.port);
        const d2 = await expectData(peer, 2);
        equal(d2.from.port, d1.from.port);
        equal(d2.data.length, 512);
        await peer.send(ackOf(2), d1.from.port);
        const d3 = await expectData(peer, 3);
        equal(d3.data.length, 276);
        await peer.send(ackOf(3), d1.from.port);
        deepEqual(concat([d1.data, d2.data, d3.data]), file(fx, "three.bin"));
        const rec = await waitForRecord(server, (r) => r.peer === `127.0.0.1:${peer.port}`);
        equal(rec.outcome, "ok");
        equal(rec.bytes, 1300);
        equal(await peer.recv(300), null, "nothing after the final ACK");
      });
    });

    await t.step("a file of exactly 2 × 512 bytes ends with an empty DATA 3", async () => {
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "exact.bin");
        deepEqual(r.wireBlocks, [1, 2, 3]);
        deepEqual(r.data, file(fx, "exact.bin"));
        const rec = await waitForRecord(server, (x) => x.peer === `127.0.0.1:${peer.port}`);
        equal(rec.outcome, "ok");
      });
    });

    await t.step("a packet from another port gets ERROR 5 and the transfer goes on", async () => {
      await withPeer(async (peer) => {
        const intruder = new RawPeer();
        let first1: Uint8Array | null = null;
        try {
          const r = await rawDownload(peer, server.port, "three.bin", {
            onBlock: async (block, tid) => {
              if (block !== 1) return;
              first1 = dataOf(1, file(fx, "three.bin").subarray(0, 512));
              await intruder.send(ackOf(1), tid.port);
              const e = await expectError(intruder, 5);
              equal(e.from.port, tid.port, "ERROR 5 comes from the transfer port");
              // Only a retransmitted DATA 1 (a slow machine) may arrive: never DATA 2.
              for (const late of await peer.drain(300)) {
                deepEqual(decode(late.data), decode(first1!), "the intruder's ACK moved nothing");
              }
            },
          });
          deepEqual(r.data, file(fx, "three.bin"));
          equal(await intruder.recv(200), null);
        } finally {
          intruder.close();
        }
      });
    });

    await t.step("mode names are case-insensitive: NETASCII and Octet", async () => {
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "text.txt", { mode: "NETASCII" });
        deepEqual(r.data, enc.encode("line one\r\nline two\r\0\r\nbare\r\0end\r\n"));
      });
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "three.bin", { mode: "Octet" });
        deepEqual(r.data, file(fx, "three.bin"));
      });
    });

    for (const mode of ["mail", "MAIL", "binary", "x"]) {
      await t.step(`mode '${mode}' gets ERROR 4 from the listening port`, async () => {
        await withPeer(async (peer) => {
          await peer.send(request("RRQ", "three.bin", mode), server.port);
          const e = await expectError(peer, 4);
          equal(e.from.port, server.port);
          equal(await peer.recv(300), null);
        });
      });
    }

    await t.step("a missing file gets ERROR 1", async () => {
      await withPeer(async (peer) => {
        await peer.send(request("RRQ", "no-such-file"), server.port);
        await expectError(peer, 1);
      });
    });

    await t.step("an upload without --write gets ERROR 2", async () => {
      await withPeer(async (peer) => {
        await peer.send(request("WRQ", "new.bin"), server.port);
        await expectError(peer, 2);
      });
      let exists = true;
      await Deno.stat(join(fx.dir, "new.bin")).catch(() => (exists = false));
      equal(exists, false);
    });

    await t.step("a request for a directory gets ERROR 2", async () => {
      await withPeer(async (peer) => {
        await peer.send(request("RRQ", "subdir"), server.port);
        await expectError(peer, 2);
      });
    });
  });
});

Deno.test("acknowledging every block twice never draws a second copy of a DATA block", async (t) => {
  await using fx = await fixture();
  // A long timeout so that no retransmission is due to a slow machine.
  await withServer([fx.dir, "--timeout", "5"], async (server) => {
    for (
      const [label, options] of [
        ["without options", {}],
        ["with blksize 700 (ACK 0 sent twice too)", { blksize: "700" }],
      ] as const
    ) {
      await t.step(label, async () => {
        await withPeer(async (peer) => {
          const r = await rawDownload(peer, server.port, "forty.bin", { ackTwice: true, options });
          deepEqual(r.data, file(fx, "forty.bin"));
          const blocks = Math.floor(SIZES["forty.bin"] / r.blksize) + 1;
          equal(r.counts.size, blocks);
          for (const [block, n] of r.counts) equal(n, 1, `DATA ${block} arrived ${n} times`);
          equal(await peer.recv(500), null, "nothing after the final ACK");
        });
      });
    }
  });
});

Deno.test("an unacknowledged reply is sent at most 1 + --retries times, a timeout apart", async (t) => {
  await using fx = await fixture();
  await withServer(
    [fx.dir, "--retries", "3", "--timeout", "1", "--log-format", "json"],
    async (server) => {
      const watch = async (options: Record<string, string>, op: "DATA" | "OACK") => {
        return await withPeer(async (peer) => {
          await peer.send(request("RRQ", "three.bin", "octet", options), server.port);
          const copies: Array<{ at: number; data: Uint8Array; port: number }> = [];
          for (;;) {
            const got = await peer.recv(copies.length === 0 ? 10_000 : 3500);
            if (!got) break;
            copies.push({ at: performance.now(), data: got.data, port: got.from.port });
          }
          equal(copies.length, 4, `expected 1 + 3 copies, got ${copies.length}`);
          for (const c of copies) {
            deepEqual(c.data, copies[0].data, "every copy is the same packet");
            equal(c.port, copies[0].port);
          }
          equal(copies[0].data[1], op === "DATA" ? 3 : 6);
          for (let i = 1; i < copies.length; i++) {
            const gap = copies[i].at - copies[i - 1].at;
            ok(gap >= 850 && gap <= 4000, `copy ${i} came ${Math.round(gap)} ms after the last`);
          }
          const rec = await waitForRecord(server, (r) => r.peer === `127.0.0.1:${peer.port}`);
          equal(rec.outcome, "timeout");
        });
      };
      await t.step(
        "DATA 1 of a plain request, and the OACK of a request with options",
        async () => {
          await Promise.all([watch({}, "DATA"), watch({ blksize: "1024" }, "OACK")]);
        },
      );
    },
  );
});

Deno.test("block numbers roll over from 65535 to 0 in a 65538-block transfer", async (t) => {
  await using fx = await fixture();
  const size = 65537 * 8 + 4;
  const content = await makeFile(join(fx.dir, "roll.bin"), size, 99);
  await withServer([fx.dir, "--timeout", "3"], async (server) => {
    for (
      const [label, options] of [
        ["lock-step at blksize 8", { blksize: "8" }],
        ["windowsize 16 at blksize 8", { blksize: "8", windowsize: "16" }],
      ] as const
    ) {
      await t.step(label, async () => {
        await withPeer(async (peer) => {
          const r = await rawDownload(peer, server.port, "roll.bin", { options });
          equal(r.blksize, 8);
          equal(r.wireBlocks.length, 65538);
          deepEqual(r.wireBlocks.slice(65533), [65534, 65535, 0, 1, 2]);
          ok(r.wireBlocks.every((b, i) => b === ((i + 1) & 0xffff)), "blocks in wire order");
          for (const [block, n] of r.counts) ok(n >= 1, `DATA ${block}`);
          equal(r.data.length, size);
          deepEqual(r.data, content);
        });
      });
    }
  });
});
