/**
 * Real firmware against tftpkit: QEMU (TCG) boots EDK2/OVMF + GRUB, iPXE on SeaBIOS, pxelinux and
 * U-Boot (arm64) in network namespaces of the test's own, with dnsmasq for DHCP and `main.ts serve`
 * on port 69. Each passes only on the firmware's own proof of the bytes (a digest printed on its
 * serial console, compared with the test's) and on the server's record of the transfer (outcome
 * ok, every byte); the options each firmware asked and tftpkit granted are read from a capture
 * and checked against the record. One scenario per step, two at a time (two cores).
 *
 * Needs root and the Debian packages `bash scripts/setup.sh --peers` installs; fails with a list
 * of what is missing otherwise, unless TFTPKIT_SKIP_FIRMWARE=1.
 */

import { uboot } from "./support/firmware/arm.ts";
import { requireFirmwareLab, skipped } from "./support/firmware/preflight.ts";
import { edk2Grub, ipxe, pxelinux } from "./support/firmware/x86.ts";

/** Guests booted at once. */
const LANES = 2;

const SCENARIOS: Array<{ name: string; run: () => Promise<string[]> }> = [
  {
    name: "iPXE fetches 3 MB while the bridge drops 3% of the datagrams (bound address)",
    run: () => ipxe("bound", false, 3, 3_000_000),
  },
  {
    name: "EDK2 (OVMF) UEFI PXE boots GRUB, which hashes 6 MB fetched by TFTP (bound address)",
    run: edk2Grub,
  },
  {
    name: "U-Boot arm64 tftpboot + crc32: lock-step and windowsize 8, clean and with 3% loss",
    run: () => uboot("bound", 3),
  },
  {
    name: "pxelinux (chained by iPXE) loads 3000 blocks of 1408 bytes via mboot.c32 (wildcard)",
    run: () => pxelinux("wildcard"),
  },
  {
    name: "iPXE (SeaBIOS, e1000 ROM) loads 6 MiB as a multiboot module (--single-port, listed)",
    run: () => ipxe("listed", true),
  },
];

Deno.test({
  name: "firmware boots against tftpkit under QEMU/TCG",
  ignore: skipped(),
  // Steps run concurrently, which Deno allows only without the sanitizers.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    requireFirmwareLab();
    const started = Date.now();
    const queue = [...SCENARIOS];
    const lane = async () => {
      for (let s = queue.shift(); s; s = queue.shift()) {
        const { name, run } = s;
        await t.step({
          name,
          sanitizeOps: false,
          sanitizeResources: false,
          sanitizeExit: false,
          fn: async () => {
            const t0 = Date.now();
            const lines = await run();
            console.log(
              `${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n  ${lines.join("\n  ")}`,
            );
          },
        });
      }
    };
    await Promise.all(Array.from({ length: LANES }, lane));
    console.log(`firmware scenarios: ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
  },
});
