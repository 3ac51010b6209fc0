/**
 * Test support for the transfer engine's tests (`src/engine/*_test.ts`): seeded data and short
 * reads, a collecting sink, scripted expectations on a memory channel, and `runTransfer`, which
 * runs one whole transfer over a memory channel pair in the server's and the client's roles.
 *
 * @module
 */

import { equal } from "node:assert/strict";
import type { BlockSink, BlockSource } from "../engine/blocks.ts";
import type { Channel } from "../engine/channel.ts";
import { sendError } from "../engine/fail.ts";
import { asTftpError } from "../errors.ts";
import { dally, receiveBlocks, type ReceiveOptions } from "../engine/receive.ts";
import { Rto } from "../engine/rto.ts";
import { sendBlocks, type SendOptions } from "../engine/send.ts";
import type { Knobs, TransferStats } from "../engine/settings.ts";
import { type Negotiated } from "../wire/options.ts";
import { ChunkReader, chunkSizeFor } from "../storage/chunks.ts";
import type { ReadHandle } from "../storage/source.ts";
import { ack, blockOf, decode, encode, Opcode, opcodeOf } from "../wire/packet.ts";
import {
  type MemoryChannel,
  memoryChannelPair,
  type MemoryPlan,
  mulberry32,
} from "./memory_channel.ts";

/** What a test transfer runs with: negotiated settings plus the local knobs. */
export type TransferSettings = Negotiated & Knobs & { settleMs?: number };

/** A fresh retransmission timer for `s`. */
export function rtoFor(s: TransferSettings): Rto {
  return new Rto({
    timeoutMs: s.timeoutMs,
    retries: s.retries,
    peerTimeoutMs: s.timeoutMs,
    settleMs: s.settleMs,
  });
}

/** {@linkcode sendBlocks} with a timer for `s`. */
export function send(
  ch: Channel,
  source: BlockSource,
  s: TransferSettings,
  options: Partial<SendOptions> = {},
): Promise<TransferStats> {
  return sendBlocks(ch, source, s, { rto: rtoFor(s), ...options }).catch((e) => failed(ch, e));
}

/** Sends the ERROR due for `e` (as the server's and the client's runners do) and rethrows it. */
async function failed(ch: Channel, e: unknown): Promise<never> {
  const err = asTftpError(e);
  await sendError((p) => ch.send(p), err);
  throw err;
}

/**
 * {@linkcode receiveBlocks} with a timer for `s`, then {@linkcode dally} as the server does
 * (`dallyMs`, default twice the timeout; 0 for none).
 */
export async function receive(
  ch: Channel,
  sink: BlockSink,
  s: TransferSettings,
  options: Partial<ReceiveOptions> & { dallyMs?: number } = {},
): Promise<TransferStats> {
  const stats = await receiveBlocks(ch, sink, s, { rto: rtoFor(s), ...options })
    .catch((e) => failed(ch, e));
  const dallyMs = options.dallyMs ?? 2 * s.timeoutMs;
  if (dallyMs > 0) await dally(ch, stats.blocks, dallyMs);
  return stats;
}

export function makeBytes(n: number, seed: number): Uint8Array {
  const rng = mulberry32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng() * 256) | 0;
  return out;
}

/** A ReadHandle over `data` whose reads return seeded short amounts (1 .. p.length). */
export function shortReadHandle(data: Uint8Array, seed: number): ReadHandle {
  const rng = mulberry32(seed);
  let at = 0;
  return {
    name: "memory",
    size: data.length,
    read(p) {
      if (at >= data.length) return Promise.resolve(null);
      const want = 1 + Math.floor(rng() * p.length);
      const n = Math.min(want, data.length - at);
      p.set(data.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    close() {},
  };
}

export function sourceFor(data: Uint8Array, s: TransferSettings, seed = 1): ChunkReader {
  return new ChunkReader(shortReadHandle(data, seed), chunkSizeFor(s.blksize, s.windowsize));
}

export interface Collector extends BlockSink {
  chunks: Uint8Array[];
  finishes: number;
  writesAfterFinish: number;
  bytes(): Uint8Array;
}

export function collector(): Collector {
  const c: Collector = {
    chunks: [],
    finishes: 0,
    writesAfterFinish: 0,
    write(d) {
      if (c.finishes > 0) c.writesAfterFinish++;
      c.chunks.push(d.slice());
    },
    finish() {
      c.finishes++;
      return Promise.resolve();
    },
    bytes() {
      const total = c.chunks.reduce((n, x) => n + x.length, 0);
      const out = new Uint8Array(total);
      let at = 0;
      for (const x of c.chunks) {
        out.set(x, at);
        at += x.length;
      }
      return out;
    },
  };
  return c;
}

export function settings(
  blksize: number,
  windowsize: number,
  timeoutMs = 2000,
  retries = 5,
): TransferSettings {
  return { blksize, windowsize, timeoutMs, retries };
}

export function oackFor(s: TransferSettings): Uint8Array {
  return encode({
    op: "OACK",
    options: new Map([["blksize", String(s.blksize)], ["windowsize", String(s.windowsize)]]),
  });
}

export function blocksOf(size: number, blksize: number): number {
  return Math.floor(size / blksize) + 1;
}

/** 1..n as wire numbers (mod 65536). */
export function wireRange(from: number, to: number): number[] {
  const out: number[] = [];
  for (let k = from; k <= to; k++) out.push(k & 0xffff);
  return out;
}

/** Waits for the next datagram; fails the test when none comes. */
export async function next(ch: MemoryChannel, ms = 2000): Promise<Uint8Array> {
  const p = await ch.receive(ch.clock.now() + ms);
  if (p === null) throw new Error(`${ch.name}: no datagram within ${ms} ms`);
  return p;
}

/** Waits for the next datagram and checks it is DATA `block`; returns its payload. */
export async function expectData(ch: MemoryChannel, block: number, ms = 2000): Promise<Uint8Array> {
  const p = await next(ch, ms);
  equal(opcodeOf(p), Opcode.DATA, `expected DATA ${block}, got ${describeBytes(p)}`);
  equal(blockOf(p), block, `expected DATA ${block}, got DATA ${blockOf(p)}`);
  return p.slice(4);
}

export async function expectAck(ch: MemoryChannel, block: number, ms = 2000): Promise<void> {
  const p = await next(ch, ms);
  equal(opcodeOf(p), Opcode.ACK, `expected ACK ${block}, got ${describeBytes(p)}`);
  equal(blockOf(p), block, `expected ACK ${block}, got ACK ${blockOf(p)}`);
}

export function describeBytes(p: Uint8Array): string {
  try {
    const d = decode(p);
    return "block" in d ? `${d.op} ${d.block}` : d.op;
  } catch {
    return `malformed ${[...p.subarray(0, 8)]}`;
  }
}

export function dataPacket(block: number, payload: Uint8Array): Uint8Array {
  return encode({ op: "DATA", block, data: payload });
}

export interface TransferCase {
  /** download: the server (end A) sends; upload: the server (end A) receives. */
  role: "download" | "upload";
  /** Does the server answer the request with an OACK? */
  oack: boolean;
  data: Uint8Array;
  settings: TransferSettings;
  plan?: MemoryPlan;
  dallyMs?: number;
  seed?: number;
}

export interface TransferResult {
  received: Uint8Array;
  sink: Collector;
  sender: TransferStats;
  receiver: TransferStats;
  /** End A: the server. */
  server: MemoryChannel;
  /** End B: the client. */
  client: MemoryChannel;
  senderEnd: MemoryChannel;
  receiverEnd: MemoryChannel;
}

/**
 * Runs one whole transfer in the server's and the client's roles. The client's part starts
 * with the handshake reply (what the request drew: OACK, DATA or ACK 0), as the client does.
 */
export async function runTransfer(c: TransferCase): Promise<TransferResult> {
  const [server, client] = memoryChannelPair(c.plan);
  const s = c.settings;
  const sink = collector();
  const source = sourceFor(c.data, s, c.seed ?? 1);
  const oack = oackFor(s);
  const handshakeMs = s.timeoutMs * (s.retries + 2);
  const dallyMs = c.dallyMs ?? 0;
  let sendP: Promise<TransferStats>;
  let recvP: Promise<TransferStats>;
  if (c.role === "download") {
    sendP = send(server, source, s, c.oack ? { oack } : {});
    recvP = (async () => {
      const first = await next(client, handshakeMs);
      if (c.oack) {
        equal(opcodeOf(first), Opcode.OACK, `handshake reply ${describeBytes(first)}`);
        return receive(client, sink, s, { reply: ack(0), dallyMs });
      }
      equal(opcodeOf(first), Opcode.DATA, `handshake reply ${describeBytes(first)}`);
      return receive(client, sink, s, { first, dallyMs });
    })();
  } else {
    recvP = receive(server, sink, s, { reply: c.oack ? oack : ack(0), dallyMs });
    sendP = (async () => {
      const first = await next(client, handshakeMs);
      equal(opcodeOf(first), c.oack ? Opcode.OACK : Opcode.ACK, describeBytes(first));
      return send(client, source, s);
    })();
  }
  let firstError: unknown = null;
  const stop = (e: unknown) => {
    firstError ??= e;
    server.close();
    client.close();
    throw e;
  };
  const [sent, got] = await Promise.allSettled([sendP.catch(stop), recvP.catch(stop)]);
  server.close();
  client.close();
  if (firstError !== null) throw firstError;
  const sender = (sent as PromiseFulfilledResult<TransferStats>).value;
  const receiver = (got as PromiseFulfilledResult<TransferStats>).value;
  const senderEnd = c.role === "download" ? server : client;
  const receiverEnd = c.role === "download" ? client : server;
  return { received: sink.bytes(), sink, sender, receiver, server, client, senderEnd, receiverEnd };
}

/** Compares two byte arrays and names the first difference. */
export function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      throw new Error(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

export const ROLES: Array<{ role: "download" | "upload"; oack: boolean }> = [
  { role: "download", oack: true },
  { role: "download", oack: false },
  { role: "upload", oack: true },
  { role: "upload", oack: false },
];
