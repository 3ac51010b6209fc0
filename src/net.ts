/**
 * Small network helpers shared by the server, the client and the CLI: printing and comparing
 * addresses, and resolving a host name once.
 *
 * @module
 */

import { lookup } from "node:dns/promises";

/**
 * `host:port`, with brackets around IPv6 literals.
 *
 * @example
 * ```ts
 * import { formatAddr } from "./net.ts";
 * import { equal } from "node:assert/strict";
 * equal(formatAddr({ hostname: "::1", port: 69 }), "[::1]:69");
 * equal(formatAddr({ hostname: "10.0.0.1", port: 69 }), "10.0.0.1:69");
 * ```
 */
export function formatAddr(a: { hostname: string; port: number }): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

/**
 * A host for messages: IPv6 literals in brackets.
 *
 * @example
 * ```ts
 * import { formatHost } from "./net.ts";
 * import { equal } from "node:assert/strict";
 * equal(formatHost("fe80::1"), "[fe80::1]");
 * ```
 */
export function formatHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

/**
 * The same address and port? (Host names are compared as Deno reports them.)
 *
 * @example
 * ```ts
 * import { sameAddr } from "./net.ts";
 * import { equal } from "node:assert/strict";
 * equal(sameAddr({ hostname: "::1", port: 1 }, { hostname: "::1", port: 1 }), true);
 * ```
 */
export function sameAddr(
  a: { hostname: string; port: number },
  b: { hostname: string; port: number },
): boolean {
  return a.port === b.port && a.hostname === b.hostname;
}

/**
 * Is `host` an IPv4 or IPv6 literal (without brackets)?
 *
 * @example
 * ```ts
 * import { isIpLiteral } from "./net.ts";
 * import { equal } from "node:assert/strict";
 * equal(isIpLiteral("192.0.2.1"), true);
 * equal(isIpLiteral("boot.example"), false);
 * ```
 */
export function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || (host.includes(":") && /^[\da-f:.]+$/i.test(host));
}

/** A host name that does not resolve; the message names it. */
export class HostNotFoundError extends Error {
  /** The name that was looked up. */
  readonly hostname: string;
  /**
   * Creates the error.
   *
   * @param hostname The name.
   * @param options `cause`.
   */
  constructor(hostname: string, options?: ErrorOptions) {
    super(`cannot resolve host '${hostname}'`, options);
    this.name = "HostNotFoundError";
    this.hostname = hostname;
  }
}

/**
 * Resolves `host` (a name, an IP literal, or an IPv6 literal in brackets) to a UDP address, once:
 * sending to a name would resolve it again for every packet.
 *
 * @throws {HostNotFoundError} When the name does not resolve.
 *
 * @example
 * ```ts
 * import { resolveUdp } from "./net.ts";
 * import { equal } from "node:assert/strict";
 * equal((await resolveUdp("[::1]", 69)).hostname, "::1");
 * ```
 */
export async function resolveUdp(host: string, port: number): Promise<Deno.NetAddr> {
  const bare = host.replace(/^\[(.*)\]$/, "$1");
  if (isIpLiteral(bare)) return { transport: "udp", hostname: bare, port };
  try {
    return { transport: "udp", hostname: (await lookup(bare)).address, port };
  } catch (e) {
    throw new HostNotFoundError(bare, { cause: e });
  }
}

/**
 * Deno was started without the unstable UDP API; the message says how to enable it.
 *
 * @example
 * ```ts
 * import { UnstableNetError } from "./mod.ts";
 * import { match } from "node:assert/strict";
 * match(new UnstableNetError().message, /--unstable-net/);
 * ```
 */
export class UnstableNetError extends Error {
  /** Creates the error; its message names `--unstable-net`. */
  constructor() {
    super(
      "UDP sockets need Deno's unstable net API: run with --unstable-net " +
        '(or add "unstable": ["net"] to deno.json)',
    );
    this.name = "UnstableNetError";
  }
}

/**
 * Opens a UDP socket (`Deno.listenDatagram`), or throws {@linkcode UnstableNetError} naming
 * `--unstable-net` when Deno runs without the unstable net API (instead of "listenDatagram is
 * not a function").
 *
 * @throws {UnstableNetError} Without `--unstable-net`.
 *
 * @example
 * ```ts
 * import { listenUdp } from "./net.ts";
 * const conn = listenUdp({ hostname: "127.0.0.1", port: 0 });
 * conn.close();
 * ```
 */
export function listenUdp(options: { hostname: string; port: number }): Deno.DatagramConn {
  const listen = (Deno as { listenDatagram?: typeof Deno.listenDatagram }).listenDatagram;
  if (typeof listen !== "function") throw new UnstableNetError();
  return listen({ transport: "udp", ...options });
}
