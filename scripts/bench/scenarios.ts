/**
 * The TFTP rows of `scripts/bench/bench.ts` (1, 2a–2c, 3/wN, 6, 7a/7b; defined in `defs.ts`): start
 * tftpkit (one server per variant) and the C servers, check each server's OACK and bytes untimed,
 * then time the same C client (`atftp`) against each, alternating the servers run by run.
 *
 * @module
 */

import { errorMessage, freeUdpPort, hashFile, median, MiB } from "./lib.ts";
import {
  describeClientFailure,
  parseTrace,
  runClient,
  type RunningServer,
  type ServerSpec,
  startServer,
} from "./peers.ts";
import {
  DNSMASQ_PORT,
  HOST,
  oursSpec,
  type PinMode,
  pinned,
  pinPrefix,
  refSpec,
  type Tools,
} from "./servers.ts";
import {
  type BenchFile,
  fmtMBps,
  fmtMiB,
  type Negotiation,
  OURS,
  type RowResult,
  type ServerOutcome,
  type Verification,
} from "./report.ts";
import type { FileKey, Option, RowDef } from "./defs.ts";
import { checkOack } from "./judge.ts";
import { idleRss, MemorySampler } from "./memory.ts";

/** What every row needs. */
export interface Ctx {
  tools: Tools & { atftp: string };
  files: Partial<Record<FileKey, BenchFile>>;
  probeFile: BenchFile;
  servedDir: string;
  downloadDir: string;
  logDir: string;
  runs: number;
  clientTimeout: number;
  pin: PinMode;
}

/** atftp's `--option` argument for one option. */
function optionArg([k, v]: Option): string {
  return `${k} ${v}`;
}

function clientArgs(ctx: Ctx, def: RowDef, file: BenchFile, local: string, port: number) {
  const args: string[] = [];
  if (ctx.clientTimeout > 0) args.push("--tftp-timeout", String(ctx.clientTimeout));
  args.push("-g", "-r", file.name, "-l", local);
  for (const o of def.options) args.push("--option", optionArg(o));
  args.push(HOST, String(port));
  return args;
}

/** The client command under the row's pinning: [cmd, ...prefix args]. */
function clientCmd(ctx: Ctx, def: RowDef, args: string[]): [string, string[]] {
  const prefix = def.pinned && ctx.tools.taskset
    ? pinPrefix(ctx.pin, "client", ctx.tools.taskset)
    : null;
  return prefix
    ? [prefix[0], [...prefix.slice(1), ctx.tools.atftp, ...args]]
    : [ctx.tools.atftp, args];
}

function transferTimeoutMs(bytes: number): number {
  return Math.max(60_000, (bytes / MiB) * 2_000);
}

/** Downloads `file` into a temp file and checks its size and SHA-256 (untimed). */
async function downloadAndCheck(
  ctx: Ctx,
  def: RowDef,
  file: BenchFile,
  server: RunningServer,
  trace: boolean,
): Promise<{ verification: Verification; output: string }> {
  const local = `${ctx.downloadDir}/${def.id}-${server.port}-${file.name}`;
  const args = [...(trace ? ["--trace"] : []), ...clientArgs(ctx, def, file, local, server.port)];
  const [cmd, cargs] = clientCmd(ctx, def, args);
  const r = await runClient(cmd, cargs, transferTimeoutMs(file.size));
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
 * 1. `atftp --trace` download of the 1 MiB probe file with the row's options: the OACK (checked
 *    with {@link checkOack}; a server that leaves out or lowers an asked option is "not supported"
 *    for the row and not timed), the size of DATA block 1 and DATA packets per ACK;
 * 2. plain download of the row's file into a temp file: size and SHA-256 must match.
 */
async function verifyServer(
  ctx: Ctx,
  def: RowDef,
  file: BenchFile,
  server: RunningServer,
  isOurs: boolean,
): Promise<{ verification?: Verification; negotiation: Negotiation; supported: boolean }> {
  const probe = await downloadAndCheck(ctx, def, ctx.probeFile, server, true);
  const t = parseTrace(probe.output);
  const check = checkOack(def.options, t.oack, {
    mayLowerWindow: isOurs && def.oursMayLowerWindow,
    tsizeBytes: ctx.probeFile.size,
  });
  const problems = [...check.problems];
  if (!probe.verification.ok) problems.push(`probe download failed: ${probe.verification.detail}`);
  const blk = def.options.find(([k]) => k === "blksize")?.[1];
  const expectedBlock = blk === undefined ? 512 : Math.min(blk, t.oack?.blksize ?? blk);
  if (t.firstDataSize !== null && t.firstDataSize !== expectedBlock) {
    problems.push(`DATA block 1 has ${t.firstDataSize} bytes, expected ${expectedBlock}`);
  }
  const dataPerAck = t.acksSent > 0 ? t.dataPackets / t.acksSent : null;
  const oackText = t.oack
    ? `OACK ${Object.entries(t.oack).map(([k, v]) => `${k}=${v}`).join(" ")}`
    : "no OACK";
  const detail = `${oackText}; DATA block size ${t.firstDataSize ?? "?"}; ` +
    `${dataPerAck === null ? "?" : dataPerAck.toFixed(1)} DATA packets per ACK` +
    (problems.length ? `; ${problems.join(", ")}` : "");
  const negotiation: Negotiation = {
    ok: problems.length === 0 && t.firstDataSize !== null,
    detail,
    oack: t.oack,
    firstDataSize: t.firstDataSize,
    dataPerAck,
  };
  // A server that cannot do the row's options is not timed (and needs no full download).
  if (!check.supported) return { negotiation, supported: false };
  const full = await downloadAndCheck(ctx, def, file, server, false);
  return { verification: full.verification, negotiation, supported: true };
}

/** One timed run: a single download, or the concurrent batch of rows 3 and 6. */
async function timedRun(
  ctx: Ctx,
  def: RowDef,
  file: BenchFile,
  server: RunningServer,
): Promise<{ ms: number; bytes: number }> {
  const [cmd, args] = clientCmd(ctx, def, clientArgs(ctx, def, file, "/dev/null", server.port));
  if (!def.concurrency) {
    const r = await runClient(cmd, args, transferTimeoutMs(file.size));
    if (r.code !== 0 || r.timedOut) throw new Error(describeClientFailure(r));
    return { ms: r.ms, bytes: file.size };
  }
  const { clients, total } = def.concurrency;
  let next = 0;
  let failure: string | null = null;
  const worker = async () => {
    while (failure === null && next < total) {
      next++;
      const r = await runClient(cmd, args, 300_000);
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

interface Entry {
  label: string;
  outcome: ServerOutcome;
  isOurs: boolean;
  memory: boolean;
  server?: RunningServer;
  sampler?: MemorySampler;
}

async function startEntry(
  ctx: Ctx,
  def: RowDef,
  e: Entry,
  spec: ServerSpec | string,
  port: number,
) {
  if (typeof spec === "string") {
    e.outcome.reason = `not available: ${spec}`;
    console.log(`  ${e.label}: ${e.outcome.reason}`);
    return;
  }
  const prefix = def.pinned && ctx.tools.taskset
    ? pinPrefix(ctx.pin, "server", ctx.tools.taskset)
    : null;
  try {
    e.server = await startServer(pinned(spec, prefix), port, e.isOurs ? 60_000 : 10_000);
    console.log(`  ${e.label}: started, pid ${e.server.pid}, port ${port}`);
    if (e.memory) {
      const idle = await idleRss(e.server.pid);
      e.sampler = new MemorySampler(e.server.pid, idle);
    }
  } catch (err) {
    e.outcome.reason = `not available: ${errorMessage(err)}`;
    console.log(`  ${e.label}: ${e.outcome.reason}`);
  }
}

/**
 * Runs one row: fresh servers (every tftpkit variant and C server of the row at once), the untimed
 * checks, then `ctx.runs` timed runs alternating the servers; tftpkit's memory is sampled for
 * variants marked `memory`.
 */
export async function runRow(ctx: Ctx, def: RowDef): Promise<RowResult> {
  const file = ctx.files[def.fileKey];
  if (!file) throw new Error(`row ${def.id}: file ${def.fileKey} was not created`);
  console.log(`\n=== [${def.id}] ${def.title}${def.pinned ? ` (pin ${ctx.pin})` : ""} ===`);
  const entries: Entry[] = [
    ...def.ours.map((v) => ({
      label: v.key ? `${OURS} ${v.key}` : OURS,
      outcome: newOutcome(OURS),
      isOurs: true,
      memory: v.memory ?? false,
    })),
    ...def.cServers.map((c) => ({
      label: c,
      outcome: newOutcome(c),
      isOurs: false,
      memory: false,
    })),
  ];
  try {
    for (const [i, e] of entries.entries()) {
      if (e.isOurs) {
        const port = await freeUdpPort(HOST);
        await startEntry(
          ctx,
          def,
          e,
          oursSpec([ctx.servedDir], port, undefined, def.ours[i].args),
          port,
        );
      } else {
        const name = e.outcome.name as RowDef["cServers"][number];
        const port = name === "dnsmasq" ? DNSMASQ_PORT : await freeUdpPort(HOST);
        await startEntry(
          ctx,
          def,
          e,
          refSpec(name, ctx.tools, ctx.servedDir, port, ctx.logDir),
          port,
        );
      }
    }

    for (const e of entries) {
      if (!e.server) continue;
      const v = await verifyServer(ctx, def, file, e.server, e.isOurs);
      e.outcome.negotiation = v.negotiation;
      e.outcome.verification = v.verification;
      e.outcome.supported = v.supported;
      if (!v.supported) {
        e.outcome.reason = `not supported: ${v.negotiation.detail}`;
        console.log(`  ${e.label}: not supported: ${v.negotiation.detail}`);
        continue;
      }
      const ver = v.verification!;
      console.log(
        `  ${e.label}: verify ${ver.ok ? "ok" : "FAILED"}: ${ver.detail}; ${v.negotiation.detail}`,
      );
      if (!ver.ok) {
        const died = await e.server.deathNote();
        e.outcome.reason = `failed verification: ${ver.detail}` + (died ? ` [${died}]` : "");
      } else e.outcome.ok = true;
    }

    for (let run = 1; run <= ctx.runs; run++) {
      for (const e of entries) {
        if (!e.server || !e.outcome.ok) continue;
        try {
          const { ms, bytes } = await timedRun(ctx, def, file, e.server);
          const mbps = bytes / MiB / (ms / 1000);
          e.outcome.runsMs.push(ms);
          e.outcome.runsMBps.push(mbps);
          console.log(
            `  ${e.label.padEnd(12)} run ${run}/${ctx.runs}: ${fmtMiB(bytes)} in ` +
              `${(ms / 1000).toFixed(3)} s = ${fmtMBps(mbps)}`,
          );
        } catch (err) {
          e.outcome.ok = false;
          const died = await e.server.deathNote();
          e.outcome.reason = `failed in run ${run}: ${errorMessage(err)}` +
            (died ? ` [${died}]` : "");
          console.log(`  ${e.label}: ${e.outcome.reason}`);
        }
      }
    }

    for (const e of entries) {
      if (!e.sampler) continue;
      const m = e.sampler.stop();
      e.outcome.memory = m;
      console.log(
        `  ${e.label} memory (pid ${m.pid}, ${m.threads} threads, ${m.childProcesses} child ` +
          `processes): idle ${m.idleRssMiB?.toFixed(1) ?? "?"} MiB, VmHWM ` +
          `${m.vmHwmMiB?.toFixed(1) ?? "?"} MiB, max sampled VmRSS ` +
          `${m.maxSampledRssMiB.toFixed(1)} MiB (${m.samples} samples)`,
      );
    }
  } finally {
    for (const e of entries) e.sampler?.stop();
    await Promise.all(entries.map((e) => e.server?.stop()));
  }

  for (const e of entries) {
    const o = e.outcome;
    o.medianMBps = o.ok && o.runsMBps.length > 0 ? median(o.runsMBps) : null;
  }
  const nOurs = def.ours.length;
  return {
    id: def.id,
    title: def.title,
    fileBytes: file.size,
    options: Object.fromEntries(def.options),
    concurrency: def.concurrency,
    pin: def.pinned ? ctx.pin : "off",
    ours: def.ours.map((v, i) => ({
      key: v.key || def.id,
      args: v.args,
      outcome: entries[i].outcome,
    })),
    c: entries.slice(nOurs).map((e) => e.outcome),
  };
}
