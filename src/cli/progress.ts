/**
 * A one-line progress display on standard error: bytes, rate and, when the size is known, percent
 * and ETA. Redrawn at most ten times a second, and always cut to the terminal's width (the name
 * is shortened, the line never wraps: 80-column BMC and serial consoles).
 *
 * @module
 */

import { formatRate } from "../server/record.ts";

const encoder = new TextEncoder();

/**
 * Formats a byte count for people (binary prefixes: sizes; rates use {@linkcode formatRate}).
 *
 * @example
 * ```ts
 * import { formatBytes } from "./progress.ts";
 * import { equal } from "node:assert/strict";
 * equal(formatBytes(1536), "1.5 KiB");
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/**
 * Shortens `text` to at most `width` characters, keeping its end (a file name's extension and
 * last part say most) behind a leading `…`.
 *
 * @example
 * ```ts
 * import { shorten } from "./progress.ts";
 * import { equal } from "node:assert/strict";
 * equal(shorten("images/firmware-v2.bin", 12), "…ware-v2.bin");
 * ```
 */
export function shorten(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  if (width <= 1) return "…".slice(0, Math.max(0, width));
  return "…" + chars.slice(chars.length - (width - 1)).join("");
}

/**
 * One progress line for `label`, at most `width` characters: the figures (bytes, total, percent,
 * ETA, rate; the ETA and then the total are left out when the line is narrow) and the label
 * shortened to what is left; below 8 characters for the label it is left out.
 *
 * @example
 * ```ts
 * import { progressLine } from "./progress.ts";
 * import { ok } from "node:assert/strict";
 * const line = progressLine("a-very-long-name-of-a-firmware-image.bin", 1 << 20, 4 << 20, 2e6, 40);
 * ok([...line].length <= 40, line);
 * ```
 */
export function progressLine(
  label: string,
  bytes: number,
  total: number | undefined,
  rateBps: number,
  width: number,
): string {
  const rate = formatRate(Math.round(rateBps));
  const variants = [`${formatBytes(bytes)}  ${rate}`];
  if (total) {
    const pct = Math.min(100, Math.floor((bytes / total) * 100));
    const eta = rateBps > 0 ? Math.ceil(Math.max(0, (total - bytes) / rateBps)) : 0;
    variants.unshift(
      `${formatBytes(bytes)} / ${formatBytes(total)}  ${pct}%  ETA ${eta}s  ${rate}`,
      `${formatBytes(bytes)} / ${formatBytes(total)}  ${pct}%  ${rate}`,
      `${formatBytes(bytes)}  ${pct}%  ${rate}`,
    );
  }
  for (const figures of variants) {
    const room = width - figures.length - 2;
    if (room >= 8) return `${shorten(label, room)}  ${figures}`;
  }
  const fits = variants.find((f) => f.length <= width) ?? variants[variants.length - 1];
  return [...fits].slice(0, Math.max(0, width)).join("");
}

/** The width of the terminal on standard error, or 80 when it cannot be read. */
function terminalWidth(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

/**
 * A progress line for one transfer. Create it only when standard error is a terminal.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * import { equal, match } from "node:assert/strict";
 *
 * // What it draws on standard error, kept here instead of reaching the terminal.
 * const drawn: string[] = [];
 * const writeSync = Deno.stderr.writeSync;
 * Deno.stderr.writeSync = (p) => {
 *   drawn.push(new TextDecoder().decode(p));
 *   return p.length;
 * };
 * try {
 *   const p = new Progress("image.bin");
 *   p.update(1024, 4096); // drawn at once
 *   p.update(2048, 4096); // within 100 ms of the last drawing: only recorded
 *   p.done(); // the last state, then the end of the line
 * } finally {
 *   Deno.stderr.writeSync = writeSync;
 * }
 * equal(drawn.length, 3);
 * // Each drawing replaces the line: "\r\x1b[Kimage.bin  1.0 KiB / 4.0 KiB  25%  ETA 0s  …".
 * match(drawn[0], /^\r\x1b\[K.*1\.0 KiB.*25%/);
 * match(drawn[1], /^\r\x1b\[K.*2\.0 KiB.*50%/);
 * equal(drawn[2], "\n");
 * ```
 */
export class Progress {
  #label: string;
  #started = Date.now();
  #last = 0;
  #bytes = 0;
  #total?: number;
  #shown = false;

  /** @param label What is being transferred. */
  constructor(label: string) {
    this.#label = label;
  }

  /** Records progress; redraws when 100 ms have passed. */
  update(bytes: number, total?: number): void {
    this.#bytes = bytes;
    this.#total = total;
    const now = Date.now();
    if (now - this.#last < 100) return;
    this.#last = now;
    this.#draw(now);
  }

  #draw(now: number): void {
    const seconds = Math.max((now - this.#started) / 1000, 0.001);
    // One column short of the edge: some consoles wrap when the last column is written.
    const width = Math.max(1, terminalWidth() - 1);
    const line = progressLine(this.#label, this.#bytes, this.#total, this.#bytes / seconds, width);
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${line}`));
    this.#shown = true;
  }

  /** Draws the final state and ends the line. */
  done(): void {
    if (this.#bytes > 0 || this.#shown) {
      this.#draw(Date.now());
      Deno.stderr.writeSync(encoder.encode("\n"));
    }
  }
}
