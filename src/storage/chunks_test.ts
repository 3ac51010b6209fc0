import { deepEqual, equal, ok } from "node:assert/strict";
import fc from "fast-check";
import {
  ChunkReader,
  chunkSizeFor,
  ChunkWriter,
  netasciiReadHandle,
  netasciiSink,
} from "./chunks.ts";
import { NetasciiEncoder } from "../wire/netascii.ts";
import type { ReadHandle, WriteHandle } from "./source.ts";

function makeBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A handle that returns reads of the given lengths in turn (cycling), then null. */
function shortReads(data: Uint8Array, lengths: number[]): ReadHandle & { reads: number } {
  let at = 0;
  let i = 0;
  const h = {
    name: "mem",
    size: data.length,
    reads: 0,
    read(p: Uint8Array): Promise<number | null> {
      h.reads++;
      if (at >= data.length) return Promise.resolve(null);
      const want = Math.max(1, lengths[i++ % lengths.length]);
      const n = Math.min(want, p.length, data.length - at);
      p.set(data.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    close() {},
  };
  return h;
}

/** Reads every block of `blksize` from `reader` until a short one; checks the block rules. */
async function readBlocks(reader: ChunkReader, blksize: number): Promise<Uint8Array[]> {
  const blocks: Uint8Array[] = [];
  for (;;) {
    const slot = new Uint8Array(4 + blksize).fill(0xee);
    const r = reader.fill(slot, 4, blksize);
    const n = typeof r === "number" ? r : await r;
    ok(n >= 0 && n <= blksize);
    equal(slot[0], 0xee, "fill wrote before the offset");
    blocks.push(slot.slice(4, 4 + n));
    if (n < blksize) return blocks;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

interface MemoryWriter extends WriteHandle {
  writes: Uint8Array[];
  commits: number;
  aborts: number;
  bytes(): Uint8Array;
}

function memoryWriter(): MemoryWriter {
  const w: MemoryWriter = {
    name: "mem",
    writes: [],
    commits: 0,
    aborts: 0,
    write(p) {
      if (w.commits) throw new Error("write after commit");
      w.writes.push(p.slice());
      return Promise.resolve();
    },
    commit() {
      w.commits++;
      return Promise.resolve();
    },
    abort() {
      w.aborts++;
      return Promise.resolve();
    },
    bytes: () => concat(w.writes),
  };
  return w;
}

Deno.test("chunkSizeFor keeps about two windows between 32 KiB and 1 MiB", () => {
  equal(chunkSizeFor(512, 1), 32 * 1024);
  equal(chunkSizeFor(1468, 64), 1468 * 64 * 2);
  equal(chunkSizeFor(65464, 64), 1024 * 1024);
});

Deno.test("ChunkReader fills exact blocks across chunk boundaries from short reads", async (t) => {
  const cases: Array<[string, number, number, number[]]> = [
    // [name, size, chunk size, read lengths]
    ["1-byte reads", 1000, 16, [1]],
    ["odd reads, small chunks", 5000, 37, [3, 7, 1, 30, 2]],
    ["reads larger than blocks", 4096, 1024, [700, 1024, 5]],
    ["size a multiple of blksize", 512 * 4, 100, [9, 100]],
    ["empty file", 0, 64, [5]],
    ["one byte", 1, 64, [5]],
  ];
  for (const [name, size, chunk, lengths] of cases) {
    await t.step(name, async () => {
      const data = makeBytes(size, size + chunk);
      for (const blksize of [8, 512, 1468]) {
        const blocks = await readBlocks(new ChunkReader(shortReads(data, lengths), chunk), blksize);
        deepEqual(concat(blocks), data, `blksize ${blksize}`);
        equal(blocks.length, Math.floor(size / blksize) + 1, `blocks at blksize ${blksize}`);
        for (const b of blocks.slice(0, -1)) equal(b.length, blksize, "only the last is short");
      }
    });
  }

  await t.step("after the end, fill keeps returning 0", async () => {
    const reader = new ChunkReader(shortReads(makeBytes(10, 1), [4]), 16);
    await readBlocks(reader, 8);
    const slot = new Uint8Array(12);
    const r = reader.fill(slot, 4, 8);
    equal(typeof r === "number" ? r : await r, 0);
  });

  await t.step("property: any data, chunk size, read lengths and blksize", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3000 }),
        fc.integer({ min: 1, max: 600 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 8, max: 700 }),
        async (data, chunk, lengths, blksize) => {
          const blocks = await readBlocks(
            new ChunkReader(shortReads(data, lengths), chunk),
            blksize,
          );
          deepEqual(concat(blocks), data);
          equal(blocks.length, Math.floor(data.length / blksize) + 1);
        },
      ),
      { numRuns: 300 },
    );
  });
});

Deno.test("netasciiReadHandle yields the netascii form of the file", async (t) => {
  const text = new TextEncoder().encode("line one\nline two\r\nbare\rcr\n\n\r");
  const expected = new NetasciiEncoder().encode(text);

  await t.step("through a ChunkReader", async () => {
    for (const lengths of [[1], [3, 5], [1000]]) {
      const h = netasciiReadHandle(shortReads(text, lengths));
      const blocks = await readBlocks(new ChunkReader(h, 16), 8);
      deepEqual(concat(blocks), expected, `read lengths ${lengths}`);
    }
  });

  await t.step("with reads into buffers of changing sizes", async () => {
    const h = netasciiReadHandle(shortReads(text, [1000]));
    const out: Uint8Array[] = [];
    const sizes = [1, 2, 7, 1, 64, 3];
    for (let i = 0;; i++) {
      const p = new Uint8Array(sizes[i % sizes.length]);
      const n = await h.read(p);
      if (n === null) break;
      ok(n > 0 && n <= p.length);
      out.push(p.slice(0, n));
    }
    deepEqual(concat(out), expected);
  });

  await t.step("name and close pass through", () => {
    let closed = 0;
    const h = netasciiReadHandle({
      name: "file.txt",
      read: () => Promise.resolve(null),
      close: () => void closed++,
    });
    equal(h.name, "file.txt");
    h.close();
    equal(closed, 1);
  });

  await t.step("property: any bytes, any read lengths", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.constantFrom(10, 13, 0), fc.integer({ min: 0, max: 255 })), {
          maxLength: 2000,
        }).map((a) => new Uint8Array(a)),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 300 }),
        async (data, lengths, chunk) => {
          const h = netasciiReadHandle(shortReads(data, lengths));
          const blocks = await readBlocks(new ChunkReader(h, chunk), 8);
          deepEqual(concat(blocks), new NetasciiEncoder().encode(data));
        },
      ),
      { numRuns: 200 },
    );
  });
});

Deno.test("ChunkWriter collects blocks into large writes and commits on finish", async (t) => {
  await t.step("octet: small blocks buffered, finish flushes and commits", async () => {
    const h = memoryWriter();
    const w = new ChunkWriter(h, 64);
    const data = makeBytes(8 * 20 + 5, 3);
    for (let at = 0; at < data.length; at += 8) {
      const r = w.write(data.subarray(at, at + 8));
      if (r) await r;
    }
    equal(h.commits, 0, "no commit before finish");
    await w.finish();
    equal(h.commits, 1);
    deepEqual(h.bytes(), data);
    equal(w.written, data.length);
    ok(h.writes.every((x) => x.length <= 64), "writes are at most one chunk");
    ok(h.writes.length <= Math.ceil(data.length / 64) + 1, `${h.writes.length} writes`);
  });

  await t.step("writes larger than the buffer go straight through, in order", async () => {
    const h = memoryWriter();
    const w = new ChunkWriter(h, 16);
    const a = makeBytes(10, 1), b = makeBytes(40, 2), c = makeBytes(5, 3), d = makeBytes(17, 4);
    for (const x of [a, b, c, d]) {
      const r = w.write(x);
      if (r) await r;
    }
    await w.finish();
    deepEqual(h.bytes(), concat([a, b, c, d]));
    equal(w.written, 72);
    equal(h.commits, 1);
  });

  await t.step("the caller's buffer may be reused as soon as write returns", async () => {
    const h = memoryWriter();
    const w = new ChunkWriter(h, 16);
    const view = new Uint8Array(12);
    const expected: number[] = [];
    for (let i = 0; i < 10; i++) {
      view.fill(i + 1);
      expected.push(...view);
      const r = w.write(view);
      if (r) await r;
    }
    view.fill(0xff);
    await w.finish();
    deepEqual([...h.bytes()], expected);
  });

  await t.step("netascii is translated, with CR LF split across blocks", async () => {
    const h = memoryWriter();
    const cw = new ChunkWriter(h, 32);
    const w = netasciiSink(cw);
    const wire = new NetasciiEncoder().encode(
      new TextEncoder().encode("one\ntwo\rthree\n\n" + "x".repeat(50) + "\r\nend\r"),
    );
    for (let at = 0; at < wire.length; at += 7) {
      const r = w.write(wire.subarray(at, at + 7));
      if (r) await r;
    }
    await w.finish();
    deepEqual(
      new TextDecoder().decode(h.bytes()),
      "one\ntwo\rthree\n\n" + "x".repeat(50) + "\r\nend\r",
    );
    equal(cw.written, h.bytes().length);
  });

  await t.step("a bare CR at the very end of a netascii upload is kept (lenient)", async () => {
    // The wire ends in a CR without its LF or NUL: the decoder holds it back until flush().
    const h = memoryWriter();
    const w = netasciiSink(new ChunkWriter(h, 32));
    await w.write(new Uint8Array([65, 13]));
    await w.finish();
    deepEqual([...h.bytes()], [65, 13]);
  });

  await t.step("finish on an empty upload commits an empty file", async () => {
    const h = memoryWriter();
    const w = new ChunkWriter(h, 32);
    await w.write(new Uint8Array(0));
    await w.finish();
    equal(h.commits, 1);
    equal(h.bytes().length, 0);
  });

  await t.step("property: any writes, any chunk size, octet and netascii", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 30 }),
        fc.integer({ min: 1, max: 128 }),
        fc.boolean(),
        async (parts, chunk, netascii) => {
          const h = memoryWriter();
          const cw = new ChunkWriter(h, chunk);
          const w = netascii ? netasciiSink(cw) : cw;
          const local = concat(parts);
          const enc = new NetasciiEncoder();
          for (const p of parts) {
            const r = w.write(netascii ? enc.encode(p) : p);
            if (r) await r;
          }
          await w.finish();
          deepEqual(h.bytes(), local);
          equal(h.commits, 1);
        },
      ),
      { numRuns: 300 },
    );
  });
});
