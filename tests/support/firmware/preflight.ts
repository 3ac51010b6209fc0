/**
 * Firmware test support: where the Debian packages put the firmware and tools the firmware tests
 * boot, and a check that fails with one clear message naming what is missing.
 *
 * @module
 */

/** Paths of the firmware images, boot loaders and tools (Debian 12 packages). */
export const SYSTEM = {
  qemuX86: "qemu-system-x86_64", // qemu-system-x86 (SeaBIOS comes with it)
  qemuArm: "qemu-system-aarch64", // qemu-system-arm
  ovmf: "/usr/share/ovmf/OVMF.fd", // ovmf
  ipxeRom: "/usr/lib/ipxe/qemu/efi-e1000.rom", // ipxe-qemu: the ROM QEMU gives an e1000
  uboot: "/usr/lib/u-boot/qemu_arm64/u-boot.bin", // u-boot-qemu
  grubModules: "/usr/lib/grub/x86_64-efi", // grub-efi-amd64-bin
  grubMkimage: "grub-mkimage", // grub-common (a dependency of grub-efi-amd64-bin)
  pxelinux: "/usr/lib/PXELINUX/pxelinux.0", // pxelinux
  syslinuxModules: "/usr/lib/syslinux/modules/bios", // syslinux-common
  dnsmasq: "dnsmasq", // dnsmasq-base
  nft: "nft", // nftables
  ip: "ip", // iproute2
  tcpdump: "tcpdump", // tcpdump
  as: "as", // binutils
  ld: "ld", // binutils
} as const;

/** The syslinux modules pxelinux loads to boot a multiboot kernel. */
export const SYSLINUX_MODULES = ["ldlinux.c32", "mboot.c32", "libcom32.c32"];

/** Set to 1 to skip the firmware tests (machines without the packages or root). */
export const SKIP_ENV = "TFTPKIT_SKIP_FIRMWARE";

/** Whether the firmware tests are skipped on purpose. */
export function skipped(): boolean {
  return Deno.env.get(SKIP_ENV) === "1";
}

function onPath(cmd: string): boolean {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  return dirs.some((d) => {
    try {
      return Deno.statSync(`${d}/${cmd}`).isFile;
    } catch {
      return false;
    }
  });
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws one error listing every missing requirement (root, /dev/net/tun, commands, firmware
 * files), with how to get them.
 */
export function requireFirmwareLab(): void {
  const missing: string[] = [];
  if (Deno.uid() !== 0) missing.push("root (network namespaces, taps, nftables, port 69)");
  if (!exists("/dev/net/tun")) missing.push("/dev/net/tun (QEMU tap networking)");
  for (
    const cmd of [
      SYSTEM.qemuX86,
      SYSTEM.qemuArm,
      SYSTEM.grubMkimage,
      SYSTEM.dnsmasq,
      SYSTEM.nft,
      SYSTEM.ip,
      SYSTEM.tcpdump,
      SYSTEM.as,
      SYSTEM.ld,
    ]
  ) {
    if (!onPath(cmd)) missing.push(`command ${cmd}`);
  }
  for (
    const path of [
      SYSTEM.ovmf,
      SYSTEM.ipxeRom,
      SYSTEM.uboot,
      `${SYSTEM.grubModules}/efinet.mod`,
      SYSTEM.pxelinux,
      ...SYSLINUX_MODULES.map((m) => `${SYSTEM.syslinuxModules}/${m}`),
    ]
  ) {
    if (!exists(path)) missing.push(path);
  }
  if (missing.length) {
    throw new Error(
      `the firmware tests cannot run; missing:\n  ${missing.join("\n  ")}\n` +
        "Install the packages with `bash scripts/setup.sh --peers` and run as root, or set " +
        `${SKIP_ENV}=1 to skip these tests.`,
    );
  }
}
