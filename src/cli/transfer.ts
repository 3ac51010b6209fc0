/**
 * `tftpkit get` and `tftpkit put`: the client for runbooks. Downloads are written to a temporary
 * file beside the target and renamed into place only when complete; a progress line shows on a
 * terminal; a failure exits non-zero with the server's message.
 *
 * @module
 */

import { basename } from "node:path";
import { type ClientOptions, download, type Target, upload } from "../client/client.ts";
import { PeerError, TimeoutError } from "../errors.ts";
import { LIMITS } from "../wire/options.ts";
import { ChunkWriter } from "../storage/chunks.ts";
import { AtomicFile, writeAll } from "../storage/atomic.ts";
import type { ReadHandle, WriteHandle } from "../storage/source.ts";
import { choiceFlag, intFlag, parse, UsageError, windowBytesFlag } from "./args.ts";
import { Progress } from "./progress.ts";

export const GET_HELP = `Usage: tftpkit get HOST[:PORT] REMOTE [LOCAL] [options]
       tftpkit get tftp://HOST[:PORT]/REMOTE [LOCAL] [options]

Download REMOTE to LOCAL (default: REMOTE's base name; '-' writes to standard output).
The file appears under LOCAL only when complete.
`;

export const PUT_HELP = `Usage: tftpkit put HOST[:PORT] LOCAL [REMOTE] [options]
       tftpkit put tftp://HOST[:PORT]/REMOTE LOCAL [options]

Upload LOCAL ('-' reads standard input) as REMOTE (default: LOCAL's base name).
`;

const COMMON_HELP = `
Options:
  --blksize N          block size to ask for (8-65464, default 1468; 512 = none)
  --windowsize N       window size to ask for (1-65535, default 16; 1 = none), lowered so
                       that a window holds at most --max-window-bytes
  --max-window-bytes SIZE  largest window to ask for (default 64K, what a default UDP
                       receive buffer takes in one burst; max 1M)
  --timeout SECONDS    retransmission timeout, also asked of the server (1-255, default 1)
  --retries N          retransmissions before giving up (default 5)
  --mode MODE          octet (default) or netascii
  --no-options         plain RFC 1350: ask for no options at all
  -q, --quiet          no progress line
  -h, --help           show this help

Exit codes: 0 done, 1 the transfer failed (the server's message is printed), 2 bad command line.
`;

const FLAGS = {
  blksize: { type: "string" },
  windowsize: { type: "string" },
  "max-window-bytes": { type: "string" },
  timeout: { type: "string" },
  retries: { type: "string" },
  mode: { type: "string" },
  "no-options": { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const;

/** A parsed `HOST[:PORT]` or `tftp://HOST[:PORT]/PATH`. */
export interface Where {
  target: Target;
  /** The path of a `tftp://` URI (without the leading slash), else undefined. */
  path?: string;
}

/**
 * Parses `HOST`, `HOST:PORT`, `[V6]:PORT`, a bare IPv6 literal, or a `tftp://` URI (RFC 3617;
 * a `;mode=` suffix is accepted).
 *
 * @example
 * ```ts
 * import { parseWhere } from "./transfer.ts";
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(parseWhere("tftp://[::1]:6969/pxelinux.0"), {
 *   target: { hostname: "::1", port: 6969 },
 *   path: "pxelinux.0",
 * });
 * ```
 */
export function parseWhere(text: string): Where {
  const uri = /^tftp:\/\/(\[[^\]]+\]|[^/:]+)(?::(\d+))?\/(.+)$/i.exec(text);
  if (uri) {
    const path = decodeURIComponent(uri[3].replace(/;mode=\w+$/i, ""));
    return { target: host(uri[1], uri[2], text), path };
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

function seconds(s: number | undefined): number | undefined {
  return s === undefined ? undefined : s * 1000;
}

function clientOptions(v: ReturnType<typeof parse<typeof FLAGS>>["values"]): ClientOptions {
  const int = (flag: "blksize" | "windowsize" | "timeout" | "retries", min: number, max: number) =>
    typeof v[flag] === "string" ? intFlag(`--${flag}`, v[flag] as string, min, max) : undefined;
  return {
    blksize: int("blksize", LIMITS.blksize.min, LIMITS.blksize.max),
    windowsize: int("windowsize", LIMITS.windowsize.min, LIMITS.windowsize.max),
    maxWindowBytes: windowBytesFlag(v["max-window-bytes"]),
    timeoutMs: seconds(int("timeout", LIMITS.timeout.min, LIMITS.timeout.max)),
    retries: int("retries", 0, 100),
    mode: v.mode === undefined
      ? "octet"
      : choiceFlag<"octet" | "netascii">("--mode", v.mode, ["octet", "netascii"]),
    noOptions: v["no-options"] ?? false,
  };
}

/**
 * Runs `tftpkit get` or `tftpkit put` and resolves with the exit code.
 *
 * @example
 * ```ts ignore
 * import { runTransfer } from "./transfer.ts";
 * Deno.exit(await runTransfer("get", ["127.0.0.1:6969", "hello.txt"]));
 * ```
 */
export async function runTransfer(command: "get" | "put", args: string[]): Promise<number> {
  const { values, positionals } = parse(args, FLAGS);
  if (values.help) {
    console.log((command === "get" ? GET_HELP : PUT_HELP) + COMMON_HELP);
    return 0;
  }
  const options = clientOptions(values);
  if (positionals.length === 0) throw new UsageError("missing HOST (see --help)");
  const where = parseWhere(positionals[0]);
  const rest = positionals.slice(1);
  const max = where.path === undefined ? 2 : 1;
  if (rest.length > max) throw new UsageError(`too many arguments: ${rest.slice(max).join(" ")}`);
  const showProgress = !values.quiet && Deno.stderr.isTerminal();
  const label = (where.path ?? rest[0] ?? "").toString();
  const progress = showProgress ? new Progress(label) : null;
  options.onProgress = progress ? (b, t) => progress.update(b, t) : undefined;
  try {
    if (command === "get") {
      const remote = where.path ?? rest[0];
      if (!remote) throw new UsageError("missing REMOTE file name");
      const local = where.path === undefined ? rest[1] : rest[0];
      await getFile(where.target, remote, local ?? basename(remote.replaceAll("\\", "/")), options);
    } else {
      const local = rest[0];
      if (!local) throw new UsageError("missing LOCAL file name");
      const remote = where.path ?? rest[1] ?? (local === "-" ? undefined : basename(local));
      if (!remote) throw new UsageError("REMOTE is required when reading standard input");
      await putFile(where.target, local, remote, options);
    }
    progress?.done();
    return 0;
  } catch (e) {
    progress?.done();
    if (e instanceof UsageError) throw e;
    const who = `${where.target.hostname}:${where.target.port}`;
    if (e instanceof PeerError) {
      console.error(`tftpkit ${command}: ${who}: error ${e.code}: ${e.peerMessage}`);
    } else if (e instanceof TimeoutError) {
      console.error(`tftpkit ${command}: ${who}: ${e.message}`);
    } else {
      console.error(`tftpkit ${command}: ${(e as Error).message}`);
    }
    return 1;
  }
}

function stdoutHandle(): WriteHandle {
  return {
    name: "-",
    write: (p) => writeAll(Deno.stdout, p),
    commit: () => Promise.resolve(),
    abort: () => Promise.resolve(),
  };
}

async function getFile(target: Target, remote: string, local: string, options: ClientOptions) {
  let handle: WriteHandle;
  try {
    handle = local === "-" ? stdoutHandle() : await AtomicFile.create(local);
  } catch (e) {
    throw new Error(`cannot write ${local}: ${(e as Error).message}`);
  }
  // Buffer blocks into large writes: one write per block would cost more than the network.
  const writer = new ChunkWriter(handle, 256 * 1024);
  try {
    await download(target, remote, writer, options);
  } catch (e) {
    await handle.abort();
    throw e;
  }
}

async function putFile(target: Target, local: string, remote: string, options: ClientOptions) {
  let handle: ReadHandle;
  if (local === "-") {
    handle = { name: "-", read: (p) => Deno.stdin.read(p), close() {} };
  } else {
    let file: Deno.FsFile, size: number;
    try {
      file = await Deno.open(local, { read: true });
      const info = await file.stat();
      if (!info.isFile) {
        file.close();
        throw new Error("not a regular file");
      }
      size = info.size;
    } catch (e) {
      throw new UsageError(`cannot read ${local}: ${(e as Error).message}`);
    }
    handle = { name: local, size, read: (p) => file.read(p), close: () => file.close() };
  }
  try {
    await upload(target, remote, handle, options);
  } finally {
    handle.close();
  }
}
