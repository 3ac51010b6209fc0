/**
 * Regressions of the error paths over real sockets: a storage write that throws a plain Error
 * draws exactly one ERROR; a non-ASCII mode is refused with its bytes escaped; an announced size
 * over the free space is refused before anything is written (only when statfs is granted); and
 * an upload shorter than its announced size fails without leaving a file.
 */

import { chunkSizeFor } from "../src/storage/chunks.ts";
import { deepEqual, equal, ok } from "node:assert/strict";
import type { FileSource, WriteHandle } from "../src/mod.ts";
import { HOST } from "../src/testing/loopback.ts";
import type { Packet } from "../src/wire/packet.ts";
import { listDir } from "./support/files.ts";
import { start } from "./support/library_fixture.ts";
import { RawPeer, request } from "./support/raw.ts";
import { dataOf, errorOf, rawRequest, tryDecode } from "./support/raw_transfer.ts";
import { startServer } from "./support/server.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-errors-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function withPeer(fn: (peer: RawPeer) => Promise<void>): Promise<void> {
  const peer = new RawPeer(HOST);
  try {
    await fn(peer);
  } finally {
    peer.close();
  }
}

/** Everything arriving within `ms`, decoded. */
async function drain(peer: RawPeer, ms: number): Promise<Array<Packet | null>> {
  return (await peer.drain(ms)).map((g) => tryDecode(g.data));
}

/** Polls `dir` until it is empty (an aborted upload's temp file goes after the ERROR). */
async function emptied(dir: string, ms = 3000): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const names = await listDir(dir);
    if (names.length === 0 || Date.now() > deadline) return names;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A source whose uploads fail in `write` with a plain Error after `okWrites` good writes. */
function failingWrites(okWrites: number) {
  const counts = { writes: 0, commits: 0, aborts: 0 };
  const source: FileSource = {
    describe: () => "writes fail",
    openRead: () => Promise.reject(new Error("no reads")),
    openWrite: (name): Promise<WriteHandle> =>
      Promise.resolve({
        name,
        write(_p: Uint8Array) {
          if (++counts.writes > okWrites) throw new Error("disk on fire");
          return Promise.resolve();
        },
        commit: () => (counts.commits++, Promise.resolve()),
        abort: () => (counts.aborts++, Promise.resolve()),
      }),
  };
  return { source, counts };
}

Deno.test("a WriteHandle.write that throws a plain Error draws exactly one ERROR 0", async (t) => {
  const cases = [
    // With okWrites 0, the first flush (after a chunk of full blocks) fails mid-transfer.
    { name: "mid-transfer", blocks: 200, okWrites: 0, failsAt: chunkSizeFor(512, 1) / 512 + 1 },
    { name: "at the final flush", blocks: 3, okWrites: 0, failsAt: 3 },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const { source, counts } = failingWrites(c.okWrites);
      const s = await start(source);
      try {
        await withPeer(async (peer) => {
          await peer.send(request("WRQ", `${c.name}.bin`), s.server.port);
          const first = await peer.expect(3000);
          deepEqual(first.packet, { op: "ACK", block: 0 });
          const tid = first.from.port;
          let error: Packet | null = null;
          for (let block = 1; block <= c.blocks && !error; block++) {
            const size = block === c.blocks ? 100 : 512;
            await peer.send(dataOf(block, new Uint8Array(size).fill(block)), tid);
            const got = await peer.expect(3000);
            equal(got.from.port, tid);
            if (got.packet.op === "ERROR") {
              error = got.packet;
              equal(block, c.failsAt, "the ERROR answered the block whose write failed");
            } else deepEqual(got.packet, { op: "ACK", block });
          }
          deepEqual(error, { op: "ERROR", code: 0, message: "write error" });
          deepEqual(await drain(peer, 1500), [], "no second ERROR (nor anything else)");
        });
        const rec = s.records.find((r) => r.op === "WRQ");
        ok(rec, "a record");
        equal(rec.outcome, "error");
        equal(rec.error, "write error (disk on fire)");
        equal(counts.commits, 0);
        ok(counts.aborts >= 1, "the upload was aborted");
      } finally {
        await s.stop();
      }
    });
  }
});

Deno.test("an RRQ with a non-ASCII mode gets ERROR 4 with the mode escaped", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/boot.img`, "x");
    const srv = await startServer([dir]);
    try {
      await withPeer(async (peer) => {
        const mode = new Uint8Array([0x6f, 0x63, 0x74, 0xe9, 0x74]);
        await peer.send(rawRequest(1, "boot.img", mode), srv.port);
        const got = await peer.expect(3000);
        equal(got.from.port, srv.port, "refused from the listening port");
        deepEqual(got.packet, {
          op: "ERROR",
          code: 4,
          message: "unknown transfer mode 'oct\\xe9t'",
        });
        deepEqual(await drain(peer, 300), []);
      });
    } finally {
      await srv.stop();
    }
  });
});

Deno.test("an announced tsize over the free space: ERROR 3 only when statfs is granted", async (t) => {
  const tsize = "1000000000000000"; // 10^15 bytes
  await t.step("with --allow-sys=statfs: ERROR 3 before any DATA, nothing written", async () => {
    await withDir(async (dir) => {
      const srv = await startServer([dir, "--write"], {
        write: true,
        denoFlags: ["--allow-sys=statfs"],
      });
      try {
        await withPeer(async (peer) => {
          await peer.send(request("WRQ", "huge.bin", "octet", { tsize }), srv.port);
          const got = await peer.expect(3000);
          deepEqual(got.packet, {
            op: "ERROR",
            code: 3,
            message: `not enough free space for ${tsize} bytes`,
          });
          equal(got.from.port, srv.port, "refused from the listening port");
          deepEqual(await drain(peer, 300), []);
        });
        deepEqual(await listDir(dir), [], "no file and no temporary file");
      } finally {
        await srv.stop();
      }
    });
  });
  await t.step("without it: the size is not checked and the upload is accepted", async () => {
    await withDir(async (dir) => {
      const srv = await startServer([dir, "--write", "--verbose"], { write: true });
      try {
        await withPeer(async (peer) => {
          await peer.send(request("WRQ", "huge.bin", "octet", { tsize }), srv.port);
          const got = await peer.expect(3000);
          deepEqual(got.packet, { op: "OACK", options: new Map([["tsize", tsize]]) });
          ok(got.from.port !== srv.port, "answered from a transfer port");
          await peer.send(errorOf(0, "test over"), got.from.port);
        });
        await srv.waitFor(/upload sizes are not checked/, 3000);
        deepEqual(await emptied(dir), [], "the aborted upload left nothing");
      } finally {
        await srv.stop();
      }
    });
  });
});

Deno.test("an upload shorter than its announced tsize gets an ERROR, not the final ACK, and leaves no file", async () => {
  await withDir(async (dir) => {
    const srv = await startServer([dir, "--write"], { write: true });
    try {
      await withPeer(async (peer) => {
        await peer.send(
          request("WRQ", "short.bin", "octet", { tsize: "1000", blksize: "512" }),
          srv.port,
        );
        const oack = await peer.expect(3000);
        equal(oack.packet.op, "OACK");
        const tid = oack.from.port;
        await peer.send(dataOf(1, new Uint8Array(512).fill(1)), tid);
        deepEqual((await peer.expect(3000)).packet, { op: "ACK", block: 1 });
        await peer.send(dataOf(2, new Uint8Array(88).fill(2)), tid); // final: 600 bytes in all
        const got = await peer.expect(3000);
        equal(got.packet.op, "ERROR", `the final block drew ${got.packet.op}`);
        deepEqual(got.packet, {
          op: "ERROR",
          code: 4,
          message: "received 600 bytes, tsize announced 1000",
        });
        deepEqual(await drain(peer, 500), [], "one ERROR only");
      });
      deepEqual(await emptied(dir), [], "neither short.bin nor a .tftpkit-partial file is left");
    } finally {
      await srv.stop();
    }
  });
});
