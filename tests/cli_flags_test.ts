/**
 * Flags that fit together and messages that name them: conflicting `serve` flags exit 2 naming
 * both, `--address ADDR:PORT` (tftpd-hpa's habit) and repeated addresses, `serve` without PATH,
 * `help COMMAND`, the closest command or flag suggested, bare `tftpkit` on stderr, tftp-hpa's
 * mode names, RFC 3617 `;mode=`, `put LOCAL tftp://…`, `--map` on origin names, `serve -q`,
 * help texts without Deno advice, and `deno task serve DIR --write`.
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { oneLine, tftpkit } from "./support/cli_fixture.ts";
import { cli, makeFile, ROOT, run, type ServerProcess, startServer } from "./support/server.ts";
import { permissionFlags } from "../scripts/release/plan.ts";

const LOCAL = ["--address", "127.0.0.1", "--port", "0"];

Deno.test("conflicting serve flags exit 2 with one line naming both", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-flags-" });
  try {
    const file = join(dir, "one.img");
    await makeFile(file, 100);
    const map = join(dir, "map.txt");
    await Deno.writeTextFile(map, "^a$ b\n");
    const url = "http://127.0.0.1:1/x/";
    const cases: Array<[string[], string[]]> = [
      [[dir, "--once", "--max-transfers", "2"], ["--once", "--max-transfers"]],
      [[dir, "--single-port", "--port-range", "50000-50010"], ["--single-port", "--port-range"]],
      [[file, "--ignore-case"], ["--ignore-case", "single file"]],
      [["--origin", url, "--ignore-case"], ["--ignore-case", "--origin"]],
      [[url, "--ignore-case"], ["--ignore-case", "URL"]],
      [[file, "--map", map], ["--map", "single file"]],
      [[url + "one.img", "--map", map], ["--map", "single URL"]],
      [[dir, "-q", "-v"], ["--quiet", "--verbose"]],
      [[], ["missing PATH"]],
    ];
    await Promise.all(cases.map(async ([args, names]) => {
      const r = await tftpkit(["serve", ...LOCAL, ...args], { timeoutMs: 30_000 });
      const what = `serve ${args.join(" ")}`;
      equal(r.code, 2, `${what}: exit ${r.code}\n${r.stdout}${r.stderr}`);
      const line = oneLine(r.stderr, what);
      for (const name of names) ok(line.includes(name), `${what}: ${line} does not name ${name}`);
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--address ADDR:PORT gives the port too, and a repeated address is listened on once", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-flags-" });
  let s: ServerProcess | undefined;
  try {
    const probe = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    await t.step("127.0.0.1:PORT, given twice", async () => {
      s = await startServer([dir, "--address", `127.0.0.1:${port}`, "--address", "127.0.0.1"]);
      equal(s.port, port);
      match(s.lines[0], new RegExp(`listening on 127\\.0\\.0\\.1:${port} serving`));
      equal(await s.stop(), 0);
    });
    await t.step("[::1]:PORT", async () => {
      s = await startServer([dir, "--address", `[::1]:${port}`]);
      match(s.lines[0], new RegExp(`listening on \\[::1\\]:${port} serving`));
      equal(await s.stop(), 0);
    });
    await t.step("a bad one says how to write it", async () => {
      const r = await tftpkit(["serve", dir, "--address", "localhost:69"]);
      equal(r.code, 2);
      match(oneLine(r.stderr, "bad address"), /--address .*192\.0\.2\.10:69.*got 'localhost:69'/);
    });
  } finally {
    await s?.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tftpkit alone, help COMMAND, and suggestions for unknown commands and flags", async (t) => {
  await t.step("bare tftpkit: usage on stderr, exit 2", async () => {
    const r = await tftpkit([]);
    equal(r.code, 2);
    equal(r.stdout, "");
    match(r.stderr, /^tftpkit \S+: a TFTP server and client/);
  });
  for (const command of ["serve", "get", "put"]) {
    await t.step(`help ${command} = ${command} --help`, async () => {
      const a = await tftpkit(["help", command]);
      const b = await tftpkit([command, "--help"]);
      equal(a.code, 0);
      equal(a.stdout, b.stdout);
      match(a.stdout, new RegExp(`^Usage: tftpkit ${command} `));
      ok(!a.stdout.includes("--allow-"), `${command} help gives Deno advice`);
    });
  }
  const cases: Array<[string[], RegExp]> = [
    [["serv", "demo"], /unknown command 'serv' \(did you mean 'serve'\?\)/],
    [["gte"], /unknown command 'gte' \(did you mean 'get'\?\)/],
    [["help", "pu"], /no command 'pu' \(did you mean 'put'\?\)/],
    [["serve", "demo", "--prot", "69"], /unknown option '--prot' \(did you mean '--port'\?\)/],
    [
      ["get", "--blocksize", "9", "h", "f"],
      /unknown option '--blocksize' \(did you mean '--blksize'\?\)/,
    ],
    [["put", "--no-clober", "h", "f"], /unknown option '--no-clober'/],
  ];
  for (const [args, pattern] of cases) {
    await t.step(args.join(" "), async () => {
      const r = await tftpkit(args);
      equal(r.code, 2, r.stderr);
      match(oneLine(r.stderr, args.join(" ")), pattern);
    });
  }
});

Deno.test("client modes and URIs: binary/ascii, ;mode=netascii, put LOCAL tftp://host/name", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-flags-" });
  const served = join(dir, "served");
  await Deno.mkdir(served);
  const text = "line one\nline two\n";
  await Deno.writeTextFile(join(served, "cfg.txt"), text);
  const s = await startServer([served, "--write", "--log-format", "json"], { write: true });
  const where = `127.0.0.1:${s.port}`;
  const modeOf = async (file: string) => {
    const line = await s.waitFor(new RegExp(`"file":"${file}"`));
    return JSON.parse(line).mode;
  };
  try {
    await t.step("--mode ascii is netascii, --mode binary is octet", async () => {
      let r = await cli(["get", "--mode", "ascii", where, "cfg.txt", join(dir, "a.txt")]);
      equal(r.code, 0, r.stderr);
      equal(await Deno.readTextFile(join(dir, "a.txt")), text);
      r = await cli(["put", "--mode", "ascii", where, join(dir, "a.txt"), "ascii.txt"]);
      equal(r.code, 0, r.stderr);
      equal(await modeOf("ascii.txt"), "netascii");
      r = await cli(["put", "--mode", "binary", where, join(dir, "a.txt"), "binary.txt"]);
      equal(r.code, 0, r.stderr);
      equal(await modeOf("binary.txt"), "octet");
    });
    await t.step("tftp://host/file;mode=netascii is honoured", async () => {
      const r = await cli(["get", `tftp://${where}/cfg.txt;mode=netascii`, join(dir, "b.txt")]);
      equal(r.code, 0, r.stderr);
      equal(await Deno.readTextFile(join(dir, "b.txt")), text);
      const records = s.lines.map((l) => JSON.parse(l)).filter((o) => o.file === "cfg.txt");
      equal(records.at(-1).mode, "netascii");
      const clash = await cli(["get", "--mode", "octet", `tftp://${where}/cfg.txt;mode=netascii`]);
      equal(clash.code, 2);
      match(clash.stderr, /--mode octet and the URI's ;mode=netascii disagree/);
    });
    await t.step("put LOCAL tftp://host/name", async () => {
      const r = await cli(["put", join(dir, "b.txt"), `tftp://${where}/curl-order.txt`]);
      equal(r.code, 0, r.stderr);
      equal(await Deno.readTextFile(join(served, "curl-order.txt")), text);
    });
  } finally {
    await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--map rewrites the names asked of an origin", async () => {
  const origin = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/pxe/images/kernel"
        ? new Response("kernel bytes")
        : new Response("no", { status: 404 }),
  );
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-flags-" });
  const map = join(dir, "map.txt");
  await Deno.writeTextFile(map, "^fw/(.*)$ images/$1\n");
  const s = await startServer([
    "--origin",
    `http://127.0.0.1:${origin.addr.port}/pxe/`,
    "--map",
    map,
  ]);
  try {
    const r = await cli(["get", `127.0.0.1:${s.port}`, "fw/kernel", "-"]);
    equal(r.code, 0, r.stderr);
    equal(r.stdout, "kernel bytes");
  } finally {
    await s.stop();
    await origin.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve -q logs the start line and problems, not every transfer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-flags-" });
  await makeFile(join(dir, "a.bin"), 1000);
  const s = await startServer([dir, "-q"]);
  try {
    const r = await cli(["get", `127.0.0.1:${s.port}`, "a.bin", "-"]);
    equal(r.code, 0, r.stderr);
    equal(await s.stop(), 0);
    deepEqual(s.lines.length, 1, s.lines.join("\n"));
    match(s.lines[0], /listening on /);
  } finally {
    await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task serve DIR --write accepts uploads: the task has the binary's permissions", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks;
  const baked = permissionFlags();
  for (
    const flag of [
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-sys=networkInterfaces,statfs",
    ]
  ) {
    ok(tasks.serve.includes(flag) && tasks.tftpkit.includes(flag), `the tasks lack ${flag}`);
    ok(baked.includes(flag), `the binaries lack ${flag}`);
  }
  // The task's command line exactly (run directly, so that the server's PID is ours to stop).
  const [deno, ...words] = tasks.serve.split(/\s+/);
  equal(deno, "deno");
  equal(words.pop(), "serve");
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-flags-" });
  const src = join(dir, "..", `${crypto.randomUUID()}.cfg`);
  let s: ServerProcess | undefined;
  try {
    s = await startServer([dir, "--write"], { command: [Deno.execPath(), ...words] });
    await Deno.writeTextFile(src, "hostname sw1\n");
    const r = await run("curl", ["-sS", "-T", src, `tftp://127.0.0.1:${s.port}/sw1.cfg`]);
    equal(r.code, 0, r.stderr);
    equal(await Deno.readTextFile(join(dir, "sw1.cfg")), "hostname sw1\n");
  } finally {
    await s?.stop();
    await Deno.remove(src).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
