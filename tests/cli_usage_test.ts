/**
 * The command-line contract of `tftpkit` for help and usage, each case run as a subprocess with
 * exactly `--allow-net --allow-read`: help and version, usage errors (exit 2, one line naming the
 * flag), the `get`/`put` usage errors, and `get`/`put` needing no more permissions than that.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import config from "../deno.json" with { type: "json" };
import { DirectorySource, serve } from "../src/mod.ts";
import { oneLine, tftpkit } from "./support/cli_fixture.ts";
import { makeFile } from "./support/server.ts";

const SERVE_FLAGS = [
  "--address",
  "--port",
  "--single-port",
  "--port-range",
  "--write",
  "--overwrite",
  "--ignore-case",
  "--map",
  "--max-upload-size",
  "--max-blksize",
  "--max-windowsize",
  "--max-window-bytes",
  "--timeout",
  "--retries",
  "--max-sessions",
  "--max-sessions-per-client",
  "--allow",
  "--deny",
  "--once",
  "--max-transfers",
  "--idle-exit",
  "-v",
  "--verbose",
  "--log-format",
  "-h",
  "--help",
];
const CLIENT_FLAGS = [
  "--blksize",
  "--windowsize",
  "--max-window-bytes",
  "--timeout",
  "--retries",
  "--mode",
  "--no-options",
  "-q",
  "--quiet",
  "-h",
  "--help",
];

Deno.test("--help exits 0 and each command's help lists every one of its flags", async (t) => {
  await t.step("tftpkit --help names the three commands", async () => {
    const r = await tftpkit(["--help"]);
    equal(r.code, 0, r.stderr);
    equal(r.stderr, "");
    for (const cmd of ["serve", "get", "put", "--version"]) ok(r.stdout.includes(cmd), cmd);
  });
  const cases: Array<[string, string[]]> = [
    ["serve", SERVE_FLAGS],
    ["get", CLIENT_FLAGS],
    ["put", CLIENT_FLAGS],
  ];
  for (const [cmd, flags] of cases) {
    await t.step(`tftpkit ${cmd} --help lists ${flags.length} flags`, async () => {
      const r = await tftpkit([cmd, "--help"]);
      equal(r.code, 0, r.stderr);
      equal(r.stderr, "");
      match(r.stdout, new RegExp(`^Usage: tftpkit ${cmd} `));
      for (const flag of flags) {
        ok(
          new RegExp(`(^|[\\s,])${flag}(?![\\w-])`, "m").test(r.stdout),
          `${cmd} --help lacks ${flag}`,
        );
      }
    });
  }
});

Deno.test("--version prints the version from deno.json and exits 0", async () => {
  const r = await tftpkit(["--version"]);
  equal(r.code, 0, r.stderr);
  equal(r.stdout.trim(), `tftpkit ${config.version}`);
  equal(r.stderr, "");
});

Deno.test("an unknown flag or command exits 2 with one line naming it", async () => {
  const cases: Array<[string[], string]> = [
    [["serve", "--bogus"], "--bogus"],
    [["get", "--frobnicate", "127.0.0.1", "x"], "--frobnicate"],
    [["put", "--port", "5", "127.0.0.1", "x"], "--port"],
    [["fly"], "fly"],
  ];
  await Promise.all(cases.map(async ([args, name]) => {
    const r = await tftpkit(args);
    const what = args.join(" ");
    equal(r.code, 2, `${what}: ${r.stderr}`);
    equal(r.stdout, "", what);
    const line = oneLine(r.stderr, what);
    ok(line.startsWith("tftpkit"), line);
    ok(line.includes(`'${name}'`), `${what}: ${line}`);
  }));
});

Deno.test("bad flag values exit 2 with one line naming the flag", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-cli-" });
  try {
    const file = join(dir, "one.img");
    await makeFile(file, 100);
    const cases: Array<[string[], string]> = [
      [["--port", "70000"], "--port"],
      [["--port", "abc"], "--port"],
      [["--port"], "--port"],
      [["--max-blksize", "7"], "--max-blksize"],
      [["--max-windowsize", "0"], "--max-windowsize"],
      [["--log-format", "xml"], "--log-format"],
      [["--address", "nonsense"], "--address"],
      [["--address", "300.1.1.1"], "--address"],
      [["--port-range", "5-1"], "--port-range"],
      [["--timeout", "0"], "--timeout"],
      [["--retries", "0"], "--retries"],
      [["--max-upload-size", "lots"], "--max-upload-size"],
      [["--max-window-bytes", "2M"], "--max-window-bytes"],
      [["--max-window-bytes", "100"], "--max-window-bytes"],
      [["--max-transfers", "0"], "--max-transfers"],
      [["--idle-exit", "soon"], "--idle-exit"],
      [["--allow", "x/y"], "--allow"],
      [["--allow", "10.0.0.0/33"], "--allow"],
      [["--deny", "::1/129"], "--deny"],
      [["--port", "-1"], "--port"],
      [["--retries", "-3"], "--retries"],
      [["--address", "127.0.0.1:x"], "--address"],
      [["--address", "127.0.0.1:6969", "--port", "70"], "--address"],
      [["--map", "-x"], "--map"],
      [["--map", join(dir, "no-such-map")], "--map"],
      [["--overwrite"], "--overwrite"],
      [[file, "--write"], "--write"],
    ];
    await Promise.all(cases.map(async ([args, flag]) => {
      // Safe defaults first (a later flag wins), so a server that wrongly starts stays local.
      const path = args[0] === file ? [] : [dir];
      const r = await tftpkit(
        ["serve", ...path, "--address", "127.0.0.1", "--port", "0", ...args],
        {
          timeoutMs: 30_000,
        },
      );
      const what = `serve ${args.join(" ")}`;
      equal(r.code, 2, `${what}: exit ${r.code}\n${r.stdout}${r.stderr}`);
      equal(r.stdout, "", what);
      const line = oneLine(r.stderr, what);
      match(line, /^tftpkit serve: /, what);
      ok(line.includes(flag), `${what}: message does not name ${flag}: ${line}`);
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("get and put usage errors exit 2 with one line", async () => {
  const cases: Array<[string[], RegExp]> = [
    [["get"], /missing HOST/],
    [["put"], /missing HOST/],
    [["get", "127.0.0.1"], /missing REMOTE/],
    [["put", "127.0.0.1"], /missing LOCAL/],
    [["get", "127.0.0.1", "a", "b", "c"], /too many arguments/],
    [["get", "127.0.0.1:abc", "x"], /port/],
    [["get", "tftp://", "x"], /tftp:\/\//],
    [["get", "--blksize", "7", "127.0.0.1", "x"], /--blksize/],
    [["get", "--windowsize", "0", "127.0.0.1", "x"], /--windowsize/],
    [["get", "--max-window-bytes", "2M", "127.0.0.1", "x"], /--max-window-bytes/],
    [["put", "--max-window-bytes", "lots", "127.0.0.1", "README.md", "r"], /--max-window-bytes/],
    [["get", "--mode", "mail", "127.0.0.1", "x"], /--mode/],
    [["put", "--timeout", "0", "127.0.0.1", "README.md", "r"], /--timeout/],
    [["get", "--retries", "abc", "127.0.0.1", "x"], /--retries/],
    [["put", "127.0.0.1", "-"], /REMOTE/],
  ];
  await Promise.all(cases.map(async ([args, pattern]) => {
    const what = args.join(" ");
    const r = await tftpkit(args);
    equal(r.code, 2, `${what}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    equal(r.stdout, "", what);
    const line = oneLine(r.stderr, what);
    match(line, new RegExp(`^tftpkit ${args[0]}: `), what);
    match(line, pattern, what);
  }));
});

Deno.test("get to standard output and put need only --allow-net --allow-read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-cli-" });
  const controller = new AbortController();
  const server = await serve({
    source: await DirectorySource.open(dir, { write: true }),
    hostname: "127.0.0.1",
    port: 0,
    signal: controller.signal,
  });
  try {
    const local = join(dir, "..", `${crypto.randomUUID()}.bin`);
    const data = await makeFile(local, 70_001, 3);
    try {
      const put = await tftpkit(["put", "-q", `127.0.0.1:${server.port}`, local, "up.bin"]);
      equal(put.code, 0, put.stderr);
      deepEqual(await Deno.readFile(join(dir, "up.bin")), data);
      const got = await tftpkit(["get", "-q", `127.0.0.1:${server.port}`, "up.bin", "-"]);
      equal(got.code, 0, got.stderr);
      deepEqual(got.out, data);
      const missing = await tftpkit(["get", "-q", `127.0.0.1:${server.port}`, "nope.bin", "-"]);
      equal(missing.code, 68);
      equal(missing.out.length, 0);
      const line = oneLine(missing.stderr, "failed get");
      match(line, /^tftpkit get: .*not found/);
    } finally {
      await Deno.remove(local);
    }
  } finally {
    controller.abort();
    await server.finished;
    await Deno.remove(dir, { recursive: true });
  }
});
