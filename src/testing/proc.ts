/**
 * Test support for the hardening tests: what a server process holds (sockets, descriptors,
 * memory, from `/proc`), its JSON transfer log, polling, and a hand-driven lock-step download
 * over a {@linkcode RawPeer}.
 *
 * @module
 */

import { ack, type DataPacket, decode } from "../wire/packet.ts";
import type { RawPeer } from "../../tests/support/raw.ts";

/** Open file descriptors of `pid` (entries of `/proc/PID/fd`). */
export async function fdCount(pid: number): Promise<number> {
  let n = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) n++;
  return n;
}

/** Open sockets of `pid`: `/proc/PID/fd` symlinks of the form `socket:[inode]`. */
export async function socketCount(pid: number): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(`/proc/${pid}/fd`)) {
    try {
      if ((await Deno.readLink(`/proc/${pid}/fd/${e.name}`)).startsWith("socket:")) n++;
    } catch { /* closed while listing */ }
  }
  return n;
}

/** A field of `/proc/PID/status` in kB (`VmRSS`, `VmHWM`, …). */
export async function statusKb(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
  const text = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** `T` without its falsy members. */
export type Truthy<T> = Exclude<T, null | undefined | false | 0 | "">;

/** Polls `probe` until it returns a truthy value; throws `what` with the last value on timeout. */
export async function waitUntil<T>(
  probe: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  everyMs = 100,
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** One transfer record of the server's JSON log (`--log-format json`). */
export interface LoggedTransfer {
  op: "RRQ" | "WRQ";
  peer: string;
  file: string;
  bytes: number;
  blksize: number;
  windowsize: number;
  retransmits: number;
  durationMs: number;
  outcome: string;
  error?: string;
}

/** The transfer records among a JSON-logging server's lines. */
export function transfers(lines: string[]): LoggedTransfer[] {
  const out: LoggedTransfer[] = [];
  for (const l of lines) {
    if (!l.startsWith("{")) continue;
    try {
      const r = JSON.parse(l);
      if (r.event === "transfer") out.push(r);
    } catch { /* not JSON */ }
  }
  return out;
}

/** Byte-for-byte equality with a short message naming the first difference. */
export function sameBytes(got: Uint8Array, want: Uint8Array): string | null {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== want[i]) return `first difference at byte ${i}`;
  }
  return null;
}

/** A lock-step download started by hand: the first DATA received and where it came from. */
export interface HeldDownload {
  peer: RawPeer;
  /** The server's transfer port (TID) and address. */
  tid: Deno.NetAddr;
  /** Payloads received so far. */
  chunks: Uint8Array[];
}

/**
 * Sends a plain RRQ (no options: blksize 512, lock-step) from `peer` and waits for DATA 1,
 * without acknowledging it: the transfer stays open on the server until it times out.
 *
 * @throws {Error} When the answer is not DATA 1 (the packet is described).
 */
export async function holdDownload(
  peer: RawPeer,
  request: Uint8Array,
  port: number,
  hostname = "127.0.0.1",
): Promise<HeldDownload> {
  await peer.send(request, port, hostname);
  const got = await peer.expect(5000);
  const p = got.packet;
  if (p.op !== "DATA" || p.block !== 1) {
    throw new Error(`expected DATA 1, got ${JSON.stringify(p)}`);
  }
  return { peer, tid: got.from, chunks: [p.data.slice()] };
}

/** Acknowledges a held download to its end and returns every byte received. */
export async function finishDownload(h: HeldDownload): Promise<Uint8Array> {
  let block = 1;
  let last = h.chunks[h.chunks.length - 1];
  while (last.length === 512) {
    let next: DataPacket | null = null;
    for (let tries = 0; next === null; tries++) {
      if (tries > 5) throw new Error(`no DATA ${block + 1} from ${h.tid.port}`);
      await h.peer.send(ack(block), h.tid.port, h.tid.hostname);
      const end = Date.now() + 3000;
      while (next === null && Date.now() < end) {
        const got = await h.peer.recv(end - Date.now());
        if (!got || got.from.port !== h.tid.port) continue;
        const p = decode(got.data);
        if (p.op === "ERROR") throw new Error(`server sent ERROR ${p.code}: ${p.message}`);
        if (p.op === "DATA" && p.block === ((block + 1) & 0xffff)) next = p;
      }
    }
    block++;
    last = next.data.slice();
    h.chunks.push(last);
  }
  await h.peer.send(ack(block), h.tid.port, h.tid.hostname);
  const out = new Uint8Array(h.chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of h.chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
