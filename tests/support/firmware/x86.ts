/**
 * Firmware scenarios on x86_64 under QEMU/TCG: EDK2 (OVMF) PXE booting GRUB, which hashes an
 * image over TFTP; iPXE (the ipxe-qemu ROM of an e1000, on SeaBIOS) and pxelinux (chained by that
 * ROM) each fetching an image as a module of a multiboot kernel that prints its CRC-32. Each
 * returns its summary lines; any failed check throws.
 *
 * @module
 */

import { equal, ok } from "node:assert/strict";
import {
  assertNegotiated,
  assertServed,
  BOOT_MS,
  FETCH_MS,
  summary,
  within,
  X86_QEMU,
} from "./check.ts";
import { type Lab, type Listen, SERVER_IP, withLab } from "./lab.ts";
import {
  crcKernel,
  grubImage,
  type Image,
  image,
  ipxeScript,
  lastBlock,
  pxelinuxTree,
} from "./payloads.ts";
import { SYSTEM } from "./preflight.ts";
import type { Proc } from "./proc.ts";

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Modes of the server, as the summary names them. */
function modeOf(listen: Listen, singlePort = false, loss = 0): string {
  return [listen, singlePort ? "single-port" : "", loss ? `${loss}% loss` : ""]
    .filter(Boolean).join(", ");
}

/**
 * EDK2's PXE client (OVMF, its own virtio-net driver: the NIC's iPXE ROM is disabled) fetches
 * GRUB after a tsize probe; GRUB fetches the image and prints its SHA-256.
 */
export async function edk2Grub(): Promise<string[]> {
  const listen: Listen = "bound";
  return await withLab({ name: "edk2-grub", bootFile: "grubx64.efi", listen }, async (lab) => {
    const img = await image(lab.root, "grub-image.bin", 6_000_000, 11);
    await grubImage(lab.root, "grubx64.efi", img.name);
    const efi = (await Deno.stat(`${lab.root}/grubx64.efi`)).size;
    const vm = lab.guest("OVMF", SYSTEM.qemuX86, [
      ...X86_QEMU,
      "-m",
      "256",
      "-bios",
      SYSTEM.ovmf,
      ...lab.nic("virtio-net-pci", "52:54:00:66:00:21", ",romfile="),
    ]);
    await vm.expect(/GRUB-START/, BOOT_MS, "GRUB's start marker");
    const m = await vm.expect(
      new RegExp(`([0-9a-f]{64})\\s+\\(tftp,${esc(SERVER_IP)}\\)/${esc(img.name)}`),
      FETCH_MS,
      "GRUB's sha256 of the image",
    );
    equal(m[1], img.sha256, "the SHA-256 GRUB computed of what it fetched");
    await vm.expect(/GRUB-END/, 30_000, "GRUB's end marker");

    // EDK2: a tsize probe (OACK read, then ERROR 8), then the download.
    const probe = await lab.record("grubx64.efi", (r) => r.outcome === "size-probe");
    const nbp = await lab.record("grubx64.efi", (r) => !/size-probe|aborted/.test(r.outcome));
    // GRUB asks for "/name".
    const rec = await lab.record(`/${img.name}`);
    const negs = await lab.negotiations();
    const probed = negs.find((n) => n.file === "grubx64.efi" && n.clientError);
    ok(probed, `EDK2's probe on the wire: ${JSON.stringify(negs)}`);
    equal(probed.asked.tsize, "0", "EDK2 probes with tsize 0");
    equal(probed.answered?.tsize, String(efi), "the probe's answer is the size");
    equal(probed.clientError?.code, 8, "EDK2 ends the probe with ERROR 8");
    assertServed(nbp, { name: "grubx64.efi", size: efi });
    const edk2 = assertNegotiated(negs, "grubx64.efi", nbp, efi, 1468);
    assertServed(rec, img);
    const grub = assertNegotiated(negs, `/${img.name}`, rec, img.size, 1024);
    const mode = modeOf(listen);
    return [
      summary("EDK2 (OVMF) PXE probe", mode, probed, probe, `ERROR ${probed.clientError?.code}`),
      summary("EDK2 (OVMF) PXE", mode, edk2, nbp, "GRUB ran"),
      summary("GRUB (efinet, tftp)", mode, grub, rec, `sha256 ${m[1].slice(0, 16)}… matches`),
    ];
  });
}

/** Boots SeaBIOS with the ipxe-qemu ROM of an e1000 (iPXE, or what DHCP sends it to). */
function seabiosIpxe(lab: Lab, label: string, mac: string): Proc {
  return lab.guest(label, SYSTEM.qemuX86, [
    ...X86_QEMU,
    "-m",
    "128",
    "-device",
    "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ...lab.nic("e1000", mac, `,romfile=${SYSTEM.ipxeRom}`),
    "-boot",
    "n",
  ]);
}

/** Waits for the CRC kernel's line about `img` and checks the length and CRC it printed. */
async function kernelProof(vm: Proc, img: Image, what: string): Promise<string> {
  const m = await vm.expect(
    new RegExp(`MOD (\\S*${esc(img.name)}) ([0-9a-f]{8}) ([0-9a-f]{8})\\n`),
    BOOT_MS + FETCH_MS,
    `the CRC kernel's line for ${img.name}`,
  );
  equal(parseInt(m[2], 16), img.size, `length of the module ${what} loaded`);
  equal(m[3], img.crc32, `CRC-32 of the module ${what} loaded`);
  await vm.expect(/END\n/, 10_000, "the CRC kernel's end");
  // isa-debug-exit: (0x10 << 1) | 1.
  equal(await within(vm.exited, 30_000, "QEMU's exit"), 33, "QEMU ended by the CRC kernel");
  return `kernel: len ${m[2]} crc32 ${m[3]} match`;
}

/** iPXE runs a script that loads the CRC kernel and the image as its module over TFTP. */
export async function ipxe(
  listen: Listen,
  singlePort: boolean,
  loss = 0,
  size = 6_291_456 + 777,
): Promise<string[]> {
  const name = loss ? "ipxe-loss" : "ipxe";
  return await withLab({ name, bootFile: "boot.ipxe", listen, singlePort }, async (lab) => {
    const img = await image(lab.root, `${name}-image.bin`, size, loss ? 23 : 21);
    await crcKernel(lab.root);
    await ipxeScript(lab.root, "boot.ipxe", img.name);
    if (loss) await lab.setLoss(loss, [lastBlock(img.size, 1432)]);
    const vm = seabiosIpxe(lab, "iPXE", "52:54:00:66:00:31");
    const proof = await kernelProof(vm, img, "iPXE");
    const rec = await lab.record(img.name);
    const dropped = loss ? await lab.dropped() : 0;
    const negs = await lab.negotiations();
    assertServed(rec, img);
    const n = assertNegotiated(negs, img.name, rec, img.size, 1432);
    if (loss) {
      ok(dropped > 0, "the loss rule dropped datagrams");
      ok(rec.retransmits > 0, `the server retransmitted under loss: ${JSON.stringify(rec)}`);
    }
    const mode = modeOf(listen, singlePort, loss);
    const extra = loss ? `; ${dropped} datagrams dropped` : "";
    return [summary("iPXE (SeaBIOS, e1000 ROM)", mode, n, rec, proof + extra)];
  });
}

/**
 * pxelinux, chained by the iPXE ROM, loads mboot.c32, the CRC kernel and the image. The image
 * is an exact multiple of pxelinux's block size (1408): the transfer ends with an empty DATA.
 */
export async function pxelinux(listen: Listen): Promise<string[]> {
  return await withLab({ name: "pxelinux", bootFile: "pxelinux.0", listen }, async (lab) => {
    const img = await image(lab.root, "pxelinux-image.bin", 1408 * 3000, 31);
    await crcKernel(lab.root);
    await pxelinuxTree(lab.root, img.name);
    const vm = seabiosIpxe(lab, "pxelinux", "52:54:00:66:00:41");
    const proof = await kernelProof(vm, img, "pxelinux");
    const rec = await lab.record(img.name);
    const negs = await lab.negotiations();
    assertServed(rec, img);
    const n = assertNegotiated(negs, img.name, rec, img.size, 1408);
    equal(n.asked.tsize, "0", "pxelinux asks for tsize");
    // Holding tsize bytes, pxelinux may close with ERROR 0 instead of ACKing the empty block.
    const close = n.clientError
      ? `; closed by ERROR ${n.clientError.code} "${n.clientError.message}"`
      : "";
    return [summary("pxelinux 6.04 (via iPXE ROM)", modeOf(listen), n, rec, proof + close)];
  });
}
