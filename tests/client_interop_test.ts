/**
 * Our client — the CLI (`main.ts get/put`) and the library (`get`, `put`, `download`) — against
 * the C servers tftpd-hpa, atftpd and dnsmasq. Every transfer is compared byte for byte.
 */

import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { get, PeerError, put } from "../src/mod.ts";
import { atftpdPath, cli, makeFile } from "./support/server.ts";
import { RawPeer, request } from "./support/raw.ts";
import {
  freeUdpPort,
  getArgs,
  HOST,
  libGet,
  listDir,
  putArgs,
  sameBytes,
} from "./support/client_peers.ts";

const enc = new TextEncoder();

// --- helpers ----------------------------------------------------------------------------------

/** A C server daemon started for one test. */
interface Daemon {
  stop(): Promise<string>;
}

/** Waits until something on `hostname:port` answers a TFTP request (with anything). */
async function waitAnswering(
  hostname: string,
  port: number,
  exited: () => boolean,
  timeoutMs = 15_000,
): Promise<void> {
  const peer = new RawPeer();
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !exited()) {
      await peer.send(request("RRQ", "tftpkit-probe-does-not-exist"), port, hostname);
      if (await peer.recv(300)) return;
    }
    throw new Error(`nothing answers on ${hostname}:${port}`);
  } finally {
    peer.close();
  }
}

/** Starts `cmd args` and waits until it answers on `hostname:port`. */
async function startDaemon(
  cmd: string,
  args: string[],
  hostname: string,
  port: number,
): Promise<Daemon> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let done = false;
  const output = child.output().then((o) => {
    done = true;
    const dec = new TextDecoder();
    return `exit ${o.code}\n${dec.decode(o.stdout)}${dec.decode(o.stderr)}`;
  });
  const stop = async () => {
    if (!done) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
    }
    return await output;
  };
  try {
    await waitAnswering(hostname, port, () => done);
  } catch (e) {
    const log = await stop();
    throw new Error(`${cmd} did not start: ${(e as Error).message}\n${log}`);
  }
  return { stop };
}

/** Starts a daemon on a fresh port, retrying when another process took the port first. */
async function startOnFreePort(
  cmd: string,
  args: (port: number) => string[],
): Promise<Daemon & { port: number }> {
  let last: unknown;
  for (let i = 0; i < 5; i++) {
    const port = freeUdpPort();
    try {
      return { ...(await startDaemon(cmd, args(port), HOST, port)), port };
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

/** A served directory the C servers (which may run as nobody) can read and write. */
async function publicDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-client-" });
  await Deno.chmod(dir, 0o777);
  return dir;
}

async function publicFile(path: string, size: number, seed: number): Promise<Uint8Array> {
  const data = await makeFile(path, size, seed);
  await Deno.chmod(path, 0o644);
  return data;
}

// --- tftpd-hpa --------------------------------------------------------------------------------

Deno.test("our client downloads from and uploads to tftpd-hpa (no windowsize)", async (t) => {
  const root = await publicDir();
  const local = await Deno.makeTempDir({ prefix: "tftpkit-client-local-" });
  const data = await publicFile(join(root, "data.bin"), 1_000_003, 1);
  const exact = await publicFile(join(root, "exact.bin"), 1468 * 64, 2);
  const daemon = await startOnFreePort(
    "/usr/sbin/in.tftpd",
    (port) => ["-L", "-c", "-a", `${HOST}:${port}`, "-s", root],
  );
  const { port } = daemon;
  try {
    await t.step("CLI get with the default options falls back to what is OACKed", async () => {
      for (const [name, expected] of [["data.bin", data], ["exact.bin", exact]] as const) {
        const out = join(local, `cli-${name}`);
        const r = await cli(getArgs(port, name, out));
        equal(r.code, 0, r.stderr);
        await sameBytes(await Deno.readFile(out), expected, `CLI get ${name}`);
      }
    });

    await t.step("CLI get with --no-options and with --blksize 512", async () => {
      for (const extra of [["--no-options"], ["--blksize", "512", "--windowsize", "1"]]) {
        const out = join(local, `cli-${extra[0]}`);
        const r = await cli(getArgs(port, "data.bin", out, extra));
        equal(r.code, 0, r.stderr);
        await sameBytes(await Deno.readFile(out), data, `CLI get ${extra}`);
      }
    });

    await t.step("library get and download accept blksize without windowsize", async () => {
      await sameBytes(await get({ hostname: HOST, port }, "exact.bin"), exact, "library get");
      const { bytes, result } = await libGet(port, "data.bin");
      await sameBytes(bytes, data, "library download");
      equal(result.negotiated.blksize, 1468);
      equal(result.negotiated.windowsize, 1);
      equal(result.acknowledged.has("windowsize"), false);
      equal(result.tsize, data.length);
    });

    await t.step("CLI put and library put create files (-c)", async () => {
      const src = join(local, "upload.bin");
      const up = await makeFile(src, 777_777, 3);
      const r = await cli(putArgs(port, src, "cli-up.bin"));
      equal(r.code, 0, r.stderr);
      await sameBytes(await Deno.readFile(join(root, "cli-up.bin")), up, "CLI put to tftpd-hpa");
      const result = await put({ hostname: HOST, port }, "lib-up.bin", exact);
      equal(result.negotiated.windowsize, 1);
      equal(result.negotiated.blksize, 1468);
      await sameBytes(await Deno.readFile(join(root, "lib-up.bin")), exact, "library put");
      const plain = await put({ hostname: HOST, port }, "plain-up.bin", data, { noOptions: true });
      equal(plain.acknowledged.size, 0);
      await sameBytes(await Deno.readFile(join(root, "plain-up.bin")), data, "plain put");
    });

    await t.step("a missing file fails with tftpd-hpa's message and no local file", async () => {
      const dir = await Deno.makeTempDir({ dir: local });
      const r = await cli(getArgs(port, "no-such-file", join(dir, "x")));
      equal(r.code, 68);
      match(r.stderr, /ERROR 1 \(file not found\): File not found/);
      deepEqual(await listDir(dir), []);
      await rejects(get({ hostname: HOST, port }, "no-such-file"), PeerError);
    });
  } finally {
    const log = await daemon.stop();
    await Deno.remove(root, { recursive: true }).catch((e) => {
      throw new Error(`${e}\n${log}`);
    });
    await Deno.remove(local, { recursive: true });
  }
});

// --- atftpd -----------------------------------------------------------------------------------

Deno.test("our client uses windowsize 16 and blksize 1468 with atftpd", async (t) => {
  const root = await publicDir();
  const local = await Deno.makeTempDir({ prefix: "tftpkit-client-local-" });
  const data = await publicFile(join(root, "data.bin"), 2_000_001, 11);
  const atftpd = atftpdPath();
  const daemon = await startOnFreePort(atftpd, (port) => [
    "--daemon",
    "--no-fork",
    "--port",
    String(port),
    "--bind-address",
    HOST,
    "--user",
    "root",
    "--group",
    "root",
    "--logfile",
    join(local, "atftpd.log"),
    root,
  ]);
  const { port } = daemon;
  const opts = { blksize: 1468, windowsize: 16 };
  try {
    await t.step("library download negotiates both options", async () => {
      const { bytes, result } = await libGet(port, "data.bin", opts);
      await sameBytes(bytes, data, "library download from atftpd");
      equal(result.negotiated.blksize, 1468);
      equal(result.negotiated.windowsize, 16);
    });

    await t.step("library put negotiates both options", async () => {
      const up = await makeFile(join(local, "up.bin"), 1_500_007, 12);
      const result = await put({ hostname: HOST, port }, "lib-up.bin", up, opts);
      equal(result.negotiated.blksize, 1468);
      equal(result.negotiated.windowsize, 16);
      await sameBytes(await Deno.readFile(join(root, "lib-up.bin")), up, "library put to atftpd");
    });

    await t.step("CLI get and put with --windowsize 16 --blksize 1468", async () => {
      const flags = ["--windowsize", "16", "--blksize", "1468"];
      const out = join(local, "cli.bin");
      let r = await cli(getArgs(port, "data.bin", out, flags));
      equal(r.code, 0, r.stderr);
      await sameBytes(await Deno.readFile(out), data, "CLI get from atftpd");
      r = await cli(putArgs(port, out, "cli-up.bin", flags));
      equal(r.code, 0, r.stderr);
      await sameBytes(await Deno.readFile(join(root, "cli-up.bin")), data, "CLI put to atftpd");
    });
  } finally {
    await daemon.stop();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(local, { recursive: true });
  }
});

// --- dnsmasq ----------------------------------------------------------------------------------

/** Starts dnsmasq's TFTP server on port 69 of a loopback address of its own. */
async function startDnsmasq(root: string): Promise<Daemon & { address: string }> {
  let last: unknown;
  for (let i = 0; i < 6; i++) {
    const address = `127.0.${69 + Math.floor(Math.random() * 100)}.${
      2 + Math.floor(Math.random() * 250)
    }`;
    try {
      // Skip an address someone else already serves on.
      Deno.listenDatagram({ transport: "udp", hostname: address, port: 69 }).close();
    } catch (e) {
      last = e;
      continue;
    }
    try {
      const daemon = await startDaemon(
        "dnsmasq",
        [
          "--no-daemon",
          "--conf-file=/dev/null",
          "--port=0",
          "--enable-tftp",
          `--tftp-root=${root}`,
          `--listen-address=${address}`,
          "--bind-interfaces",
          "--user=root",
          "--pid-file=",
          "--log-facility=-",
        ],
        address,
        69,
      );
      return { ...daemon, address };
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

Deno.test("our client downloads from dnsmasq's TFTP server on port 69", async (t) => {
  const root = await publicDir();
  const local = await Deno.makeTempDir({ prefix: "tftpkit-client-local-" });
  const data = await publicFile(join(root, "pxelinux.0"), 600_013, 21);
  await Deno.mkdir(join(root, "pxelinux.cfg"), { mode: 0o755 });
  await Deno.chmod(join(root, "pxelinux.cfg"), 0o755);
  const cfg = enc.encode("DEFAULT linux\nLABEL linux\n  KERNEL vmlinuz\n");
  await Deno.writeFile(join(root, "pxelinux.cfg", "default"), cfg, { mode: 0o644 });
  const daemon = await startDnsmasq(root);
  const { address } = daemon;
  try {
    await t.step("CLI get on the default port 69", async () => {
      const out = join(local, "cli.0");
      const r = await cli(["get", address, "pxelinux.0", out, "-q"]);
      equal(r.code, 0, r.stderr);
      await sameBytes(await Deno.readFile(out), data, "CLI get from dnsmasq");
      const uri = join(local, "default");
      const r2 = await cli(["get", `tftp://${address}/pxelinux.cfg/default`, uri, "-q"]);
      equal(r2.code, 0, r2.stderr);
      await sameBytes(await Deno.readFile(uri), cfg, "CLI get of a tftp:// URI from dnsmasq");
    });

    await t.step("CLI get with --no-options", async () => {
      const out = join(local, "plain.0");
      const r = await cli(["get", `${address}:69`, "pxelinux.0", out, "-q", "--no-options"]);
      equal(r.code, 0, r.stderr);
      await sameBytes(await Deno.readFile(out), data, "CLI plain get from dnsmasq");
    });

    await t.step("library download accepts what dnsmasq OACKs", async () => {
      const { bytes, result } = await libGet(69, "pxelinux.0", {}, address);
      await sameBytes(bytes, data, "library download from dnsmasq");
      equal(result.tsize, data.length);
      ok(result.negotiated.windowsize <= 16);
      await sameBytes(
        await get({ hostname: address, port: 69 }, "pxelinux.cfg/default", { blksize: 512 }),
        cfg,
        "library get of a small file",
      );
    });

    await t.step("a missing file exits 68 with dnsmasq's message", async () => {
      const dir = await Deno.makeTempDir({ dir: local });
      const r = await cli(["get", address, "missing.0", join(dir, "missing.0"), "-q"]);
      equal(r.code, 68);
      match(r.stderr, /ERROR 1 /);
      deepEqual(await listDir(dir), []);
    });
  } finally {
    await daemon.stop();
    await Deno.remove(root, { recursive: true });
    await Deno.remove(local, { recursive: true });
  }
});
