/**
 * Test support for the wire-protocol tests: a read-only fixture directory of files of known
 * sizes, a `main.ts serve` subprocess around a test, and expectations on the next packet a raw
 * UDP peer receives.
 *
 * @module
 */

import { equal } from "node:assert/strict";
import { join } from "node:path";
import type { Packet } from "../../src/wire/packet.ts";
import type { RawPeer } from "./raw.ts";
import { makeFile, type ServerProcess, startServer } from "./server.ts";

const enc = new TextEncoder();

/** Files of the read-only fixture, by name → size. */
export const SIZES = {
  "three.bin": 1300, // 512 + 512 + 276
  "exact.bin": 1024, // 2 × 512: ends with an empty DATA 3
  "opt.bin": 5000,
  "forty.bin": 40 * 512 + 17,
  "win.bin": 12 * 512 + 100, // 13 blocks
  "big.bin": 300 * 512 + 3,
};

/** The fixture directory and its files' contents, removed on dispose. */
export interface Fixture {
  /** The fixture directory. */
  dir: string;
  /** Each file's contents by name. */
  files: Map<string, Uint8Array>;
  /** Removes the directory. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Creates the fixture: the files of `SIZES`, `text.txt` and an empty `subdir`. */
export async function fixture(): Promise<Fixture> {
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

/** Runs `fn` with a `main.ts serve ARGS…` subprocess, killed afterwards. */
export async function withServer(
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

/** The contents of the fixture's file `name` (throws for a name not in the fixture). */
export function file(fx: Fixture, name: string): Uint8Array {
  const f = fx.files.get(name);
  if (!f) throw new Error(`no fixture ${name}`);
  return f;
}

/** Expects the next packet at `peer` to be an ERROR with `code`, and returns it. */
export async function expectError(
  peer: RawPeer,
  code: number,
  timeoutMs = 10_000,
): Promise<{ packet: Packet; from: Deno.NetAddr; data: Uint8Array }> {
  const got = await peer.expect(timeoutMs);
  equal(got.packet.op, "ERROR", `expected ERROR ${code}, got ${got.packet.op}`);
  if (got.packet.op === "ERROR") equal(got.packet.code, code, got.packet.message);
  return got;
}

/** Expects the next packet at `peer` to be DATA `block`; returns its payload, sender and bytes. */
export async function expectData(
  peer: RawPeer,
  block: number,
  timeoutMs = 10_000,
): Promise<{ data: Uint8Array; from: Deno.NetAddr; raw: Uint8Array }> {
  const got = await peer.expect(timeoutMs);
  equal(got.packet.op, "DATA", `expected DATA ${block}, got ${got.packet.op}`);
  if (got.packet.op !== "DATA") throw new Error("unreachable");
  equal(got.packet.block, block);
  return { data: got.packet.data.slice(), from: got.from, raw: got.data };
}
