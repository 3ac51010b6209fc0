/**
 * Output people read: the progress line fits the terminal (a pseudo-terminal of 40 and 80
 * columns from `script`), `-v` on the server and the client, JSON lines that all carry an
 * `event`, one unit for rates, "1 transfer", bracketed IPv6, secrets redacted everywhere; and an
 * upload is recorded at its final ACK, not after the dally (curl, tftp-hpa).
 */

import { equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { RawPeer, request } from "./support/raw.ts";
import {
  cli,
  MAIN,
  makeFile,
  ROOT,
  run,
  type ServerProcess,
  startServer,
} from "./support/server.ts";

/** Strips terminal escapes. */
const plain = (s: string) => s.replace(new RegExp("\u001b\\[[0-9;]*[A-Za-z]", "g"), "");

Deno.test("the progress line never exceeds the terminal's width, and is off without one", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-out-" });
  const long = "a-very-long-file-name-for-the-firmware-image-of-a-baseboard-controller-v1.2.3.bin";
  await makeFile(join(dir, long), 2_000_000, 3);
  const s = await startServer([dir]);
  try {
    for (const columns of [40, 80]) {
      await t.step(`${columns} columns`, async () => {
        const typescript = join(dir, `typescript-${columns}`);
        const get = [Deno.execPath(), "run", "-A", MAIN, "get", `127.0.0.1:${s.port}`, long]
          .concat([join(dir, `out-${columns}`), "--blksize", "512", "--windowsize", "1"])
          .map((w) => `'${w}'`).join(" ");
        const r = await run("script", [
          "-q",
          "-e",
          "-c",
          `stty cols ${columns}; ${get}`,
          typescript,
        ], {
          cwd: ROOT,
        });
        equal(r.code, 0, r.stdout + r.stderr);
        const shown = plain(await Deno.readTextFile(typescript));
        const drawn = shown.split(/[\r\n]+/).filter((l) => /B\/s/.test(l));
        ok(drawn.length >= 2, `no progress line drawn:\n${shown}`);
        for (const line of drawn) {
          ok([...line].length < columns, `${[...line].length} > ${columns - 1}: ${line}`);
        }
        ok(drawn.some((l) => l.includes("…") && l.includes("v1.2.3.bin")), drawn.join("\n"));
        ok(drawn.every((l) => /[kM]?B\/s$/.test(l)), "the rate is cut off");
      });
    }
    await t.step("without a terminal on stderr: no progress line", async () => {
      const r = await cli(["get", `127.0.0.1:${s.port}`, long, join(dir, "out-pipe")]);
      equal(r.code, 0);
      ok(!r.stderr.includes("\r"), r.stderr);
    });
  } finally {
    await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("-v shows options asked and answered, names as resolved, dropped and malformed requests", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-out-" });
  await Deno.mkdir(join(dir, "Boot"));
  await Deno.mkdir(join(dir, "images"));
  await makeFile(join(dir, "Boot", "BCD"), 3000);
  await makeFile(join(dir, "images", "kernel"), 3000);
  const map = join(dir, "..", `${crypto.randomUUID()}.map`);
  await Deno.writeTextFile(map, "^fw/(.*)$ images/$1\n");
  const s = await startServer([dir, "-v", "--ignore-case", "--map", map]);
  const where = `127.0.0.1:${s.port}`;
  try {
    await t.step("--map and --ignore-case resolution, options asked and answered", async () => {
      equal((await cli(["get", where, "fw/kernel", "-"])).code, 0);
      await s.waitFor(
        /RRQ "fw\/kernel" \(octet\), options asked: blksize=1468 windowsize=16 tsize=0/,
      );
      await s.waitFor(
        /RRQ "fw\/kernel" resolved to .*\/images\/kernel; options answered: blksize=1468 windowsize=16 tsize=3000/,
      );
      equal((await cli(["get", where, "boot/bcd", "-", "--no-options"])).code, 0);
      await s.waitFor(/RRQ "boot\/bcd" resolved to .*\/Boot\/BCD; options answered: none/);
    });
    await t.step("an empty name, a malformed packet, a stray ACK are logged at debug", async () => {
      const peer = new RawPeer();
      try {
        await peer.send(request("RRQ", ""), s.port);
        await peer.expect();
        await peer.send(new Uint8Array([0, 1, 0]), s.port);
        await peer.expect();
        await peer.send({ op: "ACK", block: 3 }, s.port);
        await peer.expect();
        await peer.send({ op: "ERROR", code: 0, message: "x" }, s.port);
      } finally {
        peer.close();
      }
      await s.waitFor(/DEBUG .*malformed request: empty file name/);
      await s.waitFor(/DEBUG .*malformed request: request without file name/);
      await s.waitFor(/DEBUG .*a packet outside any transfer: ERROR 5/);
      await s.waitFor(/DEBUG .*an ERROR to the listening port, dropped/);
    });
    await t.step("get -v: the client's options asked and answered on stderr", async () => {
      const r = await cli(["get", "-v", where, "fw/kernel", "-"]);
      equal(r.code, 0, r.stderr);
      equal(r.out.length, 3000);
      match(
        r.stderr,
        /RRQ "fw\/kernel" to 127\.0\.0\.1:\d+ \(octet\), options asked: blksize=1468/,
      );
      match(r.stderr, /the server answered with an OACK: blksize=1468 windowsize=16 tsize=3000/);
      match(r.stderr, /download of "fw\/kernel" done: 3000 bytes/);
    });
  } finally {
    await s.stop();
    await Deno.remove(map);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("log lines: an event on every JSON line, one rate unit, '1 transfer', [IPv6], no secrets", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-out-" });
  await makeFile(join(dir, "a.bin"), 5000);
  let s: ServerProcess | undefined;
  try {
    await t.step("JSON: every line has an event; the rate unit is bytes per second", async () => {
      s = await startServer([dir, "--log-format", "json", "-v", "--once"]);
      equal((await cli(["get", `127.0.0.1:${s.port}`, "missing", "-"])).code, 68);
      equal((await cli(["get", `127.0.0.1:${s.port}`, "a.bin", "-"])).code, 0);
      equal(await s.exited, 0);
      const records = s.lines.map((l) => JSON.parse(l));
      for (const r of records) ok(typeof r.event === "string" && r.event, JSON.stringify(r));
      const ok1 = records.find((r) => r.event === "transfer" && r.outcome === "ok");
      match(ok1.msg, /ok: sent 5000 bytes in \d+ ms \([\d.]+ (MB|kB|B)\/s\)/);
      const done = records.find((r) => r.event === "max-transfers");
      equal(done.msg, "1 transfer done (--max-transfers): stopping");
    });
    await t.step("a name that looks like a placeholder is logged as sent", async () => {
      s = await startServer([dir, "-v"]);
      equal((await cli(["get", `127.0.0.1:${s.port}`, "{peer}{bytes}", "-"])).code, 68);
      await s.waitFor(/RRQ "\{peer\}\{bytes\}" refused: file not found/);
      ok(s.lines.some((l) => /RRQ "\{peer\}\{bytes\}" \(octet\), options asked/.test(l)));
      await s.stop();
    });
    await t.step(
      "IPv6 peers and servers in brackets, in the log and in the client's message",
      async () => {
        s = await startServer([dir, "--address", "::1"]);
        equal((await cli(["get", `[::1]:${s.port}`, "a.bin", "-"])).code, 0);
        await s.waitFor(/\[::1\]:\d+ RRQ "a\.bin" ok/);
        const r = await cli(["get", `[::1]:${s.port}`, "missing", "-"]);
        match(r.stderr, new RegExp(`^tftpkit get: missing from \\[::1\\]:${s.port}: `));
        await s.stop();
      },
    );
    await t.step("secrets in URLs are redacted in every line, the listening line too", async () => {
      const origin = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen() {} },
        () => new Response("image"),
      );
      try {
        const url = `http://admin:hunter2@127.0.0.1:${origin.addr.port}/fw.img?sig=s3cret`;
        for (const format of ["text", "json"]) {
          s = await startServer([url, "--log-format", format, "-v"]);
          equal((await cli(["get", `127.0.0.1:${s.port}`, "x", "-"])).stdout, "image");
          await s.waitFor(/RRQ .*x.* ok|"outcome":"ok"/);
          await s.stop();
          const all = s.lines.join("\n");
          ok(!/hunter2|s3cret|admin/.test(all), all);
          match(all, /fw\.img\?REDACTED/);
        }
      } finally {
        await origin.shutdown();
      }
    });
  } finally {
    await s?.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an upload is recorded at its final ACK: --once exits at once, records stay in order", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-out-" });
  const src = join(dir, "..", `${crypto.randomUUID()}.cfg`);
  await makeFile(src, 40_000, 8);
  try {
    await t.step("curl (asks a 6 s timeout: the dally is 12 s)", async () => {
      const served = join(dir, "curl");
      await Deno.mkdir(served);
      const s = await startServer([served, "--write", "--once"], { write: true });
      const r = await run("curl", ["-sS", "-T", src, `tftp://127.0.0.1:${s.port}/sw1.cfg`]);
      const done = performance.now();
      equal(r.code, 0, r.stderr);
      equal(await s.exited, 0, s.lines.join("\n"));
      const ms = performance.now() - done;
      ok(ms < 2000, `the server exited ${Math.round(ms)} ms after curl`);
      ok(
        s.lines.some((l) => /WRQ "sw1\.cfg" ok: received 40000 bytes/.test(l)),
        s.lines.join("\n"),
      );
    });
    await t.step("tftp-hpa: an upload then a download are logged in that order", async () => {
      const served = join(dir, "hpa");
      await Deno.mkdir(served);
      const s = await startServer([served, "--write", "--timeout", "5"], { write: true });
      try {
        const tftp = (...c: string[]) =>
          run("tftp", ["-m", "binary", "127.0.0.1", String(s.port), "-c", ...c]);
        equal((await tftp("put", src, "up.cfg")).code, 0);
        const up = performance.now();
        const line = await s.waitFor(/WRQ "up\.cfg" ok/);
        ok(performance.now() - up < 1000, "the upload was logged late");
        equal((await tftp("get", "up.cfg", join(dir, "back.cfg"))).code, 0);
        await s.waitFor(/RRQ "up\.cfg" ok/);
        const order = s.lines.filter((l) => /"up\.cfg" ok/.test(l));
        equal(order[0], line);
        match(order[1], /RRQ/);
      } finally {
        await s.stop();
      }
    });
  } finally {
    await Deno.remove(src);
    await Deno.remove(dir, { recursive: true });
  }
});
