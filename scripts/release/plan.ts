/**
 * What `scripts/release/compile.ts` builds and how: the targets asked for, the runtime (denort)
 * each one uses, and the exact `deno compile` arguments — the permissions and V8 flags baked into
 * every binary, and the workers' module compiled in. Pure apart from reading the headers of
 * DENORT_BIN/DENORT_DIR files.
 *
 * @module
 */

import { basename, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { detectBinaryTarget, readHead, type Target, TARGETS } from "./targets.ts";

/** The repository root (where `deno compile` runs). */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** The permissions baked into every binary (plus `--allow-write` unless `--read-only`). */
export const BASE_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-sys=networkInterfaces,statfs",
];

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
export function shown(path: string): string {
  const r = relative(ROOT, path);
  return r && !r.startsWith("..") && !isAbsolute(r) ? r : path;
}

/** Is `path` an existing regular file? */
export function existsFile(path: string): boolean {
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
