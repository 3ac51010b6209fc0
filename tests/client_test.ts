/**
 * Our client — the CLI (`main.ts get/put`) and the library (`get`, `put`, `download`) — against
 * our own server (options, netascii, standard input/output, `tftp://` URIs, errors) and against an
 * unreachable port. Every transfer is compared byte for byte.
 */

import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { get, PeerError, put, TimeoutError } from "../src/mod.ts";
import { cli, makeFile, startServer } from "./support/server.ts";
import {
  freeUdpPort,
  getArgs,
  HOST,
  libGet,
  listDir,
  putArgs,
  sameBytes,
} from "./support/client_peers.ts";
import { recordOf } from "./support/clients.ts";

const enc = new TextEncoder();

// --- our own server ---------------------------------------------------------------------------

/** Text with LF, CR LF and bare CR, long enough to span several blocks. */
function text(): Uint8Array {
  let s = "";
  for (let i = 0; i < 300; i++) {
    s += i % 7 === 0 ? `dos line ${i}\r\n` : i % 5 === 0 ? `bare cr ${i}\r` : `line ${i}\n`;
  }
  return enc.encode(s + "end with cr\r");
}

Deno.test("our client against our own server", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "tftpkit-client-root-" });
  const local = await Deno.makeTempDir({ prefix: "tftpkit-client-local-" });
  const data = await makeFile(join(root, "data.bin"), 3_000_017, 31);
  const lines = text();
  await Deno.writeFile(join(root, "lines.txt"), lines);
  await Deno.mkdir(join(root, "sub dir"));
  const nested = await makeFile(join(root, "sub dir", "nested.bin"), 4096, 32);
  const server = await startServer([root, "--write", "--log-format", "json"], { write: true });
  const port = server.port;
  try {
    await t.step("CLI get and put with the default options", async () => {
      let from = server.lines.length;
      const out = join(local, "data.bin");
      let r = await cli(getArgs(port, "data.bin", out));
      equal(r.code, 0, r.stderr);
      await sameBytes(await Deno.readFile(out), data, "CLI get");
      let rec = await recordOf(server, "data.bin", from);
      deepEqual([rec.outcome, rec.blksize, rec.windowsize], ["ok", 1468, 16]);
      from = server.lines.length;
      r = await cli(putArgs(port, out, "put-default.bin"));
      equal(r.code, 0, r.stderr);
      rec = await recordOf(server, "put-default.bin", from);
      deepEqual([rec.outcome, rec.blksize, rec.windowsize], ["ok", 1468, 16]);
      await sameBytes(await Deno.readFile(join(root, "put-default.bin")), data, "CLI put");
    });

    await t.step("a window bigger than a socket buffer takes is lowered, both ways", async () => {
      // 64 x 8 KiB is one 512 KiB burst, more than a default UDP receive buffer holds (~12
      // datagrams of 8 KiB): the client asks for what fits in 64 KiB (8 blocks)...
      let from = server.lines.length;
      const out = join(local, "big-window.bin");
      const big = ["--windowsize", "64", "--blksize", "8192"];
      let r = await cli(getArgs(port, "data.bin", out, big));
      equal(r.code, 0, r.stderr);
      await sameBytes(await Deno.readFile(out), data, "CLI get, big window");
      let rec = await recordOf(server, "data.bin", from);
      deepEqual([rec.outcome, rec.blksize, rec.windowsize], ["ok", 8192, 8]);
      ok(rec.retransmits <= 8, `a window that fits needs no recovery: ${rec.retransmits}`);
      from = server.lines.length;
      r = await cli(putArgs(port, out, "put-big-window.bin", big));
      equal(r.code, 0, r.stderr);
      rec = await recordOf(server, "put-big-window.bin", from);
      deepEqual([rec.outcome, rec.blksize, rec.windowsize], ["ok", 8192, 8]);
      await sameBytes(await Deno.readFile(join(root, "put-big-window.bin")), data, "CLI put");
      // ...and the server lowers a bigger request the same way (RFC 7440 lets it answer less).
      from = server.lines.length;
      const { bytes, result } = await libGet(port, "data.bin", {
        windowsize: 64,
        blksize: 8192,
        maxWindowBytes: 1024 * 1024,
      });
      await sameBytes(bytes, data, "library get asking for 64 x 8192");
      equal(result.acknowledged.get("windowsize"), "8");
      equal(result.negotiated.windowsize, 8);
      rec = await recordOf(server, "data.bin", from);
      ok(rec.retransmits <= 8, `a window that fits needs no recovery: ${rec.retransmits}`);
    });

    await t.step("CLI get and put with --no-options", async () => {
      let from = server.lines.length;
      const out = join(local, "plain.bin");
      let r = await cli(getArgs(port, "data.bin", out, ["--no-options"]));
      equal(r.code, 0, r.stderr);
      await sameBytes(await Deno.readFile(out), data, "CLI plain get");
      let rec = await recordOf(server, "data.bin", from);
      deepEqual([rec.outcome, rec.blksize, rec.windowsize], ["ok", 512, 1]);
      from = server.lines.length;
      r = await cli(putArgs(port, out, "put-plain.bin", ["--no-options"]));
      equal(r.code, 0, r.stderr);
      rec = await recordOf(server, "put-plain.bin", from);
      deepEqual([rec.outcome, rec.blksize, rec.windowsize], ["ok", 512, 1]);
      await sameBytes(await Deno.readFile(join(root, "put-plain.bin")), data, "CLI plain put");
    });

    await t.step("netascii: CLI and library, both ways", async () => {
      const from = server.lines.length;
      const out = join(local, "lines.txt");
      let r = await cli(getArgs(port, "lines.txt", out, ["--mode", "netascii"]));
      equal(r.code, 0, r.stderr);
      await sameBytes(await Deno.readFile(out), lines, "CLI netascii get");
      equal((await recordOf(server, "lines.txt", from)).mode, "netascii");
      r = await cli(putArgs(port, out, "lines-up.txt", ["--mode", "netascii", "--blksize", "512"]));
      equal(r.code, 0, r.stderr);
      await sameBytes(await Deno.readFile(join(root, "lines-up.txt")), lines, "CLI netascii put");
      const target = { hostname: HOST, port };
      await sameBytes(
        await get(target, "lines.txt", { mode: "netascii", blksize: 512, windowsize: 4 }),
        lines,
        "library netascii get",
      );
      await put(target, "lines-lib.txt", lines, { mode: "netascii" });
      await sameBytes(
        await Deno.readFile(join(root, "lines-lib.txt")),
        lines,
        "library netascii put",
      );
      // An octet get of the netascii upload shows no translation left on disk.
      await sameBytes(await get(target, "lines-lib.txt"), lines, "octet get of netascii upload");
    });

    await t.step("'-' writes to standard output and reads standard input", async () => {
      const r = await cli(getArgs(port, "data.bin", "-"));
      equal(r.code, 0, r.stderr);
      await sameBytes(r.out, data, "CLI get to stdout");
      const piped = await makeFile(join(local, "stdin.bin"), 99_999, 33);
      const p = await cli(putArgs(port, "-", "from-stdin.bin"), { stdin: piped });
      equal(p.code, 0, p.stderr);
      await sameBytes(await Deno.readFile(join(root, "from-stdin.bin")), piped, "CLI put stdin");
    });

    await t.step("tftp:// URIs", async () => {
      const out = join(local, "uri.bin");
      const r = await cli(["get", `tftp://${HOST}:${port}/sub%20dir/nested.bin`, out, "-q"]);
      equal(r.code, 0, r.stderr);
      await sameBytes(await Deno.readFile(out), nested, "CLI get of a tftp:// URI");
      const p = await cli(["put", `tftp://${HOST}:${port}/sub%20dir/up.bin`, out, "-q"]);
      equal(p.code, 0, p.stderr);
      await sameBytes(await Deno.readFile(join(root, "sub dir", "up.bin")), nested, "URI put");
    });

    await t.step("library get and put with default options", async () => {
      const target = { hostname: HOST, port };
      await sameBytes(await get(target, "data.bin"), data, "library get");
      const up = await makeFile(join(local, "lib.bin"), 1_000_000, 34);
      const result = await put(target, "lib-put.bin", up);
      equal(result.negotiated.windowsize, 16);
      await sameBytes(await Deno.readFile(join(root, "lib-put.bin")), up, "library put");
    });

    await t.step(
      "a download returns once the final ACK is sent (no dally by default)",
      async () => {
        // ClientOptions.dallyMs defaults to 0: with a 5 s timeout, a tiny download must not wait a
        // timeout after its final ACK.
        const started = performance.now();
        const { bytes } = await libGet(port, "sub dir/nested.bin", { timeoutMs: 5000 });
        const elapsed = performance.now() - started;
        await sameBytes(bytes, nested, "small library download");
        ok(elapsed < 4000, `download took ${Math.round(elapsed)} ms`);
      },
    );

    await t.step("a missing file exits 68 with the server's message, no local file", async () => {
      const dir = await Deno.makeTempDir({ dir: local });
      const r = await cli(getArgs(port, "no-such.bin", join(dir, "no-such.bin")));
      equal(r.code, 68);
      match(r.stderr, /ERROR 1 \(file not found\): file not found/);
      deepEqual(await listDir(dir), [], "neither the file nor a temporary file");
      const r2 = await cli(
        getArgs(port, "no-such.bin", join(dir, "no-such.bin"), ["--no-options"]),
      );
      equal(r2.code, 68);
      deepEqual(await listDir(dir), []);
      await rejects(get({ hostname: HOST, port }, "no-such.bin"), (e: unknown) => {
        ok(e instanceof PeerError);
        match((e as Error).message, /file not found/);
        return true;
      });
    });

    await t.step("a refused upload exits 73 with the server's message", async () => {
      const src = join(local, "data.bin");
      const r = await cli(putArgs(port, src, "data.bin"));
      equal(r.code, 73);
      match(r.stderr, /ERROR 6 \(file exists\): file already exists/);
      await sameBytes(await Deno.readFile(join(root, "data.bin")), data, "original kept");
    });
  } finally {
    await server.stop();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(local, { recursive: true });
  }
});

Deno.test("an unreachable port times out with exit 28 and leaves no file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-client-" });
  try {
    const port = freeUdpPort();
    const started = Date.now();
    const r = await cli(getArgs(port, "x.bin", join(dir, "x.bin"), [
      "--timeout",
      "1",
      "--retries",
      "1",
    ]));
    equal(r.code, 28, r.stderr);
    match(r.stderr, /no answer/);
    ok(Date.now() - started < 30_000);
    deepEqual(await listDir(dir), []);
    const src = join(dir, "src.bin");
    await makeFile(src, 100, 41);
    const p = await cli(putArgs(port, src, "x.bin", ["--timeout", "1", "--retries", "1"]));
    equal(p.code, 28, p.stderr);
    match(p.stderr, /no answer/);
    await rejects(
      get({ hostname: HOST, port }, "x.bin", { timeoutMs: 1000, retries: 1 }),
      TimeoutError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
