/**
 * "Did you mean …?" for unknown commands and flags: the closest known word by edit distance.
 *
 * @module
 */

/**
 * The edit distance between two words: insertions, deletions, substitutions and swaps of two
 * neighbouring letters (`gte` is one edit from `get`).
 *
 * @example
 * ```ts
 * import { editDistance } from "./suggest.ts";
 * import { equal } from "node:assert/strict";
 * equal(editDistance("serve", "serv"), 1);
 * equal(editDistance("gte", "get"), 1);
 * ```
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    d.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        d[0][j] = j;
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate closest to `word`, if it is close enough to be a likely typo (at most a third
 * of the longer word's length, and at least one edit allowed); a candidate that starts with
 * `word` (an abbreviation, `--ver` for `--verbose`) also counts.
 *
 * @example
 * ```ts
 * import { closest } from "./suggest.ts";
 * import { equal } from "node:assert/strict";
 * equal(closest("--prot", ["--port", "--once"]), "--port");
 * equal(closest("fly", ["serve", "get", "put"]), undefined);
 * ```
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  const allowed = Math.max(1, Math.floor(Math.max(word.length, best.length) / 3));
  if (bestDistance <= allowed) return best;
  const bare = word.replace(/^-+/, "");
  if (bare.length >= 3) return candidates.find((c) => c.replace(/^-+/, "").startsWith(bare));
  return undefined;
}

/**
 * ` (did you mean 'X'?)` when a candidate is close to `word`, else an empty string.
 *
 * @example
 * ```ts
 * import { didYouMean } from "./suggest.ts";
 * import { equal } from "node:assert/strict";
 * equal(didYouMean("gte", ["serve", "get", "put"]), " (did you mean 'get'?)");
 * ```
 */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const c = closest(word, candidates);
  return c === undefined ? "" : ` (did you mean '${c}'?)`;
}
