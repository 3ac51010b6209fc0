/**
 * Upload limits of `tftpkit serve`: --max-upload-size and a full disk, each ending the upload
 * with ERROR 3 and leaving neither the file nor a temporary file.
 */

import assert from "node:assert/strict";
import { PeerError, put } from "../src/mod.ts";
import { run, type ServerProcess, startServer } from "./support/server.ts";
import { transfers, waitUntil } from "../src/testing/proc.ts";
import { assertBytes, HOST, withDir } from "./support/limits_fixture.ts";
import { listDir } from "./support/files.ts";

/** A stream of `data` in 10 000-byte pieces: put() cannot know its size, so sends no tsize. */
function streamOf(data: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= data.length) return c.close();
      c.enqueue(data.slice(at, at + 10_000));
      at += 10_000;
    },
  });
}

Deno.test("--max-upload-size 100K refuses larger uploads with ERROR 3 and leaves no file", async (t) => {
  await withDir("limits_upload_", async (dir) => {
    const srv = await startServer(
      [dir, "--write", "--max-upload-size", "100K", "--log-format", "json"],
      { write: true },
    );
    const target = { hostname: HOST, port: srv.port };
    const limit = 100 * 1024;
    const refused = (e: unknown) => {
      assert.ok(e instanceof PeerError, `a PeerError, got ${e}`);
      assert.equal(e.code, 3, e.message);
      return true;
    };
    const failedRecord = (file: string) =>
      waitUntil(
        () => transfers(srv.lines).find((r) => r.file === file),
        `the server's record of ${file}`,
      );
    try {
      await t.step("a WRQ announcing a tsize over the limit gets ERROR 3", async () => {
        const data = new Uint8Array(limit + 1).fill(7);
        await assert.rejects(put(target, "announced.bin", data), refused);
        assert.deepEqual(await listDir(dir), []);
      });
      await t.step("an upload of exactly the limit is accepted", async () => {
        const data = new Uint8Array(limit).map((_, i) => i * 31);
        await put(target, "exact.bin", data);
        assertBytes(await Deno.readFile(`${dir}/exact.bin`), data, "exact.bin");
      });
      await t.step(
        "uploads without tsize that grow past the limit get ERROR 3 and leave no file",
        async () => {
          const data = new Uint8Array(150_000).map((_, i) => i * 7);
          // Plain RFC 1350 (no options at all) and a windowed stream of unknown size.
          await assert.rejects(put(target, "plain.bin", data, { noOptions: true }), refused);
          await assert.rejects(
            put(target, "stream.bin", streamOf(data), { blksize: 1468, windowsize: 8 }),
            refused,
          );
          for (const f of ["plain.bin", "stream.bin"]) {
            const rec = await failedRecord(f);
            assert.notEqual(rec.outcome, "ok", f);
            assert.ok(rec.bytes <= limit, `${f}: at most the limit was received (${rec.bytes})`);
          }
          assert.deepEqual(await listDir(dir), ["exact.bin"], "no final or temporary file");
        },
      );
    } finally {
      await srv.stop();
    }
  });
});

Deno.test("a full disk ends uploads with ERROR 3 and leaves neither the file nor a temporary file", async (t) => {
  await withDir("limits_disk_", async (mnt) => {
    const m = await run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt]);
    assert.equal(m.code, 0, `mount tmpfs (needs root): ${m.stderr}`);
    let srv: ServerProcess | null = null;
    try {
      srv = await startServer([mnt, "--write", "--log-format", "json"], { write: true });
      const target = { hostname: HOST, port: srv.port };
      const data = new Uint8Array(2 * 1024 * 1024).map((_, i) => (i * 13) >> 3);
      const diskFull = (e: unknown) => {
        assert.ok(e instanceof PeerError, `a PeerError, got ${e}`);
        assert.equal(e.code, 3, e.message);
        assert.match(e.peerMessage, /disk full|space/i);
        return true;
      };
      await t.step("a 2 MB upload announcing its tsize", async () => {
        await assert.rejects(put(target, "big.bin", data), diskFull);
        await waitUntil(() => transfers(srv!.lines).some((r) => r.file === "big.bin"), "record");
        assert.deepEqual(await listDir(mnt), [], "nothing left on the full file system");
      });
      await t.step("a 2 MB upload of unknown size (windowed)", async () => {
        await assert.rejects(
          put(target, "stream.bin", streamOf(data), { blksize: 1468, windowsize: 16 }),
          diskFull,
        );
        await waitUntil(() => transfers(srv!.lines).some((r) => r.file === "stream.bin"), "record");
        assert.deepEqual(await listDir(mnt), [], "nothing left on the full file system");
      });
      await t.step("the file system is usable again: a small upload succeeds", async () => {
        const small = new Uint8Array(10_000).fill(5);
        await put(target, "small.bin", small);
        assertBytes(await Deno.readFile(`${mnt}/small.bin`), small, "small.bin");
        await Deno.remove(`${mnt}/small.bin`);
      });
    } finally {
      await srv?.stop();
      const u = await run("umount", [mnt]);
      assert.equal(u.code, 0, `umount: ${u.stderr}`);
    }
  });
});
