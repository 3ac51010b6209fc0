/**
 * Memory of the tftpkit server process in the benchmark: VmRSS sampled every 100 ms and VmHWM at
 * the end, summed over the process and any child processes it has (workers are threads of the one
 * `deno` process, so normally that is the process alone — the sampler records its thread count and
 * child processes to show it).
 *
 * @module
 */

import { descendants, readProcMemory } from "./lib.ts";

/** What the sampler saw. */
export interface MemoryResult {
  pid: number;
  /** VmRSS right after start-up, before any transfer (MiB). */
  idleRssMiB?: number;
  /** Largest sampled VmRSS sum (MiB). */
  maxSampledRssMiB: number;
  /** VmHWM sum at the end (MiB), undefined if the process was gone. */
  vmHwmMiB?: number;
  /** max(VmHWM, max sampled VmRSS): the value checked against the target. */
  peakMiB?: number;
  samples: number;
  /** Threads of the process (`/proc/PID/task`) at the last sample. */
  threads: number;
  /** Child processes seen at any sample (0: workers are threads). */
  childProcesses: number;
}

/** Threads of a process, 0 if it is gone. */
export function threadCount(pid: number): number {
  try {
    return [...Deno.readDirSync(`/proc/${pid}/task`)].length;
  } catch {
    return 0;
  }
}

/** VmRSS and VmHWM (KiB) summed over `pid` and its descendants; null if `pid` is gone. */
export function processTreeMemory(
  pid: number,
): { rssKiB: number; hwmKiB: number; children: number } | null {
  const own = readProcMemory(pid);
  if (!own) return null;
  let { rssKiB, hwmKiB } = own;
  const kids = descendants([pid]);
  for (const k of kids) {
    const m = readProcMemory(k);
    if (!m) continue;
    rssKiB += m.rssKiB;
    hwmKiB += m.hwmKiB;
  }
  return { rssKiB, hwmKiB, children: kids.length };
}

/** Samples one process tree every 100 ms from construction until {@link MemorySampler.stop}. */
export class MemorySampler {
  #timer: ReturnType<typeof setInterval> | undefined;
  #maxKiB = 0;
  #samples = 0;
  #children = 0;
  #threads = 0;

  /** Starts sampling `pid`; `idleRssMiB` is recorded by the caller before any transfer. */
  constructor(readonly pid: number, readonly idleRssMiB?: number) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), 100);
  }

  #sample(): void {
    const m = processTreeMemory(this.pid);
    if (!m) return;
    this.#samples++;
    this.#maxKiB = Math.max(this.#maxKiB, m.rssKiB);
    this.#children = Math.max(this.#children, m.children);
    this.#threads = threadCount(this.pid) || this.#threads;
  }

  /** Stops sampling and returns the result (VmHWM read now). Idempotent. */
  stop(): MemoryResult {
    if (this.#timer !== undefined) {
      this.#sample();
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    const m = processTreeMemory(this.pid);
    const hwm = m ? m.hwmKiB / 1024 : undefined;
    const max = this.#maxKiB / 1024;
    return {
      pid: this.pid,
      idleRssMiB: this.idleRssMiB,
      maxSampledRssMiB: max,
      vmHwmMiB: hwm,
      // VmRSS counters are updated lazily, so a sample can exceed VmHWM by a few pages.
      peakMiB: hwm === undefined ? undefined : Math.max(hwm, max),
      samples: this.#samples,
      threads: this.#threads,
      childProcesses: this.#children,
    };
  }
}

/** Idle VmRSS (MiB) of a freshly started server: waits `settleMs`, then reads it. */
export async function idleRss(pid: number, settleMs = 500): Promise<number | undefined> {
  await new Promise((r) => setTimeout(r, settleMs));
  const m = processTreeMemory(pid);
  return m ? m.rssKiB / 1024 : undefined;
}
