/**
 * The TFTP server: listening sockets, request dispatch, limits and access control, sessions and
 * graceful shutdown. What happens inside one transfer lives in `session.ts`.
 *
 * @module
 */

import { sendError } from "../engine/fail.ts";
import { asTftpError, describeError, ErrorCode, RefusedError, type TftpError } from "../errors.ts";
import { getLogger } from "../log.ts";
import { formatAddr } from "../net.ts";
import type { NegotiationPolicy } from "../wire/options.ts";
import { decode, Opcode, opcodeOf, type RequestPacket } from "../wire/packet.ts";
import { AccessList } from "./access.ts";
import { drain } from "./drain.ts";
import { BindError, bindUdp, isWildcard, localAddresses } from "./addresses.ts";
import {
  type Executor,
  type ExecutorOptions,
  LocalExecutor,
  type Started,
  type TransferSlot,
} from "./executor.ts";
import { WorkerPool } from "./pool.ts";
import {
  type CloseOptions,
  type DEFAULTS,
  type Server,
  type ServerOptions,
  withDefaults,
} from "./options.ts";
import { finishRecord, isOperatorProblem, reportTransfer, type TransferRecord } from "./record.ts";
import { prepare, type PreparedTransfer, recordFor, SUPERSEDED } from "./session.ts";

export type { CloseOptions, Server, ServerOptions } from "./options.ts";

const log = getLogger("server");

/** The abort reason of the transfers still running when the grace period is over. */
const SHUTTING_DOWN = new Error("server shutting down");

interface Session {
  controller: AbortController;
  /** What the executor knows of it (its route in single-port mode, its progress). */
  slot: TransferSlot;
  done: Promise<unknown>;
  host: string;
  /** The request that started it (a copy). */
  request: Uint8Array;
  /** The outcome is recorded; what is left (an upload's dally) may be cut short. */
  settled: boolean;
}

/** The running server behind the {@linkcode Server} interface; created by {@linkcode serve}. */
class RunningServer implements Server {
  readonly #options: ServerOptions & typeof DEFAULTS;
  readonly #policy: NegotiationPolicy;
  readonly #access: AccessList;
  readonly #listeners = new Map<string, Deno.DatagramConn>();
  /** The listening loops; each ends once its socket is closed and its last receive settled. */
  readonly #loops = new Set<Promise<void>>();
  readonly #sessions = new Map<string, Session>();
  readonly #perHost = new Map<string, number>();
  #executor!: Executor;
  #closing: Promise<void> | null = null;
  #rescan: ReturnType<typeof setInterval> | undefined;
  #port = 0;
  #wildcard = false;
  #finished!: () => void;
  #hurry!: () => void;
  /** Resolves when the grace period is to end at once (a second `close({ graceMs: 0 })`). */
  readonly #hurried: Promise<void> = new Promise((r) => (this.#hurry = r));
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void> = new Promise((r) => (this.#finished = r));

  /** Use {@linkcode serve}. */
  constructor(options: ServerOptions) {
    this.#options = withDefaults(options);
    const o = this.#options;
    this.#policy = {
      maxBlksize: o.maxBlksize,
      maxWindowsize: o.maxWindowsize,
      maxWindowBytes: o.maxWindowBytes,
      maxUploadSize: o.maxUploadSize,
    };
    this.#access = new AccessList(o.allow, o.deny);
  }

  /** The addresses the server listens on. */
  get addresses(): Deno.NetAddr[] {
    return [...this.#listeners.values()].map((c) => c.addr as Deno.NetAddr);
  }

  /** The UDP port the server listens on. */
  get port(): number {
    return this.#port;
  }

  /** Transfers in progress. */
  get activeTransfers(): number {
    let n = 0;
    for (const s of this.#sessions.values()) if (!s.settled) n++;
    return n;
  }

  /** Starts the transfer workers (if any) and binds the listening sockets. */
  async start(): Promise<void> {
    const o = this.#options;
    const run: ExecutorOptions = {
      knobs: { timeoutMs: o.timeoutMs, retries: o.retries, peerTimeoutMs: o.clientTimeoutMs },
      maxUploadSize: o.maxUploadSize,
      singlePort: o.singlePort ?? false,
      portRange: o.portRange,
    };
    this.#executor = o.workers > 1
      ? await WorkerPool.start(o.workers, run)
      : new LocalExecutor(run);
    const wanted = await this.#addressesToBind();
    this.#port = o.port;
    try {
      for (const hostname of wanted) this.#bind(hostname);
    } catch (e) {
      for (const c of this.#listeners.values()) c.close();
      await this.#executor.close();
      throw e;
    }
    if (this.#listeners.size === 0) throw new BindError("no address to listen on");
    if (this.#wildcard) {
      log.warn(
        "cannot list local addresses (grant --allow-sys=networkInterfaces): listening on one " +
          "wildcard socket, so replies come from the address the OS picks; on a multi-homed " +
          "host pass --address for each address",
        { event: "wildcard" },
      );
    } else if (!Array.isArray(o.hostname) && isWildcard(o.hostname) && wanted.length > 1) {
      this.#rescan = setInterval(() => this.#refreshAddresses(), 30_000);
    }
    if (o.signal?.aborted) this.close();
    else o.signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  async #addressesToBind(): Promise<string[]> {
    const h = this.#options.hostname;
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
    this.#listeners.set(hostname, conn);
    const loop = this.#listen(conn, hostname);
    this.#loops.add(loop);
    loop.finally(() => this.#loops.delete(loop));
  }

  async #refreshAddresses(): Promise<void> {
    if (this.#closing) return;
    const now = new Set(await this.#addressesToBind());
    for (const hostname of now) {
      if (this.#listeners.has(hostname)) continue;
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
    for (const [hostname, conn] of this.#listeners) {
      if (now.has(hostname)) continue;
      this.#listeners.delete(hostname);
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
        if (this.#closing || this.#listeners.get(hostname) !== conn) return;
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

  #dispatch(conn: Deno.DatagramConn, data: Uint8Array, peer: Deno.NetAddr): void {
    const key = `${peer.hostname}|${peer.port}`;
    const session = this.#sessions.get(key);
    const op = opcodeOf(data);
    const isRequest = op === Opcode.RRQ || op === Opcode.WRQ;
    if (session?.slot.route && !isRequest) {
      session.slot.route(data);
      return;
    }
    if (!this.#access.allows(peer.hostname)) {
      log.debug("ignored a datagram from {peer}: not allowed", { peer: formatAddr(peer) });
      return;
    }
    const reply = (e: TftpError) => sendError((p) => conn.send(p, peer), e);
    const refuse = (code: number, message: string) => void reply(new RefusedError(code, message));
    const from = formatAddr(peer);
    const drop = (why: string) => log.debug(`{peer}: ${why}`, { event: "dropped", peer: from });
    if (op === Opcode.ERROR) return drop("an ERROR to the listening port, dropped");
    if (op === Opcode.DATA || op === Opcode.ACK || op === Opcode.OACK) {
      if (session) return;
      drop("a packet outside any transfer: ERROR 5");
      return refuse(ErrorCode.UNKNOWN_TID, "unknown transfer ID");
    }
    let request: RequestPacket;
    try {
      const p = decode(data);
      if (p.op !== "RRQ" && p.op !== "WRQ") return;
      request = p;
    } catch (e) {
      const why = asTftpError(e, "malformed packet").message;
      drop(`malformed request: ${why}`);
      refuse(ErrorCode.ILLEGAL_OPERATION, `illegal TFTP operation: ${why}`);
      return;
    }
    if (session) {
      if (this.#isRepeat(session, data)) {
        return drop("a repeated request, answered by its running transfer");
      }
      // The client has moved on (a TID takes part in one transfer at a time): end the old
      // transfer quietly and serve the new request.
      log.debug("{peer} sent a new request: ending its previous transfer", {
        peer: formatAddr(peer),
      });
      session.controller.abort(SUPERSEDED);
      this.#sessions.delete(key);
    }
    if (this.#closing) {
      drop("a request while shutting down: ERROR 0");
      return refuse(ErrorCode.NOT_DEFINED, "server shutting down");
    }
    const o = this.#options;
    if (this.#sessions.size >= o.maxSessions) {
      log.warn("refused {peer}: {count} transfers running (--max-sessions)", {
        peer: formatAddr(peer),
        count: this.#sessions.size,
      });
      return refuse(ErrorCode.DISK_FULL, "server busy: too many transfers, try again later");
    }
    const perHost = this.#perHost.get(peer.hostname) ?? 0;
    if (perHost >= o.maxSessionsPerClient) {
      log.warn("refused {peer}: {count} transfers from this address (--max-sessions-per-client)", {
        peer: formatAddr(peer),
        count: perHost,
      });
      return refuse(ErrorCode.DISK_FULL, "too many transfers from your address, try again later");
    }
    this.#startSession(key, conn, peer, request, data);
  }

  /**
   * Is a request from the port of a running transfer a late copy of the one that started it?
   * Yes until the client has answered our first reply, and afterwards while the transfer moves:
   * the same bytes, not yet at its end, and the client heard from within two timeouts. A client
   * that reuses its port for a new request (after its last transfer, or after giving up on it)
   * sends other bytes, or finds the old transfer ending or silent.
   */
  #isRepeat(session: Session, data: Uint8Array): boolean {
    const v = session.slot.view;
    if (!v?.answered) return true;
    if (v.ending || !sameBytes(session.request, data)) return false;
    return v.heardAgoMs() < 2 * this.#options.timeoutMs;
  }

  #startSession(
    key: string,
    conn: Deno.DatagramConn,
    peer: Deno.NetAddr,
    request: RequestPacket,
    data: Uint8Array,
  ): void {
    const controller = new AbortController();
    const session: Session = {
      controller,
      slot: { peer, listening: conn, signal: controller.signal },
      done: Promise.resolve(),
      host: peer.hostname,
      request: data.slice(),
      settled: false,
    };
    this.#sessions.set(key, session);
    this.#perHost.set(peer.hostname, (this.#perHost.get(peer.hostname) ?? 0) + 1);
    session.done = this.#serve(session, conn, peer, request).catch((e) => {
      log.error("unexpected error serving {peer}: {error}", {
        peer: formatAddr(peer),
        error: String(e),
      });
    }).finally(() => {
      if (this.#sessions.get(key) === session) this.#sessions.delete(key);
      const n = (this.#perHost.get(session.host) ?? 1) - 1;
      if (n > 0) this.#perHost.set(session.host, n);
      else this.#perHost.delete(session.host);
    });
  }

  /** Prepares, then decides the socket, then runs one request; reports its record. */
  async #serve(
    session: Session,
    conn: Deno.DatagramConn,
    peer: Deno.NetAddr,
    request: RequestPacket,
  ): Promise<void> {
    const o = this.#options;
    const requested = performance.now();
    let prepared: PreparedTransfer;
    try {
      prepared = await prepare(request, peer, o.source, this.#policy, requested);
    } catch (e) {
      return this.#refuse(conn, peer, recordFor(request, peer), requested, asTftpError(e));
    }
    let started: Started;
    try {
      started = await this.#executor.run(prepared, session.slot);
    } catch (e) {
      if (!(e instanceof RefusedError)) throw e;
      log.warn("no transfer socket for {peer}: {error}", {
        peer: formatAddr(peer),
        error: e.cause instanceof Error ? e.cause.message : e.message,
      });
      return this.#refuse(conn, peer, prepared.record, requested, e);
    }
    const { record, closed } = started;
    reportTransfer(record);
    this.#recorded(record);
    // The outcome is known: a shutdown need not wait for the dally after an upload.
    session.settled = true;
    if (this.#closing) session.controller.abort(SHUTTING_DOWN);
    await closed;
  }

  /** Refuses a request from the port it came to, and reports it. */
  async #refuse(
    conn: Deno.DatagramConn,
    peer: Deno.NetAddr,
    record: TransferRecord,
    started: number,
    error: TftpError,
  ): Promise<void> {
    record.outcome = "refused";
    record.error = describeError(error);
    finishRecord(record, started);
    reportTransfer(record, isOperatorProblem(error));
    await sendError((p) => conn.send(p, peer), error);
    this.#recorded(record);
  }

  #recorded(record: TransferRecord): void {
    try {
      this.#options.onTransfer?.(record);
    } catch (e) {
      log.error("onTransfer callback failed: {error}", { error: String(e) });
    }
  }

  /**
   * Stops accepting requests, lets running transfers finish for the grace period, then aborts
   * what is left. Resolves when everything is closed. A call with `graceMs: 0` during the grace
   * period ends it at once.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing) {
      if (options.graceMs === 0) this.#hurry();
      return this.#closing;
    }
    this.#closing = this.#shutdown(options.graceMs ?? this.#options.graceMs);
    return this.#closing;
  }

  async #shutdown(graceMs: number): Promise<void> {
    clearInterval(this.#rescan);
    const listeners = [...this.#listeners.values()];
    // In single-port mode the listening sockets carry the transfers: close them last.
    if (!this.#options.singlePort) {
      for (const c of listeners) c.close();
    }
    await drain(() => [...this.#sessions.values()], graceMs, this.#hurried, SHUTTING_DOWN);
    if (this.#options.singlePort) {
      for (const c of listeners) c.close();
    }
    this.#listeners.clear();
    // A socket's port is free only once its pending receive has settled.
    await Promise.all(this.#loops);
    await this.#executor.close();
    this.#options.source.close?.();
    this.#finished();
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Starts a TFTP server and resolves once it listens.
 *
 * @throws {BindError} When a listening socket cannot be bound (port in use, no permission).
 *
 * @example Serve a directory on a free port and stop it
 * ```ts
 * import { DirectorySource, get, serve } from "../mod.ts";
 * import { equal, ok } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir(); // e.g. "./demo"
 * await Deno.writeTextFile(`${dir}/hello.txt`, "hello\n");
 * const records: string[] = [];
 * const server = await serve({
 *   source: await DirectorySource.open(dir),
 *   hostname: "127.0.0.1",
 *   port: 0, // any free port; TFTP's own is 69
 *   onTransfer: (record) => records.push(`${record.file} ${record.outcome}`),
 * });
 * ok(server.port > 0);
 * equal(server.addresses[0].hostname, "127.0.0.1");
 *
 * const bytes = await get({ hostname: "127.0.0.1", port: server.port }, "hello.txt");
 * equal(new TextDecoder().decode(bytes), "hello\n");
 *
 * await server.close(); // waits for running transfers, then stops listening
 * equal(records[0], "hello.txt ok");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function serve(options: ServerOptions): Promise<Server> {
  const server = new RunningServer(options);
  await server.start();
  return server;
}
