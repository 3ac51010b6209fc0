/**
 * Soak test: mixed concurrent downloads and uploads through a lossy network, for minutes, with
 * every byte verified, watching the server's memory and file descriptors.
 *
 * Usage:
 *
 *     deno run --allow-all scripts/soak/soak.ts [--minutes N] [--workers N] [--drop P] [--dup P]
 *                                          [--reorder P] [--seed N] [--grace S] [--json FILE]
 *
 * What it does:
 *
 * - creates a temp dir with a pool of files of random sizes (log-uniform, 1 KiB to 5 MiB, plus
 *   one of each extreme) and starts `deno run --allow-net --allow-read --allow-write main.ts
 *   serve DIR --address 127.0.0.1 --port 0 --write --timeout 1 --retries 8 --log-format json`
 *   as a subprocess (ready when it logs its `listening` event);
 * - puts the seeded fault relay (`src/testing/fault_relay.ts`) in front of it, which drops,
 *   duplicates and reorders datagrams on the request port and on every transfer port, in both
 *   directions (default 5 % drop, 2 % duplicate, 2 % reorder);
 * - runs `--workers` (default 6) concurrent workers until `--minutes` (default 10) have passed,
 *   each looping over: pick get or put, a size (log-uniform 1 KiB to 5 MiB) and a mode, run it
 *   with the client library (`get`/`put`, timeout 1 s, 8 retries), and verify it: a download
 *   byte for byte against the served file, an upload byte for byte against the file the server
 *   stored (then deleted). Modes: lock-step (windowsize 1, blksize 512 or 1468) for sizes up to
 *   512 KiB — under loss every lost datagram costs lock-step a full 1 s timeout, so larger
 *   lock-step transfers would take minutes each — and windowed (windowsize 4 to 32, blksize 1468
 *   to 8192) for any size;
 * - at the deadline starts nothing new, gives transfers in flight `--grace` seconds (default 120)
 *   to finish, then aborts the rest (counted as "cut off", not as failures);
 * - reports: transfers done and bytes verified, failures grouped by reason (with examples), the
 *   transfers cut off, the server's outcome counts (its JSON log; records other than ok grouped
 *   by operation, outcome and error), the server's peak RSS (VmHWM)
 *   and RSS at start and end, its open file descriptors (`/proc/PID/fd`) at start and at the end
 *   (once its last transfer has ended), the relay's fault counters, and the aggregate throughput
 *   (verified bytes / wall time) with a per-mode breakdown. A progress line is printed every 10 s,
 *   the summary block at the end, and the same as JSON with `--json FILE`.
 *
 * Exit code: 0 when no transfer failed and the descriptors returned to their starting count,
 * 1 otherwise, 2 on a bad command line. Ctrl-C stops early and still prints the summary. The
 * server, the relay and the temp dir are always cleaned up.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type ClientOptions, get, put } from "../../src/mod.ts";
import { mulberry32, startFaultRelay } from "../../src/testing/fault_relay.ts";
import { sameBytes } from "../../src/testing/proc.ts";
import {
  fmtBytes,
  KiB,
  MiB,
  printSummary,
  type SoakConfig,
  summarize,
  type TransferResult,
} from "./report.ts";
import { fdCount, type Server, startServer, statusKb, stopServer } from "./server.ts";

const MIN_SIZE = KiB;
const MAX_SIZE = 5 * MiB;
const LOCKSTEP_MAX = 512 * KiB;

function usage(message: string): never {
  console.error(`soak: ${message}`);
  console.error(
    "usage: soak.ts [--minutes N] [--workers N] [--drop P] [--dup P] [--reorder P] [--seed N] " +
      "[--grace S] [--json FILE]",
  );
  Deno.exit(2);
}

function parseConfig(args: string[]): SoakConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        minutes: { type: "string", default: "10" },
        workers: { type: "string", default: "6" },
        drop: { type: "string", default: "0.05" },
        dup: { type: "string", default: "0.02" },
        reorder: { type: "string", default: "0.02" },
        seed: { type: "string", default: "1" },
        grace: { type: "string", default: "120" },
        json: { type: "string" },
      },
      strict: true,
    }));
  } catch (e) {
    usage((e as Error).message);
  }
  const num = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) usage(`--${name} must be ${min}..${max}`);
    return n;
  };
  return {
    minutes: num("minutes", values.minutes, 0.05, 10_000),
    workers: Math.round(num("workers", values.workers, 1, 64)),
    drop: num("drop", values.drop, 0, 0.9),
    dup: num("dup", values.dup, 0, 0.9),
    reorder: num("reorder", values.reorder, 0, 0.9),
    seed: Math.round(num("seed", values.seed, 0, 2 ** 31)),
    graceS: num("grace", values.grace, 0, 3600),
    json: values.json,
  };
}

// ---------------------------------------------------------------- workload

interface Mode {
  name: "lock-step" | "windowed";
  blksize: number;
  windowsize: number;
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

async function main() {
  const cfg = parseConfig(Deno.args);
  const rng = mulberry32(cfg.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
  const randomSize = () =>
    Math.round(Math.exp(Math.log(MIN_SIZE) + rng() * (Math.log(MAX_SIZE) - Math.log(MIN_SIZE))));
  const chooseMode = (size: number): Mode =>
    size <= LOCKSTEP_MAX && rng() < 0.4
      ? { name: "lock-step", blksize: pick([512, 1468]), windowsize: 1 }
      : { name: "windowed", blksize: pick([1468, 4096, 8192]), windowsize: pick([4, 8, 16, 32]) };

  const dir = await Deno.makeTempDir({ prefix: "tftpkit_soak_" });
  const data = randomBytes(MAX_SIZE + 64 * KiB);
  const pool: { name: string; bytes: Uint8Array }[] = [];
  const sizes = [MIN_SIZE, MAX_SIZE, ...Array.from({ length: 14 }, randomSize)];
  for (const [i, size] of sizes.entries()) {
    const off = Math.floor(rng() * (data.length - size));
    const bytes = data.subarray(off, off + size);
    const name = `pool-${i}-${size}.bin`;
    await Deno.writeFile(`${dir}/${name}`, bytes);
    pool.push({ name, bytes });
  }

  let server: Server | null = null;
  const relay = { close: () => {} } as { close(): void };
  const results: TransferResult[] = [];
  const abort = new AbortController();
  let stopping = false;
  const onSigint = () => {
    if (stopping) {
      console.log("\nsoak: interrupted again: aborting the transfers in flight");
      abort.abort(new Error("interrupted"));
    } else {
      console.log("\nsoak: interrupted: finishing transfers in flight (Ctrl-C again to abort)");
    }
    stopping = true;
  };
  Deno.addSignalListener("SIGINT", onSigint);
  let exitCode = 1;
  try {
    server = await startServer(dir);
    const srv = server;
    const fr = startFaultRelay({
      target: { hostname: "127.0.0.1", port: srv.port },
      plan: { drop: cfg.drop, duplicate: cfg.dup, reorder: cfg.reorder, seed: cfg.seed },
    });
    relay.close = () => fr.close();
    const target = { hostname: "127.0.0.1", port: fr.port };
    const fdStart = await fdCount(srv.pid);
    const rssStart = await statusKb(srv.pid, "VmRSS");
    const started = Date.now();
    const deadline = started + cfg.minutes * 60_000;
    let inFlight = 0;
    let bytesOk = 0;
    console.log(
      `soak: ${cfg.minutes} min, ${cfg.workers} workers, faults drop ${cfg.drop} dup ${cfg.dup} ` +
        `reorder ${cfg.reorder} (seed ${cfg.seed}); server pid ${srv.pid} on port ${srv.port}, ` +
        `relay on port ${fr.port}; ${fdStart} fds, RSS ${rssStart} kB`,
    );

    const progress = setInterval(async () => {
      const ok = results.filter((r) => !r.error && !r.cutOff).length;
      const failed = results.filter((r) => r.error).length;
      const rss = await statusKb(srv.pid, "VmRSS").catch(() => NaN);
      const fds = await fdCount(srv.pid).catch(() => NaN);
      const s = Math.round((Date.now() - started) / 1000);
      console.log(
        `soak: ${s}s ok ${ok} failed ${failed} in flight ${inFlight} verified ` +
          `${fmtBytes(bytesOk)}; server RSS ${rss} kB, fds ${fds}; relay dropped ` +
          `${fr.stats.dropped} dup ${fr.stats.duplicated} reordered ${fr.stats.reordered}`,
      );
    }, 10_000);

    let seq = 0;
    const worker = async (w: number) => {
      while (!stopping && Date.now() < deadline) {
        const op = rng() < 0.5 ? "get" : "put";
        let size: number;
        let file: { name: string; bytes: Uint8Array };
        if (op === "get") {
          file = pick(pool);
          size = file.bytes.length;
        } else {
          size = randomSize();
          const off = Math.floor(rng() * (data.length - size));
          file = { name: `up-${w}-${seq++}.bin`, bytes: data.subarray(off, off + size) };
        }
        const mode = chooseMode(size);
        const label = `${mode.name} bs ${mode.blksize} ws ${mode.windowsize}`;
        // Typed, so that a misspelt option is an error, not ignored (this once read `timeout: 1`:
        // the client then asked no `timeout`, and the server waited its default 50 s of silence
        // for a lost final ACK, longer than the settle window below).
        const options: ClientOptions = {
          blksize: mode.blksize,
          windowsize: mode.windowsize,
          timeoutMs: 1000,
          retries: 8,
          signal: abort.signal,
        };
        const t0 = performance.now();
        const result: TransferResult = { op, mode: mode.name, size, ms: 0 };
        inFlight++;
        try {
          if (op === "get") {
            const got = await get(target, file.name, options);
            const diff = sameBytes(got, file.bytes);
            if (diff) throw new Error(`downloaded bytes wrong: ${diff}`);
          } else {
            await put(target, file.name, file.bytes, options);
            const stored = await Deno.readFile(`${dir}/${file.name}`);
            const diff = sameBytes(stored, file.bytes);
            await Deno.remove(`${dir}/${file.name}`);
            if (diff) throw new Error(`stored bytes wrong: ${diff}`);
          }
          bytesOk += size;
        } catch (e) {
          if (abort.signal.aborted) result.cutOff = true;
          else {
            const err = e as Error;
            result.error = `${err.name}: ${err.message}`;
            console.log(
              `soak: FAILED ${op} ${file.name} (${fmtBytes(size)}, ${label}): ` +
                result.error,
            );
          }
          if (op === "put") await Deno.remove(`${dir}/${file.name}`).catch(() => {});
        } finally {
          inFlight--;
          result.ms = performance.now() - t0;
          results.push(result);
        }
      }
    };
    const workers = Promise.all(Array.from({ length: cfg.workers }, (_, i) => worker(i)));
    // At the deadline nothing new starts; transfers in flight get the grace period.
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    const deadlineTimer = setTimeout(() => {
      graceTimer = setTimeout(
        () => abort.abort(new Error("grace period over")),
        cfg.graceS * 1000,
      );
    }, Math.max(0, deadline - Date.now()));
    await workers;
    clearTimeout(deadlineTimer);
    clearTimeout(graceTimer);
    clearInterval(progress);
    const wallS = (Date.now() - started) / 1000;

    // The server's last transfers end a little after our client returns (a lost final ACK is
    // retransmitted until its timeout): wait until its descriptors settle, up to 30 s.
    const settleEnd = Date.now() + 30_000;
    let fdEnd = await fdCount(srv.pid);
    while (fdEnd > fdStart && Date.now() < settleEnd) {
      await new Promise((r) => setTimeout(r, 500));
      fdEnd = await fdCount(srv.pid);
    }
    const rssEnd = await statusKb(srv.pid, "VmRSS");
    const hwm = await statusKb(srv.pid, "VmHWM");

    const summary = summarize({
      config: cfg,
      wallS,
      results,
      bytesOk,
      server: srv,
      fds: [fdStart, fdEnd],
      rss: [rssStart, rssEnd, hwm],
      relay: fr.stats,
    });
    printSummary(summary);
    if (cfg.json) {
      await Deno.writeTextFile(cfg.json, JSON.stringify(summary, null, 2) + "\n");
      console.log(`soak: summary written to ${cfg.json}`);
    }
    const failed = summary.transfers.failed;
    exitCode = failed === 0 && fdEnd <= fdStart ? 0 : 1;
  } catch (e) {
    console.error(`soak: harness error: ${(e as Error).stack ?? e}`);
    exitCode = 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    relay.close();
    if (server) await stopServer(server);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return exitCode;
}

if (import.meta.main) Deno.exit(await main());
