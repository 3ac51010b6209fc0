/**
 * The servers of `scripts/bench/bench.ts`: where the C programs are, the exact command line of each
 * server (tftpkit as the binaries and deno tasks run it, tftpd-hpa, atftpd, dnsmasq) and the CPU
 * pinning (`taskset`) of servers and clients.
 *
 * @module
 */

import { commandOutput, isExecutable, which } from "./lib.ts";
import { type ServerSpec } from "./peers.ts";
import { V8_FLAGS } from "../release/plan.ts";
import { OURS } from "./report.ts";
import type { CName } from "./defs.ts";
import { HOST } from "../../src/testing/loopback.ts";
export { HOST };

/** The repository root. */
export const REPO_ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(
  /\/$/,
  "",
);

/** The C servers. */
export type RefName = CName;

/** dnsmasq's TFTP server listens on port 69 only. */
export const DNSMASQ_PORT = 69;

/** The C programs found on this machine. */
export interface Tools {
  atftp: string | null;
  tftpdHpa: string | null;
  tftpdHpaWhy: string;
  atftpd: string | null;
  atftpdWhy: string;
  dnsmasq: string | null;
  dnsmasqWhy: string;
  taskset: string | null;
  user: string;
  group: string;
}

/**
 * Finds atftp, tftpd-hpa, atftpd, dnsmasq and taskset (environment variables first). dnsmasq is
 * only used inside the bench's own network namespace (`inNetns`): it needs port 69.
 */
export async function resolveTools(inNetns: boolean): Promise<Tools> {
  const envAtftp = Deno.env.get("ATFTP");
  const atftp = envAtftp ? (isExecutable(envAtftp) ? envAtftp : which(envAtftp)) : which("atftp");

  let tftpdHpa: string | null;
  let tftpdHpaWhy = "";
  const envHpa = Deno.env.get("TFTPD_HPA");
  if (envHpa) {
    tftpdHpa = isExecutable(envHpa) ? envHpa : null;
    if (!tftpdHpa) tftpdHpaWhy = `TFTPD_HPA=${envHpa} is not executable`;
  } else {
    tftpdHpa = isExecutable("/usr/sbin/in.tftpd") ? "/usr/sbin/in.tftpd" : which("in.tftpd");
    if (!tftpdHpa) tftpdHpaWhy = "in.tftpd not found (install tftpd-hpa or set TFTPD_HPA)";
  }

  let atftpd: string | null;
  let atftpdWhy = "";
  const envAtftpd = Deno.env.get("ATFTPD");
  if (envAtftpd) {
    atftpd = isExecutable(envAtftpd) ? envAtftpd : null;
    if (!atftpd) atftpdWhy = `ATFTPD=${envAtftpd} is not executable`;
  } else {
    const local = `${REPO_ROOT}/.tools/atftpd/usr/sbin/atftpd`;
    atftpd = which("atftpd") ?? (isExecutable(local) ? local : null);
    if (!atftpd) {
      atftpdWhy = "atftpd not found (set ATFTPD, put it in PATH or extract it to " +
        ".tools/atftpd/usr/sbin/atftpd)";
    }
  }

  const envDnsmasq = Deno.env.get("DNSMASQ");
  let dnsmasq = envDnsmasq
    ? (isExecutable(envDnsmasq) ? envDnsmasq : null)
    : (isExecutable("/usr/sbin/dnsmasq") ? "/usr/sbin/dnsmasq" : which("dnsmasq"));
  let dnsmasqWhy = dnsmasq ? "" : "dnsmasq not found (install it or set DNSMASQ)";
  if (dnsmasq && !inNetns) {
    dnsmasq = null;
    dnsmasqWhy = "--no-netns (dnsmasq's TFTP serves only on port 69)";
  }
  const taskset = isExecutable("/usr/bin/taskset") ? "/usr/bin/taskset" : which("taskset");

  const user = (await commandOutput("id", ["-un"])) || "root";
  const group = (await commandOutput("id", ["-gn"])) || user;
  return {
    atftp,
    tftpdHpa,
    tftpdHpaWhy,
    atftpd,
    atftpdWhy,
    dnsmasq,
    dnsmasqWhy,
    taskset,
    user,
    group,
  };
}

/**
 * The tftpkit server: `deno run PERMISSIONS main.ts serve SOURCE... --address 127.0.0.1 --port P`
 * with limits raised for the benchmark. `source` is e.g. `[dir]` or `["--origin", url]`.
 */
export function oursSpec(
  source: string[],
  port: number,
  permissions = ["--allow-net", "--allow-read"],
  extra: string[] = [],
): ServerSpec | string {
  const main = `${REPO_ROOT}/main.ts`;
  try {
    Deno.statSync(main);
  } catch {
    return `${main} does not exist`;
  }
  return {
    name: OURS,
    cmd: Deno.execPath(),
    args: [
      "run",
      V8_FLAGS, // as in the binaries and the deno tasks
      ...permissions,
      main,
      "serve",
      ...source,
      "--address",
      HOST,
      "--port",
      String(port),
      "--max-blksize",
      "65464",
      "--max-windowsize",
      "64",
      "--max-sessions",
      "1000",
      "--max-sessions-per-client",
      "1000",
      ...extra,
    ],
    cwd: REPO_ROOT,
    readyLine: "listening on",
  };
}

/** A C server, or why it is not available. */
export function refSpec(
  ref: RefName,
  tools: Tools,
  dir: string,
  port: number,
  logDir: string,
): ServerSpec | string {
  if (ref === "dnsmasq") {
    if (!tools.dnsmasq) return tools.dnsmasqWhy;
    return {
      name: ref,
      cmd: tools.dnsmasq,
      args: dnsmasqArgs(dir, `${logDir}/dnsmasq-${port}.pid`),
    };
  }
  if (ref === "tftpd-hpa") {
    if (!tools.tftpdHpa) return tools.tftpdHpaWhy;
    return { name: ref, cmd: tools.tftpdHpa, args: ["-L", "-a", `${HOST}:${port}`, "-s", dir] };
  }
  if (!tools.atftpd) return tools.atftpdWhy;
  const logFile = `${logDir}/atftpd-${port}.log`;
  return {
    name: ref,
    cmd: tools.atftpd,
    args: [
      "--daemon",
      "--no-fork",
      "--port",
      String(port),
      "--bind-address",
      HOST,
      "--user",
      tools.user,
      "--group",
      tools.group,
      "--logfile",
      logFile,
      "--maxthread",
      "1000",
      dir,
    ],
    logFile,
  };
}

/** `--pin`: where servers and clients of the single-transfer rows run. */
export type PinMode = "cross" | "same" | "off";

/**
 * The `taskset -c CPU` prefix for a server or a client under `pin` (null: not pinned). `cross`:
 * servers on CPU 0, clients on CPU 1; `same`: both on CPU 0; `off`: none.
 */
export function pinPrefix(
  pin: PinMode,
  role: "server" | "client",
  taskset: string,
): string[] | null {
  if (pin === "off") return null;
  const cpu = role === "server" || pin === "same" ? "0" : "1";
  return [taskset, "-c", cpu];
}

/** Runs `spec` under a `taskset` prefix (taskset execs, so the PID stays the server's). */
export function pinned(spec: ServerSpec, prefix: string[] | null): ServerSpec {
  if (!prefix) return spec;
  return { ...spec, cmd: prefix[0], args: [...prefix.slice(1), spec.cmd, ...spec.args] };
}

/**
 * dnsmasq with TFTP only (no DNS, no DHCP) on 127.0.0.1 port 69, in the foreground, logging to
 * stderr, its pid file in a temporary place (never /run).
 *
 * @example
 * ```ts ignore
 * new Deno.Command("dnsmasq", { args: dnsmasqArgs("/srv/tftp", "/tmp/x/dnsmasq.pid") });
 * ```
 */
export function dnsmasqArgs(dir: string, pidFile: string): string[] {
  return [
    "--keep-in-foreground",
    "--conf-file=/dev/null",
    "--port=0",
    "--enable-tftp",
    `--tftp-root=${dir}`,
    `--listen-address=${HOST}`,
    "--bind-interfaces",
    "--tftp-max=1000",
    `--pid-file=${pidFile}`,
    "--log-facility=-",
  ];
}
