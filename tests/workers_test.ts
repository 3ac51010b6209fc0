/**
 * `serve --workers N` behaves as one isolate does: the same records, the same limits, `--once`,
 * single-port mode and a graceful shutdown — each scenario run with `--workers 1` and with
 * `--workers 3`, over real sockets with real clients.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { makeFile, startServer } from "./support/server.ts";
import { curl, hpa, records, waitRecords } from "./support/clients.ts";
import { RawPeer, request } from "./support/raw.ts";
import { decode } from "../src/wire/packet.ts";
import { sameBytes } from "../src/testing/proc.ts";

const MODES = [1, 3];

/** The fields of a record that do not depend on timing or ports. */
function stable(r: Record<string, unknown>) {
  const { durationMs: _d, rateBps: _r, peer: _p, msg: _m, time: _t, ...rest } = r;
  return rest;
}

async function withTree<T>(fn: (dir: string, want: Uint8Array) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-workers-" });
  try {
    const want = await makeFile(join(dir, "f.bin"), 200_000, 3);
    return await fn(dir, want);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("downloads and uploads give the same records with 1 and 3 workers", async () => {
  const seen: Array<Array<Record<string, unknown>>> = [];
  for (const workers of MODES) {
    await withTree(async (dir, want) => {
      const server = await startServer(
        [dir, "--write", "--log-format", "json", "--workers", String(workers)],
        { write: true },
      );
      try {
        const out = join(dir, `got-${workers}.bin`);
        const got = await curl(server.port, "f.bin", out);
        equal(got.code, 0, got.stderr);
        equal(sameBytes(await Deno.readFile(out), want), null);
        const put = await hpa(server.port, ["put", join(dir, "f.bin"), `up-${workers}.bin`]);
        equal(put.code, 0, put.stderr);
        const missing = await hpa(server.port, ["get", "missing.bin", join(dir, "x")]);
        match(missing.stdout + missing.stderr, /not found/i);
        const recs = await waitRecords(server, () => true, 3);
        equal(sameBytes(await Deno.readFile(join(dir, `up-${workers}.bin`)), want), null);
        const same = (x: unknown) => String(x).replace(dir, "DIR").replace(/-\d\.bin$/, ".bin");
        seen.push(recs.map((r) => stable({ ...r, file: same(r.file), path: same(r.path) })));
      } finally {
        await server.stop();
      }
    });
  }
  deepEqual(seen[1], seen[0]);
});

Deno.test("--max-sessions and --max-sessions-per-client hold across workers", async () => {
  for (const workers of MODES) {
    for (const flag of ["--max-sessions", "--max-sessions-per-client"]) {
      await withTree(async (dir) => {
        const server = await startServer([dir, flag, "2", "--workers", String(workers)]);
        const peers = [new RawPeer(), new RawPeer(), new RawPeer()];
        try {
          // Two downloads held open (never ACKed), then a third.
          for (const p of peers.slice(0, 2)) {
            await p.send(request("RRQ", "f.bin"), server.port);
            const got = await p.recv(5000);
            equal(got && decode(got.data).op, "DATA", `${flag}, ${workers} workers`);
          }
          await peers[2].send(request("RRQ", "f.bin"), server.port);
          const third = await peers[2].recv(5000);
          ok(third, "an answer to the third");
          const p = decode(third.data);
          equal(p.op, "ERROR", `${flag} ${workers}: ${JSON.stringify(p)}`);
          equal(p.op === "ERROR" && p.code, 3);
          equal(third.from.port, server.port, "refused from the listening port");
        } finally {
          for (const p of peers) p.conn.close();
          await server.stop();
        }
      });
    }
  }
});

Deno.test("--once, single-port mode and a graceful shutdown with workers", async (t) => {
  for (const workers of MODES) {
    await t.step(`--once --single-port, ${workers} workers`, async () => {
      await withTree(async (dir, want) => {
        const server = await startServer(
          [dir, "--once", "--single-port", "--log-format", "json", "--workers", String(workers)],
        );
        try {
          const out = join(dir, "once.bin");
          const r = await hpa(server.port, ["get", "f.bin", out]);
          equal(r.code, 0, r.stderr);
          equal(sameBytes(await Deno.readFile(out), want), null);
          equal(await server.exited, 0, server.lines.join("\n"));
          equal(records(server).filter((x) => x.outcome === "ok").length, 1);
        } finally {
          await server.stop("SIGKILL");
        }
      });
    });
    await t.step(`SIGTERM lets a running download finish, ${workers} workers`, async () => {
      await withTree(async (dir) => {
        const server = await startServer([
          dir,
          "--log-format",
          "json",
          "--workers",
          String(workers),
        ]);
        const peer = new RawPeer();
        try {
          await peer.send(request("RRQ", "f.bin"), server.port);
          let got = await peer.recv(5000);
          ok(got);
          server.child.kill("SIGTERM");
          await server.waitFor(/shutting down/);
          for (;;) {
            const p = decode(got!.data);
            if (p.op !== "DATA") throw new Error(JSON.stringify(p));
            await peer.send(new Uint8Array([0, 4, p.block >> 8, p.block & 0xff]), got!.from.port);
            if (p.data.length < 512) break;
            got = await peer.recv(5000);
            ok(got, "DATA keeps coming during the grace period");
          }
          await server.exited;
          equal(records(server).at(-1)?.outcome, "ok");
        } finally {
          peer.conn.close();
          await server.stop("SIGKILL");
        }
      });
    });
  }
});
