/**
 * The servers of `scripts/bench/bench.ts`: where the C programs are, and the exact command line of each
 * server (tftpkit as the binaries and deno tasks run it, tftpd-hpa, atftpd).
 *
 * @module
 */

import { commandOutput, isExecutable, which } from "./lib.ts";
import { type ServerSpec } from "./peers.ts";
import { V8_FLAGS } from "../release/compile.ts";
import { OURS } from "./report.ts";
import { HOST } from "../../src/testing/loopback.ts";
export { HOST };

/** The repository root. */
export const REPO_ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname).replace(
  /\/$/,
  "",
);

/** The C servers. */
export type RefName = "tftpd-hpa" | "atftpd";

/** The C programs found on this machine. */
export interface Tools {
  atftp: string | null;
  tftpdHpa: string | null;
  tftpdHpaWhy: string;
  atftpd: string | null;
  atftpdWhy: string;
  user: string;
  group: string;
}

/** Finds atftp, tftpd-hpa and atftpd (environment variables first). */
export async function resolveTools(): Promise<Tools> {
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

  const user = (await commandOutput("id", ["-un"])) || "root";
  const group = (await commandOutput("id", ["-gn"])) || user;
  return { atftp, tftpdHpa, tftpdHpaWhy, atftpd, atftpdWhy, user, group };
}

/**
 * The tftpkit server: `deno run PERMISSIONS main.ts serve SOURCE... --address 127.0.0.1 --port P`
 * with limits raised for the benchmark. `source` is e.g. `[dir]` or `["--origin", url]`.
 */
export function oursSpec(
  source: string[],
  port: number,
  permissions = ["--allow-net", "--allow-read"],
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
