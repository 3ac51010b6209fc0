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
import { Listeners } from "./listeners.ts";
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
  #listeners!: Listeners;
  readonly #sessions = new Map<string, Session>();
  readonly #perHost = new Map<string, number>();
  #executor!: Executor;
  #closing: Promise<void> | null = null;
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
    return this.#listeners.addresses;
  }

  /** The UDP port the server listens on. */
  get port(): number {
    return this.#listeners.port;
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
    try {
      this.#listeners = await Listeners.open(
        o.hostname,
        o.port,
        (c, d, f) => this.#dispatch(c, d, f),
      );
    } catch (e) {
      await this.#executor.close();
      throw e;
    }
    if (o.signal?.aborted) this.close();
    else o.signal?.addEventListener("abort", () => this.close(), { once: true });
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
    // In single-port mode the listening sockets carry the transfers: close them last.
    const listening = this.#options.singlePort ? null : this.#listeners.close();
    await drain(() => [...this.#sessions.values()], graceMs, this.#hurried, SHUTTING_DOWN);
    await (listening ?? this.#listeners.close());
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
