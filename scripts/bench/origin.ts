/**
 * Scenario 5 of `scripts/bench/bench.ts`: tftpkit serving a file from a loopback HTTP origin against
 * tftpkit serving the same file from disk, as ratios (no target: this prices the origin path).
 *
 * - The origin is `scripts/bench/origin_server.ts` (`Deno.serve` streaming from disk, with
 *   `Content-Length` and `ETag`) in a process of its own on 127.0.0.1, serving the bench's file
 *   directory; it prints one line per request, which is how the origin requests are counted.
 * - Servers (all `deno run main.ts serve … --address 127.0.0.1`):
 *   - disk: `serve DIR` (the reference);
 *   - 5a streamed: `serve --origin URL/` (no cache: every transfer is one origin GET);
 *   - 5b/5c cached: `serve --origin URL/ --cache CACHEDIR --cache-ttl 3600` (needs
 *     `--allow-write`), started afresh with an empty cache directory for every run: its first
 *     get is the cold one (5b: one origin GET, tailed from the cache's temporary file while it
 *     downloads), the second the cached one (5c: from disk, no origin request).
 * - Before timing, every path is downloaded into a temp file and SHA-256-checked, and the origin
 *   request count is checked (one GET per streamed or cold transfer, none for a cached one);
 *   every timed run checks the counts again (a failed check fails the row).
 * - Timed runs (`atftp -g … -l /dev/null`, windowsize 16 / blksize 1468, wall time around the
 *   client), per run in this order: disk, streamed, cold, cached; medians are reported.
 *
 * @module
 */

import { errorMessage, freeUdpPort, hashFile, median, MiB, readProcMemory } from "./lib.ts";
import {
  describeClientFailure,
  runClient,
  type RunningServer,
  type ServerSpec,
  startServer,
} from "./peers.ts";
import {
  type BenchFile,
  fmtMBps,
  fmtMiB,
  OURS,
  type ScenarioResult,
  type ServerOutcome,
} from "./report.ts";
import { HOST } from "../../src/testing/loopback.ts";

const OPTIONS: [string, number][] = [["blksize", 1468], ["windowsize", 16]];

/** What scenario 5 needs from the benchmark. */
export interface OriginBenchInput {
  /** The atftp client. */
  atftp: string;
  /** atftp `--tftp-timeout` (0 = its default). */
  clientTimeout: number;
  /** The file to serve; it lives in `servedDir`. */
  file: BenchFile;
  /** A small file in `servedDir`, fetched untimed through each fresh cache server first. */
  warmup: BenchFile;
  servedDir: string;
  /** A scratch directory (downloads, caches). */
  workDir: string;
  runs: number;
  /** The tftpkit server spec: `serve SOURCE... ` on `port` with these permissions. */
  oursSpec: (source: string[], port: number, permissions?: string[]) => ServerSpec | string;
}

function freeTcpPort(): number {
  const l = Deno.listen({ hostname: HOST, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function outcome(name: string): ServerOutcome {
  return { name, ok: false, runsMs: [], runsMBps: [], medianMBps: null };
}

/** Runs scenario 5 and returns its rows (5a streamed, 5b cold, 5c cached; disk is the reference). */
export async function runOriginScenarios(input: OriginBenchInput): Promise<ScenarioResult[]> {
  const { file } = input;
  console.log(
    `\n=== [5] HTTP origin vs disk, windowsize 16 / blksize 1468, ${fmtMiB(file.size)} ===`,
  );
  const disk = outcome(`${OURS} disk`);
  const streamed = outcome(`${OURS} origin`);
  const cold = outcome(`${OURS} cold`);
  const cached = outcome(`${OURS} cached`);
  const started: RunningServer[] = [];
  const path = `/${encodeURIComponent(file.name)}`;

  let origin: RunningServer | undefined;
  const originGets = () => origin?.lines.filter((l) => l.startsWith(`GET ${path} 200`)).length ?? 0;

  const client = (port: number, local: string, name = file.name) => {
    const args: string[] = [];
    if (input.clientTimeout > 0) args.push("--tftp-timeout", String(input.clientTimeout));
    args.push("-g", "-r", name, "-l", local);
    for (const [k, v] of OPTIONS) args.push("--option", `${k} ${v}`);
    args.push(HOST, String(port));
    return runClient(input.atftp, args, Math.max(60_000, (file.size / MiB) * 2_000));
  };

  /** One get; `verify` downloads into a file and checks it. Returns ms; throws on failure. */
  const get = async (server: RunningServer, verify: boolean): Promise<number> => {
    const local = verify ? `${input.workDir}/download-${server.port}` : "/dev/null";
    const r = await client(server.port, local);
    if (r.code !== 0 || r.timedOut) {
      throw new Error(describeClientFailure(r) + ((await server.deathNote()) || ""));
    }
    if (verify) {
      const got = await hashFile(local);
      await Deno.remove(local);
      if (got.size !== file.size || got.sha256 !== file.sha256) {
        throw new Error(
          `got ${got.size} bytes, SHA-256 ${got.sha256 === file.sha256 ? "ok" : "differs"}`,
        );
      }
    }
    return r.ms;
  };

  /** One get through `o`'s server that must cause `expectGets` origin GETs. */
  const measured = async (
    o: ServerOutcome,
    server: RunningServer,
    expectGets: number,
    verify: boolean,
    label: string,
  ) => {
    if (!o.ok && !verify) return;
    try {
      const before = originGets();
      const ms = await get(server, verify);
      const gets = originGets() - before;
      if (gets !== expectGets) {
        throw new Error(`origin saw ${gets} GET(s) for the file, expected ${expectGets}`);
      }
      if (verify) {
        o.ok = true;
        o.verification = { ok: true, detail: `${file.size} bytes, SHA-256 ok, ${gets} origin GET` };
        console.log(`  ${o.name.padEnd(15)} verify ok (${gets} origin GET)`);
        return;
      }
      const mbps = file.size / MiB / (ms / 1000);
      o.runsMs.push(ms);
      o.runsMBps.push(mbps);
      console.log(
        `  ${o.name.padEnd(15)} ${label}: ${(ms / 1000).toFixed(3)} s = ${fmtMBps(mbps)}`,
      );
    } catch (err) {
      o.ok = false;
      o.reason = `failed ${verify ? "verification" : label}: ${errorMessage(err)}`;
      if (verify) o.verification = { ok: false, detail: o.reason };
      console.log(`  ${o.name}: ${o.reason}`);
    }
  };

  const startOurs = async (source: string[], permissions?: string[]) => {
    const port = await freeUdpPort(HOST);
    const spec = input.oursSpec(source, port, permissions);
    if (typeof spec === "string") throw new Error(spec);
    const s = await startServer(spec, port, 60_000);
    started.push(s);
    return s;
  };

  let base = "";
  let cacheRound = 0;
  /** A fresh cache server: cold get, then cached get, then stopped and its cache removed. */
  const coldThenCached = async (verify: boolean, label: string) => {
    const dir = `${input.workDir}/cache-${++cacheRound}`;
    let server: RunningServer | undefined;
    try {
      server = await startOurs(
        ["--origin", `${base}/`, "--cache", dir, "--cache-ttl", "3600"],
        ["--allow-net", "--allow-read", "--allow-write"],
      );
    } catch (err) {
      for (const o of [cold, cached]) {
        o.ok = false;
        o.reason = `not available: ${errorMessage(err)}`;
      }
      return;
    }
    // Warm-up (JIT) of the fresh process on another file, so "cold" means a cold cache only.
    const warm = await client(server.port, "/dev/null", input.warmup.name);
    if (warm.code !== 0) console.log(`  warm-up failed: ${describeClientFailure(warm)}`);
    await measured(cold, server, 1, verify, label);
    await measured(cached, server, 0, verify, label);
    await server.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  try {
    const port = freeTcpPort();
    origin = await startServer(
      {
        name: "origin",
        cmd: Deno.execPath(),
        args: [
          "run",
          "--allow-net",
          "--allow-read",
          new URL("./origin_server.ts", import.meta.url).pathname,
          input.servedDir,
          String(port),
        ],
        readyLine: "origin listening on",
        noProbe: true,
      },
      port,
      30_000,
    );
    base = `http://${HOST}:${port}`;
    console.log(`  origin: ${base}/ (pid ${origin.pid})`);

    const diskServer = await startOurs([input.servedDir]);
    const streamServer = await startOurs(["--origin", `${base}/`]);
    await measured(disk, diskServer, 0, true, "verify");
    await measured(streamed, streamServer, 1, true, "verify");
    await coldThenCached(true, "verify");

    let streamPeakKiB = 0;
    for (let run = 1; run <= input.runs; run++) {
      const label = `run ${run}/${input.runs}`;
      await measured(disk, diskServer, 0, false, label);
      await measured(streamed, streamServer, 1, false, label);
      streamPeakKiB = readProcMemory(streamServer.pid)?.hwmKiB ?? streamPeakKiB;
      await coldThenCached(false, label);
    }
    if (streamPeakKiB) {
      console.log(
        `  ${streamed.name}: peak RSS (VmHWM) ${(streamPeakKiB / 1024).toFixed(1)} MiB after ` +
          `streaming ${input.runs + 1} x ${fmtMiB(file.size)}`,
      );
    }
  } catch (err) {
    const why = `not available: ${errorMessage(err)}`;
    for (const o of [disk, streamed, cold, cached]) {
      if (o.runsMBps.length === 0) {
        o.ok = false;
        o.reason ??= why;
      }
    }
    console.log(`  ${why}`);
  } finally {
    await Promise.all(started.map((s) => s.stop()));
    await origin?.stop();
  }

  for (const o of [disk, streamed, cold, cached]) {
    o.medianMBps = o.ok && o.runsMBps.length > 0 ? median(o.runsMBps) : null;
  }
  const row = (id: string, title: string, o: ServerOutcome): ScenarioResult => {
    const ratio = o.medianMBps !== null && disk.medianMBps !== null
      ? o.medianMBps / disk.medianMBps
      : null;
    return {
      id,
      title: `${title}, ${fmtMiB(file.size)}`,
      reference: `${OURS} from disk`,
      fileBytes: file.size,
      options: Object.fromEntries(OPTIONS),
      ours: o,
      theirs: disk,
      ratio,
      target: "-",
      status: ratio === null ? "N/A" : "MEASURED",
    };
  };
  return [
    row("5a", "HTTP origin, no cache, 16 / 1468", streamed),
    row("5b", "HTTP origin, cache cold, 16 / 1468", cold),
    row("5c", "HTTP origin, cached, 16 / 1468", cached),
  ];
}
