/**
 * Which local addresses to listen on, and binding UDP sockets with clear errors.
 *
 * Deno does not report the address a datagram was sent to, so "listen on every address" is done
 * with one socket per local address: a transfer's socket is then bound to the address the
 * client targeted, and replies come from it (firmware drops replies from another address).
 *
 * Listing the local addresses needs a permission beyond `--allow-net --allow-read` in Deno 2:
 * `Deno.networkInterfaces()` needs `--allow-sys=networkInterfaces` (any OS), and `/proc/net/*`
 * needs `--allow-all` (Linux). Without either, one wildcard socket is used and the operating
 * system picks the reply address; `--address` (repeatable) names addresses explicitly.
 *
 * @module
 */

import { listenUdp, UnstableNetError } from "../net.ts";

/**
 * Does `hostname` mean "every address" (unset, `::` or `0.0.0.0`)?
 *
 * @example
 * ```ts
 * import { isWildcard } from "./addresses.ts";
 * import { equal } from "node:assert/strict";
 * equal(isWildcard("::"), true);
 * equal(isWildcard("127.0.0.1"), false);
 * ```
 */
export function isWildcard(hostname: string | undefined): boolean {
  return hostname === undefined || hostname === "::" || hostname === "0.0.0.0";
}

/** A failure to bind, with a message an operator can act on. */
export class BindError extends Error {
  /**
   * Creates the error.
   *
   * @param message What went wrong and what to do.
   * @param options `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BindError";
  }
}

/**
 * Parses `/proc/net/fib_trie`: the IPv4 addresses marked `/32 host LOCAL`.
 *
 * @example
 * ```ts
 * import { parseFibTrie } from "./addresses.ts";
 * import { deepEqual } from "node:assert/strict";
 * const text = "Local:\n  |-- 127.0.0.1\n     /32 host LOCAL\n";
 * deepEqual(parseFibTrie(text), ["127.0.0.1"]);
 * ```
 */
export function parseFibTrie(text: string): string[] {
  const found = new Set<string>();
  let last = "";
  for (const line of text.split("\n")) {
    const m = /\|--\s+(\d+\.\d+\.\d+\.\d+)/.exec(line);
    if (m) last = m[1];
    else if (/\/32 host LOCAL/.test(line) && last) found.add(last);
  }
  return [...found];
}

/**
 * Parses `/proc/net/if_inet6`: global and loopback IPv6 addresses (link-local ones need a scope
 * and are left out).
 *
 * @example
 * ```ts
 * import { parseIfInet6 } from "./addresses.ts";
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(parseIfInet6("00000000000000000000000000000001 01 80 10 80 lo\n"), ["::1"]);
 * ```
 */
export function parseIfInet6(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || f[0].length !== 32) continue;
    const scope = parseInt(f[3], 16);
    if (scope !== 0x00 && scope !== 0x10) continue;
    const groups = f[0].match(/.{4}/g)!.map((g) => parseInt(g, 16).toString(16));
    found.push(compressIpv6(groups));
  }
  return found;
}

function compressIpv6(groups: string[]): string {
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  const head = groups.slice(0, bestStart).join(":");
  const tail = groups.slice(bestStart + bestLen).join(":");
  return `${head}::${tail}`;
}

/** Is `address` an IPv6 link-local address (fe80::/10, which needs a scope to bind)? */
function isLinkLocal(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

/**
 * The local unicast addresses of this machine, or `null` where they cannot be listed with the
 * permissions granted (see the module documentation). Never prompts for a permission.
 *
 * @example
 * ```ts
 * import { localAddresses } from "./addresses.ts";
 * import { ok } from "node:assert/strict";
 *
 * // e.g. ["127.0.0.1", "10.0.0.5", "::1"]; null without --allow-sys=networkInterfaces
 * // (or, on Linux, read access to /proc/net).
 * const all = await localAddresses();
 * ok(all?.includes("127.0.0.1"));
 * const ipv4 = await localAddresses("ipv4");
 * ok(ipv4 && ipv4.every((a) => !a.includes(":")));
 * ```
 */
export async function localAddresses(family: "any" | "ipv4" = "any"): Promise<string[] | null> {
  const sys = await Deno.permissions.query({ name: "sys", kind: "networkInterfaces" });
  if (sys.state === "granted") {
    const found = new Set<string>();
    for (const i of Deno.networkInterfaces()) {
      if (i.family === "IPv6" && (family === "ipv4" || isLinkLocal(i.address))) continue;
      found.add(i.address);
    }
    return found.size > 0 ? [...found] : null;
  }
  if (Deno.build.os !== "linux") return null;
  try {
    const v4 = parseFibTrie(await Deno.readTextFile("/proc/net/fib_trie"));
    let v6: string[] = [];
    if (family === "any") {
      v6 = await Deno.readTextFile("/proc/net/if_inet6").then(parseIfInet6, () => []);
    }
    return v4.length + v6.length > 0 ? [...v4, ...v6] : null;
  } catch {
    return null;
  }
}

/**
 * Binds a UDP socket, turning the usual failures into a clear {@linkcode BindError}.
 *
 * @example
 * ```ts
 * import { BindError, bindUdp } from "./addresses.ts";
 * import { throws } from "node:assert/strict";
 *
 * const conn = bindUdp("127.0.0.1", 0); // e.g. port 6969; 0 picks a free one
 * const { port } = conn.addr as Deno.NetAddr;
 * throws(() => bindUdp("127.0.0.1", port), (e) => {
 *   return e instanceof BindError &&
 *     e.message === `cannot listen on 127.0.0.1:${port}: the port is already in use`;
 * });
 * conn.close();
 * ```
 */
export function bindUdp(hostname: string, port: number): Deno.DatagramConn {
  try {
    return listenUdp({ hostname, port });
  } catch (e) {
    if (e instanceof UnstableNetError) throw e;
    const where = hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
    if (e instanceof Deno.errors.AddrInUse) {
      throw new BindError(`cannot listen on ${where}: the port is already in use`, { cause: e });
    }
    if (e instanceof Deno.errors.PermissionDenied && port < 1024) {
      throw new BindError(
        `cannot listen on ${where}: ports below 1024 need root or CAP_NET_BIND_SERVICE ` +
          `(e.g. setcap cap_net_bind_service=+ep on the binary), or use --port 6969`,
        { cause: e },
      );
    }
    if (e instanceof Deno.errors.NotCapable) {
      throw new BindError(`cannot listen on ${where}: run with --allow-net`, { cause: e });
    }
    if (e instanceof Deno.errors.AddrNotAvailable) {
      throw new BindError(`cannot listen on ${where}: no such local address`, { cause: e });
    }
    throw new BindError(`cannot listen on ${where}: ${(e as Error).message}`, { cause: e });
  }
}

/** A range of UDP ports for transfer sockets (`--port-range`). */
export interface PortRange {
  /** Lowest port. */
  lo: number;
  /** Highest port (inclusive). */
  hi: number;
}

/**
 * Binds a transfer socket on `hostname`: any free port, or a free one inside `range`.
 *
 * @throws {BindError} When no port in the range is free.
 *
 * @example
 * ```ts
 * import { BindError, bindTransferSocket } from "./addresses.ts";
 * import { ok, throws } from "node:assert/strict";
 *
 * const conn = bindTransferSocket("127.0.0.1", { lo: 50000, hi: 50999 });
 * const { port } = conn.addr as Deno.NetAddr;
 * ok(port >= 50000 && port <= 50999);
 * // A range whose every port is taken:
 * throws(() => bindTransferSocket("127.0.0.1", { lo: port, hi: port }), BindError);
 * conn.close();
 * ```
 */
export function bindTransferSocket(hostname: string, range?: PortRange): Deno.DatagramConn {
  if (!range) return bindUdp(hostname, 0);
  const size = range.hi - range.lo + 1;
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i++) {
    const port = range.lo + ((start + i) % size);
    try {
      return listenUdp({ hostname, port });
    } catch (e) {
      if (!(e instanceof Deno.errors.AddrInUse)) throw e;
    }
  }
  throw new BindError(`no free port in ${range.lo}-${range.hi}`);
}
