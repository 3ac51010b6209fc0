/**
 * A pool of worker isolates that run a server's transfers (`--workers N`). The server's isolate
 * keeps the listening sockets, decodes requests, applies the access rules and limits, prepares
 * each transfer (name rules, open, negotiate) and keeps its file handles; the pool hands the
 * prepared transfer to the worker with the fewest transfers, which binds the transfer's own
 * socket and runs the engine. Records come back to the server, which logs them and counts them
 * as it does for transfers it runs itself.
 *
 * In single-port mode the listening socket carries every transfer, and only this isolate has it:
 * each datagram for a transfer is posted to its worker, and the worker's sends come back, a turn's
 * worth per message, to go out of the listening socket.
 *
 * A worker that dies is replaced; each of its transfers ends with ERROR 0 to its client, sent
 * from the transfer's own port (bound again here) or the listening port, and an `error` record.
 *
 * @module
 */

import { sendError } from "../engine/fail.ts";
import { ErrorCode, reasonText, RefusedError } from "../errors.ts";
import { getLogger } from "../log.ts";
import type { PreparedTransfer } from "./session.ts";
import { SUPERSEDED } from "./session.ts";
import { bindUdp } from "./addresses.ts";
import {
  type Executor,
  type ExecutorOptions,
  noPort,
  type Started,
  type TransferSlot,
} from "./executor.ts";
import { finishRecord } from "./record.ts";
import {
  type FromWorker,
  type IoOp,
  serveIo,
  sharedStateBuffer,
  sharedView,
  type ToWorker,
} from "./remote.ts";

const log = getLogger("server");

/** The module the workers run. */
const WORKER_URL = new URL("./worker.ts", import.meta.url).href;

interface Member {
  worker: Worker;
  /** Transfers it runs. */
  jobs: Set<number>;
  ready: Promise<void>;
  index: number;
}

interface Entry {
  member: Member;
  prepared: PreparedTransfer;
  slot: TransferSlot;
  /** The transfer's own port, once its worker bound it. */
  port?: number;
  /** Settles the `run` call: with the record, or a refusal for want of a port. */
  started: PromiseWithResolvers<Started>;
  closed: PromiseWithResolvers<void>;
  recorded: boolean;
}

/**
 * Runs transfers on a pool of worker isolates.
 *
 * @example Run one download on a pool of one worker
 * ```ts
 * import { WorkerPool } from "./pool.ts";
 * import type { TransferSlot } from "./executor.ts";
 * import { prepare } from "./session.ts";
 * import { DirectorySource } from "../storage/files.ts";
 * import { ack, blockOf, decode, encode, type RequestPacket } from "../wire/packet.ts";
 * import { equal } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hello.txt`, "hello\n");
 * const listening = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 * const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 * const slot: TransferSlot = {
 *   peer: client.addr as Deno.NetAddr,
 *   listening,
 *   signal: new AbortController().signal,
 * };
 * const request = decode(encode({
 *   op: "RRQ",
 *   filename: new TextEncoder().encode("hello.txt"),
 *   mode: "octet",
 *   options: new Map(),
 * })) as RequestPacket;
 * // Prepared here, on the isolate that listens; the file stays open here too.
 * const prepared = await prepare(request, slot.peer, await DirectorySource.open(dir), {
 *   maxBlksize: 1468,
 *   maxWindowsize: 64,
 * });
 *
 * const pool = await WorkerPool.start(1, {
 *   knobs: { timeoutMs: 1000, retries: 5 },
 *   singlePort: false,
 * });
 * equal(pool.size, 1);
 * const started = pool.run(prepared, slot);
 * // The worker binds the transfer's socket and sends DATA 1 from it.
 * const [data, from] = await client.receive();
 * equal(blockOf(data), 1);
 * equal(new TextDecoder().decode(data.subarray(4)), "hello\n");
 * await client.send(ack(1), from);
 *
 * const { record, closed } = await started;
 * equal(record.outcome, "ok");
 * await closed;
 * await pool.close(); // stops the workers
 * client.close();
 * listening.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class WorkerPool implements Executor {
  readonly #o: ExecutorOptions;
  readonly #members: Member[] = [];
  readonly #entries = new Map<number, Entry>();
  #nextId = 0;
  #closing = false;

  private constructor(options: ExecutorOptions) {
    this.#o = options;
  }

  /** Starts `size` workers and resolves once each is ready. */
  static async start(size: number, options: ExecutorOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
    for (let i = 0; i < size; i++) pool.#members.push(pool.#spawn(i));
    try {
      await Promise.all(pool.#members.map((m) => m.ready));
    } catch (e) {
      for (const m of pool.#members) m.worker.terminate();
      throw e;
    }
    return pool;
  }

  /** Workers in the pool. */
  get size(): number {
    return this.#members.length;
  }

  #spawn(index: number): Member {
    const worker = new Worker(WORKER_URL, { type: "module", name: `tftpkit-transfers-${index}` });
    const ready = Promise.withResolvers<void>();
    const member: Member = { worker, jobs: new Set(), ready: ready.promise, index };
    worker.onmessage = (e: MessageEvent<FromWorker>) => {
      if (e.data.t === "ready") ready.resolve();
      else this.#receive(member, e.data);
    };
    let started = false;
    ready.promise.then(() => (started = true), () => {});
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      // A worker that cannot even start is not replaced: the pool fails to start.
      if (!started) ready.reject(new Error(`cannot start a transfer worker: ${e.message}`));
      else this.#died(member, e.message);
    };
    return member;
  }

  #post(member: Member, m: ToWorker, transfer: Transferable[] = []): void {
    member.worker.postMessage(m, transfer);
  }

  run(prepared: PreparedTransfer, slot: TransferSlot): Promise<Started> {
    const member = this.#members.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
    const id = ++this.#nextId;
    const state = sharedStateBuffer();
    const entry: Entry = {
      member,
      prepared,
      slot,
      started: Promise.withResolvers(),
      closed: Promise.withResolvers(),
      recorded: false,
    };
    this.#entries.set(id, entry);
    member.jobs.add(id);
    slot.view = sharedView(state);
    const o = this.#o;
    if (o.singlePort) {
      slot.route = (p) => {
        const data = p.slice().buffer;
        this.#post(entry.member, { t: "packet", id, data }, [data]);
      };
    }
    const onAbort = () => {
      const reason = slot.signal.reason;
      const m = { t: "abort", id, reason: reasonText(reason), superseded: reason === SUPERSEDED };
      this.#post(entry.member, m as ToWorker);
    };
    slot.signal.addEventListener("abort", onAbort, { once: true });
    entry.closed.promise.finally(() => slot.signal.removeEventListener("abort", onAbort));
    const { reader, writer, record } = prepared;
    this.#post(member, {
      t: "run",
      job: {
        id,
        op: prepared.op,
        peer: { hostname: slot.peer.hostname, port: slot.peer.port },
        mode: prepared.mode,
        negotiated: prepared.negotiated,
        oack: prepared.oack,
        size: reader?.size,
        name: (reader ?? writer)!.name,
        record,
        requestedAt: performance.timeOrigin + prepared.started,
        knobs: o.knobs,
        maxUploadSize: o.maxUploadSize,
        bind: o.singlePort
          ? "shared"
          : { hostname: (slot.listening.addr as Deno.NetAddr).hostname, portRange: o.portRange },
        state,
      },
    });
    return entry.started.promise;
  }

  #receive(member: Member, m: FromWorker): void {
    if (m.t === "ready") return;
    const entry = this.#entries.get(m.id);
    if (!entry) return;
    switch (m.t) {
      case "bound":
        entry.port = m.port;
        break;
      case "no-port":
        this.#end(m.id);
        this.#release(entry).then(() => entry.started.reject(noPort(new Error(m.message))));
        entry.closed.resolve();
        break;
      case "io":
        this.#io(member, entry, m.id, m.seq, m.op, m.size, m.buf);
        break;
      case "send":
        for (const p of m.packets) {
          entry.slot.listening.send(new Uint8Array(p), entry.slot.peer).catch(() => {});
        }
        break;
      case "record":
        entry.recorded = true;
        entry.started.resolve({ record: m.record, closed: entry.closed.promise });
        break;
      case "closed":
        this.#end(m.id);
        entry.closed.resolve();
        break;
    }
  }

  async #io(
    member: Member,
    entry: Entry,
    id: number,
    seq: number,
    op: IoOp,
    size?: number,
    buf?: ArrayBuffer,
  ): Promise<void> {
    const a = await serveIo(entry.prepared.reader, entry.prepared.writer, op, size, buf);
    if (!member.jobs.has(id)) return;
    this.#post(member, { t: "io", id, seq, ...a }, a.buf ? [a.buf] : []);
  }

  #end(id: number): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    entry.member.jobs.delete(id);
  }

  /** Releases a transfer's file handles (idempotent on the handles' side). */
  async #release(entry: Entry): Promise<void> {
    entry.prepared.reader?.close();
    await entry.prepared.writer?.abort();
  }

  /**
   * A worker failed: replace it, and end each of its transfers with ERROR 0 to the client and
   * an `error` record.
   */
  #died(member: Member, why: string): void {
    if (!this.#members.includes(member)) return;
    log.error("a transfer worker failed ({error}): {count} transfers end", {
      event: "worker-failed",
      error: why,
      count: member.jobs.size,
    });
    try {
      member.worker.terminate();
    } catch {
      // already gone
    }
    if (!this.#closing) this.#members[member.index] = this.#spawn(member.index);
    else this.#members.splice(this.#members.indexOf(member), 1);
    for (const id of [...member.jobs]) {
      const entry = this.#entries.get(id)!;
      this.#end(id);
      this.#release(entry);
      this.#tellClient(entry);
      if (!entry.recorded) {
        const record = entry.prepared.record;
        record.outcome = "error";
        record.error = "the transfer's worker failed";
        finishRecord(record, entry.prepared.started);
        entry.started.resolve({ record, closed: entry.closed.promise });
      }
      entry.closed.resolve();
    }
  }

  /** Sends ERROR 0 from the transfer's own port (or the listening port in single-port mode). */
  #tellClient(entry: Entry): void {
    const error = new RefusedError(ErrorCode.NOT_DEFINED, "internal error: transfer ended");
    const { slot } = entry;
    if (this.#o.singlePort) {
      sendError((p) => slot.listening.send(p, slot.peer), error);
      return;
    }
    if (entry.port === undefined) return;
    try {
      const conn = bindUdp((slot.listening.addr as Deno.NetAddr).hostname, entry.port);
      sendError((p) => conn.send(p, slot.peer), error).finally(() => conn.close());
    } catch {
      // The port was taken meanwhile: the client learns by its own timeout.
    }
  }

  /** For tests: makes worker `index` fail as an uncaught error would. */
  crash(index: number): void {
    this.#died(this.#members[index], "crashed on purpose (test)");
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all([...this.#entries.values()].map((e) => e.closed.promise));
    for (const m of this.#members) m.worker.terminate();
    this.#members.length = 0;
  }
}
