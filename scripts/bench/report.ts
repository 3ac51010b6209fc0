/**
 * The benchmark's result types and its report (the table, the notes, every run), shared by
 * `scripts/bench/bench.ts` and `scripts/bench/origin.ts`.
 *
 * @module
 */

import { MiB } from "./lib.ts";

/** The tftpkit server's name in the report. */
export const OURS = "tftpkit";
/** Target ratio (tftpkit / C server) of scenarios 1–3. */
export const RATIO_TARGET = 1.0;
/** Target peak RSS of scenario 4. */
export const RSS_TARGET_MIB = 150;

/** Formats a throughput. */
export const fmtMBps = (v: number | null): string =>
  v === null ? "-" : `${v.toFixed(v < 10 ? 2 : 1)} MB/s`;
/** Formats a byte count in MiB. */
export const fmtMiB = (bytes: number): string => `${+(bytes / MiB).toFixed(1)} MiB`;

/** A file served in the benchmark. */
export interface BenchFile {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

/** Outcome of the untimed, SHA-256-checked download. */
export interface Verification {
  ok: boolean;
  detail: string;
}

/** What the traced probe download showed of the options. */
export interface Negotiation {
  ok: boolean;
  detail: string;
  oack: Record<string, number> | null;
  firstDataSize: number | null;
  dataPerAck: number | null;
}

/** One server's part of a row. */
export interface ServerOutcome {
  name: string;
  /** Started and verified; false if not available or failed. */
  ok: boolean;
  /** Why it is not available / failed. */
  reason?: string;
  runsMs: number[];
  runsMBps: number[];
  medianMBps: number | null;
  verification?: Verification;
  negotiation?: Negotiation;
}

/** A row's result: MEASURED for rows without a target. */
export type Status = "PASS" | "BELOW TARGET" | "MEASURED" | "N/A";

/** One row of the table: tftpkit against a reference server. */
export interface ScenarioResult {
  id: string;
  title: string;
  /** The reference server's name, e.g. "tftpd-hpa" or "tftpkit from disk". */
  reference: string;
  fileBytes: number;
  options: Record<string, number>;
  concurrency?: { clients: number; total: number };
  ours: ServerOutcome;
  theirs: ServerOutcome;
  ratio: number | null;
  /** Shown in the table, e.g. ">= 1.0", or "-" for a row without a target. */
  target: string;
  status: Status;
}

/** Row 4: peak memory of the tftpkit process. */
export interface RssResult {
  ok: boolean;
  reason?: string;
  pid?: number;
  processName?: string;
  idleRssMiB?: number;
  maxSampledRssMiB?: number;
  vmHwmMiB?: number;
  /** max(VmHWM, max sampled VmRSS): the value checked against the target. */
  peakMiB?: number;
  samples?: number;
  target: string;
  status: Status;
}

function cell(o: ServerOutcome): string {
  if (o.medianMBps !== null) return fmtMBps(o.medianMBps);
  if (o.reason?.startsWith("not available")) return "not available";
  return "FAILED";
}

export function printTable(
  results: ScenarioResult[],
  rss: RssResult | undefined,
  runs: number,
): void {
  const header = ["#", "scenario", OURS, "reference", "ratio", "target", "result"];
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const r of results) {
    let status: string = r.status;
    for (const o of [r.ours, r.theirs]) {
      if (o.medianMBps === null && o.reason) {
        notes.push(`[${r.id}] ${o.name}: ${o.reason}`);
        if (status === "N/A") status = `N/A (${o.name} ${o.reason.split(":")[0]})`;
      }
      if (o.negotiation && !o.negotiation.ok) {
        notes.push(`[${r.id}] ${o.name}: WARNING options: ${o.negotiation.detail}`);
      }
    }
    rows.push([
      r.id,
      r.title,
      cell(r.ours),
      `${r.reference} ${cell(r.theirs)}`,
      r.ratio === null ? "-" : r.ratio.toFixed(r.ratio < 0.1 ? 3 : 2),
      r.target,
      status,
    ]);
  }
  if (rss) {
    const val = rss.peakMiB !== undefined && rss.ok ? `${rss.peakMiB.toFixed(1)} MiB` : "-";
    let status: string = rss.status;
    if (!rss.ok) {
      status = "N/A";
      notes.push(`[4] ${OURS}: ${rss.reason}`);
    }
    rows.push(["4", `peak RSS of ${OURS} during 3`, val, "-", "-", `<= 150 MiB`, status]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  console.log(`\n=== Results (median of ${runs} run${runs === 1 ? "" : "s"}, 1 MB = 2^20 B) ===`);
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const r of rows) console.log(line(r));
  if (notes.length) {
    console.log("\nNotes:");
    for (const n of notes) console.log(`  ${n}`);
  }
  console.log(
    "\nNegotiation (traced 1 MiB probe) / bytes (full file, SHA-256), both untimed:",
  );
  for (const r of results) {
    for (const o of [r.ours, r.theirs]) {
      if (!o.negotiation || !o.verification) continue;
      console.log(
        `  [${r.id}] ${o.name.padEnd(9)} bytes ${o.verification.ok ? "ok" : "FAILED"}; ` +
          `${o.negotiation.detail}`,
      );
    }
  }
  console.log("\nAll runs (MB/s):");
  const shown = new Set<ServerOutcome>(); // rows 5a-5c share one reference
  for (const r of results) {
    for (const o of [r.ours, r.theirs]) {
      if (o.runsMBps.length === 0 || shown.has(o)) continue;
      shown.add(o);
      console.log(
        `  [${r.id}] ${o.name.padEnd(9)} ${o.runsMBps.map((v) => v.toFixed(1)).join(", ")}`,
      );
    }
  }
}
