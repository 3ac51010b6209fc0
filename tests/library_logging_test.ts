/**
 * Logging of the library API of `src/mod.ts`: silent until `setupLogging` is called, then one
 * JSON line per transfer, checked in a child process.
 */

import { deepEqual, equal } from "node:assert/strict";
import { join } from "node:path";
import { makeFile, ROOT, run } from "./support/server.ts";

const CHILD = `
import { DirectorySource, get, serve, setupLogging } from ${
  JSON.stringify(
    new URL("../src/mod.ts", import.meta.url).href,
  )
};
const [mode, dir, result] = Deno.args;
if (mode === "json") await setupLogging({ format: "json" });
const controller = new AbortController();
const server = await serve({
  source: await DirectorySource.open(dir),
  hostname: "127.0.0.1",
  port: 0,
  signal: controller.signal,
});
const target = { hostname: "127.0.0.1", port: server.port };
const got = await get(target, "hello.bin");
let refused = "";
try {
  await get(target, "missing.bin");
} catch (e) {
  refused = (e as Error).name;
}
controller.abort();
await server.finished;
await Deno.writeTextFile(result, JSON.stringify({ bytes: got.length, refused }));
`;

Deno.test("the library logs nothing until setupLogging is called", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-lib-" });
  try {
    const served = join(dir, "served");
    await Deno.mkdir(served);
    await makeFile(join(served, "hello.bin"), 4321, 61);
    const script = join(dir, "child.ts");
    await Deno.writeTextFile(script, CHILD);
    const runChild = async (mode: string) => {
      const result = join(dir, `${mode}.json`);
      const r = await run(Deno.execPath(), [
        "run",
        "--config",
        join(ROOT, "deno.json"),
        "--allow-net",
        "--allow-read",
        "--allow-write",
        script,
        mode,
        served,
        result,
      ], { cwd: ROOT });
      equal(r.code, 0, r.stderr);
      deepEqual(JSON.parse(await Deno.readTextFile(result)), { bytes: 4321, refused: "PeerError" });
      return r;
    };
    await t.step("without setupLogging: nothing on stdout or stderr", async () => {
      const r = await runChild("silent");
      equal(r.stdout, "");
      equal(r.stderr, "");
    });
    await t.step("with setupLogging({ format: 'json' }): one JSON line per transfer", async () => {
      const r = await runChild("json");
      equal(r.stderr, "");
      const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const transfers = lines.filter((l) => l.event === "transfer");
      deepEqual(transfers.map((l) => [l.file, l.outcome]).sort(), [
        ["hello.bin", "ok"],
        ["missing.bin", "refused"],
      ]);
      equal(transfers.find((l) => l.file === "hello.bin").bytes, 4321);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
