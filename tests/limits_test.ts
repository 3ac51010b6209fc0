/**
 * Resource limits and access control of `tftpkit serve`: session caps (global and per client
 * address), upload size caps, a full disk, a flood of abandoned requests, --allow/--deny (IPv4
 * and IPv6) and --port-range.
 */

import assert from "node:assert/strict";
import { get, PeerError, put } from "../src/mod.ts";
import { decode } from "../src/packet.ts";
import { RawPeer, request } from "./support/raw.ts";
import { makeFile, run, type ServerProcess, startServer } from "./support/server.ts";
import {
  finishDownload,
  holdDownload,
  sameBytes,
  socketCount,
  statusKb,
  transfers,
  waitUntil,
} from "./support/proc.ts";

const HOST = "127.0.0.1";

async function withDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

function assertBytes(got: Uint8Array, want: Uint8Array, what: string) {
  const diff = sameBytes(got, want);
  assert.equal(diff, null, `${what}: ${diff}`);
}

/** Sends a plain RRQ and returns the decoded answer (from any port), or null on silence. */
async function answerTo(peer: RawPeer, port: number, name: string, hostname = HOST, ms = 3000) {
  await peer.send(request("RRQ", name), port, hostname);
  const got = await peer.recv(ms);
  return got && { packet: decode(got.data), from: got.from };
}

/**
 * The listening port from the server's "listening on" line. (`startServer().port` misreads an
 * IPv6 line such as `listening on [::1]:40856` as port 1, so IPv6 servers use this.)
 */
function listeningPort(srv: ServerProcess): number {
  const line = srv.lines.find((l) => l.includes("listening on "));
  const m = line && /listening on (?:\[[^\]]*\]|[^\s:]+):(\d+)/.exec(line);
  if (!m) throw new Error(`no listening line in ${srv.lines.join("\n")}`);
  return Number(m[1]);
}

/** Expects an ERROR with `code` from the listening port in answer to a plain RRQ. */
async function expectRefusal(peer: RawPeer, srv: ServerProcess, name: string, code: number) {
  const a = await answerTo(peer, srv.port, name);
  assert.ok(a, "an answer to the request");
  assert.equal(a.from.port, srv.port, "the refusal comes from the listening port");
  assert.equal(a.packet.op, "ERROR", `an ERROR, got ${JSON.stringify(a.packet)}`);
  if (a.packet.op !== "ERROR") return "";
  assert.equal(a.packet.code, code, a.packet.message);
  return a.packet.message;
}

/** Asserts that nothing at all arrives at `peer` within `ms`. */
async function assertSilence(peer: RawPeer, ms: number, what: string) {
  const got = await peer.drain(ms);
  assert.deepEqual(
    got.map((g) => `${g.from.port}: ${JSON.stringify(decode(g.data))}`),
    [],
    `${what}: no datagram may arrive`,
  );
}

/** Resolves with `p`'s value, or `false` after `ms` (the timer is always cleared). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | false> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<false>((r) => (timer = setTimeout(r, ms, false)))]);
  } finally {
    clearTimeout(timer);
  }
}

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

Deno.test("--max-sessions 3 refuses a fourth transfer with ERROR 3 while the held three still complete", async () => {
  await withDir("limits_sessions_", async (dir) => {
    const file = await makeFile(`${dir}/held.bin`, 2000, 1);
    const srv = await startServer([
      dir,
      "--max-sessions",
      "3",
      "--timeout",
      "5",
      "--retries",
      "3",
      "--log-format",
      "json",
    ]);
    const peers = Array.from({ length: 5 }, () => new RawPeer());
    try {
      const held = await Promise.all(
        peers.slice(0, 3).map((p) => holdDownload(p, request("RRQ", "held.bin"), srv.port)),
      );
      const message = await expectRefusal(peers[3], srv, "held.bin", 3);
      assert.match(message, /too many transfers|busy/i);
      for (const h of held) assertBytes(await finishDownload(h), file, "held download");
      await waitUntil(
        () => transfers(srv.lines).filter((r) => r.outcome === "ok").length === 3,
        "three ok records",
      );
      // The slots are free again.
      const again = await holdDownload(peers[4], request("RRQ", "held.bin"), srv.port);
      assertBytes(await finishDownload(again), file, "download after the held ones ended");
    } finally {
      for (const p of peers) p.close();
      await srv.stop();
    }
  });
});

Deno.test("--max-sessions-per-client 2 refuses a third transfer from one address but serves another address", async () => {
  await withDir("limits_perclient_", async (dir) => {
    const file = await makeFile(`${dir}/held.bin`, 1500, 2);
    const srv = await startServer([
      dir,
      "--max-sessions-per-client",
      "2",
      "--timeout",
      "5",
      "--retries",
      "3",
    ]);
    const a = [new RawPeer(), new RawPeer(), new RawPeer()];
    const b = new RawPeer("127.0.0.2");
    try {
      const held = await Promise.all(
        a.slice(0, 2).map((p) => holdDownload(p, request("RRQ", "held.bin"), srv.port)),
      );
      const message = await expectRefusal(a[2], srv, "held.bin", 3);
      assert.match(message, /too many transfers from your address/i);
      const other = await holdDownload(b, request("RRQ", "held.bin"), srv.port);
      assertBytes(await finishDownload(other), file, "download from 127.0.0.2");
      for (const h of held) assertBytes(await finishDownload(h), file, "held download");
    } finally {
      for (const p of [...a, b]) p.close();
      await srv.stop();
    }
  });
});

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

Deno.test("a flood of 1,000 abandoned requests does not starve a real client and its memory and sockets are released", async () => {
  await withDir("limits_flood_", async (dir) => {
    await makeFile(`${dir}/flood.bin`, 3000, 3);
    const legit = await makeFile(`${dir}/legit.bin`, 2_000_000, 4);
    const srv = await startServer([
      dir,
      "--timeout",
      "1",
      "--retries",
      "1",
      "--max-sessions",
      "5000",
      "--max-sessions-per-client",
      "5000",
      "--log-format",
      "json",
    ]);
    const pid = srv.child.pid;
    const target = { hostname: HOST, port: srv.port };
    const flooders: Deno.DatagramConn[] = [];
    try {
      // Warm up (JIT, buffers), then take the baseline.
      assertBytes(await get(target, "legit.bin"), legit, "warm-up download");
      await new Promise((r) => setTimeout(r, 500));
      const baseSockets = await socketCount(pid);
      const baseRss = await statusKb(pid, "VmRSS");

      const rrq = request("RRQ", "flood.bin");
      let started!: () => void;
      const floodStarted = new Promise<void>((r) => (started = r));
      const flood = async () => {
        // 20 rounds of 50 fresh sockets: 1,000 distinct source ports, none of which ever ACKs.
        // A burst this size overflows the listening socket's receive buffer (the kernel drops
        // the excess), so each flooder repeats its request, like a real client, until the
        // server's DATA 1 shows that its transfer is open.
        let confirmed = 0;
        for (let round = 0; round < 20; round++) {
          const batch = Array.from(
            { length: 50 },
            () => Deno.listenDatagram({ transport: "udp", hostname: HOST, port: 0 }),
          );
          flooders.push(...batch);
          const ok = await Promise.all(batch.map(async (c) => {
            const first = c.receive().then(() => true, () => false);
            for (let i = 0; i < 10; i++) {
              await c.send(rrq, { transport: "udp", ...target });
              if (await within(first, 500)) return true;
            }
            return false;
          }));
          confirmed += ok.filter(Boolean).length;
          if (round === 1) started();
        }
        return confirmed;
      };
      let peakSockets = 0;
      const [confirmed, got] = await Promise.all([
        flood(),
        (async () => {
          await floodStarted;
          const bytes = await get(target, "legit.bin", { timeout: 1, retries: 8 });
          peakSockets = await socketCount(pid);
          return bytes;
        })(),
      ]);
      assert.equal(confirmed, 1000, "1,000 abandoned transfers were opened");
      assertBytes(got, legit, "download during the flood");
      const peakRss = await statusKb(pid, "VmRSS");

      const records = await waitUntil(
        () => {
          const r = transfers(srv.lines).filter((x) => x.file === "flood.bin");
          return r.length >= 1000 && r;
        },
        "1,000 records of abandoned transfers",
        60_000,
        250,
      );
      assert.equal(records.length, 1000);
      assert.ok(records.every((r) => r.outcome === "timeout"), "every abandoned one timed out");
      const sockets = await waitUntil(
        async () => {
          const n = await socketCount(pid);
          return n === baseSockets && n;
        },
        `socket count back to the baseline ${baseSockets}`,
        10_000,
      );
      // Give the server a while to give memory back (GC, allocator) before judging.
      let rss = 0;
      await waitUntil(
        async () => (rss = await statusKb(pid, "VmRSS")) < baseRss + 64 * 1024,
        "RSS back near the baseline",
        10_000,
        500,
      ).catch(() => {});
      const report = `sockets ${baseSockets} -> ${peakSockets} -> ${sockets}; ` +
        `RSS (kB) baseline ${baseRss}, after the flood ${peakRss}, after the timeouts ${rss}`;
      console.log(`flood: ${report}`);
      assert.ok(peakSockets > baseSockets, "the flood did open transfer sockets");
      assert.ok(rss < baseRss + 64 * 1024, `RSS must return near the baseline: ${report}`);
    } finally {
      for (const c of flooders) c.close();
      await srv.stop();
    }
  });
});

Deno.test("--allow and --deny: refused peers get no answer at all, IPv4 and IPv6", async (t) => {
  await withDir("limits_acl_", async (dir) => {
    const file = await makeFile(`${dir}/f.bin`, 1200, 5);
    const data = (block: number) => new Uint8Array([0, 3, 0, block, 1, 2, 3]);

    await t.step("--allow 127.0.0.2/32 serves 127.0.0.2 and ignores 127.0.0.1", async () => {
      const srv = await startServer([dir, "-v", "--allow", "127.0.0.2/32"]);
      const ok = new RawPeer("127.0.0.2");
      const no = new RawPeer("127.0.0.1");
      try {
        const h = await holdDownload(ok, request("RRQ", "f.bin"), srv.port);
        assertBytes(await finishDownload(h), file, "download from 127.0.0.2");
        await no.send(request("RRQ", "f.bin"), srv.port);
        await no.send(request("WRQ", "w.bin"), srv.port);
        await no.send(data(1), srv.port); // would draw ERROR 5 from an allowed peer
        await no.send(new Uint8Array([0, 9, 1]), srv.port); // would draw ERROR 4
        await assertSilence(no, 1500, "127.0.0.1 is not in --allow");
        await srv.waitFor(new RegExp(`from 127\\.0\\.0\\.1:${no.port}: not allowed`));
      } finally {
        ok.close();
        no.close();
        await srv.stop();
      }
    });

    await t.step("--deny 127.0.0.2 wins over --allow 127.0.0.0/8", async () => {
      const srv = await startServer([
        dir,
        "-v",
        "--allow",
        "127.0.0.0/8",
        "--deny",
        "127.0.0.2",
      ]);
      const no = new RawPeer("127.0.0.2");
      try {
        assertBytes(await get({ hostname: HOST, port: srv.port }, "f.bin"), file, "127.0.0.1");
        await no.send(request("RRQ", "f.bin"), srv.port);
        await no.send(data(1), srv.port);
        await assertSilence(no, 1500, "127.0.0.2 is denied");
        await srv.waitFor(new RegExp(`from 127\\.0\\.0\\.2:${no.port}: not allowed`));
      } finally {
        no.close();
        await srv.stop();
      }
    });

    await t.step(
      "IPv6 on ::1: --deny ::1/128 and an IPv4-only --allow ignore ::1, --allow ::1/128 serves it",
      async () => {
        const deny = await startServer([dir, "-v", "--address", "::1", "--deny", "::1/128"]);
        const v4only = await startServer([
          dir,
          "-v",
          "--address",
          "::1",
          "--allow",
          "127.0.0.0/8",
        ]);
        const allow = await startServer([dir, "--address", "::1", "--allow", "::1/128"]);
        const p1 = new RawPeer("::1");
        const p2 = new RawPeer("::1");
        try {
          assertBytes(
            await get({ hostname: "::1", port: listeningPort(allow) }, "f.bin"),
            file,
            "::1 allowed",
          );
          await p1.send(request("RRQ", "f.bin"), listeningPort(deny), "::1");
          await p2.send(request("RRQ", "f.bin"), listeningPort(v4only), "::1");
          await Promise.all([
            assertSilence(p1, 1500, "::1 is denied"),
            assertSilence(p2, 1500, "::1 is not in an IPv4 --allow"),
          ]);
          // The datagrams did arrive and were ignored on purpose.
          await deny.waitFor(new RegExp(`from \\[::1\\]:${p1.port}: not allowed`));
          await v4only.waitFor(new RegExp(`from \\[::1\\]:${p2.port}: not allowed`));
        } finally {
          p1.close();
          p2.close();
          await Promise.all([deny.stop(), v4only.stop(), allow.stop()]);
        }
      },
    );
  });
});

/** `n` consecutive ports below the kernel's ephemeral range that are free right now. */
function freePortRange(n: number): { lo: number; hi: number } {
  for (let attempt = 0; attempt < 50; attempt++) {
    const lo = 20_000 + Math.floor(Math.random() * 10_000);
    const held: Deno.DatagramConn[] = [];
    try {
      for (let p = lo; p < lo + n; p++) {
        held.push(Deno.listenDatagram({ transport: "udp", hostname: HOST, port: p }));
      }
      return { lo, hi: lo + n - 1 };
    } catch {
      // taken: try elsewhere
    } finally {
      for (const c of held) c.close();
    }
  }
  throw new Error("no free port range found");
}

Deno.test("--port-range puts transfer sockets inside the range and refuses with an ERROR when it is exhausted", async (t) => {
  await withDir("limits_ports_", async (dir) => {
    const file = await makeFile(`${dir}/f.bin`, 1500, 6);

    await t.step("three concurrent transfers use three ports of a 5-port range", async () => {
      const { lo, hi } = freePortRange(5);
      const srv = await startServer([dir, "--port-range", `${lo}-${hi}`]);
      const peers = [new RawPeer(), new RawPeer(), new RawPeer()];
      try {
        const held = await Promise.all(
          peers.map((p) => holdDownload(p, request("RRQ", "f.bin"), srv.port)),
        );
        const ports = held.map((h) => h.tid.port);
        for (const p of ports) assert.ok(p >= lo && p <= hi, `DATA from port ${p} in ${lo}-${hi}`);
        assert.equal(new Set(ports).size, 3, `distinct ports ${ports}`);
        for (const h of held) assertBytes(await finishDownload(h), file, "download");
        // and the library client (windowed) works through the range as well
        assertBytes(await get({ hostname: HOST, port: srv.port }, "f.bin"), file, "get");
      } finally {
        for (const p of peers) p.close();
        await srv.stop();
      }
    });

    await t.step("with a 1-port range a second concurrent request gets an ERROR", async () => {
      const { lo } = freePortRange(1);
      const srv = await startServer([
        dir,
        "--port-range",
        `${lo}-${lo}`,
        "--timeout",
        "5",
        "--log-format",
        "json",
      ]);
      const [p1, p2, p3] = [new RawPeer(), new RawPeer(), new RawPeer()];
      try {
        const h = await holdDownload(p1, request("RRQ", "f.bin"), srv.port);
        assert.equal(h.tid.port, lo, "the only port of the range");
        const a = await answerTo(p2, srv.port, "f.bin");
        console.log(`1-port range exhausted: second request answered with ${JSON.stringify(a)}`);
        assert.ok(
          a,
          `the second request must be answered, not ignored; server log:\n${srv.lines.join("\n")}`,
        );
        assert.equal(a.packet.op, "ERROR", `an ERROR, got ${JSON.stringify(a.packet)}`);
        assert.equal(a.from.port, srv.port, "from the listening port");
        assertBytes(await finishDownload(h), file, "the first transfer still completes");
        const again = await holdDownload(p3, request("RRQ", "f.bin"), srv.port);
        assert.equal(again.tid.port, lo, "the port is free again");
        assertBytes(await finishDownload(again), file, "a later transfer gets the port");
      } finally {
        for (const p of [p1, p2, p3]) p.close();
        await srv.stop();
      }
    });
  });
});
