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
import { basename, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import config from "../../deno.json" with { type: "json" };
import { detectBinaryTarget, readHead, type Target, TARGETS } from "./targets.ts";

export { detectBinaryTarget, type Target, TARGETS } from "./targets.ts";

/** The repository root (where `deno compile` runs). */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** The permissions baked into every binary (plus `--allow-write` unless `--read-only`). */
export const BASE_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-sys=networkInterfaces,statfs",
];

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

/** A bad command line or offline setup: exit code 2. */
export class UsageError extends Error {}

/** One binary to build. */
export interface Build {
  target: Target;
  /** Absolute output path. */
  output: string;
  /** The denort to use (DENORT_BIN for this build), if any. */
  denort?: string;
  /** `deno compile` arguments. */
  args: string[];
}

/** What {@linkcode planBuilds} needs. */
export interface PlanOptions {
  all?: boolean;
  targets?: string[];
  out?: string;
  readOnly?: boolean;
  /** `DENORT_BIN` (empty counts as unset). */
  denortBin?: string;
  /** `DENORT_DIR` (empty counts as unset). */
  denortDir?: string;
  /** This machine's target (default `Deno.build.target`). */
  native?: string;
}

function isTarget(t: string): t is Target {
  return (TARGETS as readonly string[]).includes(t);
}

function exeSuffix(target: Target): string {
  return target.includes("windows") ? ".exe" : "";
}

/**
 * V8 flags baked into every binary: a young generation of at most 2 MiB per semi-space, and
 * `--optimize-for-size` (the old generation grows more slowly). The server makes many small
 * short-lived objects per packet, and V8's defaults (up to 16 MiB per semi-space, in every worker
 * isolate) cost much more resident memory at the same throughput (BENCHMARKS.md, "Memory").
 * The deno tasks use the same flags.
 */
export const V8_FLAGS = "--v8-flags=--max-semi-space-size=2,--optimize-for-size";

/** The module of the server's transfer workers (`serve --workers`), relative to the root. */
export const WORKER_MODULE = "src/server/worker.ts";

/** The permission flags baked into a binary. */
export function permissionFlags(readOnly = false): string[] {
  return [...BASE_PERMISSIONS, ...(readOnly ? [] : ["--allow-write"])];
}

/**
 * Decides what to build and with which `deno compile` arguments (no side effects apart from
 * reading the headers of DENORT_BIN/DENORT_DIR files).
 *
 * @throws {UsageError} Unknown target, or a DENORT_BIN/DENORT_DIR that cannot serve the targets.
 */
export function planBuilds(o: PlanOptions): Build[] {
  const native = o.native ?? Deno.build.target;
  const out = resolve(o.out ?? join(ROOT, "dist"));
  let targets: Target[];
  let nativeName = false;
  if (o.all) {
    if (o.targets?.length) throw new UsageError("--all and --target exclude each other");
    targets = [...TARGETS];
  } else if (o.targets?.length) {
    for (const t of o.targets) {
      if (!isTarget(t)) {
        throw new UsageError(`--target: unknown target '${t}' (one of ${TARGETS.join(", ")})`);
      }
    }
    targets = [...new Set(o.targets as Target[])];
  } else {
    if (!isTarget(native)) {
      throw new UsageError(
        `this machine (${native}) is not a deno compile target; use --target or --all`,
      );
    }
    targets = [native];
    nativeName = true;
  }
  const denortBin = o.denortBin || undefined;
  const denortDir = o.denortDir || undefined;
  if (denortBin && denortDir) {
    throw new UsageError("set DENORT_BIN or DENORT_DIR, not both");
  }
  if (denortBin && targets.length > 1) {
    throw new UsageError(
      `DENORT_BIN is one denort binary, for one target, but ${targets.length} targets were ` +
        `asked for: put denort-<target> files in a directory and set DENORT_DIR instead`,
    );
  }
  const denorts = new Map<Target, string>();
  if (denortBin) denorts.set(targets[0], resolve(denortBin));
  if (denortDir) {
    const missing: string[] = [];
    for (const t of targets) {
      const file = join(resolve(denortDir), `denort-${t}${exeSuffix(t)}`);
      if (existsFile(file)) denorts.set(t, file);
      else missing.push(basename(file));
    }
    if (missing.length) {
      throw new UsageError(`DENORT_DIR ${denortDir} lacks ${missing.join(", ")}`);
    }
  }
  for (const [t, file] of denorts) {
    const what = denortBin ? "DENORT_BIN" : "DENORT_DIR";
    if (!existsFile(file)) throw new UsageError(`${what}: ${file} is not a file`);
    const kind = detectBinaryTarget(readHead(file));
    if (kind === null) {
      throw new UsageError(`${what}: ${file} is not an executable (ELF, Mach-O or PE)`);
    }
    if (!kind.includes(t)) {
      throw new UsageError(
        `${what}: ${file} is a runtime for ${kind.join(" or ")}, not for ${t}`,
      );
    }
  }
  return targets.map((target) => {
    const output = join(out, `tftpkit${nativeName ? "" : `-${target}`}${exeSuffix(target)}`);
    return {
      target,
      output,
      denort: denorts.get(target),
      args: [
        "compile",
        "--frozen",
        "--exclude-unused-npm",
        "--no-prompt",
        "--unstable-net",
        V8_FLAGS,
        ...permissionFlags(o.readOnly),
        // The transfer workers' module is loaded by URL at run time: compile it in.
        "--include",
        WORKER_MODULE,
        "--target",
        target,
        "--output",
        shown(output),
        "main.ts",
      ],
    };
  });
}

/** A path as given to deno compile (which runs in ROOT): relative when inside the repository. */
function shown(path: string): string {
  const r = relative(ROOT, path);
  return r && !r.startsWith("..") && !isAbsolute(r) ? r : path;
}

function existsFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The shell command line of a build, as `--dry-run` prints it. */
export function commandLine(build: Build, deno = Deno.execPath()): string {
  const env = build.denort ? `DENORT_BIN=${quote(build.denort)} ` : "";
  return env + [deno, ...build.args].map(quote).join(" ");
}

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
