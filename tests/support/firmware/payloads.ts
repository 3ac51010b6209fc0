/**
 * Firmware test support: what the firmware tests serve — seeded random images, the multiboot
 * kernel that prints a CRC-32 of its modules (crc_kernel.S), a GRUB EFI image whose embedded
 * config hashes a file over TFTP, iPXE scripts and a pxelinux tree — and the digests the tests
 * compare with what the firmware prints.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { makeFile, run } from "../server.ts";
import { SERVER_IP } from "./lab.ts";
import { SYSLINUX_MODULES, SYSTEM } from "./preflight.ts";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib and U-Boot's `crc32`) of `data`, as 8 lower-case hex digits. */
export function crc32(data: Uint8Array): string {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ((c ^ 0xffffffff) >>> 0).toString(16).padStart(8, "0");
}

/** SHA-256 of `data` as hex. */
export async function sha256(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A served image: its name, bytes and digests. */
export interface Image {
  name: string;
  size: number;
  crc32: string;
  sha256: string;
}

/** Writes `size` seeded pseudo-random bytes as `dir/name` and returns the image's digests. */
export async function image(dir: string, name: string, size: number, seed: number): Promise<Image> {
  const data = await makeFile(`${dir}/${name}`, size, seed);
  return { name, size, crc32: crc32(data), sha256: await sha256(data) };
}

/** The number of the last DATA block of a `size`-byte file (the short or empty one). */
export function lastBlock(size: number, blksize: number): number {
  return Math.floor(size / blksize) + 1;
}

async function must(cmd: string, args: string[]): Promise<void> {
  const r = await run(cmd, args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}):\n${r.stderr}`);
}

const KERNEL_SOURCE = fileURLToPath(new URL("./crc_kernel.S", import.meta.url));

/** Assembles crc_kernel.S into the flat multiboot binary `dir/name`. */
export async function crcKernel(dir: string, name = "crc_kernel.bin"): Promise<void> {
  const obj = `${dir}/../crc_kernel.o`;
  await must(SYSTEM.as, ["--32", "-o", obj, KERNEL_SOURCE]);
  await must(SYSTEM.ld, [
    "-m",
    "elf_i386",
    "-Ttext",
    "0x100000",
    "--oformat",
    "binary",
    "-o",
    `${dir}/${name}`,
    obj,
  ]);
}

/**
 * Builds a GRUB EFI image `dir/name` from grub-efi-amd64-bin's modules, with the network stack and
 * an embedded config that prints markers around `hashsum --hash sha256` of `file` fetched over
 * TFTP from the lab server, then halts (QEMU exits).
 */
export async function grubImage(dir: string, name: string, file: string): Promise<void> {
  const cfg = `${dir}/../grub-embedded.cfg`;
  await Deno.writeTextFile(
    cfg,
    [
      "echo GRUB-START",
      `hashsum --hash sha256 (tftp,${SERVER_IP})/${file}`,
      "echo GRUB-END",
      "halt",
      "",
    ].join("\n"),
  );
  await must(SYSTEM.grubMkimage, [
    "-d",
    SYSTEM.grubModules,
    "-O",
    "x86_64-efi",
    "-o",
    `${dir}/${name}`,
    "-p",
    "/grub",
    "-c",
    cfg,
    "efinet",
    "net",
    "tftp",
    "hashsum",
    "gcry_sha256",
    "echo",
    "halt",
  ]);
}

/** Writes an iPXE script `dir/name` that boots the CRC kernel with `module` as its module. */
export async function ipxeScript(dir: string, name: string, module: string): Promise<void> {
  const base = `tftp://${SERVER_IP}`;
  await Deno.writeTextFile(
    `${dir}/${name}`,
    `#!ipxe\nkernel ${base}/crc_kernel.bin\nmodule ${base}/${module}\nboot\n`,
  );
}

/**
 * Copies pxelinux.0 and the syslinux modules into `dir` and writes a pxelinux.cfg/default that
 * boots the CRC kernel through mboot.c32 with `module` as its module.
 */
export async function pxelinuxTree(dir: string, module: string): Promise<void> {
  await Deno.copyFile(SYSTEM.pxelinux, `${dir}/pxelinux.0`);
  for (const m of SYSLINUX_MODULES) {
    await Deno.copyFile(`${SYSTEM.syslinuxModules}/${m}`, `${dir}/${m}`);
  }
  await Deno.mkdir(`${dir}/pxelinux.cfg`);
  await Deno.writeTextFile(
    `${dir}/pxelinux.cfg/default`,
    `DEFAULT crc\nPROMPT 0\nLABEL crc\n  KERNEL mboot.c32\n  APPEND crc_kernel.bin --- ${module}\n`,
  );
}
