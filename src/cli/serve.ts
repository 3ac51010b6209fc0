/**
 * `tftpkit serve`: parse flags, build the file source, start the server, print where it listens,
 * and stop on SIGINT/SIGTERM, `--max-transfers` or `--idle-exit`.
 *
 * @module
 */

import { formatAddr } from "../net.ts";
import { DirectorySource, SingleFileSource } from "../storage/files.ts";
import { getLogger, setupLogging } from "../log.ts";
import { MapRulesError, parseMapRules } from "../storage/names.ts";
import { LIMITS } from "../wire/options.ts";
import type { FileSource } from "../storage/source.ts";
import { HttpCache } from "../storage/http/cache.ts";
import { HttpFileSource } from "../storage/http/origin.ts";
import { serve, type ServerOptions } from "../server/server.ts";
import {
  addressFlag,
  choiceFlag,
  intFlag,
  parse,
  rangeFlag,
  sizeFlag,
  UsageError,
  windowBytesFlag,
} from "./args.ts";

/** Exit codes of `tftpkit serve`. */
export const ServeExit = {
  /** Stopped by a signal, or `--max-transfers` reached. */
  OK: 0,
  /** Could not start (bad path, port in use, no permission) or failed while running. */
  ERROR: 1,
  /** Bad command line. */
  USAGE: 2,
  /** `--idle-exit` fired before `--max-transfers` was reached. */
  IDLE: 3,
} as const;

export const SERVE_HELP = `Usage: tftpkit serve [PATH] [options]

Serve PATH over TFTP: a directory is served as a tree; a single file is returned for every
requested name. PATH defaults to the current directory. An http(s) URL as PATH is served like a
single file; --origin URL/ serves a tree from an HTTP origin (GET URL/name).

Listening:
  --address ADDR            IPv4 or IPv6 address to listen on; repeatable (default: every local
                            address when they can be listed, else one wildcard socket)
  --port N                  UDP port (default 69; below 1024 needs root or CAP_NET_BIND_SERVICE)
  --single-port             run every transfer over the listening port (NAT, firewalls, containers)
  --port-range LO-HI        use only these ports for transfer sockets

Files:
  --write                   accept uploads of new files (needs --allow-write)
  --overwrite               with --write, also replace existing files
  --ignore-case             match a name that differs only in letter case when none matches exactly
  --map FILE                rewrite requested names: lines of 'REGEX REPLACEMENT', '#' comments
  --max-upload-size SIZE    refuse larger uploads (e.g. 100M)
  --origin URL/             serve the tree below an HTTP(S) URL instead of PATH
  --cache DIR               keep completed HTTP downloads in DIR (needs --allow-write=DIR)
  --cache-max-bytes SIZE    evict least recently used files above this size (default 1G)
  --cache-ttl SECONDS       revalidate cached files older than this (default 60)

Protocol:
  --max-blksize N           largest blksize granted (8-65464, default 65464)
  --max-windowsize N        largest windowsize granted (1-65535, default 64)
  --max-window-bytes SIZE   lower windowsize so a window holds at most SIZE (default 64K,
                            what a default UDP receive buffer takes in one burst; max 1M)
  --timeout SECONDS         retransmission timeout when the client asks for none (1-255, default 1);
                            after a client has answered, resends adapt to the round trip
  --retries N               resends of an unanswered reply (1-100, default 5)
  --client-timeout SECONDS  the retransmission timer assumed for clients that ask no timeout
                            (1-255, default 5); a client that answered and falls silent is given
                            up after max(timeout x (retries+1), 10 x its timer): 50 s by default

Limits and access:
  --max-sessions N          transfers at once (default 512)
  --max-sessions-per-client N  transfers at once from one address (default 64)
  --allow CIDR              serve only these clients (repeatable)
  --deny CIDR               never answer these clients (repeatable; wins over --allow)

Running:
  --once                    exit after one successful transfer (same as --max-transfers 1)
  --max-transfers N         exit 0 after N successful transfers
  --idle-exit SECONDS       exit when no transfer ran for this long
  -v, --verbose             debug logging
  --log-format text|json    log lines as text (default) or one JSON object per line
  -h, --help                show this help

Exit codes: 0 stopped (signal or --max-transfers reached), 1 error, 2 bad command line,
3 --idle-exit fired before --max-transfers was reached.
`;

const FLAGS = {
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
  allow: { type: "string", multiple: true },
  deny: { type: "string", multiple: true },
  once: { type: "boolean" },
  "max-transfers": { type: "string" },
  "idle-exit": { type: "string" },
  verbose: { type: "boolean", short: "v" },
  "log-format": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Parsed `serve` command line. */
export interface ServeConfig {
  path: string;
  server: Omit<ServerOptions, "source">;
  write: boolean;
  overwrite: boolean;
  ignoreCase: boolean;
  mapFile?: string;
  /** `--origin URL/`: a tree from an HTTP origin. */
  origin?: string;
  /** `--cache DIR` and its limits (HTTP sources only). */
  cache?: { dir: string; maxBytes?: number; ttlSeconds?: number };
  maxTransfers?: number;
  idleExitMs?: number;
  verbose: boolean;
  logFormat: "text" | "json";
  help: boolean;
}

/**
 * Parses the `serve` command line.
 *
 * @throws {UsageError} Naming the bad flag.
 *
 * @example
 * ```ts
 * import { parseServeArgs } from "./serve.ts";
 * import { equal } from "node:assert/strict";
 * equal(parseServeArgs(["demo", "--port", "6969"]).server.port, 6969);
 * ```
 */
export function parseServeArgs(args: string[]): ServeConfig {
  const { values: v, positionals } = parse(args, FLAGS);
  if (positionals.length > 1) {
    throw new UsageError(`expected one PATH, got ${positionals.length}: ${positionals.join(" ")}`);
  }
  const int = (flag: keyof typeof FLAGS, min: number, max: number) => {
    const value = v[flag];
    return typeof value === "string" ? intFlag(`--${flag}`, value, min, max) : undefined;
  };
  if (v.overwrite && !v.write) throw new UsageError("--overwrite needs --write");
  const http = v.origin !== undefined || /^https?:\/\//i.test(positionals[0] ?? "");
  if (v.origin !== undefined && positionals.length > 0) {
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
  const timeout = int("timeout", LIMITS.timeout.min, LIMITS.timeout.max);
  const once = v.once ? 1 : undefined;
  const maxTransfers = int("max-transfers", 1, Number.MAX_SAFE_INTEGER) ?? once;
  const idle = int("idle-exit", 1, 31_536_000);
  for (const cidr of [...(v.allow ?? []), ...(v.deny ?? [])]) {
    if (!/^[0-9a-fA-F:.]+(\/\d+)?$/.test(cidr)) {
      throw new UsageError(`--allow/--deny must be an address or CIDR block: got '${cidr}'`);
    }
  }
  return {
    path: positionals[0] ?? ".",
    server: {
      hostname: addresses(v.address),
      port: int("port", 0, 65535) ?? 69,
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
      allow: v.allow,
      deny: v.deny,
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
    verbose: v.verbose ?? false,
    logFormat: v["log-format"] === undefined
      ? "text"
      : choiceFlag("--log-format", v["log-format"], ["text", "json"]),
    help: v.help ?? false,
  };
}

function seconds(s: number | undefined): number | undefined {
  return s === undefined ? undefined : s * 1000;
}

function addresses(values: string[] | undefined): string | string[] | undefined {
  if (!values?.length) return undefined;
  const list = values.map((a) => addressFlag("--address", a));
  return list.length === 1 ? list[0] : list;
}

async function openHttpSource(config: ServeConfig, url: string): Promise<FileSource> {
  const rules = config.mapFile ? await readRules(config.mapFile) : undefined;
  let cache: HttpCache | undefined;
  if (config.cache) {
    const perm = await Deno.permissions.query({ name: "write", path: config.cache.dir });
    if (perm.state !== "granted") {
      throw new UsageError("--cache needs write permission: run with --allow-write=DIR");
    }
    cache = await HttpCache.open(config.cache.dir, {
      maxBytes: config.cache.maxBytes,
      ttlSeconds: config.cache.ttlSeconds,
    });
  }
  try {
    return new HttpFileSource(url, { tree: config.origin !== undefined, rules, cache });
  } catch (e) {
    if (e instanceof TypeError) throw new UsageError(e.message);
    throw e;
  }
}

async function openSource(config: ServeConfig): Promise<FileSource> {
  if (config.origin !== undefined) return await openHttpSource(config, config.origin);
  if (/^https?:\/\//i.test(config.path)) return await openHttpSource(config, config.path);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(config.path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(`${config.path}: no such file or directory`);
    }
    if (e instanceof Deno.errors.NotCapable) {
      throw new UsageError(`${config.path}: no read permission (run with --allow-read)`);
    }
    throw e;
  }
  const rules = config.mapFile ? await readRules(config.mapFile) : undefined;
  if (info.isDirectory) {
    if (config.write) {
      const perm = await Deno.permissions.query({ name: "write", path: config.path });
      if (perm.state !== "granted") {
        throw new UsageError("--write needs write permission: run with --allow-write");
      }
    }
    return await DirectorySource.open(config.path, {
      write: config.write,
      overwrite: config.overwrite,
      ignoreCase: config.ignoreCase,
      rules,
    });
  }
  if (config.write) throw new UsageError("--write needs a directory to write into, not a file");
  return await SingleFileSource.open(config.path);
}

async function readRules(file: string) {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new UsageError(`--map ${file}: ${(e as Error).message}`);
  }
  try {
    return parseMapRules(text);
  } catch (e) {
    if (e instanceof MapRulesError) throw new UsageError(`--map ${file}: ${e.message}`);
    throw e;
  }
}

/**
 * Runs `tftpkit serve` and resolves with its exit code.
 *
 * @example
 * ```ts ignore
 * import { runServe } from "./serve.ts";
 * Deno.exit(await runServe(["demo", "--port", "6969"]));
 * ```
 */
export async function runServe(args: string[]): Promise<number> {
  const config = parseServeArgs(args);
  if (config.help) {
    console.log(SERVE_HELP);
    return ServeExit.OK;
  }
  await setupLogging({ level: config.verbose ? "debug" : "info", format: config.logFormat });
  const log = getLogger("server");
  const source = await openSource(config);
  const controller = new AbortController();
  // Listen for signals before anything is printed: whoever waits for the start line may stop us
  // right after it, and an unhandled SIGTERM would kill the process instead of stopping it.
  const stop = () => controller.abort();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);
  let succeeded = 0;
  let exitCode: number = ServeExit.OK;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let active = () => 0;
  const armIdle = () => {
    if (config.idleExitMs === undefined) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (active() > 0) return armIdle();
      log.info("no transfer for {seconds} s (--idle-exit): stopping", {
        event: "idle-exit",
        seconds: config.idleExitMs! / 1000,
      });
      if (config.maxTransfers !== undefined) exitCode = ServeExit.IDLE;
      controller.abort();
    }, config.idleExitMs);
  };
  try {
    return await runUntilStopped();
  } finally {
    clearTimeout(idleTimer);
    for (const s of signals) Deno.removeSignalListener(s, stop);
  }

  async function runUntilStopped(): Promise<number> {
    const server = await serve({
      ...config.server,
      source,
      signal: controller.signal,
      onTransfer: (record) => {
        armIdle();
        if (record.outcome !== "ok" || config.maxTransfers === undefined) return;
        if (++succeeded === config.maxTransfers) {
          log.info("{count} transfers done (--max-transfers): stopping", {
            event: "max-transfers",
            count: succeeded,
          });
          controller.abort();
        }
      },
    });
    active = () => server.activeTransfers;
    armIdle();
    const where = server.addresses.map(formatAddr);
    log.info(`listening on ${where.join(" ")} serving ${source.describe()}`, {
      event: "listening",
      addresses: where,
      port: server.port,
      source: source.describe(),
    });
    await server.finished;
    log.info("stopped", { event: "stopped" });
    return exitCode;
  }
}
