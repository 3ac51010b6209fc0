/**
 * Signals from the command line. `get`/`put` stopped by SIGINT or SIGTERM mid-transfer (held
 * there by a scripted server) tell the server at once with ERROR 0 "cancelled", leave no
 * temporary file and exit 130/143. `serve --once` stopped by a signal does not exit 0 (the code
 * for "fetched"); a second signal ends a running transfer at once instead of waiting out the
 * grace period.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import type { ErrorPacket } from "../src/wire/packet.ts";
import { listDir } from "./support/files.ts";
import { RawPeer, request } from "./support/raw.ts";
import { startScripted } from "./support/scripted_server.ts";
import { MAIN, makeFile, ROOT, startServer } from "./support/server.ts";

function spawnCli(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-write", MAIN, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("SIGINT/SIGTERM during get/put: ERROR 0 'cancelled' at once, no .part, exit 130/143", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-signal-" });
  const up = join(dir, "up.bin");
  await makeFile(up, 200_000, 4);
  try {
    for (const command of ["get", "put"] as const) {
      for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
        await t.step(`${command}, ${signal}`, async () => {
          const out = join(dir, `${command}-${signal}`);
          await Deno.mkdir(out);
          const s = startScripted(() => ({ hold: true }));
          const where = `127.0.0.1:${s.port}`;
          const child = spawnCli(
            command === "get"
              ? ["get", where, "fw.bin", join(out, "fw.bin")]
              : ["put", where, up, "up.bin"],
          );
          const output = child.output();
          try {
            // The client answered the first step: it is mid-transfer, the temp file exists.
            await s.waitFor((p) => p.op === (command === "get" ? "ACK" : "DATA"));
            if (command === "get") equal((await listDir(out)).length, 1, "no temporary file");
            const killed = performance.now();
            child.kill(signal);
            const error = await s.waitFor((p) => p.op === "ERROR", 5000);
            const packet = error.packet as ErrorPacket;
            equal(packet.code, 0);
            equal(packet.message, "cancelled");
            const ms = error.at - killed;
            ok(ms < 1000, `the server learned of it after ${Math.round(ms)} ms`);
            const r = await output;
            equal(r.code, code, new TextDecoder().decode(r.stderr));
            match(new TextDecoder().decode(r.stderr), new RegExp(`cancelled \\(${signal}\\)`));
            deepEqual(await listDir(out), [], "a temporary file was left behind");
          } finally {
            try {
              child.kill("SIGKILL");
            } catch { /* exited */ }
            await output;
            await s.close();
          }
        });
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("get into a FIFO nobody reads: a second SIGINT exits at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-signal-" });
  const fifo = join(dir, "fifo");
  const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  equal(made.code, 0);
  const s = startScripted(() => ({ hold: true }));
  const child = spawnCli(["get", `127.0.0.1:${s.port}`, "fw.bin", fifo]);
  const output = child.output();
  try {
    await new Promise((r) => setTimeout(r, 1000));
    child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 200));
    const second = performance.now();
    child.kill("SIGINT");
    const r = await output;
    ok(performance.now() - second < 1000, "the second SIGINT did not exit at once");
    equal(r.code, 130);
    ok((await Deno.lstat(fifo)).isFifo);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await output;
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve --once stopped by a signal exits 130/143, without --once 0", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-signal-" });
  try {
    for (
      const [args, signal, code] of [
        [["--once"], "SIGINT", 130],
        [["--once"], "SIGTERM", 143],
        [["--max-transfers", "3"], "SIGTERM", 143],
        [[], "SIGINT", 0],
        [[], "SIGTERM", 0],
      ] as const
    ) {
      await t.step(`${args.join(" ") || "no --once"}, ${signal}: ${code}`, async () => {
        const s = await startServer([dir, ...args]);
        equal(await s.stop(signal), code, s.lines.join("\n"));
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a second SIGINT ends a running transfer at once instead of waiting 5 s", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-signal-" });
  await makeFile(join(dir, "big.bin"), 1_000_000, 2);
  const s = await startServer([dir, "--timeout", "2"]);
  const peer = new RawPeer();
  try {
    // A download that is started and then never acknowledged: it runs until its retries end.
    await peer.send(request("RRQ", "big.bin", "octet", { blksize: "1024" }), s.port);
    const oack = await peer.expect();
    equal(oack.packet.op, "OACK");
    await peer.send({ op: "ACK", block: 0 }, oack.from.port, oack.from.hostname);
    equal((await peer.expect()).packet.op, "DATA");
    s.child.kill("SIGINT");
    await s.waitFor(/shutting down: waiting up to 5000 ms for 1 transfer$/);
    const second = performance.now();
    s.child.kill("SIGINT");
    const code = await s.exited;
    const ms = performance.now() - second;
    ok(ms < 2000, `exited ${Math.round(ms)} ms after the second SIGINT`);
    equal(code, 0, s.lines.join("\n"));
    ok(s.lines.some((l) => /second SIGINT: ending running transfers now/.test(l)));
    // The client was told.
    for (;;) {
      const got = await peer.expect(3000);
      if (got.packet.op !== "ERROR") continue;
      equal(got.packet.message, "server shutting down");
      break;
    }
  } finally {
    peer.close();
    await s.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});
