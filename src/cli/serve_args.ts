/**
 * The `serve` command line: its help, its flags, and {@linkcode parseServeArgs}, which refuses
 * flags that do not fit together (exit 2) with a message naming them.
 *
 * @module
 */

import type { ServerOptions } from "../server/server.ts";
import { LIMITS } from "../wire/options.ts";
import {
  addressPortFlag,
  choiceFlag,
  cidrFlag,
  intFlag,
  parse,
  rangeFlag,
  sizeFlag,
  UsageError,
  windowBytesFlag,
} from "./args.ts";
import { SERVE_EXIT_HELP } from "./exit_codes.ts";

/** Cores of this machine: the default number of transfer workers. */
export const CORES: number = Math.max(1, navigator.hardwareConcurrency ?? 1);

/** `tftpkit serve --help`. */
export const SERVE_HELP = `Usage: tftpkit serve PATH [options]
       tftpkit serve URL [options]
       tftpkit serve --origin URL/ [options]

Serve PATH over TFTP: a directory is served as a tree; a single file is returned for every
requested name ('.' serves the current directory). An http(s) URL is served like a single
file; --origin URL/ serves a tree from an HTTP origin (GET URL/name).

Listening:
  --address ADDR[:PORT]     IPv4 or IPv6 address to listen on ([2001:db8::1]:69 with a port);
                            repeatable (default: every local address when they can be listed,
                            else one wildcard socket)
  --port N                  UDP port (default 69; below 1024 needs root or CAP_NET_BIND_SERVICE)
  --single-port             run every transfer over the listening port (NAT, firewalls,
                            containers); not with --port-range
  --port-range LO-HI        use only these ports for transfer sockets

Files:
  --write                   accept uploads of new files
  --overwrite               with --write, also replace existing files
  --ignore-case             match a name that differs only in letter case when none matches
                            exactly (a directory only)
  --map FILE                rewrite requested names: lines of 'REGEX REPLACEMENT', '#' comments
                            (a directory or --origin)
  --max-upload-size SIZE    refuse larger uploads (e.g. 100M)
  --origin URL/             serve the tree below an HTTP(S) URL instead of PATH
  --cache DIR               keep completed HTTP downloads in DIR
  --cache-max-bytes SIZE    evict least recently used files above this size (default 1G)
  --cache-ttl SECONDS       revalidate cached files older than this (default 60)

Protocol:
  --max-blksize N           largest blksize granted (8-65464, default 65464)
  --max-windowsize N        largest windowsize granted (1-65535, default 64)
  --max-window-bytes SIZE   lower windowsize so a window holds at most SIZE (default 64K,
                            what a default UDP receive buffer takes in one burst; max 1M)
  --timeout SECONDS         retransmission timeout when the client asks for none (1-255, default 1);
                            once a client has answered, resends adapt to the round trip
  --retries N               resends of an unanswered reply (1-100, default 5)
  --client-timeout SECONDS  the retransmission timer assumed for clients that ask no timeout
                            (1-255, default 5); a client that answered and falls silent is given
                            up after max(timeout x (retries+1), 10 x its timer): 50 s by default

Limits and access:
  --workers N               isolates that run transfers (1-64, default: one per core, here
                            ${CORES}, or 1 with --single-port); 1 runs them all on the one
                            that listens
  --max-sessions N          transfers at once (default 512)
  --max-sessions-per-client N  transfers at once from one address (default 64)
  --allow CIDR              serve only these clients (repeatable)
  --deny CIDR               never answer these clients (repeatable; wins over --allow)

Running:
  --once                    exit after one successful transfer (same as --max-transfers 1)
  --max-transfers N         exit 0 after N successful transfers
  --idle-exit SECONDS       exit when no transfer ran for this long
  -q, --quiet               log the start line, warnings and errors only
  -v, --verbose             debug logging: options asked and answered, names as resolved,
                            dropped and malformed requests
  --log-format text|json    log lines as text (default) or one JSON object per line
  -h, --help                show this help

A second SIGINT/SIGTERM ends running transfers at once instead of waiting up to 5 s.

${SERVE_EXIT_HELP}`;

/** The flags of `serve`, for parsing and for suggestions. */
export const SERVE_FLAGS = {
  address: { type: "string", multiple: true },
  port: { type: "string" },
  "single-port": { type: "boolean" },
  "port-range": { type: "string" },
  write: { type: "boolean" },
  overwrite: { type: "boolean" },
  "ignore-case": { type: "boolean" },
  map: { type: "string" },
  "max-upload-size": { type: "string" },
  origin: { type: "string" },
  cache: { type: "string" },
  "cache-max-bytes": { type: "string" },
  "cache-ttl": { type: "string" },
  "max-blksize": { type: "string" },
  "max-windowsize": { type: "string" },
  "max-window-bytes": { type: "string" },
  timeout: { type: "string" },
  retries: { type: "string" },
  "client-timeout": { type: "string" },
  "max-sessions": { type: "string" },
  "max-sessions-per-client": { type: "string" },
  workers: { type: "string" },
  allow: { type: "string", multiple: true },
  deny: { type: "string", multiple: true },
  once: { type: "boolean" },
  "max-transfers": { type: "string" },
  "idle-exit": { type: "string" },
  quiet: { type: "boolean", short: "q" },
  verbose: { type: "boolean", short: "v" },
  "log-format": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Parsed `serve` command line. */
export interface ServeConfig {
  /** PATH or URL (undefined with `--origin` or `--help`). */
  path?: string;
  /** What the server is started with (all but the source). */
  server: Omit<ServerOptions, "source">;
  /** `--write`. */
  write: boolean;
  /** `--overwrite`. */
  overwrite: boolean;
  /** `--ignore-case`. */
  ignoreCase: boolean;
  /** `--map FILE`. */
  mapFile?: string;
  /** `--origin URL/`: a tree from an HTTP origin. */
  origin?: string;
  /** `--cache DIR` and its limits (HTTP sources only). */
  cache?: { dir: string; maxBytes?: number; ttlSeconds?: number };
  /** `--once` (1) or `--max-transfers N`. */
  maxTransfers?: number;
  /** `--idle-exit` in milliseconds. */
  idleExitMs?: number;
  /** Lowest level logged (`-q` warning, `-v` debug). */
  level: "debug" | "info" | "warning";
  /** `--log-format`. */
  logFormat: "text" | "json";
  /** `--help`. */
  help: boolean;
}

/**
 * Does PATH name an HTTP(S) URL?
 *
 * @example
 * ```ts
 * import { isUrl } from "./serve_args.ts";
 * import { equal } from "node:assert/strict";
 * equal(isUrl("https://artifacts.example/fw.img"), true);
 * equal(isUrl("/srv/tftp"), false);
 * ```
 */
export function isUrl(path: string | undefined): boolean {
  return /^https?:\/\//i.test(path ?? "");
}

function conflict(a: string, b: string, why = ""): never {
  throw new UsageError(`${a} and ${b} do not go together${why ? `: ${why}` : ""}`);
}

/**
 * Parses the `serve` command line.
 *
 * @throws {UsageError} Naming the bad flag, or the two flags that do not go together.
 *
 * @example
 * ```ts
 * import { parseServeArgs } from "./serve_args.ts";
 * import { equal } from "node:assert/strict";
 * equal(parseServeArgs(["demo", "--port", "6969"]).server.port, 6969);
 * ```
 */
export function parseServeArgs(args: string[]): ServeConfig {
  const { values: v, positionals } = parse(args, SERVE_FLAGS);
  const help = v.help ?? false;
  if (positionals.length > 1) {
    throw new UsageError(`expected one PATH, got ${positionals.length}: ${positionals.join(" ")}`);
  }
  const path = positionals[0];
  const int = (flag: keyof typeof SERVE_FLAGS, min: number, max: number) => {
    const value = v[flag];
    return typeof value === "string" ? intFlag(`--${flag}`, value, min, max) : undefined;
  };
  if (v.overwrite && !v.write) throw new UsageError("--overwrite needs --write");
  const http = v.origin !== undefined || isUrl(path);
  if (v.origin !== undefined && path !== undefined) {
    throw new UsageError("--origin replaces PATH: give one or the other");
  }
  if (http && v.write) throw new UsageError("--write needs a directory, not an HTTP source");
  for (const flag of ["cache", "cache-max-bytes", "cache-ttl"] as const) {
    if (v[flag] !== undefined && !http) {
      throw new UsageError(`--${flag} needs an HTTP source (serve URL or --origin URL/)`);
    }
  }
  if ((v["cache-max-bytes"] !== undefined || v["cache-ttl"] !== undefined) && !v.cache) {
    throw new UsageError("--cache-max-bytes and --cache-ttl need --cache DIR");
  }
  if (v.once && v["max-transfers"] !== undefined) {
    conflict("--once", "--max-transfers", "--once is --max-transfers 1");
  }
  if (v["single-port"] && v["port-range"] !== undefined) {
    conflict("--single-port", "--port-range", "--single-port uses only the listening port");
  }
  if (v["ignore-case"] && http) {
    conflict("--ignore-case", v.origin !== undefined ? "--origin" : "a URL", "it cannot list");
  }
  if (v.map !== undefined && http && v.origin === undefined) {
    conflict("--map", "a single URL", "every name gets the URL");
  }
  if (v.quiet && v.verbose) conflict("--quiet", "--verbose");
  const timeout = int("timeout", LIMITS.timeout.min, LIMITS.timeout.max);
  const maxTransfers = v.once ? 1 : int("max-transfers", 1, Number.MAX_SAFE_INTEGER);
  const idle = int("idle-exit", 1, 31_536_000);
  const listen = addresses(v.address, int("port", 0, 65535));
  const config: ServeConfig = {
    path,
    server: {
      hostname: listen.hostname,
      port: listen.port ?? 69,
      singlePort: v["single-port"] ?? false,
      portRange: v["port-range"] ? rangeFlag("--port-range", v["port-range"]) : undefined,
      maxUploadSize: v["max-upload-size"]
        ? sizeFlag("--max-upload-size", v["max-upload-size"])
        : undefined,
      maxBlksize: int("max-blksize", LIMITS.blksize.min, LIMITS.blksize.max),
      maxWindowsize: int("max-windowsize", LIMITS.windowsize.min, LIMITS.windowsize.max),
      maxWindowBytes: windowBytesFlag(v["max-window-bytes"]),
      timeoutMs: timeout === undefined ? undefined : timeout * 1000,
      retries: int("retries", 1, 100),
      clientTimeoutMs: seconds(int("client-timeout", LIMITS.timeout.min, LIMITS.timeout.max)),
      maxSessions: int("max-sessions", 1, 100_000),
      maxSessionsPerClient: int("max-sessions-per-client", 1, 100_000),
      // With --single-port every datagram passes through the listening isolate anyway, and
      // forwarding each to a worker and back cost more than running the transfer there
      // (lock-step 1.7 against 7-8 MB/s; BENCHMARKS.md): one isolate unless asked for more.
      workers: int("workers", 1, 64) ?? (v["single-port"] ? 1 : CORES),
      allow: v.allow?.map((c) => cidrFlag("--allow", c)),
      deny: v.deny?.map((c) => cidrFlag("--deny", c)),
    },
    write: v.write ?? false,
    overwrite: v.overwrite ?? false,
    ignoreCase: v["ignore-case"] ?? false,
    mapFile: v.map,
    origin: v.origin,
    cache: v.cache === undefined ? undefined : {
      dir: v.cache,
      maxBytes: v["cache-max-bytes"]
        ? sizeFlag("--cache-max-bytes", v["cache-max-bytes"])
        : undefined,
      ttlSeconds: int("cache-ttl", 0, 31_536_000),
    },
    maxTransfers,
    idleExitMs: idle === undefined ? undefined : idle * 1000,
    level: v.verbose ? "debug" : v.quiet ? "warning" : "info",
    logFormat: v["log-format"] === undefined
      ? "text"
      : choiceFlag("--log-format", v["log-format"], ["text", "json"]),
    help,
  };
  // Checked last, so that a bad flag is named first.
  if (path === undefined && v.origin === undefined && !help) {
    throw new UsageError(
      "missing PATH: a directory, a file or an http(s) URL to serve ('.' for this directory)",
    );
  }
  return config;
}

/**
 * The listening addresses (each once, in the order given) and port: `--address ADDR:PORT` gives
 * the port too, which must agree with `--port` and with the other addresses.
 */
function addresses(
  values: string[] | undefined,
  port: number | undefined,
): { hostname?: string | string[]; port?: number } {
  if (!values?.length) return { port };
  const list: string[] = [];
  let portFrom = port === undefined ? undefined : "--port";
  for (const value of values) {
    const a = addressPortFlag(value);
    if (a.port !== undefined) {
      if (port !== undefined && a.port !== port) {
        throw new UsageError(
          `--address ${value} names port ${a.port}, but ${portFrom} says ${port}: give the port once`,
        );
      }
      port = a.port;
      portFrom ??= `--address ${value}`;
    }
    if (!list.includes(a.address)) list.push(a.address);
  }
  return { hostname: list.length === 1 ? list[0] : list, port };
}

function seconds(s: number | undefined): number | undefined {
  return s === undefined ? undefined : s * 1000;
}
