/**
 * Scenarios 1–4 of `scripts/bench/bench.ts`: the tools and server command lines, the untimed checks
 * (options really negotiated, bytes SHA-256-checked) and the timed runs, tftpkit alternating with
 * the reference C server.
 *
 * @module
 */

import {
  errorMessage,
  freeUdpPort,
  hashFile,
  median,
  MiB,
  processName,
  readProcMemory,
} from "./lib.ts";
import {
  describeClientFailure,
  parseTrace,
  runClient,
  type RunningServer,
  startServer,
} from "./peers.ts";
import { HOST, oursSpec, type RefName, refSpec, type Tools } from "./servers.ts";
import {
  type BenchFile,
  fmtMBps,
  fmtMiB,
  type Negotiation,
  OURS,
  RATIO_TARGET,
  RSS_TARGET_MIB,
  type RssResult,
  type ScenarioResult,
  type ServerOutcome,
  type Verification,
} from "./report.ts";

/** One timed scenario of the table (1, 2a, 2b, 3). */
export interface ScenarioDef {
  id: "1" | "2a" | "2b" | "3";
  title: string;
  fileKey: "small" | "large";
  options: [string, number][];
  reference: RefName;
  concurrency?: { clients: number; total: number };
}

/** What every scenario needs. */
export interface Ctx {
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
      // RFC 7440 lets a server answer a smaller windowsize (tftpkit fits a window in 64 KiB).
      const lowered = k === "windowsize" && t.oack[k] !== undefined && t.oack[k] < v;
      if (t.oack[k] !== v && !lowered) {
        problems.push(`${k}: asked ${v}, got ${t.oack[k] ?? "none"}`);
      }
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

/**
 * Runs one scenario: fresh servers, untimed verification (negotiation and SHA-256), then the timed
 * runs alternating tftpkit and the reference; scenario 3 also samples tftpkit's memory (row 4).
 */
export async function runScenario(
  ctx: Ctx,
  def: ScenarioDef,
): Promise<{ result: ScenarioResult; rss?: RssResult }> {
  const file = ctx.files[def.fileKey];
  console.log(`\n=== [${def.id}] ${def.title} ===`);
  const ours = newOutcome(OURS);
  const theirs = newOutcome(def.reference);
  const running = new Map<ServerOutcome, RunningServer>();
  let rss: RssResult | undefined;
  let rssTimer: ReturnType<typeof setInterval> | undefined;

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
