/**
 * Builds self-contained `tftpkit` binaries with `deno compile`.
 *
 * ```sh
 * deno run --allow-all scripts/release/compile.ts             # dist/tftpkit for this machine
 * deno run --allow-all scripts/release/compile.ts --all       # dist/tftpkit-<target> for every target
 * deno run --allow-all scripts/release/compile.ts --target aarch64-apple-darwin
 * deno run --allow-all scripts/release/compile.ts --all --dry-run   # print the commands, build nothing
 * ```
 *
 * Every binary is built with `--unstable-net --allow-net --allow-read
 * --allow-sys=networkInterfaces,statfs --allow-write --no-prompt` (`networkInterfaces` lets the
 * server listen once per local address, `statfs` check the free space for an announced upload)
 * (and `--frozen` so it holds exactly the locked dependencies, `--exclude-unused-npm` so it holds
 * only the npm packages main.ts reaches: not the test-only ones).
 * Write permission is baked in because the same binary is also the client (`tftpkit get` saves
 * files); the server still refuses every upload unless it is started with `--write`. Pass
 * `--read-only` to leave `--allow-write` out (then `serve --write` is refused at start and `get`
 * can only write to standard output).
 *
 * `deno compile` appends the program to a runtime binary, `denort`, that it downloads for each
 * target. Without network, supply it: `DENORT_BIN=/path/to/denort` for one target, or
 * `DENORT_DIR=/dir` holding `denort-<target>` (`denort-<target>.exe` for Windows) files for
 * several. A binary built for this machine is run once (`--version`) to check it really is
 * tftpkit; `SHA256SUMS` (the `sha256sum -c` format) is written next to what was built.
 *
 * Exit codes: 0 built, 1 a build failed, 2 bad command line or bad DENORT_BIN/DENORT_DIR.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { basename, join, resolve } from "node:path";
import config from "../../deno.json" with { type: "json" };
import {
  type Build,
  commandLine,
  existsFile,
  planBuilds,
  ROOT,
  shown,
  UsageError,
} from "./plan.ts";
import { detectBinaryTarget, readHead, type Target, TARGETS } from "./targets.ts";

const HELP = `Usage: deno run --allow-all scripts/release/compile.ts [options]

Builds tftpkit binaries with deno compile.

  (no option)        dist/tftpkit for this machine (${Deno.build.target})
  --all              dist/tftpkit-<target> for ${TARGETS.join(", ")}
  --target T         build for target T (repeatable)
  --out DIR          output directory (default: dist in the repository)
  --read-only        leave --allow-write out of the binaries
  --dry-run          print the commands it would run and build nothing
  -h, --help         show this help

Offline builds: deno compile downloads the Deno runtime (denort) for each target. Supply it with
  DENORT_BIN=/path/to/denort           one target (this machine's, or the one --target names)
  DENORT_DIR=/dir                      /dir/denort-<target> (denort-<target>.exe for Windows)
The runtime must be the denort of Deno ${Deno.version.deno} for that target.
`;

/**
 * Writes `SHA256SUMS` in `dir` for `files` (names inside `dir`), in the format of
 * `sha256sum -c`: `<hex>  <name>` per line. Returns the text written.
 */
export async function writeChecksums(dir: string, files: string[]): Promise<string> {
  let text = "";
  for (const name of files) {
    const bytes = await Deno.readFile(join(dir, name));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    text += `${[...digest].map((b) => b.toString(16).padStart(2, "0")).join("")}  ${name}\n`;
  }
  await Deno.writeTextFile(join(dir, "SHA256SUMS"), text);
  return text;
}

// deno-lint-ignore no-control-regex
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

/** Why a failed `deno compile` failed, in words an operator can act on. */
export function explainFailure(build: Build, stderr: string): string {
  const text = stripAnsi(stderr);
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  const error = lines.find((l) => l.startsWith("error:")) ?? lines.at(-1) ?? "(no output)";
  const download =
    /Setting up base binary|denort-[\w-]+\.zip|error sending request|dns error|Download could not be found/i
      .test(text);
  if (download && !build.denort) {
    const causedBy = text.split(/Caused by:/)[1]?.split(/Stack backtrace:/)[0] ?? "";
    const cause = causedBy.split("\n").map((l) => l.trim()).filter((l) => /^\d+: /.test(l)).at(-1);
    return [
      `compile: deno compile could not download the Deno runtime (denort) for ${build.target}` +
      (cause ? `: ${cause.replace(/^\d+: /, "")}` : ""),
      `  deno compile appends tftpkit to denort, which it downloads for Deno ${Deno.version.deno}`,
      `  and each target; this machine cannot reach it. To build offline, copy denort from a`,
      `  connected machine (the denort-<target>.zip assets of the Deno ${Deno.version.deno} release,`,
      `  unzipped) and point the build at it:`,
      `    DENORT_BIN=/path/to/denort deno task compile        (one target)`,
      `    DENORT_DIR=/dir deno task compile:all                (/dir/denort-<target>[.exe])`,
    ].join("\n");
  }
  if (build.denort) {
    return `compile: deno compile failed for ${build.target} with DENORT_BIN=${build.denort}: ` +
      `${error}\n  (DENORT_BIN must be the denort of Deno ${Deno.version.deno} for ${build.target})`;
  }
  return `compile: deno compile failed for ${build.target}: ${error}`;
}

/** Runs a command, copying its output through and keeping stderr. */
async function runForwarding(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const decoder = new TextDecoder();
  const copy = async (stream: ReadableStream<Uint8Array>, keep: boolean) => {
    for await (const chunk of stream) {
      await Deno.stderr.write(chunk);
      if (keep) stderr += decoder.decode(chunk, { stream: true });
    }
  };
  await Promise.all([copy(child.stdout, false), copy(child.stderr, true)]);
  return { code: (await child.status).code, stderr };
}

/** Runs a binary built for this machine and checks that it is tftpkit of this version. */
async function verifyNative(build: Build): Promise<string | null> {
  const child = new Deno.Command(build.output, {
    args: ["--version"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, 30_000);
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(out.stdout).trim();
  const want = `tftpkit ${config.version}`;
  if (out.code === 0 && text === want) return null;
  const first = text.split("\n")[0] || new TextDecoder().decode(out.stderr).trim().split("\n")[0];
  let why = `compile: ${shown(build.output)} --version printed '${first}' ` +
    `(exit ${out.code}), not '${want}'`;
  if (/^deno \d/.test(first)) {
    why += `\n  DENORT_BIN must be denort (the runtime that runs compiled programs), ` +
      `not the deno CLI: get the denort of Deno ${Deno.version.deno} for ${build.target}`;
  }
  return why;
}

function nativeTarget(target: Target): boolean {
  return Deno.build.target === target;
}

/** The command line. Resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        all: { type: "boolean" },
        target: { type: "string", multiple: true },
        out: { type: "string" },
        "read-only": { type: "boolean" },
        "dry-run": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`compile: ${(e as Error).message.split("\n")[0]}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  let builds: Build[];
  try {
    builds = planBuilds({
      all: values.all,
      targets: values.target,
      out: values.out,
      readOnly: values["read-only"],
      denortBin: Deno.env.get("DENORT_BIN"),
      denortDir: Deno.env.get("DENORT_DIR"),
    });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`compile: ${e.message}`);
    return 2;
  }
  const outDir = resolve(values.out ?? join(ROOT, "dist"));
  if (values["dry-run"]) {
    console.log(
      `# tftpkit ${config.version}: ${builds.length} binar${
        builds.length === 1 ? "y" : "ies"
      }, in ${ROOT}`,
    );
    for (const b of builds) console.log(commandLine(b));
    console.log(`# then: ${shown(join(outDir, "SHA256SUMS"))}`);
    return 0;
  }
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.remove(join(outDir, "SHA256SUMS")).catch(() => {});
  const env = Deno.env.toObject();
  delete env.DENORT_BIN;
  delete env.DENORT_DIR;
  const built: string[] = [];
  for (const b of builds) {
    console.error(`compile: ${commandLine(b)}`);
    const r = await runForwarding(b.args, b.denort ? { ...env, DENORT_BIN: b.denort } : env);
    if (r.code !== 0) {
      console.error(explainFailure(b, r.stderr));
      return 1;
    }
    // Deno adds .exe for Windows targets; the output already ends with it.
    if (!existsFile(b.output)) {
      console.error(`compile: deno compile reported success but ${b.output} is missing`);
      return 1;
    }
    if (nativeTarget(b.target)) {
      const bad = await verifyNative(b);
      if (bad) {
        await Deno.remove(b.output).catch(() => {});
        console.error(bad);
        return 1;
      }
    } else {
      const kind = detectBinaryTarget(readHead(b.output)) ?? [];
      if (!kind.includes(b.target)) {
        await Deno.remove(b.output).catch(() => {});
        console.error(`compile: ${b.output} is not an executable for ${b.target}`);
        return 1;
      }
    }
    built.push(basename(b.output));
  }
  const sums = await writeChecksums(outDir, built);
  console.error(`compile: built ${built.length} binaries; ${join(outDir, "SHA256SUMS")}:`);
  console.error(sums.trimEnd());
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
