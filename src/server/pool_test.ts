/**
 * The worker pool over real sockets: a download and an upload run on workers (through the
 * server's file handles), single-port mode routes datagrams both ways, a worker that dies is
 * replaced and its transfer ends with ERROR 0 from the transfer's own port and an `error` record,
 * and the pool goes on serving.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { ErrorCode } from "../errors.ts";
import { HOST } from "../testing/loopback.ts";
import { DirectorySource } from "../storage/files.ts";
import { decode, encode, type RequestPacket } from "../wire/packet.ts";
import { RawPeer, request } from "../../tests/support/raw.ts";
import type { ExecutorOptions, TransferSlot } from "./executor.ts";
import { WorkerPool } from "./pool.ts";
import { prepare } from "./session.ts";

const OPTIONS: ExecutorOptions = { knobs: { timeoutMs: 1000, retries: 3 }, singlePort: false };

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

interface Rig {
  dir: string;
  source: DirectorySource;
  listening: Deno.DatagramConn;
  peer: RawPeer;
  /** Prepares a request from the raw peer and runs it on `pool`. */
  start(
    pool: WorkerPool,
    op: "RRQ" | "WRQ",
    name: string,
    options?: Record<string, string>,
  ): ReturnType<WorkerPool["run"]> & { slot: TransferSlot };
}

async function withRig(fn: (rig: Rig) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-pool-" });
  const source = await DirectorySource.open(dir, { write: true });
  const listening = Deno.listenDatagram({ transport: "udp", hostname: HOST, port: 0 });
  const peer = new RawPeer();
  const controllers: AbortController[] = [];
  const rig: Rig = {
    dir,
    source,
    listening,
    peer,
    start(pool, op, name, options = {}) {
      const controller = new AbortController();
      controllers.push(controller);
      const slot: TransferSlot = {
        peer: { transport: "udp", hostname: HOST, port: peer.port },
        listening,
        signal: controller.signal,
      };
      const req = decode(request(op, name, "octet", options)) as RequestPacket;
      const p = prepare(req, slot.peer, source, { maxBlksize: 65464, maxWindowsize: 64 })
        .then((prepared) => pool.run(prepared, slot));
      return Object.assign(p, { slot });
    },
  };
  try {
    await fn(rig);
  } finally {
    for (const c of controllers) c.abort(new Error("test over"));
    peer.conn.close();
    listening.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Downloads with the raw peer in lock-step, ACKing from the port the DATA came from. */
async function rawGet(peer: RawPeer, size: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let block = 1;; block++) {
    const got = await peer.recv(5000);
    ok(got, `DATA ${block}`);
    const p = decode(got.data);
    equal(p.op, "DATA", JSON.stringify(p));
    if (p.op !== "DATA") throw new Error("unreachable");
    parts.push(p.data.slice());
    await peer.send(encode({ op: "ACK", block: p.block }), got.from.port);
    if (p.data.length < 512) break;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) (out.set(part, at), at += part.length);
  return out;
}

Deno.test("a pool of workers runs a download and an upload through the server's files", async () => {
  const pool = await WorkerPool.start(2, OPTIONS);
  try {
    await withRig(async (rig) => {
      const data = bytes(5000, 1);
      await Deno.writeFile(join(rig.dir, "a.bin"), data);
      const run = rig.start(pool, "RRQ", "a.bin");
      deepEqual(await rawGet(rig.peer, data.length), data);
      const { record, closed } = await run;
      await closed;
      equal(record.outcome, "ok", record.error);
      equal(record.bytes, 5000);
      equal(run.slot.view?.ending, true, "the server saw the transfer end");

      const up = rig.start(pool, "WRQ", "b.bin");
      let got = await rig.peer.recv(5000);
      deepEqual(decode(got!.data), { op: "ACK", block: 0 });
      const tid = got!.from.port;
      const payload = bytes(700, 2);
      await rig.peer.send(encode({ op: "DATA", block: 1, data: payload.subarray(0, 512) }), tid);
      got = await rig.peer.recv(5000);
      deepEqual(decode(got!.data), { op: "ACK", block: 1 });
      await rig.peer.send(encode({ op: "DATA", block: 2, data: payload.subarray(512) }), tid);
      got = await rig.peer.recv(5000);
      deepEqual(decode(got!.data), { op: "ACK", block: 2 });
      const done = await up;
      equal(done.record.outcome, "ok", done.record.error);
      deepEqual(await Deno.readFile(join(rig.dir, "b.bin")), payload);
    });
  } finally {
    await pool.close();
  }
});

Deno.test("single-port mode: the server routes a worker's datagrams through the listening port", async () => {
  const pool = await WorkerPool.start(2, { ...OPTIONS, singlePort: true });
  try {
    await withRig(async (rig) => {
      const data = bytes(3000, 3);
      await Deno.writeFile(join(rig.dir, "s.bin"), data);
      const run = rig.start(pool, "RRQ", "s.bin");
      const slot = run.slot;
      const listeningPort = (rig.listening.addr as Deno.NetAddr).port;
      // Play the server's listener: hand the client's datagrams to the transfer.
      const relay = (async () => {
        const buf = new Uint8Array(2048);
        for (;;) {
          const [d] = await rig.listening.receive(buf).catch(() => [null]);
          if (!d) return;
          slot.route?.(d);
        }
      })();
      const parts: Uint8Array[] = [];
      for (let block = 1;; block++) {
        const got = await rig.peer.recv(5000);
        ok(got, `DATA ${block}`);
        equal(got.from.port, listeningPort, "DATA comes from the listening port");
        const p = decode(got.data);
        if (p.op !== "DATA") throw new Error(JSON.stringify(p));
        parts.push(p.data.slice());
        await rig.peer.send(encode({ op: "ACK", block: p.block }), listeningPort);
        if (p.data.length < 512) break;
      }
      const { record } = await run;
      equal(record.outcome, "ok", record.error);
      equal(parts.reduce((n, p) => n + p.length, 0), data.length);
      relay.catch(() => {});
    });
  } finally {
    await pool.close();
  }
});

Deno.test("a worker that dies is replaced; its transfer ends with ERROR 0 and an error record", async () => {
  const pool = await WorkerPool.start(1, OPTIONS);
  try {
    await withRig(async (rig) => {
      await Deno.writeFile(join(rig.dir, "c.bin"), bytes(50_000, 4));
      const run = rig.start(pool, "RRQ", "c.bin");
      const first = await rig.peer.recv(5000);
      ok(first, "DATA 1");
      pool.crash(0);
      const { record, closed } = await run;
      await closed;
      equal(record.outcome, "error");
      ok(record.error?.includes("worker"), record.error);
      // The client hears of it from the transfer's own port, never a hang.
      let got = await rig.peer.recv(3000);
      while (got && decode(got.data).op === "DATA") got = await rig.peer.recv(3000);
      ok(got, "an ERROR after the crash");
      equal(got.from.port, first.from.port, "from the transfer's port");
      const e = decode(got.data);
      equal(e.op === "ERROR" && e.code, ErrorCode.NOT_DEFINED);
      // The replacement serves the next transfer.
      equal(pool.size, 1);
      const again = rig.start(pool, "RRQ", "c.bin");
      deepEqual((await rawGet(rig.peer, 50_000)).length, 50_000);
      equal((await again).record.outcome, "ok");
    });
  } finally {
    await pool.close();
  }
});
