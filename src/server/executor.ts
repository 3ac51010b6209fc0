/**
 * Where a prepared transfer runs. The server decides everything up to a prepared transfer
 * (`session.ts` `prepare`) on the isolate that holds the listening sockets; an executor then
 * gives the transfer its socket and runs the engine — on this isolate ({@linkcode LocalExecutor},
 * `--workers 1`) or on a worker isolate of a pool (`pool.ts`).
 *
 * @module
 */

import { MuxChannel, SocketChannel } from "../engine/channel.ts";
import { transferClock } from "../engine/clock.ts";
import type { Knobs, TransferState } from "../engine/settings.ts";
import { ErrorCode, RefusedError } from "../errors.ts";
import { bindTransferSocket, type PortRange } from "./addresses.ts";
import type { TransferRecord } from "./record.ts";
import { type PreparedTransfer, run } from "./session.ts";

/** What the server knows of a transfer while it runs, to judge a new request from its port. */
export interface TransferView {
  /** The client has answered our first reply. */
  readonly answered: boolean;
  /** Every block was sent, or the final ACK was: only the end remains. */
  readonly ending: boolean;
  /** Milliseconds since the client last moved the transfer (Infinity if never). */
  heardAgoMs(): number;
}

/** The server's side of one transfer, as an executor sees it. */
export interface TransferSlot {
  /** The client. */
  readonly peer: Deno.NetAddr;
  /** The listening socket the request came to (its address is the transfer's local address). */
  readonly listening: Deno.DatagramConn;
  /** Ends the transfer; its reason becomes the `AbortedError`'s cause. */
  readonly signal: AbortSignal;
  /**
   * Set by the executor when the transfer runs over the listening socket (`--single-port`): the
   * listener hands it every datagram from the client.
   */
  route?: (packet: Uint8Array) => void;
  /** Set by the executor: the transfer's progress. */
  view?: TransferView;
}

/** How the executor runs transfers: the server's options that reach the engine. */
export interface ExecutorOptions {
  /** Timeout, retries and the client timer assumed. */
  knobs: Knobs;
  /** Largest upload in bytes. */
  maxUploadSize?: number;
  /** Run every transfer over the listening socket. */
  singlePort: boolean;
  /** Ports for transfer sockets. */
  portRange?: PortRange;
}

/** A transfer that got under way: its record (once known) and the end of its channel. */
export interface Started {
  /** The record, complete (not yet logged). */
  record: TransferRecord;
  /** Resolves once the transfer's channel is closed (after an upload's dally). */
  closed: Promise<void>;
}

/** Runs prepared transfers. */
export interface Executor {
  /**
   * Runs `prepared` and resolves with its record once the outcome is known.
   *
   * @throws {RefusedError} When the transfer cannot get a socket (the server refuses the request
   *   from the listening port); the prepared handles are released.
   */
  run(prepared: PreparedTransfer, slot: TransferSlot): Promise<Started>;
  /** Stops the executor once every transfer has ended. */
  close(): Promise<void>;
}

/** The refusal when no transfer socket can be bound. */
export function noPort(cause?: unknown): RefusedError {
  return new RefusedError(
    ErrorCode.NOT_DEFINED,
    "server busy: no free transfer port, try again",
    { cause },
  );
}

/**
 * A view of a {@linkcode TransferState} on this isolate's transfer clock.
 *
 * @example
 * ```ts
 * import { localView } from "./executor.ts";
 * import { newState } from "../engine/settings.ts";
 * import { equal } from "node:assert/strict";
 * equal(localView(newState()).heardAgoMs(), Infinity);
 * ```
 */
export function localView(state: TransferState): TransferView {
  return {
    get answered() {
      return state.answered;
    },
    get ending() {
      return state.ending;
    },
    heardAgoMs: () => (state.heardAt === 0 ? Infinity : transferClock.now() - state.heardAt),
  };
}

/**
 * Runs transfers on this isolate: a socket of their own on the listening address, or the
 * listening socket itself.
 *
 * @example Run one download from a socket of its own
 * ```ts
 * import { LocalExecutor, type TransferSlot } from "./executor.ts";
 * import { prepare } from "./session.ts";
 * import { DirectorySource } from "../storage/files.ts";
 * import { ack, blockOf, decode, encode, type RequestPacket } from "../wire/packet.ts";
 * import { equal, notEqual } from "node:assert/strict";
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
 * const prepared = await prepare(request, slot.peer, await DirectorySource.open(dir), {
 *   maxBlksize: 1468,
 *   maxWindowsize: 64,
 * });
 *
 * const executor = new LocalExecutor({
 *   knobs: { timeoutMs: 1000, retries: 5 },
 *   singlePort: false,
 * });
 * const started = executor.run(prepared, slot);
 * // DATA 1 comes from the transfer's own port; the client answers there.
 * const [data, from] = await client.receive();
 * notEqual((from as Deno.NetAddr).port, (listening.addr as Deno.NetAddr).port);
 * equal(blockOf(data), 1);
 * await client.send(ack(1), from);
 *
 * const { record } = await started;
 * equal(record.outcome, "ok");
 * await executor.close(); // once every transfer's socket is closed
 * client.close();
 * listening.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class LocalExecutor implements Executor {
  readonly #o: ExecutorOptions;
  readonly #running = new Set<Promise<void>>();

  /** @param options How transfers run. */
  constructor(options: ExecutorOptions) {
    this.#o = options;
  }

  async run(t: PreparedTransfer, slot: TransferSlot): Promise<Started> {
    const o = this.#o;
    let channel: MuxChannel | SocketChannel;
    if (o.singlePort) {
      const mux = channel = new MuxChannel(slot.listening, slot.peer, slot.signal);
      slot.route = (p) => mux.push(p);
    } else {
      try {
        const local = (slot.listening.addr as Deno.NetAddr).hostname;
        channel = new SocketChannel(bindTransferSocket(local, o.portRange), slot.peer, {
          signal: slot.signal,
          bufferSize: t.op === "WRQ" ? undefined : 1024,
        });
      } catch (e) {
        t.reader?.close();
        await t.writer?.abort();
        throw noPort(e);
      }
    }
    const state = { answered: false, heardAt: 0, ending: false };
    slot.view = localView(state);
    const result = await run(t, channel, {
      knobs: o.knobs,
      signal: slot.signal,
      maxUploadSize: o.maxUploadSize,
      state,
    });
    this.#running.add(result.closed);
    result.closed.finally(() => this.#running.delete(result.closed));
    return result;
  }

  async close(): Promise<void> {
    await Promise.all(this.#running);
  }
}
