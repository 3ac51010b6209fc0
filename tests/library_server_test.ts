/**
 * The server side of the library API of `src/mod.ts`, in-process: `serve` with a single-file
 * and a custom in-memory source, stopping through an AbortSignal, a busy port as `BindError`,
 * and `onTransfer` records.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import {
  BindError,
  DirectorySource,
  ErrorCode,
  type FileSource,
  get,
  PeerError,
  put,
  type ReadHandle,
  readHandleOf,
  type RequestInfo,
  serve,
  SingleFileSource,
  type WriteHandle,
} from "../src/mod.ts";
import { makeFile } from "./support/server.ts";
import { bytes, concat, HOST, isPeerError, start } from "./support/library_fixture.ts";
import { RefusedError } from "../src/errors.ts";

/** Waits until `check()` is true (records arrive after an upload's final dally). */
async function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
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
    ok(read.durationMs >= 0 && read.rateBps >= 0, JSON.stringify(read));
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
      return Promise.reject(new RefusedError(ErrorCode.ACCESS_VIOLATION, "no secrets here"));
    }
    const data = this.files.get(name);
    if (!data) return Promise.reject(new RefusedError(ErrorCode.FILE_NOT_FOUND, "not in memory"));
    return Promise.resolve({ ...readHandleOf(data), name: `memory:${name}` });
  }

  openWrite(name: string, info: RequestInfo): Promise<WriteHandle> {
    this.requests.push({ op: "write", name, info });
    if (this.files.has(name)) {
      return Promise.reject(new RefusedError(ErrorCode.FILE_EXISTS, "already in memory"));
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
