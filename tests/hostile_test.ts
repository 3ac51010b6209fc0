/**
 * The hostile-input catalogue: requests an attacker or a broken client may send, each with the
 * answer the server must give (an ERROR code, an OACK, plain DATA, or silence). Afterwards the
 * server must still be running, serve a clean client correctly, and never have opened anything
 * outside its root (checked with strace) or sent any of it.
 */

import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import { join } from "node:path";
import { RawPeer } from "./support/raw.ts";
import { makeFile, startServer } from "./support/server.ts";
import {
  ackOf,
  concat,
  errorOf,
  isRunning,
  rawDownload,
  tryDecode,
  withPeer,
} from "./support/raw_transfer.ts";
import { CATALOGUE, OK_SIZE } from "./support/hostile_cases.ts";

const enc = new TextEncoder();

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

async function listTree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(prefix + e.name);
    if (e.isDirectory) out.push(...await listTree(join(dir, e.name), `${prefix}${e.name}/`));
  }
  return out.sort();
}

Deno.test("the hostile-input catalogue gets the right answers and harms nothing", async (t) => {
  ok(CATALOGUE.length >= 40, `${CATALOGUE.length} cases`);
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "tftpkit_hostile_" }));
  const root = join(base, "root");
  const outside = join(base, "outside");
  await Deno.mkdir(root);
  await Deno.mkdir(outside);
  const marker = enc.encode(`SECRET-${crypto.randomUUID()}`);
  await Deno.writeFile(join(outside, "secret"), concat([marker, marker]));
  await Deno.symlink(join(outside, "secret"), join(root, "link_out"));
  await Deno.symlink(outside, join(root, "dirlink"));
  const okTxt = await makeFile(join(root, "ok.txt"), OK_SIZE, 5);
  const clean = await makeFile(join(root, "clean.bin"), 7 * 512 + 9, 6);
  const outsideBefore = await listTree(outside);
  const rootBefore = await listTree(root);

  const server = await startServer([root, "--write", "--timeout", "1"], { write: true });
  const traceFile = join(base, "strace.txt");
  const strace = new Deno.Command("strace", {
    args: [
      "-f",
      "-e",
      "trace=open,openat,openat2",
      "-o",
      traceFile,
      "-p",
      String(server.child.pid),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const straceErr: string[] = [];
  const straceDone = (async () => {
    for await (const s of strace.stderr.pipeThrough(new TextDecoderStream())) straceErr.push(s);
  })();
  const peers: RawPeer[] = [];
  const received: Uint8Array[] = [];
  try {
    // Wait until strace has attached before sending anything.
    const deadline = Date.now() + 15_000;
    while (!/attached/.test(straceErr.join(""))) {
      if (Date.now() > deadline) throw new Error(`strace did not attach: ${straceErr.join("")}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    for (const c of CATALOGUE) {
      await t.step(c.name, async () => {
        const peer = new RawPeer();
        peers.push(peer);
        await peer.send(c.packet, server.port);
        if ("silence" in c.expect) {
          equal(await peer.recv(500), null, "an ERROR is never answered");
          return;
        }
        const got = await peer.recv(10_000);
        ok(got, "no answer");
        received.push(got.data);
        const p = tryDecode(got.data);
        ok(p, "the answer is a well-formed packet");
        if ("error" in c.expect) {
          equal(p.op, "ERROR", `expected ERROR ${c.expect.error}, got ${p.op}`);
          if (p.op === "ERROR") equal(p.code, c.expect.error, p.message);
          equal(got.from.port, server.port, "request-stage errors come from the listening port");
        } else if ("oack" in c.expect) {
          equal(p.op, "OACK", `expected an OACK, got ${p.op}`);
          if (p.op === "OACK") deepEqual(Object.fromEntries(p.options), c.expect.oack);
          notEqual(got.from.port, server.port);
          await peer.send(errorOf(8, "option probe done"), got.from.port);
        } else {
          equal(p.op, "DATA", `expected DATA 1, got ${p.op}`);
          if (p.op === "DATA") {
            equal(p.block, 1);
            deepEqual(p.data, okTxt, "plain DATA 1 of ok.txt (512-byte blocks)");
          }
          await peer.send(ackOf(1), got.from.port);
        }
      });
    }

    await t.step("no late packet reached any hostile peer", async () => {
      const late = await Promise.all(peers.map((p) => p.drain(1500)));
      late.forEach((l, i) => {
        for (const x of l) received.push(x.data);
        equal(l.length, 0, `${CATALOGUE[i].name}: ${l.length} late packets`);
      });
    });

    await t.step("the server is alive and serves a clean client correctly", async () => {
      ok(await isRunning(server), server.lines.join("\n"));
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "clean.bin");
        deepEqual(r.data, clean);
        received.push(r.data);
      });
      await withPeer(async (peer) => {
        const r = await rawDownload(peer, server.port, "ok.txt", {
          options: { blksize: "1024", tsize: "0" },
        });
        deepEqual(r.data, okTxt);
      });
    });

    await t.step("nothing outside the root was sent, opened or changed", async () => {
      for (const data of received) ok(!contains(data, marker), "a reply carried the secret");
      strace.kill("SIGINT");
      await strace.status;
      await straceDone;
      const trace = await Deno.readTextFile(traceFile);
      ok(trace.includes(join(root, "clean.bin")), "strace saw the server open clean.bin");
      const opens = trace.split("\n").filter((l) => l.includes(outside));
      deepEqual(opens, [], "the server opened something outside its root");
      deepEqual(await listTree(outside), outsideBefore);
      deepEqual(await Deno.readFile(join(outside, "secret")), concat([marker, marker]));
      deepEqual(await listTree(root), rootBefore, "no file was created in the root");
    });
  } finally {
    for (const p of peers) p.close();
    try {
      strace.kill("SIGKILL");
    } catch { /* already gone */ }
    await strace.status;
    await straceDone;
    await server.stop("SIGKILL");
    await Deno.remove(base, { recursive: true });
  }
});
