/**
 * Row 8 of `scripts/bench/bench.ts`: our client against atftp's, both as processes a user starts.
 * One atftpd server (neither client's own) serves the large file; `tftpkit get` (run as
 * `deno run` with the flags of `deno task tftpkit`) and `atftp -g` each download it at windowsize
 * 16 / blksize 1468 to /dev/null, alternating run by run; the median wall time around the process,
 * start-up included, is compared. A 1-byte get and `--version` show the start-up cost alone.
 *
 * @module
 */

import { errorMessage, freeUdpPort, hashFile, median, MiB } from "./lib.ts";
import { describeClientFailure, runClient, startServer } from "./peers.ts";
import { HOST, type PinMode, pinned, pinPrefix, refSpec, REPO_ROOT } from "./servers.ts";
import type { BenchFile } from "./report.ts";
import type { Ctx } from "./scenarios.ts";

/** One client's numbers in row 8. */
export interface ClientOutcome {
  name: "tftpkit get" | "atftp";
  ok: boolean;
  reason?: string;
  /** Wall times of the large download (ms). */
  runsMs: number[];
  medianMs: number | null;
  /** Wall times of a 1-byte download (ms). */
  oneByteMs: number[];
  /** Wall times of `--version` (ms). */
  versionMs: number[];
  verification?: string;
}

/** Row 8's result: ratio = atftp median / tftpkit get median (>= 1: ours as fast). */
export interface ClientRowResult {
  id: "8";
  title: string;
  fileBytes: number;
  pin: PinMode;
  ours: ClientOutcome;
  atftp: ClientOutcome;
  ratio: number | null;
}

/** The `deno run` flags of `deno task tftpkit` (read from deno.json, so they stay the same). */
export function tftpkitTaskFlags(denoJson: string): string[] {
  const task: string = JSON.parse(denoJson).tasks.tftpkit;
  const words = task.split(/\s+/).filter((w) => w !== "");
  return words.filter((w) => w !== "deno" && w !== "run" && w !== "main.ts");
}

/** Inputs of row 8: what every row has, and its two files. */
export type ClientRowInput =
  & Pick<Ctx, "tools" | "servedDir" | "downloadDir" | "logDir" | "runs" | "clientTimeout" | "pin">
  & { file: BenchFile; oneByte: BenchFile };

/** Runs row 8 (see the module doc). */
export async function runClientRow(inp: ClientRowInput): Promise<ClientRowResult> {
  const title = `get vs atftp client, ${+(inp.file.size / MiB).toFixed(1)} MiB, 16 @ 1468, ` +
    `from atftpd`;
  console.log(`\n=== [8] ${title} (pin ${inp.pin}) ===`);
  const mk = (name: ClientOutcome["name"]): ClientOutcome => ({
    name,
    ok: false,
    runsMs: [],
    medianMs: null,
    oneByteMs: [],
    versionMs: [],
  });
  const ours = mk("tftpkit get");
  const atftp = mk("atftp");
  const result: ClientRowResult = {
    id: "8",
    title,
    fileBytes: inp.file.size,
    pin: inp.pin,
    ours,
    atftp,
    ratio: null,
  };
  const ts = inp.tools.taskset;
  const srvPrefix = ts ? pinPrefix(inp.pin, "server", ts) : null;
  const cliPrefix = ts ? pinPrefix(inp.pin, "client", ts) ?? [] : [];
  const port = await freeUdpPort(HOST);
  const spec = refSpec("atftpd", inp.tools, inp.servedDir, port, inp.logDir);
  if (typeof spec === "string") {
    ours.reason = atftp.reason = `not available: atftpd ${spec}`;
    return result;
  }
  const flags = tftpkitTaskFlags(await Deno.readTextFile(`${REPO_ROOT}/deno.json`));
  const main = `${REPO_ROOT}/main.ts`;
  const timeout = Math.max(60_000, (inp.file.size / MiB) * 2_000);
  const to = inp.clientTimeout > 0 ? ["--tftp-timeout", String(inp.clientTimeout)] : [];
  const cmds = {
    ours: (name: string, local: string) => [
      Deno.execPath(),
      "run",
      ...flags,
      main,
      "get",
      `${HOST}:${port}`,
      name,
      local,
      "-q",
      "--windowsize",
      "16",
      "--blksize",
      "1468",
    ],
    atftp: (name: string, local: string) => [
      inp.tools.atftp,
      ...to,
      "-g",
      "-r",
      name,
      "-l",
      local,
      "--option",
      "blksize 1468",
      "--option",
      "windowsize 16",
      HOST,
      String(port),
    ],
  };
  const run = async (argv: string[]) => {
    const full = [...cliPrefix, ...argv];
    const r = await runClient(full[0], full.slice(1), timeout);
    if (r.code !== 0 || r.timedOut) throw new Error(describeClientFailure(r));
    return r.ms;
  };
  const server = await startServer(pinned(spec, srvPrefix), port, 10_000).catch((err) => {
    ours.reason = atftp.reason = `not available: atftpd ${errorMessage(err)}`;
    return null;
  });
  if (!server) return result;
  console.log(`  atftpd: started, pid ${server.pid}, port ${port}`);
  const pairs: [ClientOutcome, typeof cmds.ours][] = [[ours, cmds.ours], [atftp, cmds.atftp]];
  try {
    // Untimed: the full file into a temp file, SHA-256-checked (also the warm-up).
    for (const [o, cmd] of pairs) {
      const local = `${inp.downloadDir}/8-${o.name.replace(" ", "-")}.bin`;
      try {
        const ms = await run(cmd(inp.file.name, local));
        const got = await hashFile(local);
        if (got.size !== inp.file.size || got.sha256 !== inp.file.sha256) {
          throw new Error(
            `got ${got.size} bytes, SHA-256 ${got.sha256 === inp.file.sha256 ? "ok" : "differs"}`,
          );
        }
        o.verification = `${got.size} bytes, SHA-256 ok (${(ms / 1000).toFixed(2)} s untimed)`;
        o.ok = true;
      } catch (err) {
        o.reason = `failed verification: ${errorMessage(err)}`;
      } finally {
        await Deno.remove(local).catch(() => {});
      }
      console.log(`  ${o.name}: verify ${o.ok ? `ok: ${o.verification}` : o.reason}`);
    }
    for (let i = 1; i <= inp.runs; i++) {
      for (const [o, cmd] of pairs) {
        if (!o.ok) continue;
        try {
          o.runsMs.push(await run(cmd(inp.file.name, "/dev/null")));
          o.oneByteMs.push(await run(cmd(inp.oneByte.name, "/dev/null")));
          const version = cmd === cmds.ours
            ? [Deno.execPath(), "run", ...flags, main, "--version"]
            : [inp.tools.atftp, "--version"];
          o.versionMs.push(await run(version));
          console.log(
            `  ${o.name.padEnd(12)} run ${i}/${inp.runs}: ${
              (o.runsMs.at(-1)! / 1000).toFixed(3)
            } s; ` +
              `1 byte ${o.oneByteMs.at(-1)!.toFixed(0)} ms; --version ${
                o.versionMs.at(-1)!.toFixed(0)
              } ms`,
          );
        } catch (err) {
          o.ok = false;
          o.reason = `failed in run ${i}: ${errorMessage(err)}`;
          console.log(`  ${o.name}: ${o.reason}`);
        }
      }
    }
  } finally {
    await server.stop();
  }
  for (const o of [ours, atftp]) o.medianMs = o.ok && o.runsMs.length ? median(o.runsMs) : null;
  result.ratio = ours.medianMs !== null && atftp.medianMs !== null
    ? atftp.medianMs / ours.medianMs
    : null;
  return result;
}
