/**
 * Test support: whole transfers driven by hand over a {@linkcode RawPeer}, recording every packet
 * (per-block DATA counts, wire block numbers, where each came from), for protocol, field and
 * hostile-input tests.
 *
 * @module
 */

import { decode, encode, type Packet } from "../../src/wire/packet.ts";
import { RawPeer, request } from "./raw.ts";
import type { ServerProcess } from "./server.ts";

/** The server answered a request (or a transfer) with an ERROR packet. */
export class RawErrorReply extends Error {
  /** The TFTP error code. */
  readonly code: number;
  /** The server's message. */
  readonly text: string;
  /** Where the ERROR came from. */
  readonly from: Deno.NetAddr;
  /**
   * @param code The ERROR code.
   * @param text The ERROR message.
   * @param from The sender.
   */
  constructor(code: number, text: string, from: Deno.NetAddr) {
    super(`server sent ERROR ${code}: ${text}`);
    this.name = "RawErrorReply";
    this.code = code;
    this.text = text;
    this.from = from;
  }
}

/** Options of {@linkcode rawDownload}. */
export interface RawDownloadOptions {
  /** Request options (sent in this order). */
  options?: Record<string, string>;
  /** Transfer mode (default `octet`). */
  mode?: string;
  /** Server address (default 127.0.0.1). */
  hostname?: string;
  /** Send every ACK twice (Sorcerer's Apprentice probe). */
  ackTwice?: boolean;
  /** Longest wait for any one packet (default 10 s). */
  packetTimeoutMs?: number;
  /** Called for each in-order DATA block before it is acknowledged. */
  onBlock?: (block: number, tid: Deno.NetAddr) => void | Promise<void>;
}

/** Everything seen during a download. */
export interface RawDownloadResult {
  /** The reassembled file. */
  data: Uint8Array;
  /** The OACK's options, or null when the server answered with DATA 1. */
  oack: Map<string, string> | null;
  /** The server's transfer address (its TID). */
  tid: Deno.NetAddr;
  /** Absolute block number → DATA packets received for it. */
  counts: Map<number, number>;
  /** Block numbers of the in-order DATA packets as they appeared on the wire. */
  wireBlocks: number[];
  /** Payload length of DATA 1. */
  firstLength: number;
  /** The negotiated block and window size. */
  blksize: number;
  windowsize: number;
}

/** Nearest absolute block for a 16-bit wire number, around `expected`. */
export function absoluteBlock(wire: number, expected: number): number {
  const diff = ((wire - (expected & 0xffff) + 32768) & 0xffff) - 32768;
  return expected + diff;
}

/** Encodes a packet (shorthand). */
export function pkt(p: Packet): Uint8Array {
  return encode(p);
}

/** An ACK packet. */
export function ackOf(block: number): Uint8Array {
  return encode({ op: "ACK", block: block & 0xffff });
}

/** An ERROR packet. */
export function errorOf(code: number, message: string): Uint8Array {
  return encode({ op: "ERROR", code, message });
}

/** A DATA packet. */
export function dataOf(block: number, data: Uint8Array): Uint8Array {
  return encode({ op: "DATA", block: block & 0xffff, data });
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Builds raw bytes from an opcode and a list of strings/byte arrays, each followed by NUL. */
export function rawRequest(op: number, ...fields: Array<string | Uint8Array>): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [new Uint8Array([op >> 8, op & 0xff])];
  for (const f of fields) {
    parts.push(typeof f === "string" ? enc.encode(f) : f, new Uint8Array([0]));
  }
  return concat(parts);
}

/**
 * Downloads `name` over `peer`: sends the RRQ, acknowledges the OACK if one comes, then DATA in
 * order (at the end of each window), and returns what arrived. Throws {@linkcode RawErrorReply}
 * when the server answers with an ERROR, and a plain Error on a timeout or a packet from
 * anywhere but the transfer's TID.
 */
export async function rawDownload(
  peer: RawPeer,
  port: number,
  name: string | Uint8Array,
  o: RawDownloadOptions = {},
): Promise<RawDownloadResult> {
  const host = o.hostname ?? "127.0.0.1";
  const wait = o.packetTimeoutMs ?? 10_000;
  await peer.send(request("RRQ", name, o.mode ?? "octet", o.options ?? {}), port, host);
  const first = await peer.expect(wait);
  const tid = first.from;
  let oack: Map<string, string> | null = null;
  let blksize = 512;
  let windowsize = 1;
  const sendAck = async (block: number) => {
    await peer.send(ackOf(block), tid.port, tid.hostname);
    if (o.ackTwice) await peer.send(ackOf(block), tid.port, tid.hostname);
  };
  let pending: { packet: Packet; from: Deno.NetAddr } | null = null;
  if (first.packet.op === "ERROR") {
    throw new RawErrorReply(first.packet.code, first.packet.message, first.from);
  } else if (first.packet.op === "OACK") {
    oack = first.packet.options;
    blksize = Number(oack.get("blksize") ?? 512);
    windowsize = Number(oack.get("windowsize") ?? 1);
    await sendAck(0);
  } else if (first.packet.op === "DATA") {
    pending = first;
  } else {
    throw new Error(`unexpected first packet ${first.packet.op}`);
  }
  const parts: Uint8Array[] = [];
  const counts = new Map<number, number>();
  const wireBlocks: number[] = [];
  let expected = 1;
  let inWindow = 0;
  let firstLength = -1;
  for (;;) {
    const got = pending ?? await peer.expect(wait);
    pending = null;
    if (got.from.port !== tid.port || got.from.hostname !== tid.hostname) {
      throw new Error(`packet from ${got.from.hostname}:${got.from.port}, not the TID`);
    }
    const p = got.packet;
    if (p.op === "ERROR") throw new RawErrorReply(p.code, p.message, got.from);
    if (p.op !== "DATA") continue;
    const abs = absoluteBlock(p.block, expected);
    counts.set(abs, (counts.get(abs) ?? 0) + 1);
    if (abs !== expected) {
      // A retransmission that crossed our ACK: in lock-step, acknowledge again (RFC 1350).
      if (windowsize === 1 && abs === expected - 1) await sendAck(abs);
      continue;
    }
    if (p.data.length > blksize) throw new Error(`DATA ${p.block} larger than blksize`);
    if (abs === 1) firstLength = p.data.length;
    await o.onBlock?.(abs, tid);
    parts.push(p.data.slice());
    wireBlocks.push(p.block);
    expected++;
    inWindow++;
    if (p.data.length < blksize) {
      await sendAck(abs);
      break;
    }
    if (inWindow >= windowsize) {
      inWindow = 0;
      await sendAck(abs);
    }
  }
  return {
    data: concat(parts),
    oack,
    tid,
    counts,
    wireBlocks,
    firstLength,
    blksize,
    windowsize,
  };
}

/** Runs `fn` with a fresh peer and closes it afterwards. */
export async function withPeer<T>(fn: (peer: RawPeer) => Promise<T>): Promise<T> {
  const peer = new RawPeer();
  try {
    return await fn(peer);
  } finally {
    peer.close();
  }
}

/** Decodes a datagram, or returns null when it is not a valid packet. */
export function tryDecode(data: Uint8Array): Packet | null {
  try {
    return decode(data);
  } catch {
    return null;
  }
}

/** Is the server process still running? */
export async function isRunning(server: ServerProcess): Promise<boolean> {
  const probe = Symbol("running");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    server.exited,
    new Promise((ok) => (timer = setTimeout(ok, 50, probe))),
  ]);
  clearTimeout(timer);
  return r === probe;
}

/** The JSON log records (lines that parse as objects with an `event`). */
export function jsonRecords(server: ServerProcess): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of server.lines) {
    try {
      const r = JSON.parse(line);
      if (r && typeof r === "object") out.push(r);
    } catch { /* a text line */ }
  }
  return out;
}

/** Waits for a JSON transfer record matching `match`. */
export async function waitForRecord(
  server: ServerProcess,
  match: (r: Record<string, unknown>) => boolean,
  timeoutMs = 15_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = jsonRecords(server).find((r) => r.event === "transfer" && match(r));
    if (hit) return hit;
    if (Date.now() > deadline) {
      throw new Error(`no matching transfer record:\n${server.lines.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
