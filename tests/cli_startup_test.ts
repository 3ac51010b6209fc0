/**
 * `serve` refuses to start when it cannot serve, with exit 1 and one line naming the problem: an
 * unreadable single file or directory, a `--write` directory it cannot write, a dead origin with
 * `--once` (only a warning without). Refusals caused by the operator's own set-up (permission
 * denied on the served tree, origin unreachable) are logged at WARNING, others at INFO.
 *
 * The tests run as root: the server is started without the capabilities that let root read and
 * write anything (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), as an unprivileged service would run.
 */

import { equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { oneLine } from "./support/cli_fixture.ts";
import { MAIN, ROOT, run, type ServerProcess, startServer } from "./support/server.ts";
import { RawPeer, request } from "./support/raw.ts";

/** Runs like a service without root's file-access override. */
const NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"];
const LOCAL = ["--address", "127.0.0.1", "--port", "0"];

/** `serve ARGS` without root's file-access override, to completion. */
function serveNoDac(args: string[]) {
  return run(NO_DAC[0], [
    ...NO_DAC.slice(1),
    Deno.execPath(),
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    MAIN,
    "serve",
    // Safe defaults first (a later flag wins).
    ...LOCAL,
    ...args,
  ], { cwd: ROOT, timeoutMs: 30_000 });
}

/** A TCP port nothing listens on (a dead origin). */
function deadPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Sends one RRQ and returns the ERROR's code (or throws). */
async function refusedCode(port: number, name: string): Promise<number> {
  const peer = new RawPeer();
  try {
    await peer.send(request("RRQ", name), port);
    const got = await peer.expect(8000);
    if (got.packet.op !== "ERROR") throw new Error(`expected an ERROR, got ${got.packet.op}`);
    return got.packet.code;
  } finally {
    peer.close();
  }
}

Deno.test("serve exits 1 naming the problem when it cannot read or write what it serves", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-start-" });
  try {
    const secret = join(dir, "floppy.img");
    await Deno.writeTextFile(secret, "image");
    await Deno.chmod(secret, 0o000);
    const locked = join(dir, "locked");
    await Deno.mkdir(locked);
    await Deno.chmod(locked, 0o000);
    const readOnly = join(dir, "ro");
    await Deno.mkdir(readOnly);
    await Deno.chmod(readOnly, 0o555);
    const cases: Array<[string, string[], RegExp]> = [
      [
        "an unreadable single file",
        [secret],
        /^tftpkit serve: cannot read .*floppy\.img: permission denied$/,
      ],
      [
        "an unsearchable directory",
        [locked],
        /^tftpkit serve: cannot read the directory .*locked: permission denied$/,
      ],
      [
        "--write on a directory it cannot write",
        [readOnly, "--write"],
        /^tftpkit serve: --write: cannot write in .*ro: permission denied$/,
      ],
    ];
    for (const [what, args, message] of cases) {
      await t.step(what, async () => {
        const r = await serveNoDac(args);
        equal(r.code, 1, `${what}: exit ${r.code}\n${r.stdout}${r.stderr}`);
        ok(!r.stdout.includes("listening on"), r.stdout);
        match(oneLine(r.stderr, what), message);
      });
    }
    await t.step("with --log-format json the failure is one JSON object", async () => {
      const r = await serveNoDac([secret, "--log-format", "json"]);
      equal(r.code, 1);
      const o = JSON.parse(oneLine(r.stderr, "json"));
      equal(o.level, "error");
      equal(o.event, "startup-failed");
      equal(o.exitCode, 1);
      match(o.error, /cannot read .*floppy\.img: permission denied/);
    });
    await t.step("usage errors are JSON too", async () => {
      const r = await serveNoDac([dir, "--log-format", "json", "--port", "99999"]);
      equal(r.code, 2);
      const o = JSON.parse(oneLine(r.stderr, "json"));
      equal(o.event, "usage-error");
      match(o.error, /--port/);
    });
  } finally {
    await Deno.chmod(join(dir, "locked"), 0o755).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("permission denied inside the served tree is refused at WARNING, not found at INFO", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-start-" });
  let s: ServerProcess | undefined;
  try {
    await Deno.writeTextFile(join(dir, "secret.bin"), "x");
    await Deno.chmod(join(dir, "secret.bin"), 0o000);
    s = await startServer([dir, "--log-format", "json"], { wrap: NO_DAC });
    equal(await refusedCode(s.port, "secret.bin"), 2);
    equal(await refusedCode(s.port, "missing.bin"), 1);
    const records = () => s!.lines.map((l) => JSON.parse(l)).filter((r) => r.event === "transfer");
    await s.waitFor(/"file":"missing\.bin"/);
    const secret = records().find((r) => r.file === "secret.bin");
    const missing = records().find((r) => r.file === "missing.bin");
    equal(secret.level, "warning", JSON.stringify(secret));
    equal(secret.outcome, "refused");
    equal(missing.level, "info", JSON.stringify(missing));
  } finally {
    await s?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve URL probes the origin: a warning when it is down, exit 1 with --once", async (t) => {
  const dead = `http://user:hunter2@127.0.0.1:${deadPort()}/fw.img?token=s3cret`;
  await t.step("--once: exit 1, one line naming the origin without its secrets", async () => {
    const r = await run(Deno.execPath(), [
      "run",
      "--allow-net",
      "--allow-read",
      MAIN,
      "serve",
      dead,
      "--once",
      ...LOCAL,
    ], { cwd: ROOT });
    equal(r.code, 1, r.stdout + r.stderr);
    const line = oneLine(r.stderr, "dead origin");
    match(line, /^tftpkit serve: origin http:\/\/.*127\.0\.0\.1:\d+\/fw\.img.*: unreachable/);
    ok(!/hunter2|s3cret/.test(line), line);
  });
  await t.step("without --once: a WARNING, then it serves and refuses at WARNING", async () => {
    const s = await startServer([dead]);
    try {
      const warning = s.lines.find((l) => / WARNING /.test(l));
      ok(warning, s.lines.join("\n"));
      match(warning, /origin .*: unreachable/);
      equal(await refusedCode(s.port, "x"), 0);
      const refusal = await s.waitFor(/RRQ "x" refused/);
      match(refusal, / WARNING +.*origin unreachable/);
      ok(!s.lines.some((l) => /hunter2|s3cret/.test(l)), s.lines.join("\n"));
    } finally {
      await s.stop();
    }
  });
  await t.step("a live origin with a missing single URL: a warning too", async () => {
    const origin = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("no", { status: 404 }),
    );
    try {
      const s = await startServer([`http://127.0.0.1:${origin.addr.port}/gone.img`]);
      try {
        ok(s.lines.some((l) => / WARNING .*not found \(HTTP 404\)/.test(l)), s.lines.join("\n"));
      } finally {
        await s.stop();
      }
      const tree = await startServer(["--origin", `http://127.0.0.1:${origin.addr.port}/pxe/`]);
      try {
        ok(!tree.lines.some((l) => / WARNING /.test(l)), tree.lines.join("\n"));
      } finally {
        await tree.stop();
      }
    } finally {
      await origin.shutdown();
    }
  });
});
