/**
 * Side-by-side benchmark of the tftpkit server against two C TFTP servers (tftpd-hpa and
 * atftpd), all driven by the same C client (`atftp`).
 *
 * Usage:
 *
 *     deno run --allow-all scripts/bench/bench.ts [--quick] [--runs N] [--only 1,2,3,4,5] [--json FILE]
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
 * 5. HTTP origin (`scripts/bench/origin.ts`): the 100 MiB file at windowsize 16 / blksize 1468
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
import { delay, errorMessage, killAllTracked, MiB, writeRandomFile } from "./lib.ts";
import { runOriginScenarios } from "./origin.ts";
import {
  type BenchFile,
  fmtMiB,
  printTable,
  type RssResult,
  type ScenarioResult,
} from "./report.ts";
import { type Ctx, runScenario, type ScenarioDef } from "./scenarios.ts";
import { oursSpec, REPO_ROOT, resolveTools } from "./servers.ts";

// ---------------------------------------------------------------------------------------------
// Configuration

const USAGE = `Usage: deno run --allow-all scripts/bench/bench.ts [options]

  --quick                 1 run, small files (2 MiB / 10 MiB), 50 downloads in scenario 3
  --runs N                timed runs per server and scenario (default 3; 1 with --quick)
  --only LIST             scenarios to run, e.g. 1,2,3 (2 = 2a+2b; 4 implies 3; 5 = HTTP origin)
  --json FILE             also write the results as JSON to FILE
  --client-timeout N      atftp --tftp-timeout in seconds (default 1; 0 = atftp default)
  -h, --help              this help

Environment: ATFTP (client), TFTPD_HPA, ATFTPD (server binaries).`;

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
// State shared with the cleanup handler

let tempRoot: string | null = null;
let cleanupPromise: Promise<void> | null = null;

/** Kills every child process we started and removes the temp dir (idempotent). */
function cleanup(): Promise<void> {
  cleanupPromise ??= (async () => {
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
        tool: "tftpkit scripts/bench/bench.ts",
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
