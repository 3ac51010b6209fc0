/**
 * The server's listening sockets: one per local address (so each transfer answers from the
 * address its client targeted), or one wildcard socket when the addresses cannot be listed; each
 * with one reader loop on a reused buffer that hands every datagram to the dispatcher. Addresses
 * that come and go are followed every 30 s when listening on all of them.
 *
 * @module
 */

import { getLogger } from "../log.ts";
import { BindError, bindUdp, isWildcard, localAddresses } from "./addresses.ts";

const log = getLogger("server");

/** Where each datagram goes: the socket it came to, its bytes (a reused view), the sender. */
export type Dispatch = (conn: Deno.DatagramConn, data: Uint8Array, from: Deno.NetAddr) => void;

/**
 * The listening sockets of a server.
 *
 * @example
 * ```ts
 * import { Listeners } from "./listeners.ts";
 * import { equal } from "node:assert/strict";
 * const seen: number[] = [];
 * const listeners = await Listeners.open("127.0.0.1", 0, (_conn, data) => void seen.push(data[1]));
 * const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 * await client.send(new Uint8Array([0, 4, 0, 0]), listeners.addresses[0]);
 * await new Promise((r) => setTimeout(r, 50));
 * equal(seen[0], 4);
 * client.close();
 * await listeners.close();
 * ```
 */
export class Listeners {
  readonly #sockets = new Map<string, Deno.DatagramConn>();
  /** The reader loops; each ends once its socket is closed and its last receive settled. */
  readonly #loops = new Set<Promise<void>>();
  readonly #hostname: string | string[] | undefined;
  readonly #dispatch: Dispatch;
  #port: number;
  #wildcard = false;
  #rescan: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  private constructor(hostname: string | string[] | undefined, port: number, dispatch: Dispatch) {
    this.#hostname = hostname;
    this.#port = port;
    this.#dispatch = dispatch;
  }

  /**
   * Binds a socket on each address to listen on, all on one port (`port` 0: a free one).
   *
   * @throws {BindError} When a socket cannot be bound.
   */
  static async open(
    hostname: string | string[] | undefined,
    port: number,
    dispatch: Dispatch,
  ): Promise<Listeners> {
    const l = new Listeners(hostname, port, dispatch);
    const wanted = await l.#wanted();
    try {
      for (const h of wanted) l.#bind(h);
    } catch (e) {
      await l.close();
      throw e;
    }
    if (l.#sockets.size === 0) throw new BindError("no address to listen on");
    if (l.#wildcard) {
      log.warn(
        "cannot list local addresses (grant --allow-sys=networkInterfaces): listening on one " +
          "wildcard socket, so replies come from the address the OS picks; on a multi-homed " +
          "host pass --address for each address",
        { event: "wildcard" },
      );
    } else if (!Array.isArray(hostname) && isWildcard(hostname) && wanted.length > 1) {
      l.#rescan = setInterval(() => l.#refresh(), 30_000);
    }
    return l;
  }

  /** The addresses listened on. */
  get addresses(): Deno.NetAddr[] {
    return [...this.#sockets.values()].map((c) => c.addr as Deno.NetAddr);
  }

  /** The port listened on. */
  get port(): number {
    return this.#port;
  }

  async #wanted(): Promise<string[]> {
    const h = this.#hostname;
    if (Array.isArray(h) && h.length > 1) return h;
    const one = Array.isArray(h) ? h[0] : h;
    if (!isWildcard(one)) return [one!];
    const local = await localAddresses(one === "0.0.0.0" ? "ipv4" : "any");
    if (local) return local;
    this.#wildcard = true;
    return [one ?? "::"];
  }

  #bind(hostname: string): void {
    const conn = bindUdp(hostname, this.#port);
    if (this.#port === 0) this.#port = (conn.addr as Deno.NetAddr).port;
    this.#sockets.set(hostname, conn);
    const loop = this.#listen(conn, hostname);
    this.#loops.add(loop);
    loop.finally(() => this.#loops.delete(loop));
  }

  async #refresh(): Promise<void> {
    if (this.#closed) return;
    const now = new Set(await this.#wanted());
    for (const hostname of now) {
      if (this.#sockets.has(hostname)) continue;
      try {
        this.#bind(hostname);
        log.info("new local address {address}: listening", { address: hostname });
      } catch (e) {
        log.warn("cannot listen on new address {address}: {error}", {
          address: hostname,
          error: (e as Error).message,
        });
      }
    }
    for (const [hostname, conn] of this.#sockets) {
      if (now.has(hostname)) continue;
      this.#sockets.delete(hostname);
      conn.close();
      log.info("local address {address} is gone: stopped listening", { address: hostname });
    }
  }

  async #listen(conn: Deno.DatagramConn, hostname: string): Promise<void> {
    const buf = new Uint8Array(65536);
    for (;;) {
      let data: Uint8Array, from: Deno.Addr;
      try {
        [data, from] = await conn.receive(buf);
      } catch (e) {
        if (this.#closed || this.#sockets.get(hostname) !== conn) return;
        log.warn("receive failed on {address}: {error}", { address: hostname, error: String(e) });
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      try {
        this.#dispatch(conn, data, from as Deno.NetAddr);
      } catch (e) {
        log.error("unexpected error handling a datagram: {error}", { error: String(e) });
      }
    }
  }

  /** Closes every socket; resolves once their ports are free (the pending receives settled). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#rescan);
    for (const c of this.#sockets.values()) c.close();
    this.#sockets.clear();
    await Promise.all(this.#loops);
  }
}
