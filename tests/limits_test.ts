/**
 * Resource limits of `tftpkit serve` on concurrent transfers: session caps (global and per
 * client address), a flood of abandoned requests, and --port-range.
 */

import assert from "node:assert/strict";
import { get } from "../src/mod.ts";
import { decode } from "../src/wire/packet.ts";
import { RawPeer, request } from "./support/raw.ts";
import { makeFile, type ServerProcess, startServer } from "./support/server.ts";
import {
  finishDownload,
  holdDownload,
  socketCount,
  statusKb,
  transfers,
  waitUntil,
} from "../src/testing/proc.ts";
import { assertBytes, HOST, withDir } from "./support/limits_fixture.ts";
import { V8_FLAGS } from "../scripts/release/plan.ts";

/** Sends a plain RRQ and returns the decoded answer (from any port), or null on silence. */
async function answerTo(peer: RawPeer, port: number, name: string, hostname = HOST, ms = 3000) {
  await peer.send(request("RRQ", name), port, hostname);
  const got = await peer.recv(ms);
  return got && { packet: decode(got.data), from: got.from };
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

/** Resolves with `p`'s value, or `false` after `ms` (the timer is always cleared). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | false> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<false>((r) => (timer = setTimeout(r, ms, false)))]);
  } finally {
    clearTimeout(timer);
  }
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

Deno.test("a flood of 1,000 abandoned requests does not starve a real client, its sockets are released and its memory stays bounded", async () => {
  await withDir("limits_flood_", async (dir) => {
    await makeFile(`${dir}/flood.bin`, 3000, 3);
    const legit = await makeFile(`${dir}/legit.bin`, 2_000_000, 4);
    // As shipped (the binaries bake the V8 flag), with a fixed pool so the bound does not
    // depend on the machine's core count.
    const srv = await startServer([
      dir,
      "--workers",
      "2",
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
    ], { denoFlags: [V8_FLAGS] });
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
          const bytes = await get(target, "legit.bin", { timeoutMs: 1000, retries: 8 });
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
      // RSS is a high-water mark: V8 collects lazily and keeps the heap pages it grew, so it does
      // not fall back to the baseline when the flood ends (measured: 90 -> 140 -> 156 MiB at two
      // workers, and flat from the third flood on). What must hold is a bound per abandoned
      // transfer: what 1,000 of them grew is under 96 KiB each — a transfer that kept its chunk
      // buffers or its socket alive (64 KiB and more apiece) would break it.
      const rss = await statusKb(pid, "VmRSS");
      const report = `sockets ${baseSockets} -> ${peakSockets} -> ${sockets}; ` +
        `RSS (kB) baseline ${baseRss}, after the flood ${peakRss}, after the timeouts ${rss}`;
      console.log(`flood: ${report}`);
      assert.ok(peakSockets > baseSockets, "the flood did open transfer sockets");
      assert.ok(rss < baseRss + 96 * 1000, `RSS must stay within 96 KiB per transfer: ${report}`);
    } finally {
      for (const c of flooders) c.close();
      await srv.stop();
    }
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
