/**
 * A FileSource whose `read` fails asynchronously (as a network-backed source does) while the
 * engine is still sending the previous chunk: the client must get an ERROR and the server must
 * keep running.
 */

import { equal, match, ok, rejects } from "node:assert/strict";
import { ErrorCode, get, PeerError, serve } from "../src/mod.ts";
import type { FileSource, ReadHandle } from "../src/mod.ts";
import { RefusedError } from "../src/errors.ts";
import { HOST } from "../src/testing/loopback.ts";

function failingSource(): FileSource {
  return {
    describe: () => "fails after the first chunk",
    openRead(): Promise<ReadHandle> {
      let calls = 0;
      return Promise.resolve({
        name: "failing",
        read(p: Uint8Array): Promise<number | null> {
          calls++;
          if (calls === 1) {
            p.fill(0x41);
            return Promise.resolve(p.length);
          }
          // The read-ahead fails while blocks of the first chunk are still being sent.
          return Promise.reject(
            new RefusedError(ErrorCode.NOT_DEFINED, "origin connection broken"),
          );
        },
        close() {},
      });
    },
  };
}

Deno.test("a read that fails during read-ahead reaches the client as ERROR 0 and the server survives", async () => {
  const server = await serve({ source: failingSource(), hostname: HOST, port: 0 });
  try {
    const target = { hostname: HOST, port: server.port };
    for (let i = 0; i < 2; i++) {
      await rejects(get(target, "x", { noOptions: true }), (e: unknown) => {
        ok(e instanceof PeerError, String(e));
        equal(e.code, 0);
        match(e.peerMessage, /origin connection broken/);
        return true;
      });
    }
  } finally {
    await server.close();
  }
});
