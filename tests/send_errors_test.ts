/**
 * A send that fails locally is a lost packet, not a failed transfer: in a network namespace of
 * the test's own, an nftables rule in the output hook drops a share of the UDP datagrams that
 * tftpkit's server and client send, so `sendmsg` fails with EPERM — as a local firewall makes
 * it. Downloads and uploads still complete byte for byte, the retransmission timer recovering
 * each failed send, and nothing is reported as a read or write error. Needs root, `ip`, `nft`.
 */

import { equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { MAIN, makeFile, ROOT, run } from "./support/server.ts";
import { sameBytes } from "../src/testing/proc.ts";

async function sh(args: string[]): Promise<string> {
  const r = await run(args[0], args.slice(1), { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

const deno = (
  ns: string,
  args: string[],
) => ["ip", "netns", "exec", ns, Deno.execPath(), "run", "-A", MAIN, ...args];

Deno.test("sends that fail with EPERM are retransmitted like lost packets", async () => {
  const ns = `tftpkit-eperm-${crypto.randomUUID().slice(0, 8)}`;
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-eperm-" });
  await sh(["ip", "netns", "add", ns]);
  let server: Deno.ChildProcess | undefined;
  try {
    await sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    // One datagram in four that anyone sends over UDP is refused at the output hook.
    const rules = `table inet eperm {
      chain out { type filter hook output priority 0; meta l4proto udp numgen inc mod 4 == 0 drop; }
    }`;
    await run("ip", ["netns", "exec", ns, "nft", "-f", "-"], {
      stdin: new TextEncoder().encode(rules),
    }).then((r) => equal(r.code, 0, r.stderr));
    const served = join(dir, "served");
    await Deno.mkdir(served);
    const want = await makeFile(join(served, "f.bin"), 300_000, 5);
    const up = await makeFile(join(dir, "up.bin"), 120_000, 6);
    const [cmd, ...args] = deno(ns, [
      "serve",
      served,
      "--write",
      "--address",
      "127.0.0.1",
      "--port",
      "6969",
      "--log-format",
      "json",
      // One send in four fails, the client's final ACK of the download among them at times; the
      // server then repeats its last DATA until it gives the client up: after 10 s, not 50 s.
      "--client-timeout",
      "1",
    ]);
    server = new Deno.Command(cmd, { args, cwd: ROOT, stdout: "piped", stderr: "null" }).spawn();
    let text = "";
    const pump = (async () => {
      for await (const chunk of server!.stdout.pipeThrough(new TextDecoderStream())) text += chunk;
    })();
    for (let i = 0; i < 100 && !text.includes("listening"); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const get = deno(ns, ["get", "127.0.0.1:6969", "f.bin", join(dir, "got.bin"), "-q"]);
    const g = await run(get[0], get.slice(1), { timeoutMs: 60_000 });
    equal(g.code, 0, g.stderr);
    equal(sameBytes(await Deno.readFile(join(dir, "got.bin")), want), null);
    const put = deno(ns, ["put", "127.0.0.1:6969", join(dir, "up.bin"), "up.bin", "-q"]);
    const p = await run(put[0], put.slice(1), { timeoutMs: 60_000 });
    equal(p.code, 0, p.stderr);
    equal(sameBytes(await Deno.readFile(join(served, "up.bin")), up), null);
    for (let i = 0; i < 200 && text.split('"event":"transfer"').length < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const records = text.split("\n")
      .filter((l) => l.includes('"event":"transfer"')).map((l) => JSON.parse(l));
    equal(records.length, 2, text);
    for (const r of records) {
      // A download whose final ACK was refused at the client's output has still reached the
      // client whole (checked above); the server can only say that every block was sent.
      const finalAckLost = r.op === "RRQ" && r.outcome === "timeout" &&
        /every block was sent/.test(r.msg);
      ok(r.outcome === "ok" || finalAckLost, JSON.stringify(r));
      ok(r.retransmits > 0, `failed sends were resent: ${JSON.stringify(r)}`);
    }
    ok(!/read error|write error/.test(text), "no send failure reported");
    server.kill("SIGTERM");
    await pump;
  } finally {
    try {
      server?.kill("SIGKILL");
      await server?.status;
    } catch { /* gone */ }
    await sh(["ip", "netns", "del", ns]).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
