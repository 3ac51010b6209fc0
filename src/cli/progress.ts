/**
 * A one-line progress display on standard error: bytes, rate and, when the size is known, percent
 * and ETA. Redrawn at most ten times a second.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Formats a byte count for people.
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
 * A progress line for one transfer.
 *
 * @example
 * ```ts ignore
 * import { Progress } from "./progress.ts";
 * const p = new Progress("image.bin");
 * p.update(1024, 4096);
 * p.done();
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
    const rate = this.#bytes / seconds;
    let line = `${this.#label}  ${formatBytes(this.#bytes)}`;
    if (this.#total) {
      const pct = Math.min(100, Math.floor((this.#bytes / this.#total) * 100));
      const eta = rate > 0 ? Math.max(0, (this.#total - this.#bytes) / rate) : 0;
      line += ` / ${formatBytes(this.#total)}  ${pct}%  ETA ${Math.ceil(eta)}s`;
    }
    line += `  ${formatBytes(Math.round(rate))}/s`;
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
