/**
 * Test support for our client's tests (`tests/client*_test.ts`): byte-for-byte comparison, free
 * UDP ports, a collecting library download, and the argument lists of the CLI's `get` and `put`
 * against a server on 127.0.0.1.
 *
 * @module
 */

import { type ClientOptions, download } from "../../src/mod.ts";
import { sha256 } from "./server.ts";
import { HOST } from "../../src/testing/loopback.ts";
export { HOST };
export { listDir } from "./files.ts";

/** Asserts two byte arrays are identical (length, digest, and the first difference). */
export async function sameBytes(
  actual: Uint8Array,
  expected: Uint8Array,
  what: string,
): Promise<void> {
  if (actual.length === expected.length && (await sha256(actual)) === (await sha256(expected))) {
    return;
  }
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  throw new Error(
    `${what}: ${actual.length} bytes, expected ${expected.length}; first difference at ${i}`,
  );
}

/** A UDP port that was free a moment ago. */
export function freeUdpPort(hostname = HOST): number {
  const s = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
  const port = (s.addr as Deno.NetAddr).port;
  s.close();
  return port;
}

/** Downloads with the library and reports the bytes and the negotiated settings. */
export async function libGet(
  port: number,
  remote: string,
  options: ClientOptions = {},
  hostname = HOST,
) {
  const chunks: Uint8Array[] = [];
  const result = await download({ hostname, port }, remote, {
    write: (d) => void chunks.push(d.slice()),
    finish: () => Promise.resolve(),
  }, options);
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return { bytes, result };
}

/** The CLI arguments of `get` from `HOST:port` with quiet output and `extra` flags. */
export function getArgs(
  port: number,
  remote: string,
  local: string,
  extra: string[] = [],
): string[] {
  return ["get", `${HOST}:${port}`, remote, local, "-q", ...extra];
}

/** The CLI arguments of `put` to `HOST:port` with quiet output and `extra` flags. */
export function putArgs(
  port: number,
  local: string,
  remote: string,
  extra: string[] = [],
): string[] {
  return ["put", `${HOST}:${port}`, local, remote, "-q", ...extra];
}
