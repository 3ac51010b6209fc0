/**
 * The `get`/`put` command lines: their help, flags, `HOST[:PORT]` and `tftp://` targets (RFC
 * 3617, `;mode=` honoured) and {@linkcode parseTransferArgs}.
 *
 * @module
 */

import { basename } from "node:path";
import type { ClientOptions, Target } from "../client/client.ts";
import { LIMITS } from "../wire/options.ts";
import { intFlag, parse, UsageError, windowBytesFlag } from "./args.ts";
import { CLIENT_EXIT_HELP } from "./exit_codes.ts";

const COMMON_HELP = `
Options:
  --blksize N          block size to ask for (8-65464, default 1468; 512 = none)
  --windowsize N       window size to ask for (1-65535, default 16; 1 = none), lowered so
                       that a window holds at most --max-window-bytes
  --max-window-bytes SIZE  largest window to ask for (default 64K, what a default UDP
                       receive buffer takes in one burst; max 1M)
  --timeout SECONDS    retransmission timeout, also asked of the server (1-255, default 1)
  --retries N          retransmissions before giving up (default 5)
  --mode MODE          octet (default) or netascii; tftp-hpa's binary and ascii also work
  --no-options         plain RFC 1350: ask for no options at all
  --json               print one JSON object with the outcome on standard output
  -q, --quiet          no progress line, no summary line
  -v, --verbose        debug lines on standard error: options asked and answered
  -h, --help           show this help

A progress line shows when standard error is a terminal (cut to its width); when neither
standard output nor standard error is one, one summary line goes to standard error instead.
SIGINT/SIGTERM sends the server ERROR 0 "cancelled" and removes what was written; a second
one exits at once (when a FIFO or standard input holds it up).

${CLIENT_EXIT_HELP}`;

/** `tftpkit get --help`. */
export const GET_HELP = `Usage: tftpkit get HOST[:PORT] REMOTE [LOCAL] [options]
       tftpkit get tftp://HOST[:PORT]/REMOTE[;mode=netascii] [LOCAL] [options]

Download REMOTE to LOCAL (default: REMOTE's base name; '-' writes to standard output).
A regular file appears under LOCAL only when complete (through a symbolic link, its target
is replaced); a device, FIFO or /dev/fd/N is written straight into, never replaced.
  --no-clobber         fail (exit 73) if LOCAL is an existing file
` + COMMON_HELP;

/** `tftpkit put --help`. */
export const PUT_HELP = `Usage: tftpkit put HOST[:PORT] LOCAL [REMOTE] [options]
       tftpkit put tftp://HOST[:PORT]/REMOTE LOCAL [options]
       tftpkit put LOCAL tftp://HOST[:PORT]/REMOTE [options]

Upload LOCAL ('-' reads standard input) as REMOTE (default: LOCAL's base name).
` + COMMON_HELP;

/** The flags of `get` and `put`. */
export const TRANSFER_FLAGS = {
  blksize: { type: "string" },
  windowsize: { type: "string" },
  "max-window-bytes": { type: "string" },
  timeout: { type: "string" },
  retries: { type: "string" },
  mode: { type: "string" },
  "no-options": { type: "boolean" },
  "no-clobber": { type: "boolean" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
} as const;

type Mode = "octet" | "netascii";

/** tftp-hpa's mode names (`binary`, `ascii`) and RFC 1350's. */
const MODES: Record<string, Mode> = {
  octet: "octet",
  binary: "octet",
  netascii: "netascii",
  ascii: "netascii",
};

function modeOf(what: string, value: string): Mode {
  const mode = MODES[value.toLowerCase()];
  if (!mode) {
    throw new UsageError(`${what} must be octet or netascii (or binary, ascii): got '${value}'`);
  }
  return mode;
}

/** A parsed `HOST[:PORT]` or `tftp://HOST[:PORT]/PATH[;mode=M]`. */
export interface Where {
  /** The server. */
  target: Target;
  /** The path of a `tftp://` URI (without the leading slash), else undefined. */
  path?: string;
  /** The URI's `;mode=`, if any. */
  mode?: Mode;
}

/**
 * Parses `HOST`, `HOST:PORT`, `[V6]:PORT`, a bare IPv6 literal, or a `tftp://` URI (RFC 3617:
 * a `;mode=netascii` or `;mode=octet` suffix sets the mode).
 *
 * @example
 * ```ts
 * import { parseWhere } from "./transfer_args.ts";
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(parseWhere("tftp://[::1]:6969/pxelinux.cfg;mode=netascii"), {
 *   target: { hostname: "::1", port: 6969 },
 *   path: "pxelinux.cfg",
 *   mode: "netascii",
 * });
 * ```
 */
export function parseWhere(text: string): Where {
  const uri = /^tftp:\/\/(\[[^\]]+\]|[^/:]+)(?::(\d+))?\/(.+)$/i.exec(text);
  if (uri) {
    const m = /^(.*);mode=([^;/]*)$/i.exec(uri[3]);
    const where: Where = {
      target: host(uri[1], uri[2], text),
      path: decodeURIComponent(m ? m[1] : uri[3]),
    };
    if (m) where.mode = modeOf(`the ;mode= of ${text}`, m[2]);
    return where;
  }
  if (/^tftp:/i.test(text)) throw new UsageError(`not a valid tftp:// URI: '${text}'`);
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) return { target: host(v6[1], v6[2], text) };
  if ((text.match(/:/g) ?? []).length > 1) return { target: { hostname: text, port: 69 } };
  const [h, p] = text.split(":");
  return { target: host(h, p, text) };
}

function host(hostname: string, port: string | undefined, text: string): Target {
  const name = hostname.replace(/^\[(.*)\]$/, "$1");
  if (!name) throw new UsageError(`missing host in '${text}'`);
  return { hostname: name, port: port === undefined ? 69 : intFlag("port", port, 1, 65535) };
}

/** A parsed `get`/`put` command line. */
export interface TransferPlan {
  /** `--help`: print it and do nothing else. */
  help: boolean;
  /** The server. */
  target: Target;
  /** The name on the server. */
  remote: string;
  /** The local path; `-` is standard output (get) or input (put). */
  local: string;
  /** Client options from the flags (no signal, no progress yet). */
  options: ClientOptions;
  /** `-q`. */
  quiet: boolean;
  /** `-v`. */
  verbose: boolean;
  /** `--json`. */
  json: boolean;
  /** `--no-clobber`. */
  noClobber: boolean;
}

/**
 * Parses a `get` or `put` command line.
 *
 * @throws {UsageError} Naming the bad flag or argument.
 *
 * @example
 * ```ts
 * import { parseTransferArgs } from "./transfer_args.ts";
 * import { equal } from "node:assert/strict";
 * const plan = parseTransferArgs("put", ["sw1.cfg", "tftp://10.0.0.1/backups/sw1.cfg"]);
 * equal(plan.remote, "backups/sw1.cfg");
 * equal(plan.local, "sw1.cfg");
 * ```
 */
export function parseTransferArgs(command: "get" | "put", args: string[]): TransferPlan {
  const { values: v, positionals } = parse(args, TRANSFER_FLAGS);
  const plan = { help: true } as TransferPlan;
  if (v.help) return plan;
  plan.help = false;
  const int = (flag: "blksize" | "windowsize" | "timeout" | "retries", min: number, max: number) =>
    typeof v[flag] === "string" ? intFlag(`--${flag}`, v[flag] as string, min, max) : undefined;
  const timeout = int("timeout", LIMITS.timeout.min, LIMITS.timeout.max);
  plan.options = {
    blksize: int("blksize", LIMITS.blksize.min, LIMITS.blksize.max),
    windowsize: int("windowsize", LIMITS.windowsize.min, LIMITS.windowsize.max),
    maxWindowBytes: windowBytesFlag(v["max-window-bytes"]),
    timeoutMs: timeout === undefined ? undefined : timeout * 1000,
    retries: int("retries", 0, 100),
    noOptions: v["no-options"] ?? false,
  };
  if (v.quiet && v.verbose) throw new UsageError("--quiet and --verbose do not go together");
  if (v["no-clobber"] && command === "put") {
    throw new UsageError("--no-clobber is for get: a server refuses to replace files by itself");
  }
  Object.assign(plan, {
    quiet: v.quiet ?? false,
    verbose: v.verbose ?? false,
    json: v.json ?? false,
    noClobber: v["no-clobber"] ?? false,
  });
  if (positionals.length === 0) throw new UsageError("missing HOST (see --help)");
  // put LOCAL tftp://HOST/REMOTE: curl's order (-T LOCAL URL).
  const swapped = command === "put" && positionals.length === 2 &&
    !/^tftp:/i.test(positionals[0]) && /^tftp:/i.test(positionals[1]);
  const where = parseWhere(swapped ? positionals[1] : positionals[0]);
  const rest = swapped ? [positionals[0]] : positionals.slice(1);
  const max = where.path === undefined ? 2 : 1;
  if (rest.length > max) throw new UsageError(`too many arguments: ${rest.slice(max).join(" ")}`);
  plan.target = where.target;
  const flagMode = v.mode === undefined ? undefined : modeOf("--mode", v.mode);
  if (flagMode && where.mode && flagMode !== where.mode) {
    throw new UsageError(`--mode ${v.mode} and the URI's ;mode=${where.mode} disagree`);
  }
  plan.options.mode = flagMode ?? where.mode ?? "octet";
  if (command === "get") {
    const remote = where.path ?? rest[0];
    if (!remote) throw new UsageError("missing REMOTE file name");
    plan.remote = remote;
    plan.local = (where.path === undefined ? rest[1] : rest[0]) ??
      basename(remote.replaceAll("\\", "/"));
    if (plan.json && plan.local === "-") {
      throw new UsageError("--json writes to standard output: give LOCAL a file name, not '-'");
    }
  } else {
    const local = rest[0];
    if (!local) throw new UsageError("missing LOCAL file name");
    const remote = where.path ?? rest[1] ?? (local === "-" ? undefined : basename(local));
    if (!remote) throw new UsageError("REMOTE is required when reading standard input");
    plan.local = local;
    plan.remote = remote;
  }
  return plan;
}
