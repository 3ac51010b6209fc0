/**
 * Loss-recovery benchmark: our client against our server through the seeded fault relay
 * (`src/testing/fault_relay.ts`), a get and a put of one file per seed, every byte checked.
 * Prints the total wall time of all transfers; this is the "Loss recovery" table of
 * BENCHMARKS.md.
 *
 * Usage:
 *
 *     deno run --allow-all scripts/bench/loss.ts [--windowsize 16] [--blksize 1468]
 *       [--size 600000] [--seeds 1,2,3] [--drop 0.1] [--duplicate 0.05] [--reorder 0.05]
 *
 * Exit code 0 when every transfer completed with the right bytes, 1 otherwise.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DirectorySource, get, put, serve } from "../../src/mod.ts";
import { startFaultRelay } from "../../src/testing/fault_relay.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    windowsize: { type: "string", default: "16" },
    blksize: { type: "string", default: "1468" },
    size: { type: "string", default: "600000" },
    seeds: { type: "string", default: "1,2,3" },
    drop: { type: "string", default: "0.1" },
    duplicate: { type: "string", default: "0.05" },
    reorder: { type: "string", default: "0.05" },
  },
  strict: true,
});
const windowsize = Number(values.windowsize);
const blksize = Number(values.blksize);
const size = Number(values.size);
const seeds = values.seeds.split(",").map(Number);
const plan = {
  drop: Number(values.drop),
  duplicate: Number(values.duplicate),
  reorder: Number(values.reorder),
};

const dir = await Deno.makeTempDir({ prefix: "tftpkit-loss-" });
const file = new Uint8Array(size);
for (let i = 0; i < size; i += 65536) crypto.getRandomValues(file.subarray(i, i + 65536));
await Deno.writeFile(`${dir}/f.bin`, file);
const server = await serve({
  source: await DirectorySource.open(dir, { write: true, overwrite: true }),
  hostname: "127.0.0.1",
  port: 0,
});
const same = (a: Uint8Array) => a.length === file.length && a.every((b, i) => b === file[i]);

let totalMs = 0;
let bad = 0;
for (const seed of seeds) {
  const relay = startFaultRelay({
    target: { hostname: "127.0.0.1", port: server.port },
    plan: { ...plan, seed },
  });
  const peer = { hostname: "127.0.0.1", port: relay.port };
  const opts = { windowsize, blksize, retries: 20 };
  const t0 = performance.now();
  try {
    if (!same(await get(peer, "f.bin", opts))) throw new Error("get: bytes differ");
    await put(peer, "up.bin", file, opts);
    if (!same(await Deno.readFile(`${dir}/up.bin`))) throw new Error("put: bytes differ");
  } catch (e) {
    bad++;
    console.log(`seed ${seed}: FAILED: ${(e as Error).message}`);
  }
  const ms = performance.now() - t0;
  totalMs += ms;
  const s = relay.stats;
  console.log(
    `seed ${seed}: ${(ms / 1000).toFixed(2)} s (relay: ${s.dropped} dropped, ` +
      `${s.duplicated} duplicated, ${s.reordered} reordered)`,
  );
  relay.close();
}
console.log(
  `windowsize ${windowsize} / blksize ${blksize}, ${size} bytes, get+put x ${seeds.length} ` +
    `seeds: total ${(totalMs / 1000).toFixed(2)} s, ${bad} failed`,
);
await server.close();
await Deno.remove(dir, { recursive: true });
Deno.exit(bad === 0 ? 0 : 1);
