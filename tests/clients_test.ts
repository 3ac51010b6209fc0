/**
 * Real TFTP clients (tftp-hpa, atftp, curl, busybox) against our server: downloads, uploads
 * (refused and overwriting ones included), netascii both ways and single-file mode. Every transfer
 * is compared byte for byte.
 */

import { deepEqual, equal, match, notEqual } from "node:assert/strict";
import { join } from "node:path";
import { makeFile, startServer } from "./support/server.ts";
import {
  atftp,
  busybox,
  curl,
  doesNotReportError,
  hpa,
  listDir,
  output,
  recordOf,
  sameBytes,
  waitRecords,
} from "./support/clients.ts";

const enc = new TextEncoder();

Deno.test("tftp-hpa, atftp, curl and busybox download byte-identical files", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-clients-" });
  const root = join(dir, "root");
  await Deno.mkdir(root);
  const data = await makeFile(join(root, "data.bin"), 300_001, 11);
  const server = await startServer([root, "--log-format", "json"]);
  try {
    await t.step("tftp-hpa gets in octet mode", async () => {
      const from = server.lines.length;
      const local = join(dir, "hpa.bin");
      const r = await hpa(server.port, ["get", "data.bin", local]);
      equal(r.code, 0, output(r));
      await sameBytes(await Deno.readFile(local), data, "tftp-hpa download");
      const rec = await recordOf(server, "data.bin", from);
      equal(rec.outcome, "ok");
      equal(rec.bytes, data.length);
    });

    await t.step("atftp gets with blksize 1468", async () => {
      const from = server.lines.length;
      const local = join(dir, "atftp-blk.bin");
      const r = await atftp(server.port, ["-g", "-r", "data.bin", "-l", local], ["blksize 1468"]);
      equal(r.code, 0, output(r));
      await sameBytes(await Deno.readFile(local), data, "atftp blksize download");
      const rec = await recordOf(server, "data.bin", from);
      equal(rec.outcome, "ok");
      equal(rec.blksize, 1468);
      equal(rec.windowsize, 1);
    });

    await t.step("atftp gets with windowsize 16 and blksize 1468", async () => {
      const from = server.lines.length;
      const local = join(dir, "atftp-win.bin");
      const r = await atftp(
        server.port,
        ["-g", "-r", "data.bin", "-l", local],
        ["blksize 1468", "windowsize 16"],
      );
      equal(r.code, 0, output(r));
      await sameBytes(await Deno.readFile(local), data, "atftp windowsize download");
      const rec = await recordOf(server, "data.bin", from);
      equal(rec.outcome, "ok");
      equal(rec.blksize, 1468);
      equal(rec.windowsize, 16);
    });

    await t.step("curl gets with its tsize, blksize and timeout options", async () => {
      const from = server.lines.length;
      const local = join(dir, "curl.bin");
      const r = await curl(server.port, "data.bin", local, ["--tftp-blksize", "1024"]);
      equal(r.code, 0, output(r));
      await sameBytes(await Deno.readFile(local), data, "curl download");
      const rec = await recordOf(server, "data.bin", from);
      equal(rec.outcome, "ok");
      equal(rec.blksize, 1024);
    });

    await t.step("busybox gets with the default and a 1024-byte block size", async () => {
      for (const extra of [[], ["-b", "1024"]]) {
        const from = server.lines.length;
        const local = join(dir, `busybox${extra.length}.bin`);
        const r = await busybox(server.port, [...extra, "-g", "-r", "data.bin", "-l", local]);
        equal(r.code, 0, output(r));
        await sameBytes(await Deno.readFile(local), data, `busybox ${extra} download`);
        const rec = await recordOf(server, "data.bin", from);
        equal(rec.outcome, "ok");
        equal(rec.blksize, extra.length ? 1024 : 512);
      }
    });
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tftp-hpa, atftp and busybox upload byte-identical files to a --write server", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-clients-" });
  const root = join(dir, "root");
  const local = join(dir, "local");
  await Deno.mkdir(root);
  await Deno.mkdir(local);
  const files = {
    hpa: await makeFile(join(local, "hpa.bin"), 200_003, 21),
    atftp: await makeFile(join(local, "atftp.bin"), 150_000, 22),
    atftpWin: await makeFile(join(local, "atftp-win.bin"), 250_017, 23),
    busybox: await makeFile(join(local, "busybox.bin"), 100_512, 24),
  };
  const replacement = await makeFile(join(local, "replacement.bin"), 70_001, 25);
  const server = await startServer([root, "--write", "--log-format", "json"], { write: true });
  try {
    await t.step("each client's upload arrives intact", async () => {
      let r = await hpa(server.port, ["put", join(local, "hpa.bin"), "hpa.bin"]);
      equal(r.code, 0, output(r));
      doesNotReportError(r);
      r = await atftp(server.port, ["-p", "-l", join(local, "atftp.bin"), "-r", "atftp.bin"]);
      equal(r.code, 0, output(r));
      r = await atftp(
        server.port,
        ["-p", "-l", join(local, "atftp-win.bin"), "-r", "atftp-win.bin"],
        ["blksize 1468", "windowsize 16"],
      );
      equal(r.code, 0, output(r));
      r = await busybox(server.port, ["-p", "-l", join(local, "busybox.bin"), "-r", "busybox.bin"]);
      equal(r.code, 0, output(r));
      for (const name of ["hpa.bin", "atftp.bin", "atftp-win.bin", "busybox.bin"]) {
        const rec = await recordOf(server, name);
        equal(rec.op, "WRQ");
        equal(rec.outcome, "ok", JSON.stringify(rec));
      }
      equal((await recordOf(server, "atftp-win.bin")).windowsize, 16);
      equal((await recordOf(server, "atftp-win.bin")).blksize, 1468);
      await sameBytes(await Deno.readFile(join(root, "hpa.bin")), files.hpa, "tftp-hpa put");
      await sameBytes(await Deno.readFile(join(root, "atftp.bin")), files.atftp, "atftp put");
      await sameBytes(
        await Deno.readFile(join(root, "atftp-win.bin")),
        files.atftpWin,
        "atftp windowsize put",
      );
      await sameBytes(
        await Deno.readFile(join(root, "busybox.bin")),
        files.busybox,
        "busybox put",
      );
      deepEqual(await listDir(root), ["atftp-win.bin", "atftp.bin", "busybox.bin", "hpa.bin"]);
    });

    await t.step(
      "a put of an existing name is refused and leaves the original intact",
      async () => {
        const from = server.lines.length;
        const src = join(local, "replacement.bin");
        const r1 = await hpa(server.port, ["put", src, "hpa.bin"]);
        match(output(r1), /Error code 6: file already exists/);
        const r2 = await atftp(server.port, ["-p", "-l", src, "-r", "atftp.bin"]);
        notEqual(r2.code, 0, "atftp must report the refusal");
        match(output(r2), /already exists/);
        const r3 = await busybox(server.port, ["-p", "-l", src, "-r", "busybox.bin"]);
        notEqual(r3.code, 0, "busybox must report the refusal");
        match(output(r3), /already exists/);
        const recs = await waitRecords(server, (r) => r.op === "WRQ", 3, from);
        for (const rec of recs) {
          equal(rec.outcome, "refused");
          equal(rec.error, "file already exists");
        }
        await sameBytes(await Deno.readFile(join(root, "hpa.bin")), files.hpa, "hpa.bin kept");
        await sameBytes(
          await Deno.readFile(join(root, "atftp.bin")),
          files.atftp,
          "atftp.bin kept",
        );
        await sameBytes(
          await Deno.readFile(join(root, "busybox.bin")),
          files.busybox,
          "busybox.bin kept",
        );
        deepEqual(await listDir(root), ["atftp-win.bin", "atftp.bin", "busybox.bin", "hpa.bin"]);
      },
    );
  } finally {
    await server.stop();
  }

  const over = await startServer([root, "--write", "--overwrite", "--log-format", "json"], {
    write: true,
  });
  try {
    await t.step("with --overwrite each client replaces the file (shorter data)", async () => {
      const src = join(local, "replacement.bin");
      let r = await hpa(over.port, ["put", src, "hpa.bin"]);
      doesNotReportError(r);
      r = await atftp(over.port, ["-p", "-l", src, "-r", "atftp.bin"]);
      equal(r.code, 0, output(r));
      r = await busybox(over.port, ["-p", "-l", src, "-r", "busybox.bin"]);
      equal(r.code, 0, output(r));
      await waitRecords(over, (r) => r.op === "WRQ" && r.outcome === "ok", 3);
      for (const name of ["hpa.bin", "atftp.bin", "busybox.bin"]) {
        await sameBytes(await Deno.readFile(join(root, name)), replacement, `${name} replaced`);
      }
      await sameBytes(
        await Deno.readFile(join(root, "atftp-win.bin")),
        files.atftpWin,
        "untouched file",
      );
      deepEqual(await listDir(root), ["atftp-win.bin", "atftp.bin", "busybox.bin", "hpa.bin"]);
    });
  } finally {
    await over.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Our own netascii encoder for the test's expectations (LF → CR LF, CR → CR NUL). */
function netascii(local: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (const b of local) {
    if (b === 10) out.push(13, 10);
    else if (b === 13) out.push(13, 0);
    else out.push(b);
  }
  return new Uint8Array(out);
}

/**
 * Text with LF, CR LF and bare CR line ends, a bare CR whose netascii CR NUL straddles the first
 * 512-byte block boundary, an LF whose CR LF straddles the second, and a CR at the very end.
 */
function netasciiText(): Uint8Array {
  let text = "first line\nwindows line\r\nbare cr\rafter cr\n";
  const encodedLength = (s: string) => netascii(enc.encode(s)).length;
  text += "x".repeat(511 - encodedLength(text)) + "\r";
  text += "y".repeat(1023 - encodedLength(text)) + "\n";
  for (let i = 0; i < 40; i++) text += `line ${i}\tof text\n${i % 3 === 0 ? "\r\n" : ""}`;
  text += "trailing cr\r";
  const bytes = enc.encode(text);
  const wire = netascii(bytes);
  // The constructions above really do straddle the block boundaries.
  deepEqual([...wire.subarray(511, 513)], [13, 0]);
  deepEqual([...wire.subarray(1023, 1025)], [13, 10]);
  return bytes;
}

Deno.test("tftp-hpa transfers netascii both ways, CRs at block boundaries included", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-clients-" });
  const root = join(dir, "root");
  await Deno.mkdir(root);
  const text = netasciiText();
  await Deno.writeFile(join(root, "text.txt"), text);
  await Deno.writeFile(join(dir, "upload.txt"), text);
  const server = await startServer([root, "--write", "--log-format", "json"], { write: true });
  try {
    await t.step("a netascii download gives back the local LF-convention bytes", async () => {
      const local = join(dir, "down.txt");
      const r = await hpa(server.port, ["get", "text.txt", local], "netascii");
      doesNotReportError(r);
      await sameBytes(await Deno.readFile(local), text, "netascii download");
      const rec = await recordOf(server, "text.txt");
      equal(rec.outcome, "ok");
      equal(rec.mode, "netascii");
    });

    await t.step("a netascii upload is stored as the bytes the client had", async () => {
      const r = await hpa(server.port, ["put", join(dir, "upload.txt"), "up.txt"], "netascii");
      doesNotReportError(r);
      const rec = await recordOf(server, "up.txt");
      equal(rec.outcome, "ok");
      equal(rec.mode, "netascii");
      await sameBytes(await Deno.readFile(join(root, "up.txt")), text, "netascii upload");
    });

    await t.step("an octet download of the same file is untranslated", async () => {
      const local = join(dir, "octet.txt");
      const r = await hpa(server.port, ["get", "text.txt", local], "octet");
      doesNotReportError(r);
      await sameBytes(await Deno.readFile(local), text, "octet download");
    });
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("single-file mode answers every requested name with the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-clients-" });
  const file = join(dir, "image.bin");
  const data = await makeFile(file, 12_345, 41);
  const server = await startServer([file, "--log-format", "json"]);
  try {
    const names = ["image.bin", "pxelinux.0", "pxelinux.cfg/01-aa-bb-cc", "a/b/c/d.txt", "nope"];
    for (const [i, name] of names.entries()) {
      const local = join(dir, `hpa${i}`);
      const r = await hpa(server.port, ["get", name, local]);
      doesNotReportError(r);
      await sameBytes(await Deno.readFile(local), data, `tftp-hpa ${name}`);
    }
    const a = join(dir, "atftp");
    const r1 = await atftp(server.port, ["-g", "-r", "boot/grub/x86_64-efi/core.efi", "-l", a], [
      "blksize 1468",
    ]);
    equal(r1.code, 0, output(r1));
    await sameBytes(await Deno.readFile(a), data, "atftp nested name");
    const c = join(dir, "curl");
    const r2 = await curl(server.port, "does/not/exist.cfg", c);
    equal(r2.code, 0, output(r2));
    await sameBytes(await Deno.readFile(c), data, "curl missing name");
    const b = join(dir, "busybox");
    const r3 = await busybox(server.port, ["-g", "-r", "/abs/name", "-l", b]);
    equal(r3.code, 0, output(r3));
    await sameBytes(await Deno.readFile(b), data, "busybox absolute name");
    const recs = await waitRecords(server, () => true, names.length + 3);
    for (const rec of recs) {
      equal(rec.outcome, "ok", JSON.stringify(rec));
      equal(rec.bytes, data.length);
    }
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
