import { DirectorySource, get, put, serve } from "../src/mod.ts";
import { startFaultRelay } from "../tests/support/fault_relay.ts";
const dir = await Deno.makeTempDir();
const big = crypto.getRandomValues(new Uint8Array(60000));
const file = new Uint8Array(600_000);
for (let i = 0; i < 10; i++) file.set(big, i * 60000);
await Deno.writeFile(`${dir}/f.bin`, file);
const server = await serve({
  source: await DirectorySource.open(dir, { write: true, overwrite: true }),
  hostname: "127.0.0.1",
  port: 0,
});
const ws = Number(Deno.args[0] ?? 16), bs = Number(Deno.args[1] ?? 1468);
let total = 0;
let bad = 0;
for (const seed of [1, 2, 3]) {
  const relay = startFaultRelay({
    target: { hostname: "127.0.0.1", port: server.port },
    plan: { drop: 0.1, duplicate: 0.05, reorder: 0.05, seed },
  });
  const t0 = Date.now();
  try {
    const got = await get({ hostname: "127.0.0.1", port: relay.port }, "f.bin", {
      windowsize: ws,
      blksize: bs,
      retries: 20,
    });
    await put({ hostname: "127.0.0.1", port: relay.port }, "up.bin", file, {
      windowsize: ws,
      blksize: bs,
      retries: 20,
    });
    if (!(got.length === file.length && got.every((b, i) => b === file[i]))) bad++;
  } catch (e) {
    bad++;
    console.log("ERR", (e as Error).message);
  }
  total += Date.now() - t0;
  relay.close();
}
console.log(`ws ${ws} bs ${bs}: total ${total} ms, bad ${bad}`);
await server.close();
await Deno.remove(dir, { recursive: true });
