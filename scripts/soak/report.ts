/**
 * The soak's summary: what its transfers, the server's log and /proc, and the fault relay said,
 * gathered into one object (written as JSON with `--json`) and printed as a block of lines.
 *
 * @module
 */

import type { FaultRelayStats } from "../../src/testing/fault_relay.ts";
import type { Server } from "./server.ts";

/** Bytes in a KiB. */
export const KiB = 1024;
/** Bytes in a MiB. */
export const MiB = 1024 * 1024;

/** The soak's command line. */
export interface SoakConfig {
  minutes: number;
  workers: number;
  drop: number;
  dup: number;
  reorder: number;
  seed: number;
  graceS: number;
  json?: string;
}

/** One transfer the soak ran. */
export interface TransferResult {
  op: "get" | "put";
  mode: string;
  size: number;
  ms: number;
  /** Why it failed (a failure). */
  error?: string;
  /** Aborted at the end of the grace period (not a failure). */
  cutOff?: boolean;
}

/** `n` bytes in B, KiB or MiB. */
export function fmtBytes(n: number): string {
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= KiB) return `${(n / KiB).toFixed(1)} KiB`;
  return `${n} B`;
}

/** What {@linkcode summarize} reads. */
export interface SoakRun {
  config: SoakConfig;
  wallS: number;
  results: TransferResult[];
  bytesOk: number;
  server: Server;
  /** The server's open descriptors at the start and at the end. */
  fds: [number, number];
  /** The server's RSS at the start and at the end, and its VmHWM (kB). */
  rss: [number, number, number];
  relay: FaultRelayStats;
}

/** Groups a run's results and the server's counters into the summary. */
export function summarize(run: SoakRun) {
  const { results, server: srv } = run;
  const ok = results.filter((r) => !r.error && !r.cutOff);
  const failed = results.filter((r) => r.error);
  const cutOff = results.filter((r) => r.cutOff);
  const reasons = new Map<string, { count: number; examples: string[] }>();
  for (const f of failed) {
    const key = f.error!.replace(/\d+/g, "N");
    const entry = reasons.get(key) ?? { count: 0, examples: [] };
    entry.count++;
    if (entry.examples.length < 3) {
      entry.examples.push(`${f.op} ${fmtBytes(f.size)} ${f.mode}: ${f.error}`);
    }
    reasons.set(key, entry);
  }
  const byMode: Record<string, { transfers: number; bytes: number; seconds: number }> = {};
  for (const r of ok) {
    const k = `${r.op} ${r.mode}`;
    byMode[k] ??= { transfers: 0, bytes: 0, seconds: 0 };
    byMode[k].transfers++;
    byMode[k].bytes += r.size;
    byMode[k].seconds += r.ms / 1000;
  }
  return {
    config: run.config,
    wall_seconds: Math.round(run.wallS * 10) / 10,
    transfers: {
      ok: ok.length,
      failed: failed.length,
      cut_off: cutOff.length,
      gets: ok.filter((r) => r.op === "get").length,
      puts: ok.filter((r) => r.op === "put").length,
    },
    bytes_verified: run.bytesOk,
    throughput_bytes_per_s: Math.round(run.bytesOk / run.wallS),
    per_mode: Object.fromEntries(
      Object.entries(byMode).map(([k, v]) => [k, {
        transfers: v.transfers,
        bytes: v.bytes,
        mean_rate_bytes_per_s: Math.round(v.bytes / v.seconds),
      }]),
    ),
    failures: [...reasons].map(([reason, v]) => ({ reason, ...v })),
    server: {
      pid: srv.pid,
      fds_start: run.fds[0],
      fds_end: run.fds[1],
      rss_start_kb: run.rss[0],
      rss_end_kb: run.rss[1],
      peak_rss_kb: run.rss[2],
      outcomes: Object.fromEntries(srv.outcomes),
      not_ok: Object.fromEntries(srv.notOk),
      records: srv.records,
      warnings: srv.warnings.filter((w) => !/failed \(/.test(w)).slice(0, 10),
    },
    relay: { ...run.relay },
  };
}

/** The summary {@linkcode summarize} returns. */
export type SoakSummary = ReturnType<typeof summarize>;

/** Prints the summary block. */
export function printSummary(summary: SoakSummary): void {
  const cfg = summary.config;
  const t = summary.transfers;
  const srv = summary.server;
  const relay = summary.relay;
  const line = "=".repeat(72);
  console.log(`\n${line}\nSOAK SUMMARY`);
  console.log(
    `  duration          ${summary.wall_seconds} s (${cfg.minutes} min requested), ` +
      `${cfg.workers} workers`,
  );
  console.log(
    `  faults            drop ${cfg.drop}, duplicate ${cfg.dup}, reorder ${cfg.reorder}, ` +
      `seed ${cfg.seed}`,
  );
  console.log(
    `  transfers         ${t.ok} ok (${t.gets} gets, ${t.puts} puts), ${t.failed} failed, ` +
      `${t.cut_off} cut off`,
  );
  console.log(
    `  verified          ${fmtBytes(summary.bytes_verified)}, throughput ` +
      `${fmtBytes(summary.throughput_bytes_per_s)}/s`,
  );
  for (const [k, v] of Object.entries(summary.per_mode)) {
    console.log(
      `    ${k.padEnd(16)}${String(v.transfers).padStart(5)} transfers, ` +
        `${fmtBytes(v.bytes).padStart(10)}, mean ${fmtBytes(v.mean_rate_bytes_per_s)}/s`,
    );
  }
  if (t.failed) {
    console.log(`  failures`);
    for (const f of summary.failures) {
      console.log(`    ${f.count} x ${f.reason}`);
      for (const ex of f.examples) console.log(`        e.g. ${ex}`);
    }
  } else console.log(`  failures          none`);
  console.log(
    `  server            RSS ${srv.rss_start_kb} kB at start, ${srv.rss_end_kb} kB at end, ` +
      `peak (VmHWM) ${srv.peak_rss_kb} kB`,
  );
  console.log(`  server fds        ${srv.fds_start} at start, ${srv.fds_end} at end`);
  console.log(
    `  server outcomes   ${
      Object.entries(srv.outcomes).map(([k, v]) => `${k} ${v}`).join(", ") || "(none)"
    }`,
  );
  for (const [why, n] of Object.entries(srv.not_ok).sort((a, b) => b[1] - a[1]).slice(0, 8)) {
    console.log(`    ${n} x ${why}`);
  }
  console.log(
    `  relay             ${relay.toServer} to server, ${relay.toClient} to clients, ` +
      `${relay.dropped} dropped, ${relay.duplicated} duplicated, ${relay.reordered} reordered`,
  );
  console.log(line);
}
