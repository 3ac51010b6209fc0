/**
 * The library API of `src/mod.ts`, in-process: `serve` with the directory, single-file and a
 * custom in-memory source; `get`, `put`, `getToStream`, `download` and `upload` with bytes and
 * streams; stopping through an AbortSignal; `onTransfer` records; errors as `PeerError`; and
 * logging that stays silent until `setupLogging` is called.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import {
  BindError,
  DirectorySource,
  download,
  ErrorCode,
  type FileSource,
  get,
  getToStream,
  PeerError,
  put,
  type ReadHandle,
  readHandleOf,
  type RequestInfo,
  serve,
  type Server,
  SingleFileSource,
  TftpError,
  TimeoutError,
  type TransferRecord,
  upload,
  type WriteHandle,
} from "../src/mod.ts";
import { makeFile, ROOT, run } from "./support/server.ts";

const HOST = "127.0.0.1";

interface Running {
  server: Server;
  target: { hostname: string; port: number };
  records: TransferRecord[];
  stop(): Promise<void>;
}

/** Serves `source` on 127.0.0.1, a free port, recording every transfer. */
async function start(source: FileSource): Promise<Running> {
  const controller = new AbortController();
  const records: TransferRecord[] = [];
  const server = await serve({
    source,
    hostname: HOST,
    port: 0,
    signal: controller.signal,
    onTransfer: (r) => void records.push(r),
  });
  return {
    server,
    target: { hostname: HOST, port: server.port },
    records,
    stop: async () => {
      controller.abort();
      await server.finished;
    },
  };
}

/** Waits until `check()` is true (records arrive after an upload's final dally). */
async function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A stream of `data` in uneven chunks. */
function streamOf(data: Uint8Array, chunk = 777): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (let at = 0; at < data.length; at += chunk) c.enqueue(data.slice(at, at + chunk));
      c.close();
    },
  });
}

function bytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed || 1;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function isPeerError(code: number, message?: RegExp) {
  return (e: unknown) => {
    ok(e instanceof PeerError, `expected PeerError, got ${e}`);
    equal(e.code, code, e.message);
    if (message) ok(message.test(e.peerMessage), `peer message: ${e.peerMessage}`);
    ok(e.message.includes(e.peerMessage), e.message);
    return true;
  };
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
      const options of [{ timeout: 5 }, { timeout: 5, dallyMs: 0 }, { timeout: 5, noOptions: true }]
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

Deno.test("serve with a SingleFileSource returns the file under every name and refuses uploads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-lib-" });
  const image = await makeFile(join(dir, "floppy.img"), 1_474_560, 21);
  const source = await SingleFileSource.open(join(dir, "floppy.img"));
  ok(source.describe().includes("floppy.img"), source.describe());
  const s = await start(source);
  try {
    for (const name of ["floppy.img", "any.bin", "/boot/x/y.img", "UPPER.IMG"]) {
      deepEqual(await get(s.target, name), image, name);
    }
    await rejects(
      put(s.target, "floppy.img", bytes(100, 1)),
      isPeerError(ErrorCode.ACCESS_VIOLATION),
    );
    deepEqual(await Deno.readFile(join(dir, "floppy.img")), image);
  } finally {
    await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an AbortSignal stops the server: finished resolves and the port is released", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-lib-" });
  const data = await makeFile(join(dir, "a.bin"), 3000, 31);
  const controller = new AbortController();
  let closed = 0;
  const inner = await DirectorySource.open(dir);
  const source: FileSource = {
    describe: () => inner.describe(),
    openRead: (name, info) => inner.openRead(name, info),
    close: () => void closed++,
  };
  const server = await serve({ source, hostname: HOST, port: 0, signal: controller.signal });
  try {
    const port = server.port;
    ok(port > 0);
    deepEqual(server.addresses.map((a) => `${a.hostname}:${a.port}`), [`${HOST}:${port}`]);
    deepEqual(await get({ hostname: HOST, port }, "a.bin"), data);
    let done = false;
    server.finished.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 50));
    equal(done, false, "finished resolved before the abort");
    controller.abort();
    await until(() => done, "server.finished", 10_000);
    equal(closed, 1, "the source was not closed exactly once");
    equal(server.activeTransfers, 0);
    // The listening socket is gone: the same port can be bound again.
    const again = Deno.listenDatagram({ transport: "udp", hostname: HOST, port });
    again.close();
  } finally {
    controller.abort();
    await server.finished;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve on a busy port rejects with BindError", async () => {
  const blocker = Deno.listenDatagram({ transport: "udp", hostname: HOST, port: 0 });
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-lib-" });
  try {
    const port = (blocker.addr as Deno.NetAddr).port;
    await rejects(
      serve({ source: await DirectorySource.open(dir), hostname: HOST, port }),
      (e: unknown) => {
        ok(e instanceof BindError, String(e));
        ok(e.message.includes(`${HOST}:${port}`), e.message);
        return true;
      },
    );
  } finally {
    blocker.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("onTransfer receives a record for every transfer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-lib-" });
  const data = await makeFile(join(dir, "r.bin"), 10_000, 41);
  const s = await start(await DirectorySource.open(dir, { write: true }));
  try {
    deepEqual(await get(s.target, "r.bin", { blksize: 1024, windowsize: 4 }), data);
    await rejects(get(s.target, "nope.bin"), PeerError);
    const up = bytes(5000, 6);
    await put(s.target, "w.bin", up);
    await until(() => s.records.length >= 3, "three records");
    equal(s.records.length, 3, JSON.stringify(s.records));
    const read = s.records.find((r) => r.file === "r.bin")!;
    const refused = s.records.find((r) => r.file === "nope.bin")!;
    const write = s.records.find((r) => r.file === "w.bin")!;
    ok(read && refused && write, JSON.stringify(s.records));

    equal(read.op, "RRQ");
    equal(read.outcome, "ok");
    equal(read.bytes, data.length);
    equal(read.blksize, 1024);
    equal(read.windowsize, 4);
    equal(read.mode, "octet");
    ok(read.path?.endsWith("r.bin"), read.path);
    ok(/^127\.0\.0\.1:\d+$/.test(read.peer), read.peer);
    ok(read.duration_ms >= 0 && read.rate_bps >= 0, JSON.stringify(read));
    equal(read.error, undefined);

    equal(refused.op, "RRQ");
    equal(refused.outcome, "refused");
    equal(refused.bytes, 0);
    ok(/not found/.test(refused.error ?? ""), refused.error);

    equal(write.op, "WRQ");
    equal(write.outcome, "ok");
    equal(write.bytes, up.length);
    deepEqual(await Deno.readFile(join(dir, "w.bin")), up);
  } finally {
    await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A FileSource that keeps files in a Map. */
class MemorySource implements FileSource {
  readonly files = new Map<string, Uint8Array>();
  readonly requests: Array<{ op: string; name: string; info: RequestInfo }> = [];
  aborted = 0;
  closed = 0;

  describe(): string {
    return `memory (${this.files.size} files)`;
  }

  openRead(name: string, info: RequestInfo): Promise<ReadHandle> {
    this.requests.push({ op: "read", name, info });
    if (name === "secret") {
      return Promise.reject(new TftpError(ErrorCode.ACCESS_VIOLATION, "no secrets here"));
    }
    const data = this.files.get(name);
    if (!data) return Promise.reject(new TftpError(ErrorCode.FILE_NOT_FOUND, "not in memory"));
    return Promise.resolve({ ...readHandleOf(data), name: `memory:${name}` });
  }

  openWrite(name: string, info: RequestInfo): Promise<WriteHandle> {
    this.requests.push({ op: "write", name, info });
    if (this.files.has(name)) {
      return Promise.reject(new TftpError(ErrorCode.FILE_EXISTS, "already in memory"));
    }
    const chunks: Uint8Array[] = [];
    return Promise.resolve({
      name: `memory:${name}`,
      write: (p: Uint8Array) => {
        chunks.push(p.slice());
        return Promise.resolve();
      },
      commit: () => {
        this.files.set(name, concat(chunks));
        return Promise.resolve();
      },
      abort: () => {
        this.aborted++;
        return Promise.resolve();
      },
    });
  }

  close(): void {
    this.closed++;
  }
}

Deno.test("a custom in-memory FileSource serves reads and stores uploads", async () => {
  const source = new MemorySource();
  const seed = bytes(9000, 7);
  source.files.set("boot/seed.bin", seed);
  const s = await start(source);
  try {
    deepEqual(await get(s.target, "boot/seed.bin"), seed);
    const data = bytes(123_457, 8);
    await put(s.target, "uploads/new.bin", data, { blksize: 1400, windowsize: 8 });
    // Committed before the final ACK: visible as soon as put resolves.
    deepEqual(source.files.get("uploads/new.bin"), data);
    deepEqual(await get(s.target, "uploads/new.bin", { blksize: 512 }), data);

    const write = source.requests.find((r) => r.op === "write")!;
    equal(write.name, "uploads/new.bin");
    equal(write.info.mode, "octet");
    equal(write.info.tsize, data.length);
    equal(write.info.peer.hostname, HOST);
    await until(() => s.records.length >= 3, "records");
    equal(s.records.find((r) => r.op === "WRQ")?.path, "memory:uploads/new.bin");

    await rejects(
      get(s.target, "secret"),
      isPeerError(ErrorCode.ACCESS_VIOLATION, /^no secrets here$/),
    );
    await rejects(
      get(s.target, "absent"),
      isPeerError(ErrorCode.FILE_NOT_FOUND, /^not in memory$/),
    );
    await rejects(
      put(s.target, "boot/seed.bin", bytes(10, 9)),
      isPeerError(ErrorCode.FILE_EXISTS, /^already in memory$/),
    );
    deepEqual(source.files.get("boot/seed.bin"), seed);
    equal(source.aborted, 0);
  } finally {
    await s.stop();
  }
  equal(source.closed, 1);
});

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
        await rejects(get({ hostname: HOST, port }, "x", { timeout: 1, retries: 1 }), TimeoutError);
      } finally {
        silent.close();
      }
    });
  } finally {
    await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

const CHILD = `
import { DirectorySource, get, serve, setupLogging } from ${
  JSON.stringify(
    new URL("../src/mod.ts", import.meta.url).href,
  )
};
const [mode, dir, result] = Deno.args;
if (mode === "json") await setupLogging({ format: "json" });
const controller = new AbortController();
const server = await serve({
  source: await DirectorySource.open(dir),
  hostname: "127.0.0.1",
  port: 0,
  signal: controller.signal,
});
const target = { hostname: "127.0.0.1", port: server.port };
const got = await get(target, "hello.bin");
let refused = "";
try {
  await get(target, "missing.bin");
} catch (e) {
  refused = (e as Error).name;
}
controller.abort();
await server.finished;
await Deno.writeTextFile(result, JSON.stringify({ bytes: got.length, refused }));
`;

Deno.test("the library logs nothing until setupLogging is called", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-lib-" });
  try {
    const served = join(dir, "served");
    await Deno.mkdir(served);
    await makeFile(join(served, "hello.bin"), 4321, 61);
    const script = join(dir, "child.ts");
    await Deno.writeTextFile(script, CHILD);
    const runChild = async (mode: string) => {
      const result = join(dir, `${mode}.json`);
      const r = await run(Deno.execPath(), [
        "run",
        "--config",
        join(ROOT, "deno.json"),
        "--allow-net",
        "--allow-read",
        "--allow-write",
        script,
        mode,
        served,
        result,
      ], { cwd: ROOT });
      equal(r.code, 0, r.stderr);
      deepEqual(JSON.parse(await Deno.readTextFile(result)), { bytes: 4321, refused: "PeerError" });
      return r;
    };
    await t.step("without setupLogging: nothing on stdout or stderr", async () => {
      const r = await runChild("silent");
      equal(r.stdout, "");
      equal(r.stderr, "");
    });
    await t.step("with setupLogging({ format: 'json' }): one JSON line per transfer", async () => {
      const r = await runChild("json");
      equal(r.stderr, "");
      const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const transfers = lines.filter((l) => l.event === "transfer");
      deepEqual(transfers.map((l) => [l.file, l.outcome]).sort(), [
        ["hello.bin", "ok"],
        ["missing.bin", "refused"],
      ]);
      equal(transfers.find((l) => l.file === "hello.bin").bytes, 4321);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
