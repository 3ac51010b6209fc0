/**
 * One request in its two phases (`session.ts`): `prepare` against a `DirectorySource` on a
 * temporary directory (mode checks, refusals before anything is opened or created, the
 * negotiated settings and OACK), and `run` over the in-memory channel pair (a download, an upload,
 * and an abort: quiet when superseded, ERROR 0 otherwise).
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import type { Channel } from "../engine/channel.ts";
import { AbortedError, ErrorCode, RefusedError } from "../errors.ts";
import {
  collector,
  makeBytes,
  receive,
  sameBytes,
  send,
  settings,
  sourceFor,
} from "../testing/engine_harness.ts";
import { type MemoryChannel, memoryChannelPair } from "../testing/memory_channel.ts";
import { DirectorySource, PARTIAL_SUFFIX, SingleFileSource } from "../storage/files.ts";
import type { FileSource } from "../storage/source.ts";
import type { NegotiationPolicy } from "../wire/options.ts";
import { ack, blockOf, decode, Opcode, opcodeOf, type RequestPacket } from "../wire/packet.ts";
import { listDir } from "../../tests/support/files.ts";
import { request } from "../../tests/support/raw.ts";
import { rawRequest } from "../../tests/support/raw_transfer.ts";
import { prepare, run, SUPERSEDED } from "./session.ts";
import { newState } from "../engine/settings.ts";

const PEER: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 40001 };
const POLICY: NegotiationPolicy = { maxBlksize: 65464, maxWindowsize: 64 };
const KNOBS = { timeoutMs: 1000, retries: 5 };

function req(
  op: "RRQ" | "WRQ",
  name: string,
  options: Record<string, string> = {},
  mode = "octet",
): RequestPacket {
  return decode(request(op, name, mode, options)) as RequestPacket;
}

/** A source that records what was asked of it. */
function spy(inner: FileSource): FileSource & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    describe: () => inner.describe(),
    openRead: (name, info) => (calls.push(`openRead ${name}`), inner.openRead(name, info)),
    openWrite: inner.openWrite &&
      ((name, info) => (calls.push(`openWrite ${name}`), inner.openWrite!(name, info))),
    freeSpace: inner.freeSpace &&
      ((name) => (calls.push(`freeSpace ${name}`), inner.freeSpace!(name))),
  };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-session-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function refused(code: number, message: string | RegExp) {
  return (e: unknown) => {
    ok(e instanceof RefusedError, `expected RefusedError, got ${e}`);
    equal(e.code, code, e.message);
    if (typeof message === "string") equal(e.message, message);
    else ok(message.test(e.message), e.message);
    return true;
  };
}

Deno.test("prepare refuses unknown modes with ERROR 4 before opening anything", async (t) => {
  await withDir(async (dir) => {
    await Deno.writeFile(join(dir, "boot.img"), new Uint8Array(10));
    const source = spy(await DirectorySource.open(dir, { write: true }));
    await t.step("non-ASCII mode bytes are escaped in the message", async () => {
      const mode = new Uint8Array([0x6f, 0x63, 0x74, 0xe9, 0x74]);
      for (const op of [1, 2]) {
        const r = decode(rawRequest(op, "boot.img", mode)) as RequestPacket;
        await rejects(
          prepare(r, PEER, source, POLICY),
          refused(ErrorCode.ILLEGAL_OPERATION, "unknown transfer mode 'oct\\xe9t'"),
        );
      }
    });
    await t.step("'mail' is refused by name", async () => {
      await rejects(
        prepare(req("RRQ", "boot.img", {}, "mail"), PEER, source, POLICY),
        refused(ErrorCode.ILLEGAL_OPERATION, "mode 'mail' is not supported"),
      );
    });
    deepEqual(source.calls, [], "the source was not asked");
    deepEqual(await listDir(dir), ["boot.img"]);
  });
});

Deno.test("prepare: an RRQ of a missing file is refused with ERROR 1", async () => {
  await withDir(async (dir) => {
    const source = spy(await DirectorySource.open(dir));
    await rejects(
      prepare(req("RRQ", "missing.bin", { blksize: "1468", tsize: "0" }), PEER, source, POLICY),
      refused(ErrorCode.FILE_NOT_FOUND, "file not found"),
    );
    deepEqual(source.calls, ["openRead missing.bin"]);
    deepEqual(await listDir(dir), []);
  });
});

Deno.test("prepare: a WRQ whose tsize is too large is refused with ERROR 3 before any file exists", async (t) => {
  await withDir(async (dir) => {
    const source = spy(await DirectorySource.open(dir, { write: true }));
    await t.step("over maxUploadSize", async () => {
      await rejects(
        prepare(req("WRQ", "up.bin", { tsize: "2000" }), PEER, source, {
          ...POLICY,
          maxUploadSize: 1000,
        }),
        refused(ErrorCode.DISK_FULL, "file too large: 2000 bytes, uploads are limited to 1000"),
      );
    });
    await t.step("over the free space (statfs)", async () => {
      await rejects(
        prepare(req("WRQ", "up.bin", { tsize: "1000000000000000" }), PEER, source, POLICY),
        refused(ErrorCode.DISK_FULL, "not enough free space for 1000000000000000 bytes"),
      );
    });
    ok(!source.calls.includes("openWrite up.bin"), source.calls.join(", "));
    deepEqual(await listDir(dir), [], "no temporary file was created");
  });
});

Deno.test("prepare: a WRQ to a read-only source is refused with ERROR 2", async () => {
  await withDir(async (dir) => {
    await Deno.writeFile(join(dir, "f.bin"), new Uint8Array(4));
    const readOnly = await DirectorySource.open(dir);
    const single = await SingleFileSource.open(join(dir, "f.bin"));
    for (const source of [readOnly, single]) {
      await rejects(
        prepare(req("WRQ", "new.bin", { tsize: "4" }), PEER, source, POLICY),
        refused(ErrorCode.ACCESS_VIOLATION, "uploads are disabled on this server"),
      );
    }
    deepEqual(await listDir(dir), ["f.bin"]);
  });
});

Deno.test("prepare: the negotiated settings, the OACK and the record", async (t) => {
  await withDir(async (dir) => {
    await Deno.writeFile(join(dir, "boot.img"), makeBytes(3000, 1));
    const source = await DirectorySource.open(dir, { write: true });
    await t.step("RRQ with options", async () => {
      const r = req("RRQ", "boot.img", {
        blksize: "9000",
        windowsize: "16",
        timeout: "2",
        tsize: "0",
        foo: "1",
      });
      const p = await prepare(r, PEER, source, { ...POLICY, maxBlksize: 1468 });
      try {
        equal(p.op, "RRQ");
        equal(p.mode, "octet");
        deepEqual(p.negotiated, { blksize: 1468, windowsize: 16, timeoutMs: 2000, tsize: 3000 });
        ok(p.oack, "an OACK is due");
        deepEqual(decode(p.oack), {
          op: "OACK",
          options: new Map([
            ["blksize", "1468"],
            ["windowsize", "16"],
            ["timeout", "2"],
            ["tsize", "3000"],
          ]),
        });
        equal(p.reader?.size, 3000);
        equal(p.writer, undefined);
        equal(p.record.path, join(source.root, "boot.img"));
        equal(p.record.file, "boot.img");
        equal(p.record.peer, "127.0.0.1:40001");
        equal(p.record.blksize, 1468);
        equal(p.record.windowsize, 16);
      } finally {
        p.reader?.close();
      }
    });
    await t.step("RRQ without options: no OACK, RFC 1350 settings", async () => {
      const p = await prepare(req("RRQ", "boot.img", {}, "netascii"), PEER, source, POLICY);
      p.reader?.close();
      equal(p.oack, undefined);
      equal(p.mode, "netascii");
      deepEqual(p.negotiated, { blksize: 512, windowsize: 1 });
    });
    await t.step(
      "WRQ: the announced size is echoed, the upload opened under a hidden name",
      async () => {
        const p = await prepare(req("WRQ", "up.bin", { tsize: "500" }), PEER, source, POLICY);
        try {
          equal(p.negotiated.tsize, 500);
          deepEqual(decode(p.oack!), { op: "OACK", options: new Map([["tsize", "500"]]) });
          equal(p.writer?.name, join(source.root, "up.bin"));
          const temps = (await listDir(dir)).filter((n) => n !== "boot.img");
          equal(temps.length, 1);
          ok(temps[0].startsWith(".up.bin.") && temps[0].endsWith(PARTIAL_SUFFIX), temps[0]);
        } finally {
          await p.writer?.abort();
        }
        deepEqual(await listDir(dir), ["boot.img"]);
      },
    );
  });
});

/** A memory channel end that stops on `signal` as the socket channels do. */
function abortable(inner: MemoryChannel, signal: AbortSignal): Channel {
  return {
    peer: inner.peer,
    clock: inner.clock,
    send: (p) => inner.send(p),
    close: () => inner.close(),
    receive(deadline) {
      if (signal.aborted) return Promise.reject(AbortedError.from(signal));
      return new Promise((resolve, reject) => {
        const onAbort = () => reject(AbortedError.from(signal));
        signal.addEventListener("abort", onAbort, { once: true });
        inner.receive(deadline).then(resolve, reject).finally(() =>
          signal.removeEventListener("abort", onAbort)
        );
      });
    },
  };
}

Deno.test("run: a download over the memory channel ends ok with bytes and retransmits", async () => {
  await withDir(async (dir) => {
    const data = makeBytes(3000, 2);
    await Deno.writeFile(join(dir, "boot.img"), data);
    const source = await DirectorySource.open(dir);
    const p = await prepare(req("RRQ", "boot.img", { blksize: "1024" }), PEER, source, POLICY);
    let dropped = 0;
    const [a, b] = memoryChannelPair({
      aToB: {
        // Lose the first copy of DATA 2.
        script: (d) => {
          if (opcodeOf(d) !== Opcode.DATA || blockOf(d) !== 2 || dropped > 0) return undefined;
          dropped++;
          return "drop";
        },
      },
    });
    const sink = collector();
    const client = (async () => {
      const first = await b.receive(b.clock.now() + 2000);
      equal(first && opcodeOf(first), Opcode.OACK);
      return receive(b, sink, settings(1024, 1), { reply: ack(0), dallyMs: 0 });
    })();
    client.catch(() => {}); // awaited below
    const state = newState();
    const { record, closed } = await run(p, a, {
      knobs: KNOBS,
      signal: new AbortController().signal,
      state,
    });
    await client;
    await closed;
    ok(a.closed, "run closes the channel");
    b.close();
    equal(record.outcome, "ok", record.error);
    equal(record.bytes, 3000);
    equal(record.retransmits, 1);
    equal(dropped, 1);
    equal(state.answered, true, "the state says the client answered");
    equal(state.ending, true, "and that every block went out");
    sameBytes(sink.bytes(), data, "downloaded file");
    deepEqual(a.dataBlocks(), [1, 2, 2, 3]);
  });
});

Deno.test("run: an upload over the memory channel ends ok and the file appears", async () => {
  await withDir(async (dir) => {
    const data = makeBytes(2000, 3);
    const source = await DirectorySource.open(dir, { write: true });
    const p = await prepare(req("WRQ", "up.bin", { tsize: "2000" }), PEER, source, POLICY);
    const [a, b] = memoryChannelPair();
    const client = (async () => {
      const first = await b.receive(b.clock.now() + 2000);
      equal(first && opcodeOf(first), Opcode.OACK);
      return send(b, sourceFor(data, settings(512, 1)), settings(512, 1));
    })();
    client.catch(() => {}); // awaited below
    const { record, closed } = await run(p, a, {
      knobs: { timeoutMs: 100, retries: 5 },
      signal: new AbortController().signal,
    });
    equal(record.outcome, "ok", record.error);
    equal(record.bytes, 2000);
    equal(record.retransmits, 0);
    equal((await client).bytes, 2000);
    sameBytes(await Deno.readFile(join(dir, "up.bin")), data, "uploaded file");
    await closed; // after the dally
    ok(a.closed);
    b.close();
    deepEqual(await listDir(dir), ["up.bin"]);
  });
});

Deno.test("run: aborted uploads send ERROR 0 with the reason, except when superseded", async (t) => {
  const cases = [
    { name: "superseded: no ERROR at all", reason: SUPERSEDED, errors: [] },
    {
      name: "another reason: ERROR 0 with its message",
      reason: new Error("server shutting down"),
      errors: [{ op: "ERROR", code: 0, message: "server shutting down" }],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      await withDir(async (dir) => {
        const source = await DirectorySource.open(dir, { write: true });
        const p = await prepare(req("WRQ", "up.bin", { blksize: "512" }), PEER, source, POLICY);
        const [a, b] = memoryChannelPair();
        const controller = new AbortController();
        const channel = abortable(a, controller.signal);
        const running = run(p, channel, { knobs: KNOBS, signal: controller.signal });
        const oack = await b.receive(b.clock.now() + 2000);
        equal(oack && opcodeOf(oack), Opcode.OACK);
        await b.send(ack(0)); // a stray: the server waits for DATA 1
        await new Promise((r) => setTimeout(r, 50));
        controller.abort(c.reason);
        const { record, closed } = await running;
        await closed;
        b.close();
        equal(record.outcome, "aborted");
        equal(record.error, c.reason.message);
        deepEqual(a.sentWith(Opcode.ERROR).map(decode), c.errors);
        equal(a.sent.length, 1 + c.errors.length, "the OACK, then the ERROR due");
        deepEqual(await listDir(dir), [], "the partial upload was removed");
      });
    });
  }
});

Deno.test("run: a failed transfer's record counts its retransmissions too", async () => {
  await withDir(async (dir) => {
    await Deno.writeFile(join(dir, "f.bin"), makeBytes(5000, 3));
    const source = await DirectorySource.open(dir);
    const p = await prepare(req("RRQ", "f.bin"), PEER, source, POLICY);
    const [a, b] = memoryChannelPair();
    const running = run(p, a, {
      knobs: { timeoutMs: 40, retries: 2, peerTimeoutMs: 40 },
      signal: new AbortController().signal,
    });
    // The client takes block 1 and then falls silent for good.
    const first = await b.receive(b.clock.now() + 2000);
    equal(first && blockOf(first), 1);
    await b.send(ack(1));
    const { record } = await running;
    b.close();
    equal(record.outcome, "timeout");
    ok(record.retransmits > 0, `retransmits in the record: ${JSON.stringify(record)}`);
    equal(record.retransmits, a.dataBlocks().length - 2, "every resend of block 2 counted");
  });
});
