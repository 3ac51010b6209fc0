/**
 * Test support for the library-API tests: an in-process `serve` of a source on 127.0.0.1 that
 * records every transfer, test bytes, and a matcher for `PeerError`.
 *
 * @module
 */

import { equal, ok } from "node:assert/strict";
import {
  type FileSource,
  PeerError,
  serve,
  type Server,
  type TransferRecord,
} from "../../src/mod.ts";
import { HOST } from "../../src/testing/loopback.ts";
export { HOST };

/** A running in-process server. */
export interface Running {
  /** The server. */
  server: Server;
  /** Where clients reach it. */
  target: { hostname: string; port: number };
  /** Every transfer record so far. */
  records: TransferRecord[];
  /** Aborts the server and waits until it has finished. */
  stop(): Promise<void>;
}

/** Serves `source` on 127.0.0.1, a free port, recording every transfer. */
export async function start(source: FileSource): Promise<Running> {
  const controller = new AbortController();
  const records: TransferRecord[] = [];
  const server = await serve({
    source,
    hostname: HOST,
    port: 0,
    signal: controller.signal,
    onTransfer: (r) => void records.push(r),
  });
  return {
    server,
    target: { hostname: HOST, port: server.port },
    records,
    stop: async () => {
      controller.abort();
      await server.finished;
    },
  };
}

/** The concatenation of `chunks`. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** `size` pseudo-random bytes from `seed`. */
export function bytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed || 1;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A `rejects` matcher: a `PeerError` with `code` (and a peer message matching `message`). */
export function isPeerError(code: number, message?: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    ok(e instanceof PeerError, `expected PeerError, got ${e}`);
    equal(e.code, code, e.message);
    if (message) ok(message.test(e.peerMessage), `peer message: ${e.peerMessage}`);
    ok(e.message.includes(e.peerMessage), e.message);
    return true;
  };
}
