/**
 * The benchmark's result types and its report (the table, the notes, every run), shared by
 * `scripts/bench/bench.ts` and `scripts/bench/origin.ts`.
 *
 * @module
 */

import { MiB } from "./lib.ts";
import type { MemoryResult } from "./memory.ts";

/** The tftpkit server's name in the report. */
export const OURS = "tftpkit";
/** Target ratio (tftpkit / C server) of scenarios 1–3. */
export const RATIO_TARGET = 1.0;

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
  /** False: its OACK left out or lowered an asked option, so the row was not timed. */
  supported?: boolean;
  /** Memory of a tftpkit server (rows 4/wN and 6). */
  memory?: MemoryResult;
}

/** One tftpkit server of a row (its key is the row id in the tables, e.g. "3/w2"). */
export interface OursResult {
  key: string;
  args: string[];
  outcome: ServerOutcome;
}

/** One TFTP row: tftpkit (one or more variants) and the C servers, all with the same client. */
export interface RowResult {
  id: string;
  title: string;
  fileBytes: number;
  options: Record<string, number | string>;
  concurrency?: { clients: number; total: number };
  /** `--pin` mode the row ran with ("off" for rows 3 and 6). */
  pin: string;
  ours: OursResult[];
  c: ServerOutcome[];
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

/** A server's cell in a table: its median, or why there is none ("-": no such server). */
export function cell(o: ServerOutcome | undefined): string {
  if (!o) return "-";
  if (o.medianMBps !== null) return fmtMBps(o.medianMBps);
  if (o.supported === false) return "not supported";
  if (o.reason?.startsWith("not available")) return "not available";
  return "FAILED";
}

/** Prints row 5 (HTTP origin: tftpkit against tftpkit from disk) and its runs. */
export function printOriginTable(results: ScenarioResult[]): void {
  const header = ["#", "row", OURS, "reference", "ratio", "target", "result"];
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const r of results) {
    for (const o of [r.ours, r.theirs]) {
      if (o.medianMBps === null && o.reason) notes.push(`[${r.id}] ${o.name}: ${o.reason}`);
    }
    rows.push([
      r.id,
      r.title,
      cell(r.ours),
      `${r.reference} ${cell(r.theirs)}`,
      r.ratio === null ? "-" : r.ratio.toFixed(r.ratio < 0.1 ? 3 : 2),
      r.target,
      r.status,
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  console.log(`\n=== HTTP origin (row 5) ===`);
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const r of rows) console.log(line(r));
  for (const n of notes) console.log(`  ${n}`);
}

/** Every server's outcome in a row, tftpkit's variants named by their key (e.g. "3/w2"). */
function serversOf(r: RowResult): ServerOutcome[] {
  return [
    ...r.ours.map((v) => ({ ...v.outcome, name: v.key === r.id ? OURS : `${OURS} ${v.key}` })),
    ...r.c,
  ];
}

/** Prints the notes: what each server answered in each row, why a cell is empty, every run. */
export function printRowNotes(rows: RowResult[], origin: ScenarioResult[]): void {
  console.log("\nWhat each server answered (traced 1 MiB probe) and bytes (SHA-256), untimed:");
  for (const r of rows) {
    for (const o of serversOf(r)) {
      const bytes = o.verification ? (o.verification.ok ? "bytes ok" : "bytes FAILED") : "";
      const what = o.negotiation?.detail ?? o.reason ?? "";
      const why = o.medianMBps === null && o.reason && !o.reason.startsWith("not supported")
        ? ` [${o.reason}]`
        : "";
      console.log(`  [${r.id}] ${o.name.padEnd(14)} ${bytes ? `${bytes}; ` : ""}${what}${why}`);
    }
  }
  console.log("\nAll runs (MB/s):");
  for (const r of rows) {
    for (const o of serversOf(r)) {
      if (o.runsMBps.length === 0) continue;
      console.log(
        `  [${r.id}] ${o.name.padEnd(14)} ${o.runsMBps.map((v) => v.toFixed(1)).join(", ")}`,
      );
    }
  }
  const shown = new Set<ServerOutcome>(); // rows 5a-5c share one reference
  for (const r of origin) {
    for (const o of [r.ours, r.theirs]) {
      if (o.runsMBps.length === 0 || shown.has(o)) continue;
      shown.add(o);
      console.log(
        `  [${r.id}] ${o.name.padEnd(14)} ${o.runsMBps.map((v) => v.toFixed(1)).join(", ")}`,
      );
    }
  }
}
