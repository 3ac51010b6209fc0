/**
 * Real TFTP clients (tftp-hpa, atftp, curl, busybox) against our server: downloads, uploads,
 * netascii, block-number rollover, single-file mode, concurrency, traversal attempts and
 * abandoned uploads. Every transfer is compared byte for byte.
 */

import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { join } from "node:path";
import { makeFile, run, type ServerProcess, sha256, startServer } from "./support/server.ts";
import { RawPeer, request } from "./support/raw.ts";
import { decode, encode } from "../src/packet.ts";

const HOST = "127.0.0.1";
const enc = new TextEncoder();

/** One JSON transfer record of the server's log. */
interface Rec {
  event: string;
  op: "RRQ" | "WRQ";
  peer: string;
  file: string;
  path?: string;
  mode: string;
  bytes: number;
  blksize: number;
  windowsize: number;
  outcome: string;
  error?: string;
}

function records(server: ServerProcess, from = 0): Rec[] {
  const out: Rec[] = [];
  for (const line of server.lines.slice(from)) {
    if (!line.startsWith("{")) continue;
    try {
      const r = JSON.parse(line);
      if (r.event === "transfer") out.push(r as Rec);
    } catch { /* not JSON */ }
  }
  return out;
}

/** Waits until at least `count` transfer records from line `from` on satisfy `pred`. */
async function waitRecords(
  server: ServerProcess,
  pred: (r: Rec) => boolean,
  count = 1,
  from = 0,
  timeoutMs = 30_000,
): Promise<Rec[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = records(server, from).filter(pred);
    if (found.length >= count) return found;
    if (Date.now() > deadline) {
      throw new Error(
        `expected ${count} matching transfer records, saw ${found.length}:\n` +
          server.lines.join("\n"),
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits for the record of `file` (from line `from` on). */
async function recordOf(server: ServerProcess, file: string, from = 0): Promise<Rec> {
  return (await waitRecords(server, (r) => r.file === file, 1, from))[0];
}

/** Asserts two byte arrays are identical (length, digest, and the first difference). */
async function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string): Promise<void> {
  if (actual.length === expected.length && (await sha256(actual)) === (await sha256(expected))) {
    return;
  }
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  throw new Error(
    `${what}: ${actual.length} bytes, expected ${expected.length}; first difference at ${i}`,
  );
}

async function readOrEmpty(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return new Uint8Array();
    throw e;
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

// --- client invocations -----------------------------------------------------------------------

/** tftp-hpa: exits 0 even on failure, so callers check the output and the file. */
function hpa(port: number, command: string[], mode = "octet", cwd?: string) {
  return run("tftp", ["-m", mode, HOST, String(port), "-c", ...command], { cwd });
}

function atftp(port: number, args: string[], options: string[] = []) {
  return run("atftp", [
    "--tftp-timeout",
    "2",
    ...options.flatMap((o) => ["--option", o]),
    ...args,
    HOST,
    String(port),
  ]);
}

function busybox(port: number, args: string[]) {
  return run("busybox", ["tftp", ...args, HOST, String(port)]);
}

function curl(port: number, remote: string, local: string, extra: string[] = []) {
  return run("curl", ["-sS", ...extra, "-o", local, `tftp://${HOST}:${port}/${remote}`]);
}

function output(r: { stdout: string; stderr: string }): string {
  return r.stdout + r.stderr;
}

// --- tests ------------------------------------------------------------------------------------

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

function doesNotReportError(r: { stdout: string; stderr: string }) {
  ok(!/error/i.test(output(r)), `tftp-hpa reported: ${output(r)}`);
}

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

Deno.test("traversal attempts fail without reading outside the root", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-clients-" });
  const root = join(dir, "root");
  const outside = join(dir, "outside");
  await Deno.mkdir(root);
  await Deno.mkdir(outside);
  const secret = enc.encode("secret bytes that must never be served\n");
  await Deno.writeFile(join(dir, "secret.txt"), secret);
  await Deno.writeFile(join(outside, "secret.txt"), secret);
  const clean = await makeFile(join(root, "clean.bin"), 5_000, 61);
  await Deno.mkdir(join(root, "sub"));
  await Deno.symlink(join(dir, "secret.txt"), join(root, "link.txt"));
  await Deno.symlink(outside, join(root, "sub", "outdir"));
  const server = await startServer([root, "--log-format", "json"]);
  let n = 0;
  const attempt = async (via: "hpa" | "curl", name: string, asked = name) => {
    const local = join(dir, `attempt${n++}`);
    const from = server.lines.length;
    if (via === "hpa") {
      const r = await hpa(server.port, ["get", name, local]);
      match(output(r), /Error code \d+/, `tftp-hpa ${name}`);
    } else {
      const r = await curl(server.port, name, local);
      notEqual(r.code, 0, `curl ${name} must fail`);
    }
    deepEqual(await readOrEmpty(local), new Uint8Array(), `nothing received for ${name}`);
    const rec = (await waitRecords(server, () => true, 1, from))[0];
    equal(rec.file, asked, "the server saw the name as intended");
    notEqual(rec.outcome, "ok", JSON.stringify(rec));
    equal(rec.bytes, 0);
  };
  try {
    await t.step("tftp-hpa: ../secret.txt", () => attempt("hpa", "../secret.txt"));
    await t.step("tftp-hpa: /../../etc/passwd", () => attempt("hpa", "/../../etc/passwd"));
    await t.step("tftp-hpa: ..\\..\\x", () => attempt("hpa", "..\\..\\x"));
    await t.step("tftp-hpa: ..\\secret.txt", () => attempt("hpa", "..\\secret.txt"));
    await t.step("tftp-hpa: sub/../../secret.txt", () => attempt("hpa", "sub/../../secret.txt"));
    await t.step("tftp-hpa: a symlink to a file outside", () => attempt("hpa", "link.txt"));
    await t.step("tftp-hpa: through a symlink to a directory outside", () => {
      return attempt("hpa", "sub/outdir/secret.txt");
    });
    await t.step(
      "curl: %2e%2e/secret.txt",
      () => attempt("curl", "%2e%2e/secret.txt", "../secret.txt"),
    );
    await t.step("curl: a symlink to a file outside", () => attempt("curl", "link.txt"));
    await t.step("curl: an absolute path", () => attempt("curl", "%2fetc%2fpasswd", "/etc/passwd"));

    await t.step("no transfer succeeded and a clean request is still served", async () => {
      deepEqual(records(server).filter((r) => r.outcome === "ok"), []);
      const local = join(dir, "clean");
      const r = await hpa(server.port, ["get", "clean.bin", local]);
      doesNotReportError(r);
      await sameBytes(await Deno.readFile(local), clean, "clean download");
      const oks = await waitRecords(server, (r) => r.outcome === "ok", 1);
      deepEqual(oks.map((r) => r.file), ["clean.bin"]);
    });
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A RawPeer closed at the end of its scope. */
function rawPeer(): RawPeer & Disposable {
  const peer = new RawPeer() as RawPeer & Disposable;
  peer[Symbol.dispose] = () => peer.close();
  return peer;
}

Deno.test("an abandoned upload leaves neither the file nor a temporary file", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-clients-" });
  const server = await startServer(
    [dir, "--write", "--timeout", "1", "--retries", "2", "--log-format", "json"],
    { write: true },
  );
  try {
    await t.step("plain RFC 1350 upload abandoned after two blocks", async () => {
      using peer = rawPeer();
      await peer.send(request("WRQ", "abandoned.bin"), server.port);
      const first = await peer.expect(10_000);
      deepEqual(first.packet, { op: "ACK", block: 0 });
      const tid = first.from.port;
      for (let block = 1; block <= 2; block++) {
        await peer.send(encode({ op: "DATA", block, data: new Uint8Array(512).fill(block) }), tid);
        let got = await peer.expect(10_000);
        while (got.packet.op === "ACK" && got.packet.block !== block) got = await peer.expect();
        deepEqual(got.packet, { op: "ACK", block });
      }
      // Mid-transfer: the data is in a temporary file, nothing is under the final name yet.
      const mid = await listDir(dir);
      ok(!mid.includes("abandoned.bin"), "no file under the final name");
      ok(mid.some((n) => n.endsWith(".tftpkit-partial")), `a temporary file: ${mid}`);
      const rec = await recordOf(server, "abandoned.bin");
      equal(rec.op, "WRQ");
      equal(rec.outcome, "timeout", JSON.stringify(rec));
      deepEqual(await listDir(dir), []);
    });

    await t.step(
      "negotiated upload (blksize 1024, windowsize 4) abandoned mid-window",
      async () => {
        using peer = rawPeer();
        await peer.send(
          request("WRQ", "windowed.bin", "octet", { blksize: "1024", windowsize: "4" }),
          server.port,
        );
        const first = await peer.expect(10_000);
        equal(first.packet.op, "OACK");
        const tid = first.from.port;
        for (let block = 1; block <= 6; block++) {
          await peer.send(
            encode({ op: "DATA", block, data: new Uint8Array(1024).fill(block) }),
            tid,
          );
        }
        const got = await peer.expect(10_000);
        deepEqual(decode(got.data), { op: "ACK", block: 4 });
        ok(!(await listDir(dir)).includes("windowed.bin"), "no file under the final name");
        const rec = await recordOf(server, "windowed.bin");
        equal(rec.outcome, "timeout", JSON.stringify(rec));
        deepEqual(await listDir(dir), []);
      },
    );

    await t.step("a later upload of the same name succeeds", async () => {
      const from = server.lines.length;
      const local = await Deno.makeTempFile();
      try {
        const content = await makeFile(local, 3_000, 71);
        const r = await hpa(server.port, ["put", local, "abandoned.bin"]);
        doesNotReportError(r);
        equal((await recordOf(server, "abandoned.bin", from)).outcome, "ok");
        await sameBytes(await Deno.readFile(join(dir, "abandoned.bin")), content, "re-upload");
        deepEqual(await listDir(dir), ["abandoned.bin"]);
      } finally {
        await Deno.remove(local);
      }
    });
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
