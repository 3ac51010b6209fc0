/**
 * Safety of our server against real TFTP clients (tftp-hpa, curl) and a raw peer: traversal
 * attempts (`..`, backslashes, absolute paths, symlinks out of the root) and abandoned uploads,
 * which must leave neither the file nor a temporary file.
 */

import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { join } from "node:path";
import { makeFile, startServer } from "./support/server.ts";
import { RawPeer, request } from "./support/raw.ts";
import { decode, encode } from "../src/wire/packet.ts";
import {
  curl,
  doesNotReportError,
  hpa,
  listDir,
  output,
  recordOf,
  records,
  sameBytes,
  waitRecords,
} from "./support/clients.ts";
import { readOrEmpty } from "./support/files.ts";

const enc = new TextEncoder();

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
    [
      dir,
      "--write",
      "--timeout",
      "1",
      "--retries",
      "2",
      "--client-timeout",
      "1",
      "--log-format",
      "json",
    ],
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
