/**
 * Pure decisions of the benchmark, kept apart so they can be unit-tested: whether a server's OACK
 * supports a row's options, which C server is the best for a row, and whether a target is met.
 *
 * @module
 */

import type { Option } from "./defs.ts";

/** Outcome of checking one OACK against the options asked. */
export interface OackCheck {
  /** False: the server left out an asked option or lowered blksize/windowsize. */
  supported: boolean;
  /** What is wrong, one entry per option (empty if supported). */
  problems: string[];
}

/**
 * Checks what a server answered (`oack`, null = no OACK) against the options asked.
 * A left-out option, or a lowered blksize or windowsize, makes the row "not supported" for that
 * server; `mayLowerWindow` lets tftpkit answer a smaller windowsize (its window fit, row 2b).
 * tsize must come back with the file's size (`tsizeBytes`) when given.
 */
export function checkOack(
  asked: readonly Option[],
  oack: Record<string, number> | null,
  opts: { mayLowerWindow?: boolean; tsizeBytes?: number } = {},
): OackCheck {
  const problems: string[] = [];
  if (asked.length === 0) {
    if (oack) problems.push(`OACK to a request without options`);
    return { supported: problems.length === 0, problems };
  }
  if (!oack) return { supported: false, problems: ["no OACK (options ignored)"] };
  for (const [name, value] of asked) {
    const got = oack[name];
    if (got === undefined) {
      problems.push(`${name} left out`);
      continue;
    }
    if (name === "tsize") {
      if (opts.tsizeBytes !== undefined && got !== opts.tsizeBytes) {
        problems.push(`tsize ${got}, file has ${opts.tsizeBytes} bytes`);
      }
      continue;
    }
    if (got > value) problems.push(`${name} ${got} > asked ${value}`);
    else if (got < value && !(name === "windowsize" && opts.mayLowerWindow)) {
      problems.push(`${name} lowered to ${got} (asked ${value})`);
    }
  }
  return { supported: problems.length === 0, problems };
}

/** One candidate for "best C" (a server's median, null if not timed). */
export interface Candidate {
  name: string;
  medianMBps: number | null;
}

/** The C server with the highest median throughput, or null if none was timed. */
export function pickBestC(candidates: readonly Candidate[]): Candidate | null {
  let best: Candidate | null = null;
  for (const c of candidates) {
    if (c.medianMBps === null || !Number.isFinite(c.medianMBps)) continue;
    if (!best || c.medianMBps > (best.medianMBps ?? -1)) best = c;
  }
  return best;
}

/** ours / theirs, or null when either is missing. */
export function ratioOf(ours: number | null, theirs: number | null): number | null {
  if (ours === null || theirs === null || !(theirs > 0)) return null;
  return ours / theirs;
}

/** "PASS" when `ratio` reaches `min`, "below" when not, "N/A" without a ratio. */
export function targetStatus(ratio: number | null, min: number): "PASS" | "below" | "N/A" {
  if (ratio === null) return "N/A";
  return ratio >= min ? "PASS" : "below";
}

/** Formats a ratio: 2 decimals, 3 below 0.1, "-" for none. */
export function fmtRatio(r: number | null): string {
  return r === null ? "-" : r.toFixed(r < 0.1 ? 3 : 2);
}

/**
 * Relative spread of a list of runs: (max - min) / min, e.g. 2.0 when the fastest run was 3x the
 * slowest. NaN for fewer than two runs.
 */
export function spread(values: readonly number[]): number {
  if (values.length < 2) return NaN;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo > 0 ? (hi - lo) / lo : NaN;
}
