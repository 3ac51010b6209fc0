/**
 * RFC 1350 / 2347 / 2348 / 2349 / 7440 behaviour of `tftpkit serve` as seen on the wire, driven
 * packet by packet with a raw UDP peer.
 */

import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import { join } from "node:path";
import { decode, type Packet } from "../src/packet.ts";
import { RawPeer, request } from "./support/raw.ts";
import { makeFile, type ServerProcess, startServer } from "./support/server.ts";
import {
  ackOf,
  concat,
  dataOf,
  errorOf,
  rawDownload,
  waitForRecord,
  withPeer,
} from "./support/raw_transfer.ts";

const enc = new TextEncoder();

/** Files of the read-only fixture, by name → size. */
const SIZES = {
  "three.bin": 1300, // 512 + 512 + 276
  "exact.bin": 1024, // 2 × 512: ends with an empty DATA 3
  "opt.bin": 5000,
  "forty.bin": 40 * 512 + 17,
  "win.bin": 12 * 512 + 100, // 13 blocks
  "big.bin": 300 * 512 + 3,
};

interface Fixture {
  dir: string;
  files: Map<string, Uint8Array>;
  [Symbol.asyncDispose](): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit_protocol_" });
  const files = new Map<string, Uint8Array>();
  let seed = 11;
  for (const [name, size] of Object.entries(SIZES)) {
    files.set(name, await makeFile(join(dir, name), size, seed++));
  }
  const text = enc.encode("line one\nline two\r\nbare\rend\n");
  await Deno.writeFile(join(dir, "text.txt"), text);
  files.set("text.txt", text);
  await Deno.mkdir(join(dir, "subdir"));
  return {
    dir,
    files,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function withServer(
  args: string[],
  fn: (server: ServerProcess) => Promise<void>,
  options: { write?: boolean } = {},
): Promise<void> {
  const server = await startServer(args, options);
  try {
    await fn(server);
  } finally {
    await server.stop("SIGKILL");
  }
}

function file(fx: Fixture, name: string): Uint8Array {
  const f = fx.files.get(name);
  if (!f) throw new Error(`no fixture ${name}`);
  return f;
}

async function expectError(peer: RawPeer, code: number, timeoutMs = 10_000) {
  const got = await peer.expect(timeoutMs);
  equal(got.packet.op, "ERROR", `expected ERROR ${code}, got ${got.packet.op}`);
  if (got.packet.op === "ERROR") equal(got.packet.code, code, got.packet.message);
  return got;
}

async function expectData(peer: RawPeer, block: number, timeoutMs = 10_000) {
  const got = await peer.expect(timeoutMs);
  equal(got.packet.op, "DATA", `expected DATA ${block}, got ${got.packet.op}`);
  if (got.packet.op !== "DATA") throw new Error("unreachable");
  equal(got.packet.block, block);
  return { data: got.packet.data.slice(), from: got.from, raw: got.data };
}

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

Deno.test("SIGTERM lets a running transfer finish and the server exits 0", async () => {
  await using fx = await fixture();
  const server = await startServer([fx.dir]);
  try {
    await withPeer(async (peer) => {
      let signalled = false;
      const r = await rawDownload(peer, server.port, "big.bin", {
        onBlock: async (block) => {
          if (block !== 2 || signalled) return;
          signalled = true;
          server.child.kill("SIGTERM");
          await server.waitFor(/shutting down/);
        },
      });
      ok(signalled);
      deepEqual(r.data, file(fx, "big.bin"));
      equal(await server.exited, 0);
      await server.waitFor(/ok: sent 153603 bytes/);
    });
  } finally {
    await server.stop("SIGKILL");
  }
});

Deno.test("SIGTERM aborts a stalled transfer after the grace period and exits 0", async () => {
  await using fx = await fixture();
  // Many retries: the transfer must outlive the 5 s grace period rather than time out itself.
  const server = await startServer([fx.dir, "--retries", "30", "--timeout", "1"]);
  try {
    await withPeer(async (peer) => {
      await peer.send(request("RRQ", "big.bin"), server.port);
      const first = await expectData(peer, 1);
      const signalledAt = performance.now();
      server.child.kill("SIGTERM");
      await server.waitFor(/shutting down/);
      let last: { packet: Packet; from: Deno.NetAddr } | null = null;
      for (;;) {
        const got = await peer.expect(10_000);
        equal(got.from.port, first.from.port);
        last = got;
        if (got.packet.op !== "DATA") break;
        equal(got.packet.block, 1, "only DATA 1 is resent while nobody ACKs");
      }
      equal(last.packet.op, "ERROR");
      if (last.packet.op === "ERROR") equal(last.packet.code, 0);
      ok(performance.now() - signalledAt >= 4500, "the transfer had the grace period");
      equal(await server.exited, 0);
      equal(await peer.recv(300), null);
    });
  } finally {
    await server.stop("SIGKILL");
  }
});

Deno.test("SIGTERM right after the listening line is handled: exit 0, not death by signal", async () => {
  await using fx = await fixture();
  // A supervisor may stop the server as soon as it reports that it listens.
  const codes: number[] = [];
  for (let i = 0; i < 8; i++) {
    const server = await startServer([fx.dir]);
    codes.push(await server.stop("SIGTERM"));
  }
  deepEqual(codes, [0, 0, 0, 0, 0, 0, 0, 0]);
});
