/**
 * Firmware test support: the checks every firmware scenario makes on the server's record and on
 * the captured negotiation of an image it fetched, and the summary line each prints.
 *
 * @module
 */

import { equal, ok } from "node:assert/strict";
import type { TransferRec } from "./lab.ts";
import { describeOptions, type Negotiation } from "./pcap.ts";
import type { Image } from "./payloads.ts";

/** How long a firmware may take to boot to the point of fetching (TCG, two busy cores). */
export const BOOT_MS = 150_000;
/** How long a multi-MiB fetch plus the firmware's digest may take (with loss, too). */
export const FETCH_MS = 150_000;

/** The common QEMU options of the x86 guests: TCG, the console on the serial port. */
export const X86_QEMU = [
  "-machine",
  "pc,accel=tcg",
  "-nographic", // SeaBIOS and OVMF print to the serial port
  "-no-reboot",
  "-monitor",
  "none",
  "-serial",
  "stdio",
];

/** The record of a completed download of `img`: outcome ok and every byte sent. */
export function assertServed(rec: TransferRec, img: Pick<Image, "name" | "size">): void {
  equal(rec.op, "RRQ", `record of ${img.name}`);
  equal(rec.outcome, "ok", `outcome of ${img.name}: ${JSON.stringify(rec)}`);
  equal(rec.bytes, img.size, `bytes sent of ${img.name}`);
}

/**
 * The last request for `file` that reached a transfer (not a size probe), checked against the
 * record: the firmware asked for `blksize`, the OACK granted it, and a tsize request was answered
 * with the file's size, a windowsize and timeout request with what the record shows.
 */
export function assertNegotiated(
  negs: Negotiation[],
  file: string,
  rec: TransferRec,
  size: number,
  blksize: number,
): Negotiation {
  // Not a size probe (the client reads the OACK and answers ERROR 8).
  const all = negs.filter((n) => n.file === file && n.clientError?.code !== 8);
  ok(all.length >= 1, `a captured request for ${file}: ${JSON.stringify(negs)}`);
  const n = all[all.length - 1];
  equal(n.asked.blksize, String(blksize), `blksize asked for ${file}`);
  ok(n.answered, `an OACK for ${file}`);
  equal(n.answered.blksize, String(blksize), `blksize granted for ${file}`);
  equal(rec.blksize, blksize, `blksize in the record of ${file}`);
  if ("tsize" in n.asked) equal(n.answered.tsize, String(size), `tsize answered for ${file}`);
  if ("windowsize" in n.asked) {
    equal(n.answered.windowsize, String(rec.windowsize), `windowsize granted for ${file}`);
  } else equal(rec.windowsize, 1, `no windowsize asked for ${file}: lock-step`);
  if ("timeout" in n.asked) equal(n.answered.timeout, n.asked.timeout, `timeout for ${file}`);
  return n;
}

/** One line of the module's summary table. */
export function summary(
  firmware: string,
  mode: string,
  n: Negotiation | null,
  rec: TransferRec,
  proof: string,
): string {
  return [
    firmware.padEnd(26),
    mode.padEnd(24),
    `${rec.file} ${rec.bytes} B`,
    `asked: ${n ? describeOptions(n.asked) : "?"}`,
    `answered: ${n ? describeOptions(n.answered) : "?"}`,
    `record: ${rec.outcome} blksize=${rec.blksize} windowsize=${rec.windowsize}` +
    ` retransmits=${rec.retransmits} ${rec.durationMs} ms`,
    `proof: ${proof}`,
  ].join(" | ");
}

/** Resolves with `p`, or rejects after `ms` with `what`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
