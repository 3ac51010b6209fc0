/**
 * The server (`server.ts`) in-process on 127.0.0.1, port 0, with a `DirectorySource`: where
 * refusals and transfers come from (a socket of their own, or the listening socket with
 * `singlePort`), `onTransfer` records, and `close()`.
 */

import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import { join } from "node:path";
import { ErrorCode } from "../errors.ts";
import { HOST } from "../testing/loopback.ts";
import { DirectorySource } from "../storage/files.ts";
import { RawPeer, request } from "../../tests/support/raw.ts";
import { rawDownload } from "../../tests/support/raw_transfer.ts";
import { makeBytes, sameBytes } from "../testing/engine_harness.ts";
import type { TransferRecord } from "./record.ts";
import { serve, type Server } from "./server.ts";

interface Rig {
  server: Server;
  dir: string;
  data: Uint8Array;
  records: TransferRecord[];
  peer: RawPeer;
}

async function withServer(singlePort: boolean, fn: (rig: Rig) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-server-" });
  const data = makeBytes(1500, 11);
  await Deno.writeFile(join(dir, "boot.img"), data);
  const records: TransferRecord[] = [];
  const server = await serve({
    source: await DirectorySource.open(dir),
    hostname: HOST,
    port: 0,
    singlePort,
    onTransfer: (r) => void records.push(r),
  });
  const peer = new RawPeer();
  try {
    await fn({ server, dir, data, records, peer });
  } finally {
    peer.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function until<T>(get: () => T | undefined, what: string, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const singlePort of [false, true]) {
  const label = singlePort ? "singlePort" : "a socket per transfer";
  Deno.test(`serve (${label}): a refusal comes back from the listening port`, async () => {
    await withServer(singlePort, async ({ server, peer, records }) => {
      await peer.send(request("RRQ", "missing.bin"), server.port);
      const got = await peer.expect(3000);
      deepEqual(got.packet, {
        op: "ERROR",
        code: ErrorCode.FILE_NOT_FOUND,
        message: "file not found",
      });
      equal(got.from.port, server.port);
      equal(got.from.hostname, HOST);
      equal(await peer.recv(300), null, "one ERROR only");
      const r = await until(() => records[0], "the record");
      equal(r.outcome, "refused");
      equal(r.op, "RRQ");
      equal(r.file, "missing.bin");
      equal(r.error, "file not found");
      equal(r.peer, `${HOST}:${peer.port}`);
    });
  });

  Deno.test(`serve (${label}): DATA comes from the ${singlePort ? "listening" : "new"} port`, async () => {
    await withServer(singlePort, async ({ server, peer, records, data }) => {
      const r = await rawDownload(peer, server.port, "boot.img", {
        options: { blksize: "512", tsize: "0" },
      });
      sameBytes(r.data, data, "download");
      equal(r.oack?.get("tsize"), "1500");
      equal(r.tid.hostname, HOST);
      if (singlePort) equal(r.tid.port, server.port);
      else notEqual(r.tid.port, server.port);
      const rec = await until(() => records.find((x) => x.outcome === "ok"), "the record");
      equal(rec.op, "RRQ");
      equal(rec.file, "boot.img");
      equal(rec.bytes, 1500);
      equal(rec.blksize, 512);
      equal(rec.peer, `${HOST}:${peer.port}`);
      equal(records.length, 1);
      await until(() => (server.activeTransfers === 0 ? true : undefined), "the session to end");
    });
  });

  Deno.test(`serve (${label}): close() resolves finished and frees the port`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "tftpkit-server-" });
    try {
      const server = await serve({
        source: await DirectorySource.open(dir),
        hostname: HOST,
        port: 0,
        singlePort,
      });
      const port = server.port;
      ok(port > 0);
      deepEqual(server.addresses.map((a) => a.port), [port]);
      // The port is taken while the server runs.
      const bind = (): string => {
        try {
          Deno.listenDatagram({ transport: "udp", hostname: HOST, port }).close();
          return "bound";
        } catch (e) {
          return (e as Error).name;
        }
      };
      equal(bind(), "AddrInUse", "the port is taken while the server listens");
      let finished = false;
      server.finished.then(() => (finished = true));
      await server.close();
      equal(finished, true, "finished resolved by the time close() did");
      equal(bind(), "bound", "the port is free once close() has resolved");
      await server.close(); // idempotent
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("serve: a stray datagram to a transfer's port gets ERROR 5 and the transfer goes on", async () => {
  await withServer(false, async ({ server, peer, data }) => {
    const stranger = new RawPeer();
    let checked = 0;
    try {
      const r = await rawDownload(peer, server.port, "boot.img", {
        onBlock: async (block, tid) => {
          if (block !== 1) return;
          await stranger.send({ op: "ACK", block: 1 }, tid.port);
          const got = await stranger.expect(2000);
          deepEqual(got.packet, { op: "ERROR", code: 5, message: "unknown transfer ID" });
          equal(got.from.port, tid.port);
          checked++;
        },
      });
      equal(checked, 1);
      sameBytes(r.data, data, "download");
    } finally {
      stranger.close();
    }
  });
});
