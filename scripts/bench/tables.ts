/**
 * The tables of `scripts/bench/bench.ts` as rows of strings (pure, unit-tested): the speed table
 * (every server of every row and the best C server), the targets table (issue 16), the memory
 * table and the client table of row 8; plus {@link printTable} to lay one out.
 *
 * @module
 */

import { C_SERVERS, RSS_TARGET_MIB, type TargetDef } from "./defs.ts";
import { type Candidate, fmtRatio, pickBestC, ratioOf, targetStatus } from "./judge.ts";
import { cell, fmtMBps, OURS, type RowResult } from "./report.ts";
import { median } from "./lib.ts";
import type { ClientRowResult } from "./client_row.ts";

/** A table: header and rows of cells. */
export interface Table {
  header: string[];
  rows: string[][];
}

/** The best C server of a row (only C servers that were timed count). */
export function bestCOf(row: RowResult): Candidate | null {
  return pickBestC(row.c.map((o) => ({ name: o.name, medianMBps: o.medianMBps })));
}

/** The speed table: one line per tftpkit variant of every row. */
export function speedTable(rows: readonly RowResult[]): Table {
  const header = ["#", "row", OURS, ...C_SERVERS, "best C", `${OURS} / best C`];
  const out: string[][] = [];
  for (const r of rows) {
    const best = bestCOf(r);
    for (const v of r.ours) {
      out.push([
        v.key,
        r.title,
        cell(v.outcome),
        ...C_SERVERS.map((name) => cell(r.c.find((o) => o.name === name))),
        r.c.length === 0 ? "-" : best?.name ?? "none",
        fmtRatio(ratioOf(v.outcome.medianMBps, best?.medianMBps ?? null)),
      ]);
    }
  }
  return { header, rows: out };
}

/** The tftpkit outcome and row of a row key such as "1" or "3/w2". */
function findOurs(rows: readonly RowResult[], key: string) {
  for (const r of rows) {
    const v = r.ours.find((o) => o.key === key);
    if (v) return { row: r, ours: v.outcome };
  }
  return null;
}

/** The targets table: each of issue 16's targets with PASS/below and the best-C ratio beside it. */
export function targetsTable(
  rows: readonly RowResult[],
  client: ClientRowResult | undefined,
  targets: readonly TargetDef[],
): Table {
  const header = ["target", "row", "ratio", "result", "best C", `${OURS} / best C`];
  const out: string[][] = [];
  for (const t of targets) {
    if (t.against === "atftp client") {
      const ratio = client?.ratio ?? null;
      out.push([
        t.what,
        t.row,
        fmtRatio(ratio),
        client ? targetStatus(ratio, t.min) : "not run",
        "atftp",
        fmtRatio(ratio),
      ]);
      continue;
    }
    const found = findOurs(rows, t.row);
    if (!found) {
      out.push([t.what, t.row, "-", "not run", "-", "-"]);
      continue;
    }
    const ref = found.row.c.find((o) => o.name === t.against);
    const ratio = ratioOf(found.ours.medianMBps, ref?.medianMBps ?? null);
    const best = bestCOf(found.row);
    out.push([
      t.what,
      t.row,
      fmtRatio(ratio),
      targetStatus(ratio, t.min),
      best?.name ?? "none",
      fmtRatio(ratioOf(found.ours.medianMBps, best?.medianMBps ?? null)),
    ]);
  }
  return { header, rows: out };
}

const mib = (v: number | undefined) => (v === undefined ? "-" : `${v.toFixed(1)} MiB`);

/** The memory table: peak and idle RSS of each sampled tftpkit server, and RSS per worker. */
export function memoryTable(rows: readonly RowResult[]): Table {
  const header = [
    "#",
    "tftpkit server",
    "idle RSS",
    "VmHWM",
    "max VmRSS (100 ms)",
    "threads / child procs",
    "target",
    "result",
  ];
  const out: string[][] = [];
  const idleByWorkers: [number, number][] = [];
  for (const r of rows) {
    for (const v of r.ours) {
      const m = v.outcome.memory;
      if (!m) continue;
      const key = v.key.startsWith("3/") ? `4/${v.key.slice(2)}` : v.key;
      const flags = v.args.length ? `serve ${v.args.join(" ")}` : "serve (default pool)";
      const during = `${flags}, during ${r.id === "3" ? "3" : r.id}`;
      const ok = v.outcome.ok && m.peakMiB !== undefined;
      out.push([
        key,
        during,
        mib(m.idleRssMiB),
        mib(m.vmHwmMiB),
        mib(m.maxSampledRssMiB),
        `${m.threads} / ${m.childProcesses}`,
        `peak <= ${RSS_TARGET_MIB} MiB`,
        ok ? (m.peakMiB! <= RSS_TARGET_MIB ? "PASS" : "below") : "N/A",
      ]);
      const w = v.args.indexOf("--workers");
      if (w >= 0 && m.idleRssMiB !== undefined) {
        idleByWorkers.push([Number(v.args[w + 1]), m.idleRssMiB]);
      }
    }
  }
  idleByWorkers.sort((a, b) => a[0] - b[0]);
  if (idleByWorkers.length >= 2) {
    const [w0, r0] = idleByWorkers[0];
    const [w1, r1] = idleByWorkers[idleByWorkers.length - 1];
    const per = (r1 - r0) / (w1 - w0);
    const list = idleByWorkers.map(([w, r]) => `w${w} ${r.toFixed(1)}`).join(", ");
    out.push([
      "idle",
      `RSS per worker = (idle w${w1} - idle w${w0}) / ${w1 - w0}; ${list} MiB`,
      `${per.toFixed(1)} MiB`,
      "-",
      "-",
      "-",
      "-",
      "measured",
    ]);
  }
  return { header, rows: out };
}

const ms = (v: number[]) => (v.length ? `${Math.round(median(v))} ms` : "-");

/** Row 8's table: each client's median wall times (large get, 1-byte get, --version). */
export function clientTable(r: ClientRowResult): Table {
  const header = ["client", "large get (median)", "MB/s", "1-byte get", "--version", "note"];
  const rows = [r.ours, r.atftp].map((o) => [
    o.name,
    o.medianMs === null ? "-" : `${(o.medianMs / 1000).toFixed(3)} s`,
    o.medianMs === null ? "-" : fmtMBps(r.fileBytes / 1048576 / (o.medianMs / 1000)),
    ms(o.oneByteMs),
    ms(o.versionMs),
    o.ok ? "" : o.reason ?? "",
  ]);
  return { header, rows };
}

/** Lays out a table with padded columns. */
export function formatTable(t: Table): string[] {
  const widths = t.header.map((h, i) => Math.max(h.length, ...t.rows.map((r) => r[i].length)));
  const line = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(t.header), line(widths.map((w) => "-".repeat(w))), ...t.rows.map(line)];
}

/** Prints a table under a title. */
export function printTable(title: string, t: Table): void {
  console.log(`\n=== ${title} ===`);
  for (const l of formatTable(t)) console.log(l);
}
