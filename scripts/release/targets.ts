/**
 * The release targets of `scripts/release/compile.ts`, and which of them an executable is built for
 * (read from its ELF, Mach-O or PE header), so a DENORT_BIN for the wrong platform is refused
 * before a build.
 *
 * @module
 */

/** Every target the release ships. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** One of {@linkcode TARGETS}. */
export type Target = typeof TARGETS[number];

/** The first 4 KiB of a file (enough for any executable header). */
export function readHead(path: string): Uint8Array {
  const file = Deno.openSync(path, { read: true });
  try {
    const buf = new Uint8Array(4096);
    const n = file.readSync(buf) ?? 0;
    return buf.subarray(0, n);
  } finally {
    file.close();
  }
}

/**
 * Which targets an executable's header says it runs on: ELF (Linux), Mach-O (macOS, including
 * universal binaries) or PE (Windows), for x86_64 and aarch64. `null` when it is none of them.
 *
 * @example
 * ```ts
 * import { detectBinaryTarget } from "./targets.ts";
 * import { deepEqual } from "node:assert/strict";
 * const elf = new Uint8Array(64);
 * elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1]);
 * elf[18] = 0x3e;
 * deepEqual(detectBinaryTarget(elf), ["x86_64-unknown-linux-gnu"]);
 * ```
 */
export function detectBinaryTarget(head: Uint8Array): Target[] | null {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const u16 = (at: number) => at + 2 <= head.length ? view.getUint16(at, true) : -1;
  const u32 = (at: number, le = true) => at + 4 <= head.length ? view.getUint32(at, le) : -1;
  // ELF: e_machine at 18.
  if (u32(0, false) === 0x7f454c46) {
    const machine = u16(18);
    if (machine === 0x3e) return ["x86_64-unknown-linux-gnu"];
    if (machine === 0xb7) return ["aarch64-unknown-linux-gnu"];
    return [];
  }
  // Mach-O 64-bit, little-endian: cputype at 4.
  if (u32(0) === 0xfeedfacf) {
    const cpu = u32(4);
    if (cpu === 0x01000007) return ["x86_64-apple-darwin"];
    if (cpu === 0x0100000c) return ["aarch64-apple-darwin"];
    return [];
  }
  // Universal (fat) Mach-O: big-endian header, then (cputype, …) entries of 20 bytes.
  if (u32(0, false) === 0xcafebabe) {
    const found: Target[] = [];
    const n = u32(4, false);
    for (let i = 0; i < n && i < 16; i++) {
      const cpu = u32(8 + i * 20, false);
      if (cpu === 0x01000007) found.push("x86_64-apple-darwin");
      if (cpu === 0x0100000c) found.push("aarch64-apple-darwin");
    }
    return found;
  }
  // PE: "MZ", e_lfanew at 0x3c, "PE\0\0", then the machine.
  if (head[0] === 0x4d && head[1] === 0x5a) {
    const pe = u32(0x3c);
    if (pe < 0 || u32(pe, false) !== 0x50450000) return [];
    const machine = u16(pe + 4);
    if (machine === 0x8664) return ["x86_64-pc-windows-msvc"];
    return [];
  }
  return null;
}
