/**
 * The command-line contract of `tftpkit serve`, run as a subprocess with exactly
 * `--allow-net --allow-read` (what the README documents for serving): start-up failures (exit 1
 * or 2, one line, no stack trace), the start line, JSON logs, `--once`, `--max-transfers`,
 * `--idle-exit`, and signals.
 */

import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { get, PeerError } from "../src/mod.ts";
import { oneLine, tftpkit } from "./support/cli_fixture.ts";
import { makeFile, type ServerProcess, startServer } from "./support/server.ts";

const target = (port: number) => ({ hostname: "127.0.0.1", port });

/** Resolves with `p`, or rejects after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A served directory with `hello.bin` (5000 bytes). */
async function servedDir(): Promise<{ dir: string; hello: Uint8Array }> {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-cli-" });
  const hello = await makeFile(join(dir, "hello.bin"), 5000, 7);
  return { dir, hello };
}

/** Stops a server that may already have exited (cleanup). */
async function ensureStopped(server: ServerProcess | undefined) {
  if (server) await server.stop("SIGKILL");
}

Deno.test("a busy port exits 1 with one clear line and no stack trace", async () => {
  const blocker = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const { dir } = await servedDir();
  try {
    const port = (blocker.addr as Deno.NetAddr).port;
    const r = await tftpkit(["serve", dir, "--address", "127.0.0.1", "--port", String(port)]);
    equal(r.code, 1, `exit ${r.code}\n${r.stdout}${r.stderr}`);
    ok(!r.stdout.includes("listening on"), r.stdout);
    const line = oneLine(r.stderr, "busy port");
    match(line, /^tftpkit serve: /);
    ok(line.includes(`127.0.0.1:${port}`), line);
    match(line, /already in use/);
  } finally {
    blocker.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing PATH exits 2 with one line naming it", async () => {
  const missing = join(await Deno.makeTempDir({ prefix: "tftpkit-cli-" }), "gone");
  try {
    const r = await tftpkit(["serve", missing, "--address", "127.0.0.1", "--port", "0"]);
    equal(r.code, 2, `exit ${r.code}\n${r.stdout}${r.stderr}`);
    ok(!r.stdout.includes("listening on"), r.stdout);
    const line = oneLine(r.stderr, "missing path");
    ok(line.includes(missing), line);
    match(line, /no such file or directory/i);
  } finally {
    await Deno.remove(join(missing, ".."), { recursive: true });
  }
});

Deno.test("--write without --allow-write refuses to start and says to add --allow-write", async () => {
  const { dir } = await servedDir();
  try {
    const r = await tftpkit(["serve", dir, "--write", "--address", "127.0.0.1", "--port", "0"]);
    ok(r.code !== 0, "the server started without write permission");
    ok(!r.stdout.includes("listening on"), r.stdout);
    const line = oneLine(r.stderr, "--write without --allow-write");
    match(line, /^tftpkit serve: /);
    ok(line.includes("--write"), line);
    ok(line.includes("--allow-write"), line);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the start line says what is served and where", async (t) => {
  const { dir, hello } = await servedDir();
  const realDir = await Deno.realPath(dir);
  try {
    await t.step("a directory, read-only", async () => {
      const s = await startServer([dir]);
      try {
        const line = await s.waitFor(/listening on /);
        match(line, / INFO +listening on 127\.0\.0\.1:\d+ serving directory /);
        ok(line.includes(`127.0.0.1:${s.port}`), line);
        ok(line.includes(`directory ${realDir} (read-only)`), line);
        equal(s.lines.length, 1, s.lines.join("\n"));
      } finally {
        equal(await s.stop(), 0);
      }
    });
    await t.step("a directory accepting uploads", async () => {
      const s = await startServer([dir, "--write"], { write: true });
      try {
        const line = await s.waitFor(/listening on /);
        ok(line.includes(`127.0.0.1:${s.port} serving directory ${realDir} (uploads`), line);
      } finally {
        equal(await s.stop(), 0);
      }
    });
    await t.step("one file under every name, and it is served", async () => {
      const s = await startServer([join(dir, "hello.bin")]);
      try {
        const line = await s.waitFor(/listening on /);
        ok(line.includes(`127.0.0.1:${s.port} serving file ${realDir}/hello.bin`), line);
        match(line, /under every name/);
        deepEqual(await get(target(s.port), "any/name/at/all"), hello);
      } finally {
        equal(await s.stop(), 0);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--log-format json writes one JSON object per line with stable transfer fields", async () => {
  const { dir, hello } = await servedDir();
  let s: ServerProcess | undefined;
  try {
    s = await startServer([dir, "--log-format", "json"]);
    const first = JSON.parse(await s.waitFor(/"event":"listening"/));
    equal(first.event, "listening");
    equal(first.port, s.port);
    deepEqual(first.addresses, [`127.0.0.1:${s.port}`]);
    match(first.source, /^directory .* \(read-only\)$/);
    equal(first.level, "info");
    ok(!Number.isNaN(Date.parse(first.time)), first.time);

    deepEqual(await get(target(s.port), "hello.bin"), hello);
    await rejects(get(target(s.port), "missing.bin"), (e: unknown) => {
      ok(e instanceof PeerError, String(e));
      equal(e.code, 1);
      return true;
    });
    await s.waitFor(/"file":"missing\.bin"/);
    await s.waitFor(/"file":"hello\.bin"/);
    equal(await s.stop("SIGTERM"), 0);

    const records = s.lines.filter((l) => l.trim()).map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
    for (const r of records) {
      ok(r && typeof r === "object" && !Array.isArray(r), JSON.stringify(r));
      for (const key of ["time", "level", "msg"]) {
        ok(key in r, `${key} missing: ${JSON.stringify(r)}`);
      }
    }
    const transfers = records.filter((r) => r.event === "transfer");
    equal(transfers.length, 2, JSON.stringify(records));
    for (const r of transfers) {
      for (
        const key of ["event", "op", "peer", "file", "bytes", "durationMs", "rateBps", "outcome"]
      ) {
        ok(key in r, `${key} missing: ${JSON.stringify(r)}`);
      }
      equal(r.op, "RRQ");
      match(r.peer, /^127\.0\.0\.1:\d+$/);
      equal(typeof r.bytes, "number");
      ok(Number.isInteger(r.durationMs) && r.durationMs >= 0, JSON.stringify(r));
      ok(typeof r.rateBps === "number" && r.rateBps >= 0, JSON.stringify(r));
    }
    const good = transfers.find((r) => r.file === "hello.bin");
    const bad = transfers.find((r) => r.file === "missing.bin");
    equal(good.outcome, "ok");
    equal(good.bytes, hello.length);
    equal(good.level, "info");
    ok(good.rateBps > 0, JSON.stringify(good));
    equal(bad.outcome, "refused");
    equal(bad.level, "info");
    equal(bad.bytes, 0);
    match(bad.error, /not found/);
    ok(records.some((r) => r.event === "stopped"), "no stopped event");
  } finally {
    await ensureStopped(s);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--once exits 0 after one successful transfer and not after a failed one", async () => {
  const { dir, hello } = await servedDir();
  let s: ServerProcess | undefined;
  try {
    s = await startServer([dir, "--once"]);
    await rejects(get(target(s.port), "missing.bin"), PeerError);
    // Still serving after the failure: this download would time out otherwise.
    deepEqual(await get(target(s.port), "hello.bin"), hello);
    equal(await within(s.exited, 20_000, "--once exit"), 0, s.lines.join("\n"));
    ok(s.lines.some((l) => /max-transfers|transfers done/.test(l)), s.lines.join("\n"));
  } finally {
    await ensureStopped(s);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--max-transfers 2 exits 0 after the second successful transfer", async () => {
  const { dir, hello } = await servedDir();
  let s: ServerProcess | undefined;
  try {
    s = await startServer([dir, "--max-transfers", "2"]);
    deepEqual(await get(target(s.port), "hello.bin"), hello);
    await rejects(get(target(s.port), "missing.bin"), PeerError);
    // The failure did not count: this is the second success, and the server is still there.
    deepEqual(await get(target(s.port), "hello.bin"), hello);
    equal(await within(s.exited, 20_000, "--max-transfers exit"), 0, s.lines.join("\n"));
    equal(s.lines.filter((l) => / ok: /.test(l)).length, 2, s.lines.join("\n"));
  } finally {
    await ensureStopped(s);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--idle-exit exits 0 when idle, or 3 when --max-transfers was not reached", async (t) => {
  const { dir } = await servedDir();
  try {
    await t.step("--idle-exit 1 with no transfer exits 0", async () => {
      const s = await startServer([dir, "--idle-exit", "1"]);
      try {
        equal(await within(s.exited, 20_000, "--idle-exit"), 0, s.lines.join("\n"));
        ok(s.lines.some((l) => /idle-exit/.test(l)), s.lines.join("\n"));
      } finally {
        await ensureStopped(s);
      }
    });
    await t.step("--idle-exit 1 --max-transfers 5 with no transfer exits 3", async () => {
      const s = await startServer([dir, "--idle-exit", "1", "--max-transfers", "5"]);
      try {
        equal(await within(s.exited, 20_000, "--idle-exit"), 3, s.lines.join("\n"));
      } finally {
        await ensureStopped(s);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGINT and SIGTERM stop the server with exit 0", async (t) => {
  const { dir, hello } = await servedDir();
  try {
    await t.step("SIGTERM as soon as the start line is printed (10 times)", async () => {
      // A supervisor that waits for the start line and then stops the server must see exit 0:
      // the start line must not appear before the signal handlers are in place.
      const codes: number[] = [];
      for (let i = 0; i < 10; i++) {
        const s = await startServer([dir]);
        codes.push(await within(s.stop("SIGTERM"), 20_000, "SIGTERM"));
      }
      deepEqual(codes, Array(10).fill(0), `exit codes: ${codes.join(",")}`);
    });
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      await t.step(signal, async () => {
        const s = await startServer([dir]);
        try {
          deepEqual(await get(target(s.port), "hello.bin"), hello);
          await s.waitFor(/ ok: /);
          equal(await within(s.stop(signal), 20_000, signal), 0, s.lines.join("\n"));
          ok(s.lines.some((l) => /\bstopped\b/.test(l)), s.lines.join("\n"));
        } finally {
          await ensureStopped(s);
        }
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
