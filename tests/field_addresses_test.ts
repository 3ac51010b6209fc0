/**
 * Field compatibility, addresses: on a host with several addresses, replies come from the address
 * the request was sent to. Each case runs the server in its own network namespace (needs root).
 */

import { deepEqual, equal, match, notEqual } from "node:assert/strict";
import { join } from "node:path";
import { bytes, tree } from "./support/field_fixture.ts";
import { MAIN, ROOT, run } from "./support/server.ts";

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
