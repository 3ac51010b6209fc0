/**
 * Firmware scenario on arm64 under QEMU/TCG: U-Boot (u-boot-qemu's qemu_arm64 build, `-M virt`,
 * a virtio-net-device NIC) driven over its serial console: `dhcp`, then `tftpboot` of an image and
 * `crc32` of the loaded bytes — lock-step, with `tftpwindowsize 8`, and both again while the
 * bridge drops a share of the datagrams. Returns its summary lines; any failed check throws.
 *
 * @module
 */

import { equal, ok } from "node:assert/strict";
import { assertNegotiated, assertServed, BOOT_MS, FETCH_MS, summary, within } from "./check.ts";
import { type Listen, withLab } from "./lab.ts";
import { type Image, image, lastBlock } from "./payloads.ts";
import { SYSTEM } from "./preflight.ts";
import type { Proc } from "./proc.ts";

/** Where U-Boot loads the images (RAM starts at 0x40000000 on `virt`). */
const LOAD_ADDR = "0x40400000";

/** A U-Boot console: types a command line and returns what it printed. */
class UBoot {
  #n = 0;
  constructor(readonly vm: Proc) {}

  /** Interrupts autoboot and waits for the prompt. */
  async prompt(): Promise<void> {
    await this.vm.expect(/Hit any key to stop autoboot/, BOOT_MS, "U-Boot's autoboot prompt");
    await this.vm.write(" ");
    await this.vm.expect(/=> /, 30_000, "U-Boot's prompt");
  }

  /** Runs `line`, then an `echo` of a marker, and returns the output before the marker. */
  async run(line: string, timeoutMs: number): Promise<string> {
    const marker = `@@done-${++this.#n}`;
    await this.vm.write(`${line}; echo ${marker}\n`);
    // The typed line is echoed too, but there the marker follows "echo ", not a line start.
    const m = await this.vm.expect(new RegExp(`([\\s\\S]*?)\\n${marker}\\n`), timeoutMs, marker);
    return m[1];
  }
}

interface Run {
  img: Image;
  windowsize: number;
  loss: number;
}

/** One `tftpboot` + `crc32` on the console, checked against the image; returns the CRC. */
async function fetch(u: UBoot, run: Run): Promise<string> {
  const { img, windowsize, loss } = run;
  // Both set every time: U-Boot keeps the last value when a variable is deleted. Under loss the
  // retransmission timeout is 1 s (U-Boot asks the server for it too), not the default 5 s.
  const timeout = loss ? 1000 : 5000;
  const out = await u.run(
    `setenv tftpwindowsize ${windowsize}; setenv tftptimeout ${timeout}; ` +
      `tftpboot ${LOAD_ADDR} ${img.name} && crc32 \${fileaddr} \${filesize}`,
    FETCH_MS,
  );
  const bytes = /Bytes transferred = (\d+)/.exec(out);
  const crc = /==> ([0-9a-f]{8})/.exec(out);
  ok(bytes && crc, `U-Boot printed no transfer size and crc32 for ${img.name}:\n${out}`);
  equal(Number(bytes[1]), img.size, `bytes U-Boot loaded of ${img.name}`);
  equal(crc[1], img.crc32, `crc32 U-Boot computed of ${img.name}`);
  return crc[1];
}

/** U-Boot's scenario; `loss` % of datagrams are dropped for the last two fetches. */
export async function uboot(listen: Listen, loss: number): Promise<string[]> {
  return await withLab({ name: "uboot", bootFile: "none", listen }, async (lab) => {
    const runs: Run[] = [];
    const plan: Array<[string, number, number]> = [
      ["uboot-lockstep.bin", 1, 0],
      ["uboot-window8.bin", 8, 0],
      ["uboot-loss-lockstep.bin", 1, loss],
      ["uboot-loss-window8.bin", 8, loss],
    ];
    for (const [i, [name, windowsize, l]] of plan.entries()) {
      runs.push({
        img: await image(lab.root, name, 5_000_000 + 1111 * i, 41 + i),
        windowsize,
        loss: l,
      });
    }
    const vm = lab.guest("U-Boot", SYSTEM.qemuArm, [
      "-machine",
      "virt,accel=tcg",
      "-cpu",
      "cortex-a57",
      "-m",
      "256",
      "-nographic",
      "-no-reboot",
      "-monitor",
      "none",
      "-serial",
      "stdio",
      "-bios",
      SYSTEM.uboot,
      ...lab.nic("virtio-net-device", "52:54:00:66:00:51"),
    ]);
    const u = new UBoot(vm);
    await u.prompt();
    const dhcp = await u.run("setenv autoload no; dhcp", 60_000);
    ok(/DHCP client bound to address/.test(dhcp), `U-Boot's dhcp:\n${dhcp}`);

    const proofs: string[] = [];
    const walls: number[] = [];
    let lossOn = false;
    for (const run of runs) {
      if (run.loss && !lossOn) {
        const lossy = runs.filter((r) => r.loss).map((r) => lastBlock(r.img.size, 1468));
        await lab.setLoss(run.loss, lossy);
        lossOn = true;
      }
      const t0 = Date.now();
      proofs.push(await fetch(u, run));
      walls.push(Date.now() - t0);
    }
    const dropped = lossOn ? await lab.dropped() : 0;
    if (lossOn) await lab.setLoss(0);
    await vm.write("poweroff\n");
    await within(vm.exited, 30_000, "U-Boot's poweroff").catch(() => {});

    const negs = await lab.negotiations();
    const lines: string[] = [];
    for (const [i, run] of runs.entries()) {
      const rec = await lab.record(run.img.name);
      assertServed(rec, run.img);
      const n = assertNegotiated(negs, run.img.name, rec, run.img.size, 1468);
      equal(rec.windowsize, run.windowsize, `windowsize of ${run.img.name}`);
      if (run.loss) ok(rec.retransmits > 0, `retransmits under loss: ${JSON.stringify(rec)}`);
      const mode = [listen, run.windowsize > 1 ? `tftpwindowsize ${run.windowsize}` : "lock-step"]
        .concat(run.loss ? [`${run.loss}% loss`] : []).join(", ");
      const extra = run.loss && i === runs.length - 1 ? `; ${dropped} datagrams dropped` : "";
      lines.push(
        summary(
          "U-Boot 2023.01 (arm64 virt)",
          mode,
          n,
          rec,
          `crc32 ${proofs[i]} match, ` +
            `${(walls[i] / 1000).toFixed(1)} s on the console${extra}`,
        ),
      );
    }
    if (lossOn) ok(dropped > 0, "the loss rule dropped datagrams");
    return lines;
  });
}
