/**
 * A fleet: two instances in `--single-port` mode behind an nftables DNAT rule that spreads UDP
 * port 69 of one address over both, in a network namespace of the test's own. Needs root (CI runs
 * as root), `ip` and `nft`.
 */

import { equal, ok } from "node:assert/strict";
import { MAIN, makeFile, ROOT, run, sha256 } from "./support/server.ts";

const VIP = "10.99.0.1";
const NODES = ["10.99.0.11", "10.99.0.12"];

async function sh(args: string[]): Promise<string> {
  const r = await run(args[0], args.slice(1), { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

interface Instance {
  child: Deno.ChildProcess;
  lines: string[];
  done: Promise<void>;
}

function startInNetns(ns: string, args: string[]): Instance {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns,
      Deno.execPath(),
      "run",
      "--allow-net",
      "--allow-read",
      MAIN,
      ...args,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    let rest = "";
    for await (const chunk of s) {
      rest += dec.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
  };
  const done = Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => {});
  return { child, lines, done };
}

async function waitForLine(inst: Instance, pattern: RegExp, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!inst.lines.some((l) => pattern.test(l))) {
    if (Date.now() > end) throw new Error(`no ${pattern} in:\n${inst.lines.join("\n")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stop(inst: Instance): Promise<void> {
  try {
    inst.child.kill("SIGTERM");
  } catch { /* gone */ }
  await inst.child.status;
  await inst.done;
}

Deno.test("two single-port instances behind a DNAT rule share one address", async (t) => {
  const ns = `tftpkit-fleet-${crypto.randomUUID().slice(0, 8)}`;
  const dir = await Deno.makeTempDir();
  const instances: Instance[] = [];
  await sh(["ip", "netns", "add", ns]);
  try {
    await sh(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    for (const a of [VIP, ...NODES]) {
      await sh(["ip", "netns", "exec", ns, "ip", "addr", "add", `${a}/32`, "dev", "lo"]);
    }
    const rules = `table ip fleet {
  chain out {
    type nat hook output priority -100;
    ip daddr ${VIP} udp dport 69 dnat to numgen inc mod 2 map { 0 : ${NODES[0]}, 1 : ${NODES[1]} }
  }
}
`;
    const rulesFile = `${dir}/fleet.nft`;
    await Deno.writeTextFile(rulesFile, rules);
    await sh(["ip", "netns", "exec", ns, "nft", "-f", rulesFile]);

    const files = new Map<string, string>();
    for (let i = 0; i < 4; i++) {
      const name = `image${i}.bin`;
      files.set(name, await sha256(await makeFile(`${dir}/${name}`, 300_000 + i * 7_777, i + 1)));
    }

    await t.step(
      "without --single-port, replies from per-transfer ports miss the NAT",
      async () => {
        for (const node of NODES) {
          const inst = startInNetns(ns, [
            "serve",
            dir,
            "--address",
            node,
            "--port",
            "69",
            "--timeout",
            "1",
            "--retries",
            "1",
            "--log-format",
            "json",
          ]);
          instances.push(inst);
          await waitForLine(inst, /listening/);
        }
        // The request reaches a node through the DNAT rule, but its DATA comes from a new port of
        // the node's own address, which the client never sent to: the client waits in vain.
        const r = await run("ip", [
          "netns",
          "exec",
          ns,
          Deno.execPath(),
          "run",
          "-A",
          MAIN,
          "get",
          VIP,
          "image0.bin",
          `${dir}/out-direct.bin`,
          "--timeout",
          "1",
          "--retries",
          "1",
          "-q",
        ], { cwd: ROOT, timeoutMs: 30_000 });
        equal(r.code, 28, `the get should time out without single-port: ${r.stdout}${r.stderr}`);
        for (const inst of instances) await stop(inst);
        const answered = instances.flatMap((inst) => inst.lines).filter((l) =>
          l.startsWith("{") && JSON.parse(l).event === "transfer"
        );
        ok(answered.length >= 1, "a node received the request and answered from a new port");
        ok(answered.every((l) => JSON.parse(l).outcome !== "ok"), answered.join("\n"));
        instances.length = 0;
      },
    );

    await t.step("with --single-port, 16 concurrent gets through the VIP all succeed", async () => {
      for (const node of NODES) {
        const inst = startInNetns(ns, [
          "serve",
          dir,
          "--single-port",
          "--address",
          node,
          "--port",
          "69",
          "--log-format",
          "json",
        ]);
        instances.push(inst);
        await waitForLine(inst, /listening/);
      }
      const gets = [];
      for (let i = 0; i < 16; i++) {
        const name = `image${i % 4}.bin`;
        const out = `${dir}/out-${i}.bin`;
        gets.push(
          run("ip", [
            "netns",
            "exec",
            ns,
            Deno.execPath(),
            "run",
            "-A",
            MAIN,
            "get",
            VIP,
            name,
            out,
            "-q",
          ], { cwd: ROOT, timeoutMs: 60_000 }).then(async (r) => {
            equal(r.code, 0, `get ${name}: ${r.stderr}`);
            equal(await sha256(await Deno.readFile(out)), files.get(name), `bytes of ${name}`);
          }),
        );
      }
      await Promise.all(gets);
      for (const inst of instances) await stop(inst);
      const served = instances.map((inst) =>
        inst.lines.filter((l) => l.startsWith("{") && JSON.parse(l).outcome === "ok").length
      );
      equal(served[0] + served[1], 16, `transfers per instance: ${served}`);
      ok(served[0] > 0 && served[1] > 0, `both instances used: ${served}`);
      instances.length = 0;
    });
  } finally {
    for (const inst of instances) await stop(inst);
    await run("ip", ["netns", "del", ns]);
    await Deno.remove(dir, { recursive: true });
  }
});
