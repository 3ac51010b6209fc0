/**
 * Field compatibility: what PXE ROMs, UEFI firmware, bootloaders, BMCs and switches send (see
 * shared/notes/field-clients.md), replayed with a raw UDP peer and real clients.
 */

import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { join } from "node:path";
import { RawPeer, request } from "./support/raw.ts";
import { MAIN, makeFile, ROOT, run, type ServerProcess, startServer } from "./support/server.ts";
import { errorOf, rawDownload, RawErrorReply, withPeer } from "./support/raw_transfer.ts";

interface Tree {
  dir: string;
  files: Map<string, Uint8Array>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A served tree shaped like a PXE/WDS boot root. */
async function tree(): Promise<Tree> {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit_field_" });
  await Deno.chmod(dir, 0o755);
  const files = new Map<string, Uint8Array>();
  const sizes: Record<string, number> = {
    "pxelinux.0": 3000,
    "Boot/BCD": 2000,
    "sub/file": 1500,
    "images/kernel": 2600,
    "dup/README": 700,
    "dup/Readme": 800,
    "big.img": 40 * 512 + 33,
    "empty": 0,
  };
  let seed = 3;
  for (const [name, size] of Object.entries(sizes)) {
    const parent = name.includes("/") ? join(dir, name.slice(0, name.lastIndexOf("/"))) : dir;
    await Deno.mkdir(parent, { recursive: true });
    files.set(name, await makeFile(join(dir, name), size, seed++));
  }
  return {
    dir,
    files,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function bytes(t: Tree, name: string): Uint8Array {
  const f = t.files.get(name);
  if (!f) throw new Error(`no fixture ${name}`);
  return f;
}

async function withServer(
  args: string[],
  fn: (server: ServerProcess) => Promise<void>,
): Promise<void> {
  const server = await startServer(args);
  try {
    await fn(server);
  } finally {
    await server.stop("SIGKILL");
  }
}

/** Downloads `name` and returns the data, or the ERROR code as a number. */
async function getFile(
  port: number,
  name: string,
  options: Record<string, string> = {},
): Promise<Uint8Array | number> {
  return await withPeer(async (peer) => {
    try {
      return (await rawDownload(peer, port, name, { options })).data;
    } catch (e) {
      if (e instanceof RawErrorReply) return e.code;
      throw e;
    }
  });
}

Deno.test("names from PXE, iPXE and Windows boot clients resolve from the root", async (t) => {
  await using fx = await tree();
  await withServer([fx.dir], async (server) => {
    await t.step("/pxelinux.0, //pxelinux.0 and pxelinux.0 are the same file", async () => {
      for (const name of ["pxelinux.0", "/pxelinux.0", "//pxelinux.0", "/./pxelinux.0"]) {
        deepEqual(await getFile(server.port, name), bytes(fx, "pxelinux.0"), name);
      }
    });
    await t.step("\\Boot\\BCD finds Boot/BCD", async () => {
      deepEqual(await getFile(server.port, "\\Boot\\BCD"), bytes(fx, "Boot/BCD"));
      deepEqual(await getFile(server.port, "Boot\\BCD"), bytes(fx, "Boot/BCD"));
    });
    await t.step("without --ignore-case, BOOT/bcd is ERROR 1", async () => {
      equal(await getFile(server.port, "BOOT/bcd"), 1);
      equal(await getFile(server.port, "\\boot\\bcd"), 1);
    });
    await t.step("the tftp-hpa client fetches /sub/file", async () => {
      const out = await Deno.makeTempDir({ prefix: "tftpkit_field_out_" });
      try {
        const r = await run("tftp", [
          "-m",
          "binary",
          "127.0.0.1",
          String(server.port),
          "-c",
          "get",
          "/sub/file",
          join(out, "file"),
        ], { timeoutMs: 30_000 });
        equal(r.code, 0, r.stderr + r.stdout);
        deepEqual(await Deno.readFile(join(out, "file")), bytes(fx, "sub/file"));
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    });
  });
});

Deno.test("--ignore-case matches names that differ only in letter case", async (t) => {
  await using fx = await tree();
  await withServer([fx.dir, "--ignore-case"], async (server) => {
    await t.step("BOOT/bcd and \\boot\\bcd find Boot/BCD", async () => {
      deepEqual(await getFile(server.port, "BOOT/bcd"), bytes(fx, "Boot/BCD"));
      deepEqual(await getFile(server.port, "\\boot\\bcd"), bytes(fx, "Boot/BCD"));
      deepEqual(await getFile(server.port, "PXELINUX.0"), bytes(fx, "pxelinux.0"));
    });
    await t.step("a name matching no entry in any case is still ERROR 1", async () => {
      equal(await getFile(server.port, "BOOT/bcd.old"), 1);
    });
    // dup/ holds README and Readme. An exact match always wins; without one, the first match in
    // code-point order is used ("README" < "Readme" because 'E' < 'e') and a warning is logged.
    await t.step("of two files differing only in case, the exact match wins", async () => {
      deepEqual(await getFile(server.port, "dup/README"), bytes(fx, "dup/README"));
      deepEqual(await getFile(server.port, "dup/Readme"), bytes(fx, "dup/Readme"));
      deepEqual(await getFile(server.port, "DUP/Readme"), bytes(fx, "dup/Readme"));
    });
    await t.step("without an exact match, the first in code-point order wins", async () => {
      deepEqual(await getFile(server.port, "dup/readme"), bytes(fx, "dup/README"));
      deepEqual(await getFile(server.port, "DUP/rEADME"), bytes(fx, "dup/README"));
      await server.waitFor(/matches 2 entries ignoring case; using README/);
    });
  });
});

Deno.test("--map rewrites names by rule and cannot lead out of the root", async (t) => {
  await using fx = await tree();
  const rules = join(fx.dir, "..", `${fx.dir.split("/").pop()}.map`);
  await Deno.writeTextFile(
    rules,
    [
      "# firmware is kept under images/",
      "",
      "^fw/(.*)$ images/$1",
      "   # an indented comment",
      "^up/(.*)$ ../$1",
      "^(BCD)$ Boot/$1",
    ].join("\n") + "\n",
  );
  try {
    await withServer([fx.dir, "--map", rules], async (server) => {
      await t.step("fw/kernel is served from images/kernel", async () => {
        deepEqual(await getFile(server.port, "fw/kernel"), bytes(fx, "images/kernel"));
        deepEqual(await getFile(server.port, "BCD"), bytes(fx, "Boot/BCD"));
      });
      await t.step("names no rule matches are unchanged", async () => {
        deepEqual(await getFile(server.port, "images/kernel"), bytes(fx, "images/kernel"));
        equal(await getFile(server.port, "fw"), 1);
      });
      await t.step("a rule producing ../x is refused with ERROR 2", async () => {
        equal(await getFile(server.port, "up/pxelinux.0"), 2);
        equal(await getFile(server.port, "fw/../../pxelinux.0"), 2);
      });
    });
  } finally {
    await Deno.remove(rules);
  }
});

Deno.test("a --map file with an invalid expression on line 3 stops serve with exit 2", async () => {
  await using fx = await tree();
  const rules = join(fx.dir, "..", `${fx.dir.split("/").pop()}.bad.map`);
  await Deno.writeTextFile(rules, "# comment\n^a$ b\n^(unclosed x\n^c$ d\n");
  try {
    const server = await startServer([fx.dir, "--map", rules], { expectExit: true });
    equal(await server.exited, 2, server.lines.join("\n"));
    const text = server.lines.join("\n");
    match(text, /line 3/);
    ok(!/listening on/.test(text), "it never listened");
  } finally {
    await Deno.remove(rules);
  }
});

Deno.test("a UEFI tsize probe ends quietly, is logged as a probe, then the file is served", async () => {
  await using fx = await tree();
  await withServer([fx.dir, "--timeout", "1"], async (server) => {
    const probe = new RawPeer();
    try {
      await probe.send(
        request("RRQ", "pxelinux.0", "octet", { tsize: "0", blksize: "1468" }),
        server.port,
      );
      const o = await probe.expect();
      deepEqual(o.packet, {
        op: "OACK",
        options: new Map([["tsize", "3000"], ["blksize", "1468"]]),
      });
      await probe.send(errorOf(8, "User aborted the transfer"), o.from.port);
      deepEqual(await probe.drain(2500), [], "no packet after the client's ERROR 8");
    } finally {
      probe.close();
    }
    const line = await server.waitFor(new RegExp(`127\\.0\\.0\\.1:${probe.port} RRQ`));
    match(line, /\bINFO\b.*size probe/);
    await withPeer(async (peer) => {
      const r = await rawDownload(peer, server.port, "pxelinux.0", {
        options: { blksize: "1468" },
      });
      deepEqual(Object.fromEntries(r.oack!), { blksize: "1468" });
      deepEqual(r.data, bytes(fx, "pxelinux.0"));
      const done = await server.waitFor(new RegExp(`127\\.0\\.0\\.1:${peer.port} RRQ`));
      match(done, /\bINFO\b.* ok: sent 3000 bytes/);
    });
    ok(!server.lines.some((l) => /WARN|ERROR/.test(l)), server.lines.join("\n"));
  });
});

Deno.test("an empty file gets an OACK without tsize, and curl downloads it", async (t) => {
  await using fx = await tree();
  await withServer([fx.dir], async (server) => {
    await t.step("tsize 0 + blksize on an empty file: OACK carries blksize only", async () => {
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "empty", {
          options: { tsize: "0", blksize: "1468" },
        });
        deepEqual(Object.fromEntries(r.oack!), { blksize: "1468" });
        equal(r.data.length, 0);
        deepEqual(r.wireBlocks, [1]);
      });
    });
    await t.step("curl tftp:// gets an empty file and a non-empty one", async () => {
      const out = await Deno.makeTempDir({ prefix: "tftpkit_field_curl_" });
      try {
        for (const name of ["empty", "pxelinux.0"]) {
          const r = await run("curl", [
            "-sS",
            "--max-time",
            "30",
            "-o",
            join(out, name),
            `tftp://127.0.0.1:${server.port}/${name}`,
          ], { timeoutMs: 40_000 });
          equal(r.code, 0, r.stderr);
          deepEqual(await Deno.readFile(join(out, name)), bytes(fx, name), name);
        }
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    });
  });
});

Deno.test("a missing file requested with options gets ERROR 1 and never an OACK", async () => {
  await using fx = await tree();
  await withServer([fx.dir, "--timeout", "1"], async (server) => {
    for (const name of ["bootcfg.txt", "/pxelinux.cfg/01-aa-bb-cc-dd-ee-ff", "Boot/missing"]) {
      await withPeer(async (peer) => {
        await peer.send(
          request("RRQ", name, "octet", { tsize: "0", blksize: "1468" }),
          server.port,
        );
        const first = await peer.expect();
        equal(first.packet.op, "ERROR", name);
        if (first.packet.op === "ERROR") equal(first.packet.code, 1);
        deepEqual(await peer.drain(1300), [], "nothing after the ERROR");
      });
    }
  });
});

Deno.test("--single-port runs every transfer over the listening port", async (t) => {
  await using fx = await tree();
  await withServer([fx.dir, "--single-port", "--timeout", "1"], async (server) => {
    await t.step("DATA comes from the listening port itself", async () => {
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "pxelinux.0");
        equal(r.tid.port, server.port);
        deepEqual(r.data, bytes(fx, "pxelinux.0"));
      });
    });
    await t.step("two concurrent clients each get their own file", async () => {
      let arrived = 0;
      let release!: () => void;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const both = new Promise<void>((resolve, reject) => {
        release = () => {
          clearTimeout(timer);
          resolve();
        };
        timer = setTimeout(() => reject(new Error("the other transfer never started")), 15_000);
      });
      // Each client holds its ACK 1 until both have DATA 1: the transfers overlap for sure.
      const hold = async (block: number) => {
        if (block !== 1) return;
        if (++arrived === 2) release();
        await both;
      };
      const [a, b] = await Promise.all([
        withPeer((peer) => rawDownload(peer, server.port, "big.img", { onBlock: hold })),
        withPeer((peer) => rawDownload(peer, server.port, "Boot/BCD", { onBlock: hold })),
      ]);
      equal(a.tid.port, server.port);
      equal(b.tid.port, server.port);
      deepEqual(a.data, bytes(fx, "big.img"));
      deepEqual(b.data, bytes(fx, "Boot/BCD"));
    });
    await t.step("a windowed transfer works", async () => {
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "big.img", {
          options: { windowsize: "4", blksize: "1024" },
        });
        equal(r.tid.port, server.port);
        equal(r.windowsize, 4);
        deepEqual(r.data, bytes(fx, "big.img"));
        for (const [block, n] of r.counts) equal(n, 1, `DATA ${block}`);
      });
    });
    await t.step("an unacknowledged DATA is resent after the timeout", async () => {
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "sub/file", {
          onBlock: async (block, tid) => {
            if (block !== 1) return;
            const start = performance.now();
            const again = await peer.expect(5000);
            deepEqual(again.packet.op === "DATA" && again.packet.block, 1);
            equal(again.from.port, tid.port);
            const waited = performance.now() - start;
            ok(waited >= 800, `resent after ${Math.round(waited)} ms`);
          },
        });
        equal(r.tid.port, server.port);
        deepEqual(r.data, bytes(fx, "sub/file"));
      });
    });
    await t.step("a stranger's ACK to the port gets ERROR 5 and disturbs nothing", async () => {
      await withPeer(async (peer) => {
        const stranger = new RawPeer();
        try {
          const r = await rawDownload(peer, server.port, "sub/file", {
            onBlock: async (block) => {
              if (block !== 2) return;
              await stranger.send(new Uint8Array([0, 4, 0, 2]), server.port);
              const e = await stranger.expect();
              deepEqual(e.packet.op === "ERROR" && e.packet.code, 5);
            },
          });
          deepEqual(r.data, bytes(fx, "sub/file"));
          for (const [block, n] of r.counts) equal(n, 1, `DATA ${block}`);
        } finally {
          stranger.close();
        }
      });
    });
  });
});

/** Runs a command and throws when it fails. */
async function must(cmd: string, args: string[]): Promise<void> {
  const r = await run(cmd, args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
}

/**
 * Starts the server inside `ns` with `perms` and `args`, and resolves with its port, its output
 * and a stop function.
 */
async function serveInNetns(ns: string, perms: string[], args: string[]) {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "run", ...perms, MAIN, "serve", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const collect = async (s: ReadableStream<Uint8Array>) => {
    for await (const l of s.pipeThrough(new TextDecoderStream())) lines.push(l);
  };
  const pumps = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await pumps;
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = /listening on .*?:(\d+)\s/.exec(lines.join(""));
    if (m) return { port: Number(m[1]), output: () => lines.join(""), stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`server did not start:\n${lines.join("")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("replies come from the address the request was sent to", async (t) => {
  await using fx = await tree();
  const ns = `tftpkit-test-${crypto.randomUUID().slice(0, 8)}`;
  await must("ip", ["netns", "add", ns]);
  try {
    await must("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    await must("ip", ["netns", "exec", ns, "ip", "addr", "add", "10.77.0.1/32", "dev", "lo"]);
    // The client sends from 127.0.0.1 to 10.77.0.1: a server that let the kernel pick the
    // source address would answer from 127.0.0.1 (the route back), not from 10.77.0.1.
    const check = async (port: number) => {
      for (const address of ["10.77.0.1", "127.0.0.1"]) {
        const r = await run("ip", [
          "netns",
          "exec",
          ns,
          Deno.execPath(),
          "run",
          "--allow-net",
          join(ROOT, "tests/support/netns_client.ts"),
          address,
          String(port),
          "sub/file",
        ], { cwd: ROOT, timeoutMs: 40_000 });
        equal(r.code, 0, r.stdout + r.stderr);
        const result = JSON.parse(r.stdout.trim().split("\n").pop()!);
        equal(result.froms.length, 1, JSON.stringify(result.froms));
        const [host, tidPort] = result.froms[0].split(":");
        equal(host, address, `DATA for a request to ${address} came from ${host}`);
        notEqual(Number(tidPort), port);
        const got = Uint8Array.from(atob(result.data), (c) => c.charCodeAt(0));
        deepEqual(got, bytes(fx, "sub/file"));
      }
    };
    await t.step(
      "listening on every address it can list (--allow-sys=networkInterfaces)",
      async () => {
        const s = await serveInNetns(
          ns,
          ["--allow-net", "--allow-read", "--allow-sys=networkInterfaces"],
          [fx.dir, "--port", "0"],
        );
        try {
          match(s.output(), /listening on (?=.*10\.77\.0\.1:)(?=.*127\.0\.0\.1:)/);
          await check(s.port);
        } finally {
          await s.stop();
        }
      },
    );
    await t.step(
      "with exactly --allow-net --allow-read and --address for each address",
      async () => {
        const s = await serveInNetns(ns, ["--allow-net", "--allow-read"], [
          fx.dir,
          "--port",
          "0",
          "--address",
          "10.77.0.1",
          "--address",
          "127.0.0.1",
        ]);
        try {
          await check(s.port);
        } finally {
          await s.stop();
        }
      },
    );
    await t.step(
      "without a way to list addresses it says so and uses one wildcard socket",
      async () => {
        const s = await serveInNetns(ns, ["--allow-net", "--allow-read"], [fx.dir, "--port", "0"]);
        try {
          match(s.output(), /cannot list local addresses \(grant --allow-sys=networkInterfaces\)/);
          match(s.output(), /listening on \[::\]:\d+/);
        } finally {
          await s.stop();
        }
      },
    );
  } finally {
    await run("ip", ["netns", "del", ns]);
  }
});
