/**
 * Exit codes of `tftpkit get`/`put` a script can branch on: curl's TFTP codes, checked against
 * curl itself for every ERROR a server can send, and the local, network and usage codes; the
 * one-line message names the file and the server once; `--json` and the summary line.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { ClientExit, ServeExit } from "../src/cli/exit_codes.ts";
import { oneLine } from "./support/cli_fixture.ts";
import { cli, makeFile, ROOT, run, startServer } from "./support/server.ts";
import { startScripted } from "./support/scripted_server.ts";
import { listDir } from "./support/files.ts";

/** A UDP port nothing listens on. */
function freeUdpPort(): number {
  const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (s.addr as Deno.NetAddr).port;
  s.close();
  return port;
}

/** How many times `needle` occurs in `text`. */
function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

Deno.test("get and put exit with curl's code for every TFTP error, and say it once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-exit-" });
  try {
    const up = join(dir, "up.bin");
    await makeFile(up, 3000);
    for (const code of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) {
      const s = startScripted(() => ({ error: code, message: `scripted ${code}` }));
      try {
        const where = `127.0.0.1:${s.port}`;
        const curl = await run("curl", ["-sS", "-o", join(dir, "curl.out"), `tftp://${where}/f`]);
        const get = await cli(["get", where, "fw.bin", join(dir, "fw.bin")]);
        const put = await cli(["put", where, up, "sw1.cfg"]);
        equal(get.code, curl.code, `ERROR ${code}: get exits ${get.code}, curl ${curl.code}`);
        equal(put.code, curl.code, `ERROR ${code}: put exits ${put.code}, curl ${curl.code}`);
        if (code >= 1 && code <= 7) equal(get.code, 67 + code);
        for (const [r, file] of [[get, "fw.bin"], [put, "sw1.cfg"]] as const) {
          const line = oneLine(r.stderr, `ERROR ${code}`);
          equal(count(line, where), 1, `the server once: ${line}`);
          equal(count(line, file), 1, `the file once: ${line}`);
          ok(line.includes(`ERROR ${code}`) && line.includes(`scripted ${code}`), line);
        }
        deepEqual(await listDir(dir), ["up.bin"], "no file, no temporary file");
      } finally {
        await s.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("timeout 28, unresolvable host 6, unreadable LOCAL 26, unwritable LOCAL 23, usage 2", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-exit-" });
  try {
    await t.step("no answer: 28, naming the server once", async () => {
      const where = `127.0.0.1:${freeUdpPort()}`;
      const quick = ["--timeout", "1", "--retries", "1"];
      for (
        const args of [["get", where, "x.bin", join(dir, "x.bin")], [
          "put",
          where,
          ROOT + "README.md",
          "r",
        ]]
      ) {
        const r = await cli([...args, ...quick]);
        equal(r.code, ClientExit.TIMEOUT, r.stderr);
        const line = oneLine(r.stderr, "timeout");
        equal(count(line, where), 1, line);
        match(line, /timed out: no answer after 2 requests/);
      }
      deepEqual(await listDir(dir), []);
    });
    await t.step("a host name that does not resolve: 6", async () => {
      const r = await cli(["get", "no-such-host.invalid", "x.bin", join(dir, "x.bin")]);
      equal(r.code, ClientExit.HOST_NOT_FOUND, r.stderr);
      match(
        oneLine(r.stderr, "dns"),
        /^tftpkit get: x\.bin from no-such-host\.invalid:69: cannot resolve/,
      );
    });
    const s = startScripted(() => ({ hold: true }));
    try {
      const where = `127.0.0.1:${s.port}`;
      await t.step("put of a missing file or a directory: 26, before any request", async () => {
        const missing = await cli(["put", where, join(dir, "nope.bin")]);
        equal(missing.code, ClientExit.READ_ERROR, missing.stderr);
        match(oneLine(missing.stderr, "missing"), /cannot read .*nope\.bin: no such file$/);
        const directory = await cli(["put", where, dir, "d"]);
        equal(directory.code, ClientExit.READ_ERROR, directory.stderr);
        match(oneLine(directory.stderr, "dir"), /is a directory$/);
      });
      await t.step(
        "get into a directory or a missing directory: 23, before any request",
        async () => {
          const into = await cli(["get", where, "x.bin", dir]);
          equal(into.code, ClientExit.WRITE_ERROR, into.stderr);
          match(oneLine(into.stderr, "dir"), new RegExp(`cannot write ${dir}: is a directory$`));
          const nowhere = await cli(["get", where, "x.bin", join(dir, "no", "x.bin")]);
          equal(nowhere.code, ClientExit.WRITE_ERROR, nowhere.stderr);
          match(oneLine(nowhere.stderr, "nowhere"), /its directory does not exist$/);
        },
      );
      equal(s.requests.length, 0, "a local problem is found before the transfer");
      await t.step("--no-clobber on an existing file: 73, before any request", async () => {
        const local = join(dir, "kept.bin");
        await Deno.writeTextFile(local, "keep me");
        const r = await cli(["get", "--no-clobber", where, "x.bin", local]);
        equal(r.code, ClientExit.FILE_EXISTS, r.stderr);
        match(oneLine(r.stderr, "no-clobber"), /kept\.bin exists \(--no-clobber\)$/);
        equal(await Deno.readTextFile(local), "keep me");
        equal(s.requests.length, 0);
      });
    } finally {
      await s.close();
    }
    await t.step("bad command lines: 2", async () => {
      for (const args of [["get"], ["put", "127.0.0.1"], ["get", "--bogus", "h", "f"]]) {
        equal((await cli(args)).code, ClientExit.USAGE, args.join(" "));
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--help prints the exit-code table, and it matches the codes the client uses", async () => {
  for (const command of ["get", "put"]) {
    const r = await cli([command, "--help"]);
    equal(r.code, 0);
    const table = r.stdout.slice(r.stdout.indexOf("Exit codes"));
    for (const [name, code] of Object.entries(ClientExit)) {
      ok(new RegExp(`(^|\\s)${code}\\s`).test(table), `${command} --help lacks ${code} (${name})`);
    }
  }
});

Deno.test("get/put --json print one object with the outcome; scripts get one summary line", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-exit-" });
  const served = join(dir, "served");
  await Deno.mkdir(served);
  const data = await makeFile(join(served, "fw.bin"), 70_000, 5);
  const server = await startServer([served, "--write"], { write: true });
  const where = `127.0.0.1:${server.port}`;
  try {
    await t.step("a download", async () => {
      const r = await cli(["get", "--json", where, "fw.bin", join(dir, "fw.bin")]);
      equal(r.code, 0, r.stderr);
      equal(r.stderr, "");
      const o = JSON.parse(r.stdout);
      equal(r.stdout.trim().split("\n").length, 1);
      equal(o.event, "get");
      equal(o.outcome, "ok");
      equal(o.server, where);
      equal(o.remote, "fw.bin");
      equal(o.bytes, data.length);
      equal(o.tsize, data.length);
      ok(Number.isInteger(o.durationMs) && o.durationMs >= 0);
      deepEqual(o.negotiated, { blksize: 1468, windowsize: 16, timeoutMs: null });
      equal(o.acknowledged.tsize, String(data.length));
      equal(o.errorCode, null);
      equal(o.exitCode, 0);
    });
    await t.step("an upload", async () => {
      const r = await cli(["put", "--json", where, join(served, "fw.bin"), "copy.bin"]);
      equal(r.code, 0, r.stderr);
      const o = JSON.parse(r.stdout);
      equal(o.event, "put");
      equal(o.outcome, "ok");
      equal(o.bytes, data.length);
    });
    await t.step("a failure", async () => {
      const r = await cli(["get", "--json", where, "missing.bin", join(dir, "m.bin")]);
      equal(r.code, ClientExit.NOT_FOUND);
      equal(r.stderr, "");
      const o = JSON.parse(r.stdout);
      equal(o.outcome, "error");
      equal(o.errorCode, 1);
      equal(o.exitCode, 68);
      match(o.error, /ERROR 1/);
    });
    await t.step("--json with LOCAL '-' is a usage error", async () => {
      equal((await cli(["get", "--json", where, "fw.bin", "-"])).code, 2);
    });
    await t.step(
      "without a terminal: one summary line on stderr, none with -q or '-'",
      async () => {
        const r = await cli(["get", where, "fw.bin", join(dir, "fw2.bin")]);
        equal(r.code, 0, r.stderr);
        equal(r.stdout, "");
        const line = oneLine(r.stderr, "summary");
        match(
          line,
          new RegExp(`^tftpkit get: fw\\.bin from ${where}: received into .*fw2\\.bin: `),
        );
        match(line, /70000 bytes in \d+ ms \([\d.]+ [kM]?B\/s\)$/);
        equal((await cli(["get", "-q", where, "fw.bin", join(dir, "fw3.bin")])).stderr, "");
        const out = await cli(["get", where, "fw.bin", "-"]);
        equal(out.stderr, "");
        deepEqual(out.out, data);
      },
    );
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve --idle-exit: 3 when no request came, 4 when requests came and were refused", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-exit-" });
  try {
    await t.step("no request at all: 3, and the log says idle", async () => {
      const s = await startServer([dir, "--once", "--idle-exit", "1"]);
      equal(await s.exited, ServeExit.IDLE, s.lines.join("\n"));
      ok(s.lines.some((l) => /no transfer for 1 s \(--idle-exit\)/.test(l)));
    });
    await t.step("a refused request, then idle: 4", async () => {
      const s = await startServer([dir, "--once", "--idle-exit", "1"]);
      const r = await cli(["get", `127.0.0.1:${s.port}`, "missing.bin", "-"]);
      equal(r.code, ClientExit.NOT_FOUND);
      equal(await s.exited, ServeExit.UNFINISHED, s.lines.join("\n"));
      ok(s.lines.some((l) => /1 request, 0 of 1 transfers done/.test(l)), s.lines.join("\n"));
    });
    await t.step("serve --help lists every server exit code", async () => {
      const r = await cli(["serve", "--help"]);
      const table = r.stdout.slice(r.stdout.indexOf("Exit codes"));
      for (const [name, code] of Object.entries(ServeExit)) {
        ok(new RegExp(`(^|\\s)${code}\\s`).test(table), `serve --help lacks ${code} (${name})`);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
