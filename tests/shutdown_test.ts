/**
 * Shutdown of `tftpkit serve` on SIGTERM, seen through a raw UDP peer: a running transfer may
 * finish, a stalled one is aborted after the grace period, and the exit code is 0 even for a
 * SIGTERM right after start-up.
 */

import { deepEqual, equal, ok } from "node:assert/strict";
import type { Packet } from "../src/wire/packet.ts";
import { request } from "./support/raw.ts";
import { startServer } from "./support/server.ts";
import { rawDownload, withPeer } from "./support/raw_transfer.ts";
import { expectData, file, fixture } from "./support/protocol_fixture.ts";

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
