/**
 * Side-by-side benchmark of the tftpkit server against two C TFTP servers (tftpd-hpa and
 * atftpd), all driven by the same C client (`atftp`).
 *
 * Usage:
 *
 *     deno run --allow-all scripts/bench.ts [--quick] [--runs N] [--only 1,2,3,4,5] [--json FILE]
 *                                           [--client-timeout SECONDS]
 *
 * What it does, in one run:
 *
 * - creates a temp dir with random files (10 MiB and 100 MiB; 2 MiB and 10 MiB with `--quick`),
 *   created once and served by every server;
 * - for each scenario, starts fresh server processes on 127.0.0.1 with free UDP ports:
 *   - tftpkit: `deno run --v8-flags=--max-semi-space-size=4 --allow-net --allow-read main.ts serve
 *     DIR --address 127.0.0.1 --port P
 *     --max-blksize 65464 --max-windowsize 64 --max-sessions 1000 --max-sessions-per-client 1000`
 *     (ready when it prints a line containing "listening on" and answers a TFTP request; if it
 *     cannot be started its cells read "not available: <reason>" and the C rows still run);
 *   - tftpd-hpa: `in.tftpd -L -a 127.0.0.1:P -s DIR` (`$TFTPD_HPA`, default /usr/sbin/in.tftpd);
 *   - atftpd: `atftpd --daemon --no-fork --port P --bind-address 127.0.0.1 --user U --group G
 *     --logfile FILE --maxthread 1000 DIR` (`$ATFTPD`, default: `atftpd` in PATH, then
 *     `.tools/atftpd/usr/sbin/atftpd` relative to the repo root);
 * - before timing, checks every server with two untimed downloads: an `atftp --trace` download
 *   of a 1 MiB probe file with the scenario's options, to see that they were really negotiated
 *   (OACK contents, size of DATA block 1, DATA packets per ACK; tracing slows the client down, so
 *   it is not done on the big files), and a plain download of the scenario's file into a temp
 *   file whose size and SHA-256 must match (so a broken server cannot look fast; this is also
 *   the warm-up). In scenario 3 every client's exit code is checked as well;
 * - then times `atftp -g -r NAME -l /dev/null [--option "blksize N"] [--option "windowsize N"]
 *   127.0.0.1 P` with wall time (performance.now()) around the client process, alternating the
 *   servers run by run (ours, theirs, ours, theirs, ...). Throughput = file size / wall time;
 *   the median of `--runs` runs (default 3, 1 with `--quick`) is reported.
 *
 * Scenarios (ratio = tftpkit throughput / reference throughput):
 *
 * 1. lock-step, 512-byte blocks (no options), 10 MiB: tftpkit vs tftpd-hpa, target ratio >= 1.0
 * 2. windowed, 100 MiB, (a) windowsize 16 / blksize 1468, (b) windowsize 64 / blksize 8192:
 *    tftpkit vs atftpd, target ratio >= 1.0
 * 3. 50 clients at once, 200 downloads in total of the 10 MiB file at blksize 1468 (lock-step):
 *    tftpkit vs tftpd-hpa, aggregate throughput = total bytes / wall time, target ratio >= 1.0
 * 4. peak RSS of the tftpkit (deno) process during scenario 3: VmHWM from /proc/PID/status at the
 *    end of the scenario (the process is started fresh for scenario 3), plus VmRSS sampled every
 *    100 ms; the larger of the two must be <= 150 MiB. The process sampled is the `deno run`
 *    process itself (`deno run` does not fork a separate runtime process).
 * 5. HTTP origin (`scripts/bench_origin.ts`): the 100 MiB file at windowsize 16 / blksize 1468
 *    served by tftpkit from a loopback HTTP origin — (a) streamed without a cache, (b) through
 *    `--cache` when cold, (c) through `--cache` once cached — against tftpkit serving it from
 *    disk; ratios without a target (origin requests are counted and checked per run).
 *
 * The client runs with `--tftp-timeout 1` (override with `--client-timeout N`, 0 = atftp's
 * default of 5 s): with windowsize 64 x 8 KiB blocks the window (~512 KiB) is larger than the
 * client's default UDP receive buffer (net.core.rmem_default, ~208 KiB), so the kernel drops
 * datagrams and every loss the server does not repair by itself costs one client timeout.
 *
 * Units: 1 MB = 1 MiB = 2^20 bytes. Every process started is killed at the end, on errors and on
 * Ctrl-C, and the temp dir is removed. The exit code is 0 when the benchmark completed (even if
 * rows are below target or unavailable) and 1 on a harness error.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  commandOutput,
  delay,
  describeClientFailure,
  errorMessage,
  freeUdpPort,
  hashFile,
  isExecutable,
  killAllTracked,
  median,
  MiB,
  parseTrace,
  processName,
  readProcMemory,
  runClient,
  type RunningServer,
  type ServerSpec,
  startServer,
  which,
  writeRandomFile,
} from "./bench_lib.ts";
import { runOriginScenarios } from "./bench_origin.ts";
import { V8_FLAGS } from "./compile.ts";
import {
  type BenchFile,
  fmtMBps,
  fmtMiB,
  type Negotiation,
  OURS,
  printTable,
  RATIO_TARGET,
  RSS_TARGET_MIB,
  type RssResult,
  type ScenarioResult,
  type ServerOutcome,
  type Verification,
} from "./bench_report.ts";

// ---------------------------------------------------------------------------------------------
// Configuration

const USAGE = `Usage: deno run --allow-all scripts/bench.ts [options]

  --quick                 1 run, small files (2 MiB / 10 MiB), 50 downloads in scenario 3
  --runs N                timed runs per server and scenario (default 3; 1 with --quick)
  --only LIST             scenarios to run, e.g. 1,2,3 (2 = 2a+2b; 4 implies 3; 5 = HTTP origin)
  --json FILE             also write the results as JSON to FILE
  --client-timeout N      atftp --tftp-timeout in seconds (default 1; 0 = atftp default)
  -h, --help              this help

Environment: ATFTP (client), TFTPD_HPA, ATFTPD (server binaries).`;

const HOST = "127.0.0.1";

const REPO_ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");

type RefName = "tftpd-hpa" | "atftpd";

export interface ScenarioDef {
  id: "1" | "2a" | "2b" | "3";
  title: string;
  fileKey: "small" | "large";
  options: [string, number][];
  reference: RefName;
  concurrency?: { clients: number; total: number };
}

// ---------------------------------------------------------------------------------------------
// CLI

function parseCli() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      runs: { type: "string" },
      only: { type: "string" },
      json: { type: "string" },
      "client-timeout": { type: "string", default: "1" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const quick = values.quick ?? false;
  const runs = values.runs === undefined ? (quick ? 1 : 3) : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer`);
  const clientTimeout = Number(values["client-timeout"]);
  if (!Number.isInteger(clientTimeout) || clientTimeout < 0) {
    throw new Error(`--client-timeout must be a non-negative integer`);
  }
  const selected = new Set<string>();
  for (const raw of (values.only ?? "1,2,3,4,5").split(",")) {
    const s = raw.trim().toLowerCase();
    if (s === "") continue;
    if (s === "1" || s === "3" || s === "2a" || s === "2b" || s === "5") selected.add(s);
    else if (s === "2") {
      selected.add("2a");
      selected.add("2b");
    } else if (s === "4") selected.add("3");
    else throw new Error(`--only: unknown scenario "${raw}" (use 1, 2, 2a, 2b, 3, 4, 5)`);
  }
  return { quick, runs, clientTimeout, selected, json: values.json };
}

// ---------------------------------------------------------------------------------------------
// Tools

interface Tools {
  atftp: string | null;
  tftpdHpa: string | null;
  tftpdHpaWhy: string;
  atftpd: string | null;
  atftpdWhy: string;
  user: string;
  group: string;
}

async function resolveTools(): Promise<Tools> {
  const envAtftp = Deno.env.get("ATFTP");
  const atftp = envAtftp ? (isExecutable(envAtftp) ? envAtftp : which(envAtftp)) : which("atftp");

  let tftpdHpa: string | null;
  let tftpdHpaWhy = "";
  const envHpa = Deno.env.get("TFTPD_HPA");
  if (envHpa) {
    tftpdHpa = isExecutable(envHpa) ? envHpa : null;
    if (!tftpdHpa) tftpdHpaWhy = `TFTPD_HPA=${envHpa} is not executable`;
  } else {
    tftpdHpa = isExecutable("/usr/sbin/in.tftpd") ? "/usr/sbin/in.tftpd" : which("in.tftpd");
    if (!tftpdHpa) tftpdHpaWhy = "in.tftpd not found (install tftpd-hpa or set TFTPD_HPA)";
  }

  let atftpd: string | null;
  let atftpdWhy = "";
  const envAtftpd = Deno.env.get("ATFTPD");
  if (envAtftpd) {
    atftpd = isExecutable(envAtftpd) ? envAtftpd : null;
    if (!atftpd) atftpdWhy = `ATFTPD=${envAtftpd} is not executable`;
  } else {
    const local = `${REPO_ROOT}/.tools/atftpd/usr/sbin/atftpd`;
    atftpd = which("atftpd") ?? (isExecutable(local) ? local : null);
    if (!atftpd) {
      atftpdWhy = "atftpd not found (set ATFTPD, put it in PATH or extract it to " +
        ".tools/atftpd/usr/sbin/atftpd)";
    }
  }

  const user = (await commandOutput("id", ["-un"])) || "root";
  const group = (await commandOutput("id", ["-gn"])) || user;
  return { atftp, tftpdHpa, tftpdHpaWhy, atftpd, atftpdWhy, user, group };
}

/**
 * The tftpkit server: `deno run PERMISSIONS main.ts serve SOURCE... --address 127.0.0.1 --port P`
 * with limits raised for the benchmark. `source` is e.g. `[dir]` or `["--origin", url]`.
 */
function oursSpec(
  source: string[],
  port: number,
  permissions = ["--allow-net", "--allow-read"],
): ServerSpec | string {
  const main = `${REPO_ROOT}/main.ts`;
  try {
    Deno.statSync(main);
  } catch {
    return `${main} does not exist`;
  }
  return {
    name: OURS,
    cmd: Deno.execPath(),
    args: [
      "run",
      V8_FLAGS, // as in the binaries and the deno tasks
      ...permissions,
      main,
      "serve",
      ...source,
      "--address",
      HOST,
      "--port",
      String(port),
      "--max-blksize",
      "65464",
      "--max-windowsize",
      "64",
      "--max-sessions",
      "1000",
      "--max-sessions-per-client",
      "1000",
    ],
    cwd: REPO_ROOT,
    readyLine: "listening on",
  };
}

function refSpec(
  ref: RefName,
  tools: Tools,
  dir: string,
  port: number,
  logDir: string,
): ServerSpec | string {
  if (ref === "tftpd-hpa") {
    if (!tools.tftpdHpa) return tools.tftpdHpaWhy;
    return { name: ref, cmd: tools.tftpdHpa, args: ["-L", "-a", `${HOST}:${port}`, "-s", dir] };
  }
  if (!tools.atftpd) return tools.atftpdWhy;
  const logFile = `${logDir}/atftpd-${port}.log`;
  return {
    name: ref,
    cmd: tools.atftpd,
    args: [
      "--daemon",
      "--no-fork",
      "--port",
      String(port),
      "--bind-address",
      HOST,
      "--user",
      tools.user,
      "--group",
      tools.group,
      "--logfile",
      logFile,
      "--maxthread",
      "1000",
      dir,
    ],
    logFile,
  };
}

// ---------------------------------------------------------------------------------------------
// State shared with the cleanup handler

let tempRoot: string | null = null;
let rssTimer: ReturnType<typeof setInterval> | undefined;
let cleanupPromise: Promise<void> | null = null;

/** Kills every child process we started and removes the temp dir (idempotent). */
function cleanup(): Promise<void> {
  cleanupPromise ??= (async () => {
    clearInterval(rssTimer);
    await killAllTracked(1000);
    if (tempRoot) {
      try {
        await Deno.remove(tempRoot, { recursive: true });
      } catch {
        // already gone
      }
      tempRoot = null;
    }
  })();
  return cleanupPromise;
}

function installSignalHandlers(): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    try {
      Deno.addSignalListener(sig, () => {
        if (!cleanupPromise) {
          console.error(`\n${sig}: stopping servers and clients, removing temp files...`);
        }
        cleanup().finally(() => Deno.exit(130));
      });
    } catch {
      // signal not supported on this platform
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements

interface Ctx {
  tools: Tools & { atftp: string };
  files: Record<"small" | "large", BenchFile>;
  probeFile: BenchFile;
  servedDir: string;
  downloadDir: string;
  logDir: string;
  runs: number;
  clientTimeout: number;
}

function clientArgs(ctx: Ctx, def: ScenarioDef, file: BenchFile, local: string, port: number) {
  const args: string[] = [];
  if (ctx.clientTimeout > 0) args.push("--tftp-timeout", String(ctx.clientTimeout));
  args.push("-g", "-r", file.name, "-l", local);
  for (const [k, v] of def.options) args.push("--option", `${k} ${v}`);
  args.push(HOST, String(port));
  return args;
}

function transferTimeoutMs(bytes: number): number {
  return Math.max(60_000, (bytes / MiB) * 2_000);
}

/** Downloads `file` into a temp file and checks its size and SHA-256 (untimed). */
async function downloadAndCheck(
  ctx: Ctx,
  def: ScenarioDef,
  file: BenchFile,
  server: RunningServer,
  trace: boolean,
): Promise<{ verification: Verification; output: string }> {
  const local = `${ctx.downloadDir}/${def.id}-${server.spec.name}-${file.name}`;
  const args = [...(trace ? ["--trace"] : []), ...clientArgs(ctx, def, file, local, server.port)];
  const r = await runClient(ctx.tools.atftp, args, transferTimeoutMs(file.size));
  const output = r.stdout + "\n" + r.stderr;
  try {
    if (r.code !== 0 || r.timedOut) {
      return { verification: { ok: false, detail: describeClientFailure(r) }, output };
    }
    const got = await hashFile(local);
    if (got.size !== file.size) {
      return {
        verification: {
          ok: false,
          detail: `${file.name}: got ${got.size} bytes, expected ${file.size}`,
        },
        output,
      };
    }
    if (got.sha256 !== file.sha256) {
      return {
        verification: { ok: false, detail: `${file.name}: size ok but SHA-256 differs` },
        output,
      };
    }
    const how = trace ? "traced" : "untimed";
    return {
      verification: {
        ok: true,
        detail: `${file.size} bytes, SHA-256 ok (${(r.ms / 1000).toFixed(2)} s ${how})`,
      },
      output,
    };
  } catch (err) {
    return {
      verification: { ok: false, detail: `cannot read download: ${errorMessage(err)}` },
      output,
    };
  } finally {
    await Deno.remove(local).catch(() => {});
  }
}

/**
 * Untimed checks before the timed runs (the second one is also the warm-up):
 * 1. `atftp --trace` download of the small probe file with the scenario's options: shows the
 *    OACK, the size of DATA block 1 and DATA packets per ACK (tracing slows the client down, so
 *    it is not done on the big files);
 * 2. plain download of the scenario's file into a temp file: size and SHA-256 must match.
 */
async function verifyServer(
  ctx: Ctx,
  def: ScenarioDef,
  file: BenchFile,
  server: RunningServer,
): Promise<{ verification: Verification; negotiation: Negotiation }> {
  const probe = await downloadAndCheck(ctx, def, ctx.probeFile, server, true);
  const t = parseTrace(probe.output);
  const wanted = Object.fromEntries(def.options);
  const problems: string[] = [];
  if (!probe.verification.ok) problems.push(`probe download failed: ${probe.verification.detail}`);
  if (def.options.length === 0) {
    if (t.oack) problems.push("unexpected OACK");
  } else if (!t.oack) {
    problems.push("no OACK (options ignored)");
  } else {
    for (const [k, v] of def.options) {
      if (t.oack[k] !== v) problems.push(`${k}: asked ${v}, got ${t.oack[k] ?? "none"}`);
    }
  }
  const expectedBlock = wanted.blksize ?? 512;
  if (t.firstDataSize !== null && t.firstDataSize !== expectedBlock) {
    problems.push(`DATA block 1 has ${t.firstDataSize} bytes, expected ${expectedBlock}`);
  }
  const dataPerAck = t.acksSent > 0 ? t.dataPackets / t.acksSent : null;
  const oackText = t.oack
    ? `OACK ${Object.entries(t.oack).map(([k, v]) => `${k}=${v}`).join(" ")}`
    : "no OACK";
  const detail = `${oackText}; DATA block size ${t.firstDataSize ?? "?"}; ` +
    `${dataPerAck === null ? "?" : dataPerAck.toFixed(1)} DATA packets per ACK ` +
    `(traced ${fmtMiB(ctx.probeFile.size)} probe)` +
    (problems.length ? `; PROBLEM: ${problems.join(", ")}` : "");
  const full = await downloadAndCheck(ctx, def, file, server, false);
  return {
    verification: full.verification,
    negotiation: {
      ok: problems.length === 0 && t.firstDataSize !== null,
      detail,
      oack: t.oack,
      firstDataSize: t.firstDataSize,
      dataPerAck,
    },
  };
}

/** One timed run: single download, or the concurrent batch of scenario 3. */
async function timedRun(
  ctx: Ctx,
  def: ScenarioDef,
  file: BenchFile,
  server: RunningServer,
): Promise<{ ms: number; bytes: number }> {
  const args = clientArgs(ctx, def, file, "/dev/null", server.port);
  if (!def.concurrency) {
    const r = await runClient(ctx.tools.atftp, args, transferTimeoutMs(file.size));
    if (r.code !== 0 || r.timedOut) throw new Error(describeClientFailure(r));
    return { ms: r.ms, bytes: file.size };
  }
  const { clients, total } = def.concurrency;
  let next = 0;
  let failure: string | null = null;
  const worker = async () => {
    while (failure === null && next < total) {
      next++;
      const r = await runClient(ctx.tools.atftp, args, 300_000);
      if ((r.code !== 0 || r.timedOut) && failure === null) failure = describeClientFailure(r);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(clients, total) }, worker));
  const ms = performance.now() - t0;
  if (failure !== null) throw new Error(failure);
  return { ms, bytes: total * file.size };
}

function newOutcome(name: string): ServerOutcome {
  return { name, ok: false, runsMs: [], runsMBps: [], medianMBps: null };
}

async function runScenario(
  ctx: Ctx,
  def: ScenarioDef,
): Promise<{ result: ScenarioResult; rss?: RssResult }> {
  const file = ctx.files[def.fileKey];
  console.log(`\n=== [${def.id}] ${def.title} ===`);
  const ours = newOutcome(OURS);
  const theirs = newOutcome(def.reference);
  const running = new Map<ServerOutcome, RunningServer>();
  let rss: RssResult | undefined;

  try {
    // Start both servers (fresh processes for every scenario).
    for (const outcome of [ours, theirs]) {
      const port = await freeUdpPort(HOST);
      const spec = outcome === ours
        ? oursSpec([ctx.servedDir], port)
        : refSpec(def.reference, ctx.tools, ctx.servedDir, port, ctx.logDir);
      if (typeof spec === "string") {
        outcome.reason = `not available: ${spec}`;
        console.log(`  ${outcome.name}: ${outcome.reason}`);
        continue;
      }
      try {
        const s = await startServer(spec, port, outcome === ours ? 60_000 : 10_000);
        running.set(outcome, s);
        console.log(`  ${outcome.name}: started, pid ${s.pid}, port ${port}`);
      } catch (err) {
        outcome.reason = `not available: ${errorMessage(err)}`;
        console.log(`  ${outcome.name}: ${outcome.reason}`);
      }
    }

    // Scenario 4: memory of our server process during scenario 3.
    const oursServer = running.get(ours);
    let maxRssKiB = 0;
    let samples = 0;
    let idleRssKiB: number | undefined;
    if (def.concurrency) {
      if (oursServer) {
        const pid = oursServer.pid;
        idleRssKiB = readProcMemory(pid)?.rssKiB;
        rssTimer = setInterval(() => {
          const m = readProcMemory(pid);
          if (!m) return;
          samples++;
          maxRssKiB = Math.max(maxRssKiB, m.rssKiB);
        }, 100);
      } else {
        rss = {
          ok: false,
          reason: `${OURS} ${(ours.reason ?? "not available").split(":")[0]} (see [3])`,
          target: `<= ${RSS_TARGET_MIB} MiB`,
          status: "N/A",
        };
      }
    }

    // Verify bytes + negotiation once per server (also the warm-up).
    for (const [outcome, server] of running) {
      const v = await verifyServer(ctx, def, file, server);
      outcome.verification = v.verification;
      outcome.negotiation = v.negotiation;
      console.log(
        `  ${outcome.name}: verify ${v.verification.ok ? "ok" : "FAILED"}: ` +
          `${v.verification.detail}; ${v.negotiation.detail}`,
      );
      if (!v.verification.ok) {
        const died = await server.deathNote();
        outcome.reason = `failed verification: ${v.verification.detail}` +
          (died ? ` [${died}]` : "");
        if (died) console.log(`  ${died}`);
      } else outcome.ok = true;
    }

    // Timed runs, alternating ours / theirs.
    for (let run = 1; run <= ctx.runs; run++) {
      for (const outcome of [ours, theirs]) {
        const server = running.get(outcome);
        if (!server || !outcome.ok) continue;
        try {
          const { ms, bytes } = await timedRun(ctx, def, file, server);
          const mbps = bytes / MiB / (ms / 1000);
          outcome.runsMs.push(ms);
          outcome.runsMBps.push(mbps);
          console.log(
            `  ${outcome.name.padEnd(9)} run ${run}/${ctx.runs}: ${fmtMiB(bytes)} in ` +
              `${(ms / 1000).toFixed(3)} s = ${fmtMBps(mbps)}`,
          );
        } catch (err) {
          outcome.ok = false;
          const died = await server.deathNote();
          outcome.reason = `failed in run ${run}: ${errorMessage(err)}` +
            (died ? ` [${died}]` : "");
          console.log(`  ${outcome.name}: ${outcome.reason}`);
        }
      }
    }

    if (def.concurrency && oursServer) {
      clearInterval(rssTimer);
      rssTimer = undefined;
      const m = readProcMemory(oursServer.pid);
      if (m) maxRssKiB = Math.max(maxRssKiB, m.rssKiB);
      const measured = ours.ok && m !== null;
      const hwmMiB = m ? m.hwmKiB / 1024 : undefined;
      // VmHWM is the kernel's peak; the sampled VmRSS can exceed it by a few pages because the
      // RSS counters are updated lazily, so the larger of the two is checked against the target.
      const peakMiB = hwmMiB === undefined ? undefined : Math.max(hwmMiB, maxRssKiB / 1024);
      rss = {
        ok: measured,
        reason: measured
          ? undefined
          : ours.reason
          ? `${OURS} ${ours.reason.split(":")[0]} in scenario 3 (see above)`
          : "server process is gone",
        pid: oursServer.pid,
        processName: processName(oursServer.pid),
        idleRssMiB: idleRssKiB === undefined ? undefined : idleRssKiB / 1024,
        maxSampledRssMiB: maxRssKiB / 1024,
        vmHwmMiB: hwmMiB,
        peakMiB,
        samples,
        target: `<= ${RSS_TARGET_MIB} MiB`,
        status: !measured || peakMiB === undefined
          ? "N/A"
          : peakMiB <= RSS_TARGET_MIB
          ? "PASS"
          : "BELOW TARGET",
      };
      console.log(
        `  ${OURS} memory (pid ${rss.pid}, ${rss.processName}): VmHWM ` +
          `${hwmMiB?.toFixed(1) ?? "?"} MiB, max sampled VmRSS ${(maxRssKiB / 1024).toFixed(1)} ` +
          `MiB (${samples} samples), idle VmRSS ${rss.idleRssMiB?.toFixed(1) ?? "?"} MiB`,
      );
    }
  } finally {
    clearInterval(rssTimer);
    rssTimer = undefined;
    await Promise.all([...running.values()].map((s) => s.stop()));
  }

  for (const o of [ours, theirs]) {
    o.medianMBps = o.ok && o.runsMBps.length > 0 ? median(o.runsMBps) : null;
  }
  const ratio = ours.medianMBps !== null && theirs.medianMBps !== null
    ? ours.medianMBps / theirs.medianMBps
    : null;
  const result: ScenarioResult = {
    id: def.id,
    title: def.title,
    reference: def.reference,
    fileBytes: file.size,
    options: Object.fromEntries(def.options),
    concurrency: def.concurrency,
    ours,
    theirs,
    ratio,
    target: `>= ${RATIO_TARGET.toFixed(1)}`,
    status: ratio === null ? "N/A" : ratio >= RATIO_TARGET ? "PASS" : "BELOW TARGET",
  };
  return { result, rss };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const cli = parseCli();
  const tools = await resolveTools();
  if (!tools.atftp) {
    console.error("atftp (the C client) not found in PATH; install it or set ATFTP");
    return 1;
  }
  const sizes = cli.quick
    ? { small: 2 * MiB, large: 10 * MiB }
    : { small: 10 * MiB, large: 100 * MiB };
  const concurrency = cli.quick ? { clients: 50, total: 50 } : { clients: 50, total: 200 };
  const smallLabel = fmtMiB(sizes.small);
  const largeLabel = fmtMiB(sizes.large);
  const allDefs: ScenarioDef[] = [
    {
      id: "1",
      title: `lock-step, 512 B blocks, ${smallLabel}`,
      fileKey: "small",
      options: [],
      reference: "tftpd-hpa",
    },
    {
      id: "2a",
      title: `windowsize 16 / blksize 1468, ${largeLabel}`,
      fileKey: "large",
      options: [["blksize", 1468], ["windowsize", 16]],
      reference: "atftpd",
    },
    {
      id: "2b",
      title: `windowsize 64 / blksize 8192, ${largeLabel}`,
      fileKey: "large",
      options: [["blksize", 8192], ["windowsize", 64]],
      reference: "atftpd",
    },
    {
      id: "3",
      title: `${concurrency.clients} clients, ${concurrency.total} x ${smallLabel}, ` +
        `blksize 1468 (aggregate)`,
      fileKey: "small",
      options: [["blksize", 1468]],
      reference: "tftpd-hpa",
      concurrency,
    },
  ];
  const defs = allDefs.filter((d) => cli.selected.has(d.id));

  installSignalHandlers();
  const started = performance.now();
  try {
    tempRoot = await Deno.makeTempDir({ prefix: "tftpkit-bench-" });
    await Deno.chmod(tempRoot, 0o755);
    const servedDir = `${tempRoot}/files`;
    const downloadDir = `${tempRoot}/downloads`;
    const logDir = `${tempRoot}/logs`;
    for (const d of [servedDir, downloadDir, logDir]) await Deno.mkdir(d, { mode: 0o755 });
    await Deno.chmod(servedDir, 0o755);

    console.log("tftpkit benchmark");
    console.log(`  repo:      ${REPO_ROOT}`);
    console.log(`  client:    ${tools.atftp} (--tftp-timeout ${cli.clientTimeout || "default"})`);
    console.log(`  tftpd-hpa: ${tools.tftpdHpa ?? `not available: ${tools.tftpdHpaWhy}`}`);
    console.log(`  atftpd:    ${tools.atftpd ?? `not available: ${tools.atftpdWhy}`}`);
    console.log(`  deno:      ${Deno.execPath()} ${Deno.version.deno}`);
    console.log(`  runs:      ${cli.runs}${cli.quick ? " (quick)" : ""}; temp dir ${tempRoot}`);

    const files = {} as Record<"small" | "large", BenchFile>;
    for (const key of ["small", "large"] as const) {
      const needed = defs.some((d) => d.fileKey === key) ||
        (key === "large" && cli.selected.has("5"));
      if (!needed) continue;
      const name = `bench-${sizes[key] / MiB}MiB.bin`;
      const path = `${servedDir}/${name}`;
      const sha256 = await writeRandomFile(path, sizes[key]);
      files[key] = { name, path, size: sizes[key], sha256 };
      console.log(`  file:      ${name} (${sizes[key]} bytes, sha256 ${sha256.slice(0, 16)}...)`);
    }

    const probeName = "bench-probe-1MiB.bin";
    const probeFile: BenchFile = {
      name: probeName,
      path: `${servedDir}/${probeName}`,
      size: MiB,
      sha256: await writeRandomFile(`${servedDir}/${probeName}`, MiB),
    };
    const ctx: Ctx = {
      tools: { ...tools, atftp: tools.atftp },
      files,
      probeFile,
      servedDir,
      downloadDir,
      logDir,
      runs: cli.runs,
      clientTimeout: cli.clientTimeout,
    };
    const results: ScenarioResult[] = [];
    let rss: RssResult | undefined;
    for (const def of defs) {
      const r = await runScenario(ctx, def);
      results.push(r.result);
      if (r.rss) rss = r.rss;
    }
    if (cli.selected.has("5")) {
      results.push(
        ...await runOriginScenarios({
          atftp: tools.atftp,
          clientTimeout: cli.clientTimeout,
          file: files.large,
          warmup: probeFile,
          servedDir,
          workDir: downloadDir,
          runs: cli.runs,
          oursSpec,
        }),
      );
    }

    printTable(results, rss, cli.runs);
    const elapsed = (performance.now() - started) / 1000;
    console.log(`\nTotal time: ${elapsed.toFixed(1)} s`);

    if (cli.json) {
      const report = {
        tool: "tftpkit scripts/bench.ts",
        date: new Date().toISOString(),
        host: {
          deno: Deno.version.deno,
          os: Deno.build.os,
          arch: Deno.build.arch,
          cpus: navigator.hardwareConcurrency,
          kernel: Deno.osRelease(),
        },
        config: {
          quick: cli.quick,
          runs: cli.runs,
          clientTimeoutSeconds: cli.clientTimeout,
          unit: "MiB/s (2^20 bytes per second)",
          tools: { atftp: tools.atftp, tftpdHpa: tools.tftpdHpa, atftpd: tools.atftpd },
        },
        scenarios: results,
        rss: rss ?? null,
        elapsedSeconds: elapsed,
      };
      await Deno.writeTextFile(cli.json, JSON.stringify(report, null, 2) + "\n");
      console.log(`JSON written to ${cli.json}`);
    }
    return 0;
  } finally {
    await cleanup();
    await delay(0);
  }
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main();
  } catch (err) {
    console.error(`bench: ${errorMessage(err)}`);
    await cleanup();
  }
  Deno.exit(code);
}
