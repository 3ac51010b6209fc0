/**
 * `tftpkit get` never destroys what LOCAL points at and leaves no litter: a character device and
 * a FIFO (made in a temporary directory with mknod/mkfifo) are written straight into, a symbolic
 * link's target is replaced and the link kept, a full disk sends the server ERROR 3 and names the
 * path (a full-device node, and a tiny tmpfs in a private mount namespace).
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { oneLine } from "./support/cli_fixture.ts";
import { listDir } from "./support/files.ts";
import { cli, MAIN, makeFile, run, type ServerProcess, startServer } from "./support/server.ts";

interface Fixture {
  dir: string;
  out: string;
  data: Uint8Array;
  server: ServerProcess;
  where: string;
}

async function withServer(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-local-" });
  const served = join(dir, "served");
  const out = join(dir, "out");
  await Deno.mkdir(served);
  await Deno.mkdir(out);
  const data = await makeFile(join(served, "fw.bin"), 600_000, 9);
  const server = await startServer([served]);
  try {
    await fn({ dir, out, data, server, where: `127.0.0.1:${server.port}` });
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

async function sh(script: string) {
  const r = await run("sh", ["-c", script]);
  equal(r.code, 0, `${script}: ${r.stderr}`);
  return r.stdout;
}

Deno.test("get writes into a character device and a FIFO without replacing them", async (t) => {
  await withServer(async ({ out, data, where }) => {
    await t.step("a character device (a null device node) stays a device", async () => {
      const node = join(out, "null");
      await sh(`mknod '${node}' c 1 3`);
      const r = await cli(["get", "-q", where, "fw.bin", node]);
      equal(r.code, 0, r.stderr);
      ok((await Deno.lstat(node)).isCharDevice, "the device node was replaced");
      deepEqual(await listDir(out), ["null"], "no temporary file");
    });
    await t.step("a FIFO stays a FIFO and its reader gets every byte", async () => {
      const fifo = join(out, "pipe");
      await sh(`mkfifo '${fifo}'`);
      // Read the reader's output as it comes: a full pipe would stall the writer.
      const reader = new Deno.Command("cat", { args: [fifo], stdout: "piped" }).output();
      const r = await cli(["get", "-q", where, "fw.bin", fifo]);
      equal(r.code, 0, r.stderr);
      deepEqual((await reader).stdout, data, "the reader did not get the file");
      ok((await Deno.lstat(fifo)).isFifo, "the FIFO was replaced");
      deepEqual(await listDir(out), ["null", "pipe"]);
    });
    await t.step("a symbolic link to a FIFO is written through", async () => {
      const link = join(out, "to-pipe");
      await Deno.symlink("pipe", link);
      const reader = new Deno.Command("cat", { args: [join(out, "pipe")], stdout: "piped" })
        .output();
      const r = await cli(["get", "-q", where, "fw.bin", link]);
      equal(r.code, 0, r.stderr);
      deepEqual((await reader).stdout, data);
      ok((await Deno.lstat(link)).isSymlink);
    });
  });
});

Deno.test("get through a symbolic link replaces its target atomically and keeps the link", async (t) => {
  await withServer(async ({ out, data, where }) => {
    await t.step("an existing target: replaced, its mode kept", async () => {
      const target = join(out, "target.bin");
      await Deno.writeTextFile(target, "old");
      await Deno.chmod(target, 0o600);
      await Deno.symlink("target.bin", join(out, "link"));
      const r = await cli(["get", "-q", where, "fw.bin", join(out, "link")]);
      equal(r.code, 0, r.stderr);
      ok((await Deno.lstat(join(out, "link"))).isSymlink, "the link was replaced");
      equal(await Deno.readLink(join(out, "link")), "target.bin");
      deepEqual(await Deno.readFile(target), data);
      equal((await Deno.stat(target)).mode! & 0o777, 0o600);
    });
    await t.step("a dangling link: its target is created", async () => {
      await Deno.symlink("new.bin", join(out, "dangling"));
      const r = await cli(["get", "-q", where, "fw.bin", join(out, "dangling")]);
      equal(r.code, 0, r.stderr);
      ok((await Deno.lstat(join(out, "dangling"))).isSymlink);
      deepEqual(await Deno.readFile(join(out, "new.bin")), data);
      deepEqual(await listDir(out), ["dangling", "link", "new.bin", "target.bin"]);
    });
  });
});

Deno.test("a full disk: the server gets ERROR 3, the message names the path, nothing is left", async (t) => {
  await withServer(async ({ out, server, where }) => {
    await t.step("a full-device node (writes fail with ENOSPC)", async () => {
      const full = join(out, "full");
      await sh(`mknod '${full}' c 1 7`);
      const r = await cli(["get", where, "fw.bin", full]);
      equal(r.code, 23, r.stderr);
      match(oneLine(r.stderr, "full"), new RegExp(`cannot write ${full}: disk full`));
      await server.waitFor(/fw\.bin" failed \(peer-error\): peer sent ERROR 3 \(disk full\)/);
    });
    await t.step("a full tmpfs: the temporary file is removed", async () => {
      const mnt = join(out, "small");
      await Deno.mkdir(mnt);
      const get = [Deno.execPath(), "run", "--allow-net", "--allow-read", "--allow-write", MAIN]
        .map((w) => `'${w}'`).join(" ");
      // A private mount namespace: the tmpfs disappears with the shell.
      const r = await run("unshare", [
        "-m",
        "sh",
        "-c",
        `mount -t tmpfs -o size=128k tmpfs '${mnt}' && ` +
        `{ ${get} get ${where} fw.bin '${mnt}/fw.bin'; echo "exit $?"; ls -A '${mnt}'; }`,
      ]);
      match(r.stdout, /^exit 23$/m, r.stdout + r.stderr);
      equal(r.stdout.trim(), "exit 23", "something was left in the full file system");
      match(r.stderr, new RegExp(`cannot write ${mnt}/fw\\.bin: disk full`));
      const failures = server.lines.filter((l) => /peer sent ERROR 3 \(disk full\)/.test(l));
      ok(failures.length >= 1, server.lines.join("\n"));
    });
  });
});
