/**
 * The case table of `scripts/bench/loss_clients.ts`: the servers and their exact command lines,
 * one case per server × client × plan × seed, one result per case, and the printed report (a
 * markdown table of completed transfers and median times, then every failure).
 *
 * @module
 */

import type { FaultPlan } from "../../src/testing/fault_relay.ts";
import { LOSS_SIZE, type LossClient } from "../../tests/support/loss_clients.ts";
import { median } from "./lib.ts";
import type { ServerSpec } from "./peers.ts";
import { dnsmasqArgs, HOST, REPO_ROOT } from "./servers.ts";

/** The servers compared, in column order. */
export const SERVER_NAMES = ["tftpkit", "tftpd-hpa", "dnsmasq"] as const;
/** One of {@link SERVER_NAMES}. */
export type ServerName = typeof SERVER_NAMES[number];

/** Bytes moved in `--quick` runs. */
export const QUICK_SIZE = 4 * 1024 + 77;

/** One transfer to run: a client against a server through a relay with a plan and seed. */
export interface LossCase {
  /** Position in the case list (names the files of uploads and downloads). */
  index: number;
  server: ServerName;
  client: LossClient;
  /** The plan's name, e.g. "10 % loss". */
  plan: string;
  faults: FaultPlan;
  seed: number;
  /** Bytes moved. */
  size: number;
}

/** What one case did. */
export interface LossResult {
  server: ServerName;
  client: string;
  plan: string;
  seed: number;
  size: number;
  /** Exit 0, no "error"/"timed out" in the output, identical bytes, no partial upload left. */
  completed: boolean;
  /** Wall time from the client's start to its exit. */
  seconds: number;
  exitCode: number;
  /** Killed after the time limit. */
  killed: boolean;
  /** The client's last line of output, or what the check found. */
  message: string;
  /** A known client limit that explains the failure (see `tests/support/loss_clients.ts`). */
  limit?: string;
  /** Relay counters for this transfer. */
  dropped: number;
  duplicated: number;
  reordered: number;
}

/**
 * Every case: servers × clients × plans × seeds, the lossiest plans first (their lock-step
 * transfers take longest), servers interleaved so each sees the same load. dnsmasq refuses
 * uploads, so it gets no upload cases.
 */
export function buildCases(
  servers: readonly ServerName[],
  clients: readonly LossClient[],
  plans: ReadonlyArray<readonly [string, FaultPlan]>,
  seeds: readonly number[],
  quick: boolean,
): LossCase[] {
  const cases: LossCase[] = [];
  const byLoss = [...plans].sort((a, b) => (b[1].drop ?? 0) - (a[1].drop ?? 0));
  for (const [plan, faults] of byLoss) {
    for (const seed of seeds) {
      for (const client of clients) {
        for (const server of servers) {
          if (server === "dnsmasq" && client.upload) continue;
          const size = quick ? QUICK_SIZE : client.size ?? LOSS_SIZE;
          cases.push({ index: cases.length, server, client, plan, faults, seed, size });
        }
      }
    }
  }
  return cases;
}

/** tftpkit exactly as `deno task serve` runs it (the task's words from deno.json), uploads on. */
export async function tftpkitSpec(dir: string, port: number): Promise<ServerSpec> {
  const config = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`));
  const [deno, ...words] = (config.tasks.serve as string).split(/\s+/);
  if (deno !== "deno") throw new Error(`unexpected serve task: ${config.tasks.serve}`);
  return {
    name: "tftpkit",
    cmd: Deno.execPath(),
    args: [...words, dir, "--write", "--address", HOST, "--port", String(port)],
    cwd: REPO_ROOT,
    readyLine: "listening on",
  };
}

/** tftpd-hpa in the foreground, chrooted to `dir`, creating uploaded files (`-c`). */
export function tftpdHpaSpec(dir: string, port: number): ServerSpec {
  return {
    name: "tftpd-hpa",
    cmd: "/usr/sbin/in.tftpd",
    args: ["-L", "-c", "-a", `${HOST}:${port}`, "-s", dir],
  };
}

/** dnsmasq with TFTP only (no DNS, no DHCP), on 127.0.0.1 port 69, in the foreground. */
export function dnsmasqSpec(dir: string, pidFile: string): ServerSpec {
  return {
    name: "dnsmasq",
    cmd: "dnsmasq",
    args: dnsmasqArgs(dir, pidFile),
  };
}

/** Pads the columns of a markdown table. */
function markdown(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(3, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(rows[0]), line(widths.map((w) => "-".repeat(w))), ...rows.slice(1).map(line)]
    .join("\n");
}

/**
 * The table: one row per client × plan, one column per server, cells `completed/N median s`
 * (median over the completed transfers), or why the server has no result.
 * `unavailable` maps a server to the reason it did not run.
 */
export function formatTable(
  results: readonly LossResult[],
  clients: readonly LossClient[],
  plans: readonly string[],
  servers: readonly ServerName[],
  unavailable: ReadonlyMap<ServerName, string>,
): string {
  const rows = [["client", "plan", ...servers]];
  for (const client of clients) {
    for (const plan of plans) {
      rows.push([
        client.name,
        plan,
        ...servers.map((server) => {
          if (unavailable.has(server)) return "not available";
          if (server === "dnsmasq" && client.upload) return "not supported";
          const mine = results.filter((r) =>
            r.server === server && r.client === client.name && r.plan === plan
          );
          if (mine.length === 0) return "—";
          const done = mine.filter((r) => r.completed).map((r) => r.seconds);
          const t = done.length ? ` ${median(done).toFixed(1)} s` : "";
          return `${done.length}/${mine.length}${t}`;
        }),
      ]);
    }
  }
  return markdown(rows);
}

/** One line per failed transfer: server, client, plan, seed, message, relay drops. */
export function formatFailures(results: readonly LossResult[]): string {
  const failed = results.filter((r) => !r.completed);
  if (failed.length === 0) return "Failures: none.";
  const order = (r: LossResult) =>
    `${SERVER_NAMES.indexOf(r.server)} ${r.client} ${r.plan} ${r.seed}`;
  return [
    `Failures (${failed.length}):`,
    "",
    ...[...failed].sort((a, b) => order(a).localeCompare(order(b))).map((r) =>
      `- ${r.server}, ${r.client}, ${r.plan}, seed ${r.seed}: ${r.message} ` +
      `(exit ${r.exitCode}, ${r.seconds.toFixed(1)} s, relay dropped ${r.dropped} packets)` +
      (r.limit ? ` — client limit: ${r.limit}` : "")
    ),
  ].join("\n");
}
