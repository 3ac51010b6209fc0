/**
 * Loss with the real clients: atftp (lock-step, and blksize 1468 + windowsize 16), tftp-hpa get
 * and put, curl and busybox against tftpkit, tftpd-hpa and dnsmasq, each transfer through its own
 * seeded fault relay (`src/testing/fault_relay.ts`) at 10 % loss, 10 % duplication + 10 %
 * reordering and 20 % loss — the same file, plan and seeds for every server. Prints a markdown
 * table (client × plan rows, one column per server, cells `completed/N median-seconds`) and every
 * failure.
 *
 * dnsmasq serves TFTP on port 69 only, so the script re-runs itself in a network namespace of its
 * own (root; see `netns.ts`); `--no-netns` runs on the host without dnsmasq.
 *
 * Usage:
 *
 *     deno task bench:loss:clients [--seeds 1,2,3] [--quick] [--json FILE] [--concurrency 16]
 *       [--only-clients "curl,tftp-hpa put"] [--only-servers tftpkit,dnsmasq] [--no-netns]
 *
 * A transfer completes when the client exits 0 within 120 s, prints no "error" or "timed out"
 * (tftp-hpa exits 0 after an ERROR) and the bytes are identical (an upload: the server's file,
 * with no partial file left). Exit code 0 once the table is printed, whatever failed; 1 on a bad
 * argument or a setup error; 130/143 when interrupted.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startFaultRelay } from "../../src/testing/fault_relay.ts";
import { sameBytes } from "../../src/testing/proc.ts";
import {
  clientLimit,
  LOSS_CLIENTS,
  LOSS_PLANS,
  oackCounter,
} from "../../tests/support/loss_clients.ts";
import { errorMessage, freeUdpPort, killAllTracked } from "./lib.ts";
import {
  buildCases,
  dnsmasqSpec,
  formatFailures,
  formatTable,
  type LossCase,
  type LossResult,
  SERVER_NAMES,
  type ServerName,
  tftpdHpaSpec,
  tftpkitSpec,
} from "./loss_cases.ts";
import { makeFile } from "../../tests/support/server.ts";
import { enterNetns } from "./netns.ts";
import { runClient, type RunningServer, startServer } from "./peers.ts";
import { HOST } from "./servers.ts";

/** A client still running after this long is killed and its transfer failed. */
const CLIENT_LIMIT_MS = 120_000;

const USAGE = `Usage: deno task bench:loss:clients [options]
  --seeds LIST          relay seeds (default 1,2,3)
  --quick               one seed, 4 KiB files (development)
  --json FILE           write every result to FILE
  --concurrency N       transfers at once (default 16)
  --only-clients LIST   client names, comma-separated (${
  LOSS_CLIENTS.map((c) => c.name).join(", ")
})
  --only-servers LIST   servers, comma-separated (${SERVER_NAMES.join(", ")})
  --no-netns            run on the host (dnsmasq then not available)`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seeds: { type: "string", default: "1,2,3" },
    quick: { type: "boolean", default: false },
    json: { type: "string" },
    concurrency: { type: "string", default: "16" },
    "only-clients": { type: "string" },
    "only-servers": { type: "string" },
    "no-netns": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}

/** The names of a comma-separated filter, each checked against `known`. */
function pick<T extends string>(list: string | undefined, known: readonly T[], what: string): T[] {
  if (list === undefined) return [...known];
  const names = list.split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!known.includes(n as T)) {
      console.error(`unknown ${what} "${n}"; known: ${known.join(", ")}`);
      Deno.exit(1);
    }
  }
  return known.filter((k) => names.includes(k));
}

const clientNames = pick(values["only-clients"], LOSS_CLIENTS.map((c) => c.name), "client");
const clients = LOSS_CLIENTS.filter((c) => clientNames.includes(c.name));
const servers = pick(values["only-servers"], SERVER_NAMES, "server");
const seeds = values.quick ? [1] : values.seeds.split(",").map(Number);
const concurrency = Number(values.concurrency);
if (seeds.some((s) => !Number.isInteger(s)) || !(concurrency >= 1)) {
  console.error(USAGE);
  Deno.exit(1);
}

const netns = values["no-netns"] ? null : await enterNetns("tftpkit-loss");

// --- inside the namespace (or on the host with --no-netns) from here on ---------------------

const root = await Deno.makeTempDir({ prefix: "tftpkit-loss-clients-" });
const relays = new Set<{ close(): void }>();
const running = new Map<ServerName, RunningServer>();
let cleaned: Promise<void> | null = null;
/** Set by SIGINT (130) or SIGTERM (143): no new transfer starts, no table is printed. */
let stopping = 0;

/** Stops every client, relay and server, removes the temporary directory; once. */
function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    for (const r of relays) r.close();
    await killAllTracked(1000);
    await Promise.all([...running.values()].map((s) => s.stop()));
    await Deno.remove(root, { recursive: true }).catch(() => {});
  })();
  return cleaned;
}
for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  Deno.addSignalListener(sig, async () => {
    if (!stopping) console.error(`\n${sig}: stopping every client, relay and server`);
    stopping ||= code;
    await cleanup();
    Deno.exit(stopping);
  });
}

/**
 * Starts the servers, each on its own directory holding `file.bin` (readable by the C servers'
 * unprivileged users; tftpd-hpa's writable by them too, for uploads). Returns why the ones that
 * could not start are not available.
 */
async function startServers(
  download: Uint8Array,
): Promise<{ dirs: Map<ServerName, string>; unavailable: Map<ServerName, string> }> {
  await Deno.chmod(root, 0o755);
  const dirs = new Map<ServerName, string>();
  const unavailable = new Map<ServerName, string>();
  for (const name of servers) {
    const dir = `${root}/${name}`;
    await Deno.mkdir(dir);
    await Deno.chmod(dir, name === "tftpd-hpa" ? 0o777 : 0o755);
    await Deno.writeFile(`${dir}/file.bin`, download, { mode: 0o644 });
    dirs.set(name, dir);
    if (name === "dnsmasq" && !netns) {
      unavailable.set(name, "--no-netns: dnsmasq serves TFTP on port 69 only");
      continue;
    }
    try {
      const port = name === "dnsmasq" ? 69 : await freeUdpPort(HOST);
      const spec = name === "tftpkit"
        ? await tftpkitSpec(dir, port)
        : name === "tftpd-hpa"
        ? tftpdHpaSpec(dir, port)
        : dnsmasqSpec(dir, `${root}/dnsmasq.pid`);
      running.set(name, await startServer(spec, port, 20_000));
    } catch (e) {
      unavailable.set(name, errorMessage(e));
    }
  }
  return { dirs, unavailable };
}

/** Runs one case through a relay of its own and checks the outcome. */
async function runCase(
  c: LossCase,
  dir: string,
  sources: Map<number, Uint8Array>,
): Promise<LossResult> {
  const server = running.get(c.server)!;
  const oacks = oackCounter();
  const relay = startFaultRelay({
    target: { hostname: HOST, port: server.port },
    plan: { ...c.faults, seed: c.seed },
    idleMs: CLIENT_LIMIT_MS + 30_000,
    onDatagram: oacks.onDatagram,
  });
  relays.add(relay);
  try {
    const want = sources.get(c.size)!;
    const remote = c.client.upload ? `up-${c.index}.bin` : "file.bin";
    const local = c.client.upload ? `${root}/local/src-${c.size}.bin` : `${root}/local/${c.index}`;
    const [cmd, ...args] = c.client.argv(HOST, relay.port, remote, local);
    const r = await runClient(cmd, args, CLIENT_LIMIT_MS);
    const out = `${r.stdout}\n${r.stderr}`.trim();
    const got = await Deno.readFile(c.client.upload ? `${dir}/${remote}` : local).catch(() =>
      new Uint8Array()
    );
    const differs = sameBytes(got, want);
    const partial = c.client.upload
      ? [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
        n.includes(remote) && n !== remote
      )
      : [];
    const reported = /error|timed out/i.test(out);
    const completed = r.code === 0 && !r.timedOut && !reported && !differs && !partial.length;
    const lastLine = out.split("\n").map((l) => l.trim()).filter(Boolean).pop() ?? "";
    const message = r.timedOut
      ? `killed after ${CLIENT_LIMIT_MS / 1000} s`
      : lastLine && (r.code !== 0 || reported)
      ? lastLine
      : differs
      ? `bytes ${c.client.upload ? "on the server " : ""}differ: ${differs}`
      : partial.length
      ? `partial file left: ${partial.join(", ")}`
      : lastLine;
    if (!c.client.upload) await Deno.remove(local).catch(() => {});
    return {
      server: c.server,
      client: c.client.name,
      plan: c.plan,
      seed: c.seed,
      size: c.size,
      completed,
      seconds: r.ms / 1000,
      exitCode: r.code,
      killed: r.timedOut,
      message,
      limit: completed ? undefined : clientLimit(c.client, out, oacks.count()),
      dropped: relay.stats.dropped,
      duplicated: relay.stats.duplicated,
      reordered: relay.stats.reordered,
    };
  } finally {
    relay.close();
    relays.delete(relay);
  }
}

try {
  const allCases = buildCases(servers, clients, LOSS_PLANS, seeds, values.quick);
  const sizes = [...new Set(allCases.map((c) => c.size))].sort((a, b) => a - b);
  await Deno.mkdir(`${root}/local`);
  const sources = new Map<number, Uint8Array>();
  for (const size of sizes) {
    sources.set(size, await makeFile(`${root}/local/src-${size}.bin`, size, 7));
  }
  const downloadSize = allCases.find((c) => !c.client.upload)?.size ?? sizes[0];
  const { dirs, unavailable } = await startServers(sources.get(downloadSize)!);
  const cases = allCases.filter((c) => !unavailable.has(c.server));
  console.log(
    `Loss with the real clients: ${cases.length} transfers, ${concurrency} at once ` +
      `(times are per transfer, measured under that concurrency), seeds ${seeds.join(",")}, ` +
      `${netns ? `network namespace ${netns}` : "on the host"}; client killed after ` +
      `${CLIENT_LIMIT_MS / 1000} s.`,
  );
  const started = performance.now();
  const results: LossResult[] = [];
  let next = 0;
  const worker = async () => {
    while (!stopping && next < cases.length) {
      const c = cases[next++];
      const r = await runCase(c, dirs.get(c.server)!, sources);
      results.push(r);
      console.error(
        `[${results.length}/${cases.length}] ${r.completed ? "ok" : "FAILED"} ${r.server}, ` +
          `${r.client}, ${r.plan}, seed ${r.seed}: ${r.seconds.toFixed(1)} s` +
          (r.completed ? "" : ` (${r.message})`),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, cases.length) }, worker));
  const wall = (performance.now() - started) / 1000;
  if (stopping) {
    await cleanup();
    Deno.exit(stopping);
  }

  const plans = LOSS_PLANS.map(([name]) => name);
  console.log("");
  console.log(formatTable(results, clients, plans, servers, unavailable));
  console.log("");
  const sizeText = sizes.map((s) => `${s} B`).join(" / ");
  console.log(
    `Cells: completed/N and the median seconds of the completed ones; ${seeds.length} seed(s), ` +
      `files of ${sizeText} (uploads: ${
        clients.filter((c) => c.upload).map((c) => c.name).join(", ") || "none"
      }); wall time ${wall.toFixed(0)} s.`,
  );
  for (const [name, why] of unavailable) console.log(`${name}: not available (${why})`);
  console.log("");
  console.log(formatFailures(results));
  if (values.json) {
    const json = {
      date: new Date().toISOString(),
      seeds,
      concurrency,
      quick: values.quick,
      netns,
      clientLimitSeconds: CLIENT_LIMIT_MS / 1000,
      wallSeconds: wall,
      unavailable: Object.fromEntries(unavailable),
      results,
    };
    await Deno.writeTextFile(values.json, JSON.stringify(json, null, 2) + "\n");
  }
} catch (e) {
  if (!stopping) console.error(`bench:loss:clients: ${errorMessage(e)}`);
  await cleanup();
  Deno.exit(stopping || 1);
}
await cleanup();
Deno.exit(0);
