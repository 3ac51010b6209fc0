/**
 * The client side of the library API of `src/mod.ts`, in-process against a `serve`d
 * DirectorySource: `get`, `put`, `getToStream`, `download` and `upload` with bytes and streams;
 * no dally by default; and errors as `PeerError` or `TimeoutError`.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import {
  DirectorySource,
  download,
  ErrorCode,
  get,
  getToStream,
  PeerError,
  put,
  type ReadHandle,
  readHandleOf,
  TimeoutError,
  upload,
} from "../src/mod.ts";
import { makeFile } from "./support/server.ts";
import { bytes, concat, HOST, isPeerError, start } from "./support/library_fixture.ts";

/** A stream of `data` in uneven chunks. */
function streamOf(data: Uint8Array, chunk = 777): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (let at = 0; at < data.length; at += chunk) c.enqueue(data.slice(at, at + chunk));
      c.close();
    },
  });
}

Deno.test("serve with a DirectorySource works with get, put, getToStream, download and upload", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-lib-" });
  const big = await makeFile(join(dir, "big.bin"), 200_003, 11);
  const exact = await makeFile(join(dir, "exact.bin"), 512 * 40, 12);
  await Deno.writeFile(join(dir, "empty.bin"), new Uint8Array(0));
  const s = await start(await DirectorySource.open(dir, { write: true }));
  try {
    await t.step("get returns every byte, with and without options", async () => {
      deepEqual(await get(s.target, "big.bin"), big);
      deepEqual(await get(s.target, "exact.bin", { blksize: 512, windowsize: 1 }), exact);
      deepEqual(await get(s.target, "big.bin", { noOptions: true }), big);
      deepEqual(await get(s.target, "big.bin", { blksize: 8192, windowsize: 8 }), big);
      deepEqual(await get(s.target, "empty.bin"), new Uint8Array(0));
    });

    await t.step("getToStream writes into a WritableStream and closes it", async () => {
      const chunks: Uint8Array[] = [];
      let closed = false;
      const result = await getToStream(
        s.target,
        "big.bin",
        new WritableStream({
          write: (c) => void chunks.push(c),
          close: () => void (closed = true),
        }),
      );
      ok(closed, "the stream was not closed");
      deepEqual(concat(chunks), big);
      equal(result.bytes, big.length);
      equal(result.tsize, big.length);
      equal(result.acknowledged.get("tsize"), String(big.length));
    });

    await t.step("getToStream aborts the stream when the download fails", async () => {
      let reason: unknown;
      await rejects(
        getToStream(
          s.target,
          "missing.bin",
          new WritableStream({ abort: (r) => void (reason = r) }),
        ),
        isPeerError(ErrorCode.FILE_NOT_FOUND),
      );
      ok(reason instanceof PeerError, `abort reason: ${reason}`);
    });

    await t.step("download hands every block to a sink and finishes it once", async () => {
      const chunks: Uint8Array[] = [];
      let finished = 0;
      const progress: number[] = [];
      const result = await download(s.target, "exact.bin", {
        write: (d) => void chunks.push(d.slice()),
        finish: () => {
          finished++;
          return Promise.resolve();
        },
      }, { onProgress: (n) => progress.push(n) });
      equal(finished, 1);
      deepEqual(concat(chunks), exact);
      equal(result.bytes, exact.length);
      equal(progress.at(-1), exact.length);
    });

    await t.step("put stores a Uint8Array", async () => {
      const data = bytes(65_537, 1);
      const result = await put(s.target, "put-bytes.bin", data);
      equal(result.bytes, data.length);
      // The file is in place (committed) before the final ACK, so as soon as put resolves.
      deepEqual(await Deno.readFile(join(dir, "put-bytes.bin")), data);
    });

    await t.step("put stores a ReadableStream (no size known in advance)", async () => {
      const data = bytes(100_001, 2);
      const result = await put(s.target, "put-stream.bin", streamOf(data), { blksize: 1024 });
      equal(result.bytes, data.length);
      deepEqual(await Deno.readFile(join(dir, "put-stream.bin")), data);
    });

    await t.step("put of an empty file and of an exact multiple of the block size", async () => {
      await put(s.target, "put-empty.bin", new Uint8Array(0));
      deepEqual(await Deno.readFile(join(dir, "put-empty.bin")), new Uint8Array(0));
      const data = bytes(512 * 7, 3);
      await put(s.target, "put-exact.bin", data, { blksize: 512, windowsize: 1 });
      deepEqual(await Deno.readFile(join(dir, "put-exact.bin")), data);
    });

    await t.step("upload sends a ReadHandle, and readHandleOf adapts bytes", async () => {
      const data = bytes(30_000, 4);
      let closes = 0;
      const inner = readHandleOf(data);
      const handle: ReadHandle = {
        name: "custom",
        size: data.length,
        read: (p) => inner.read(p),
        close: () => void closes++,
      };
      const result = await upload(s.target, "uploaded.bin", handle);
      equal(result.bytes, data.length);
      deepEqual(await Deno.readFile(join(dir, "uploaded.bin")), data);
      // The uploaded file reads back through the server too.
      deepEqual(await get(s.target, "uploaded.bin"), data);
      ok(closes <= 1, "closed more than once");
    });

    await t.step("put does not replace an existing file without overwrite", async () => {
      await rejects(
        put(s.target, "big.bin", bytes(10, 5)),
        isPeerError(ErrorCode.FILE_EXISTS),
      );
      deepEqual(await Deno.readFile(join(dir, "big.bin")), big);
    });
  } finally {
    await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("get resolves right after the last block: the client does not dally by default", async () => {
  // ClientOptions.dallyMs is documented as "default 0: return at once". With a 5 s timeout, a
  // client that dallies for its timeout would take 5 s; a 100-byte download takes milliseconds.
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-lib-" });
  const data = await makeFile(join(dir, "tiny.bin"), 100, 71);
  const s = await start(await DirectorySource.open(dir));
  try {
    for (
      const options of [{ timeoutMs: 5000 }, { timeoutMs: 5000, dallyMs: 0 }, {
        timeoutMs: 5000,
        noOptions: true,
      }]
    ) {
      const t0 = performance.now();
      deepEqual(await get(s.target, "tiny.bin", options), data);
      const ms = Math.round(performance.now() - t0);
      ok(ms < 2500, `get ${JSON.stringify(options)} took ${ms} ms`);
    }
  } finally {
    await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("errors surface as PeerError with the server's code and message, or TimeoutError", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-lib-" });
  await makeFile(join(dir, "ok.bin"), 100, 51);
  const s = await start(await DirectorySource.open(dir));
  try {
    await t.step("file not found: code 1", async () => {
      await rejects(
        get(s.target, "missing.bin"),
        isPeerError(ErrorCode.FILE_NOT_FOUND, /not found/),
      );
    });
    await t.step("a name leaving the root: code 2", async () => {
      await rejects(get(s.target, "../../etc/passwd"), isPeerError(ErrorCode.ACCESS_VIOLATION));
    });
    await t.step("an upload to a read-only directory: code 2", async () => {
      await rejects(
        put(s.target, "new.bin", bytes(10, 1)),
        isPeerError(ErrorCode.ACCESS_VIOLATION),
      );
      ok(!exists(join(dir, "new.bin")));
    });
    await t.step("no server answering: TimeoutError", async () => {
      const silent = Deno.listenDatagram({ transport: "udp", hostname: HOST, port: 0 });
      try {
        const port = (silent.addr as Deno.NetAddr).port;
        await rejects(
          get({ hostname: HOST, port }, "x", { timeoutMs: 1000, retries: 1 }),
          TimeoutError,
        );
      } finally {
        silent.close();
      }
    });
  } finally {
    await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
