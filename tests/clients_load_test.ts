/**
 * Real TFTP clients (tftp-hpa, atftp, curl, busybox) against our server under load: downloads of
 * more than 65535 blocks (block-number rollover) and 24 concurrent downloads by a mix of clients.
 * Every transfer is compared byte for byte.
 */

import { equal } from "node:assert/strict";
import { join } from "node:path";
import { makeFile, startServer } from "./support/server.ts";
import {
  atftp,
  busybox,
  curl,
  doesNotReportError,
  hpa,
  output,
  recordOf,
  sameBytes,
  waitRecords,
} from "./support/clients.ts";

Deno.test("downloads of more than 65535 blocks roll the block number over", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-clients-" });
  const root = join(dir, "root");
  await Deno.mkdir(root);
  const size = 34_000_000; // 66407 blocks of 512 bytes
  const data = await makeFile(join(root, "big.bin"), size, 31);
  const server = await startServer([root, "--log-format", "json"]);
  try {
    await t.step("tftp-hpa at 512-byte blocks, lock-step", async () => {
      const from = server.lines.length;
      const local = join(dir, "hpa.bin");
      const r = await hpa(server.port, ["get", "big.bin", local]);
      doesNotReportError(r);
      const rec = await recordOf(server, "big.bin", from);
      equal(rec.outcome, "ok", JSON.stringify(rec));
      equal(rec.blksize, 512);
      equal(rec.bytes, size);
      await sameBytes(await Deno.readFile(local), data, "tftp-hpa rollover download");
    });

    await t.step("atftp at blksize 512 and windowsize 8", async () => {
      const from = server.lines.length;
      const local = join(dir, "atftp.bin");
      const r = await atftp(
        server.port,
        ["-g", "-r", "big.bin", "-l", local],
        ["blksize 512", "windowsize 8"],
      );
      equal(r.code, 0, output(r));
      const rec = await recordOf(server, "big.bin", from);
      equal(rec.outcome, "ok", JSON.stringify(rec));
      equal(rec.blksize, 512);
      equal(rec.windowsize, 8);
      equal(rec.bytes, size);
      await sameBytes(await Deno.readFile(local), data, "atftp rollover download");
    });
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("24 concurrent downloads by a mix of clients are all byte-identical", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-clients-" });
  const root = join(dir, "root");
  await Deno.mkdir(root);
  const data = await makeFile(join(root, "two.bin"), 2_000_000, 51);
  const server = await startServer([root, "--log-format", "json"]);
  try {
    const jobs = Array.from({ length: 24 }, (_, i) => {
      const local = join(dir, `out${i}`);
      switch (i % 4) {
        case 0:
          return { local, run: hpa(server.port, ["get", "two.bin", local]) };
        case 1:
          return {
            local,
            run: atftp(
              server.port,
              ["-g", "-r", "two.bin", "-l", local],
              ["blksize 1468", "windowsize 16"],
            ),
          };
        case 2:
          return { local, run: curl(server.port, "two.bin", local) };
        default:
          return {
            local,
            run: busybox(server.port, ["-b", "1428", "-g", "-r", "two.bin", "-l", local]),
          };
      }
    });
    const results = await Promise.all(jobs.map((j) => j.run));
    for (const [i, r] of results.entries()) equal(r.code, 0, `client ${i}: ${output(r)}`);
    for (const [i, j] of jobs.entries()) {
      await sameBytes(await Deno.readFile(j.local), data, `concurrent download ${i}`);
    }
    const recs = await waitRecords(server, (r) => r.file === "two.bin", 24);
    equal(recs.length, 24);
    for (const rec of recs) {
      equal(rec.outcome, "ok", JSON.stringify(rec));
      equal(rec.bytes, data.length);
    }
    equal(new Set(recs.map((r) => r.peer)).size, 24, "24 distinct client ports");
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
