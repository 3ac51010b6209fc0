/**
 * A transfer's view of the network: send a datagram to the peer, or wait for the next one from
 * the peer until a deadline. Two kinds: {@linkcode SocketChannel} owns a UDP socket of its own (a
 * fresh TID per transfer), {@linkcode MuxChannel} shares the listening socket (`--single-port`).
 *
 * Deno's `DatagramConn.receive()` cannot be cancelled, so each socket has exactly one pending
 * receive at a time, owned by the channel; a deadline only stops *waiting* for it, and a datagram
 * that arrives later is kept for the next wait instead of being lost.
 *
 * A send that fails locally (a firewall's EPERM, ENOBUFS, a transient ECONNREFUSED) is treated as
 * a lost packet: it is counted and remembered, never thrown, and the retransmission timer
 * recovers it as it would a loss on the wire.
 *
 * @module
 */

import { AbortedError, ErrorCode, RefusedError } from "../errors.ts";
import { sameAddr } from "../net.ts";
import { type Clock, transferClock, type Watcher } from "./clock.ts";
import { sendError } from "./fail.ts";

/** The engine's only dependency on the network. */
export interface Channel {
  /** The peer's address; fixed once the first reply arrived. */
  readonly peer: Deno.NetAddr;
  /** The clock deadlines are measured on. */
  readonly clock: Clock;
  /** Sends one datagram to the peer. Never rejects: a failed send counts as a lost packet. */
  send(packet: Uint8Array): Promise<void>;
  /**
   * Waits for the next datagram from the peer; resolves `null` once `deadline` (on
   * {@linkcode Channel.clock}) has passed without one. The returned view stays valid until the
   * next call. Rejects with {@linkcode AbortedError} when the channel's signal aborts or the
   * channel is closed.
   */
  receive(deadline: number): Promise<Uint8Array | null>;
  /** Releases the socket or the registration; idempotent. */
  close(): void;
}

/**
 * The channel's datagrams as an async iterable: each step waits until `deadline()` (read afresh
 * for every step) and yields the next datagram, or `null` when the deadline passed; `first`, when
 * given, is yielded before anything is received. It ends only by throwing (abort or close); the
 * loop that consumes it returns when the transfer is done.
 *
 * @example Read what arrives until the deadline passes
 * ```ts
 * import { MuxChannel, packets } from "./channel.ts";
 * import { blockOf } from "../wire/packet.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * // A channel whose datagrams are handed to it (as a listening socket's are), sending nowhere.
 * const peer: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 40000 };
 * const channel = new MuxChannel({ send: (p) => Promise.resolve(p.length) }, peer);
 * channel.push(new Uint8Array([0, 4, 0, 1])); // ACK 1
 * channel.push(new Uint8Array([0, 4, 0, 2])); // ACK 2
 *
 * const acked: number[] = [];
 * const deadline = channel.clock.now() + 50;
 * for await (const packet of packets(channel, () => deadline)) {
 *   if (packet === null) break; // the deadline passed with nothing more
 *   acked.push(blockOf(packet));
 * }
 * deepEqual(acked, [1, 2]);
 * channel.close();
 * ```
 */
export function packets(
  channel: Channel,
  deadline: () => number,
  first?: Uint8Array,
): AsyncIterable<Uint8Array | null> {
  // One result object, refilled each step: the loop reads it before asking for the next.
  const result: IteratorResult<Uint8Array | null> = { done: false, value: null };
  const fill = (value: Uint8Array | null) => {
    result.value = value;
    return result;
  };
  let held = first ?? null;
  const iterator: AsyncIterator<Uint8Array | null> = {
    next() {
      if (held === null) return channel.receive(deadline()).then(fill);
      const p = Promise.resolve(fill(held));
      held = null;
      return p;
    },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}

/** Counters a channel keeps about its sends. */
export interface SendFailures {
  /** Sends that failed locally (counted as lost packets). */
  count: number;
  /** The last such failure. */
  last?: Error;
}

interface Waiter {
  resolve(v: Uint8Array | null): void;
  reject(e: unknown): void;
  deadline: number;
}

/** Shared waiting logic: one waiter at a time, a datagram kept when nobody waits. */
abstract class WaitingChannel implements Channel, Watcher {
  abstract readonly peer: Deno.NetAddr;
  readonly clock: Clock;
  /** Sends that failed locally. */
  readonly sendFailures: SendFailures = { count: 0 };
  #waiter: Waiter | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  protected closed = false;
  #signal?: AbortSignal;
  #onAbort = () => this.#stopWaiting();

  constructor(signal: AbortSignal | undefined, clock: Clock) {
    this.#signal = signal;
    this.clock = clock;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    clock.watch(this);
  }

  /** Called on every tick: resolves a waiter whose deadline has passed with `null`. */
  expire(now: number): void {
    const w = this.#waiter;
    if (w && now >= w.deadline) {
      this.#take();
      w.resolve(null);
    }
  }

  /** Clears the waiter (and its timer, if it had one) and returns it. */
  #take(): Waiter | null {
    const w = this.#waiter;
    this.#waiter = null;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    return w;
  }

  protected abstract sendRaw(packet: Uint8Array): Promise<unknown>;
  /** Returns a datagram already waiting, or starts reading and returns null. */
  protected abstract take(): Uint8Array | null;

  send(packet: Uint8Array): Promise<void> {
    return this.sendRaw(packet).then(() => {}, (e) => {
      if (this.closed) return;
      this.sendFailures.count++;
      this.sendFailures.last = e instanceof Error ? e : new Error(String(e));
    });
  }

  receive(deadline: number): Promise<Uint8Array | null> {
    if (this.closed || this.#signal?.aborted) return Promise.reject(this.#abortError());
    const ready = this.take();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject, deadline };
      // The ticks expire ordinary deadlines; one closer than a tick gets a timer of its own.
      const left = deadline - this.clock.now();
      if (left < this.clock.tickMs) {
        this.#timer = setTimeout(() => this.expire(this.clock.now()), Math.max(0, left));
      }
    });
  }

  /** Hands a datagram to the waiter; returns false (keep it) when nobody waits. */
  protected deliver(data: Uint8Array): boolean {
    const w = this.#take();
    if (!w) return false;
    w.resolve(data);
    return true;
  }

  #abortError(): AbortedError {
    return this.#signal?.aborted
      ? AbortedError.from(this.#signal)
      : new AbortedError("channel closed");
  }

  /** Rejects the pending `receive` (abort or close); sending still works until `close`. */
  #stopWaiting(): void {
    this.#take()?.reject(this.#abortError());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.clock.unwatch(this);
    this.#stopWaiting();
  }
}

/** Options for {@linkcode SocketChannel}. */
export interface SocketChannelOptions {
  /** Stops the transfer: pending and later `receive` calls reject (the socket stays open). */
  signal?: AbortSignal;
  /**
   * Client mode: only a datagram from `peer.hostname` that this accepts fixes the peer's port
   * (the server answers a request from a new TID); others are dropped, so a stray packet of an
   * older transfer to a reused local port cannot capture the transfer.
   */
  firstReply?: (data: Uint8Array) => boolean;
  /**
   * Receive buffer size (default 65536). A sender only receives ACKs and ERRORs, so 1024 does;
   * a receiver needs blksize + 5 (one byte more, so an oversized DATA is seen as such).
   */
  bufferSize?: number;
  /** The clock for deadlines (default {@linkcode transferClock}). */
  clock?: Clock;
}

const UNKNOWN_TID = new RefusedError(ErrorCode.UNKNOWN_TID, "unknown transfer ID");

/**
 * A channel on a UDP socket of its own. Datagrams from anyone but the peer get ERROR 5 (unknown
 * transfer ID) and are otherwise ignored.
 *
 * @example
 * ```ts
 * import { SocketChannel } from "./channel.ts";
 * import { equal } from "node:assert/strict";
 * const a = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 * const b = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 * const ab = new SocketChannel(a, b.addr as Deno.NetAddr);
 * const ba = new SocketChannel(b, a.addr as Deno.NetAddr);
 * await ab.send(new Uint8Array([0, 4, 0, 0]));
 * const got = await ba.receive(ba.clock.now() + 1000);
 * equal(got?.length, 4);
 * ab.close();
 * ba.close();
 * ```
 */
export class SocketChannel extends WaitingChannel {
  #conn: Deno.DatagramConn;
  #peer: Deno.NetAddr;
  #buf: Uint8Array;
  #reading = false;
  #ready: Uint8Array | null = null;
  #locked: boolean;
  #firstReply?: (data: Uint8Array) => boolean;

  /**
   * @param conn The socket; the channel closes it.
   * @param peer Where datagrams go (in client mode: the server's request port).
   * @param options Signal, client mode, buffer size, clock.
   */
  constructor(conn: Deno.DatagramConn, peer: Deno.NetAddr, options: SocketChannelOptions = {}) {
    super(options.signal, options.clock ?? transferClock);
    this.#conn = conn;
    this.#peer = peer;
    this.#locked = !options.firstReply;
    this.#firstReply = options.firstReply;
    this.#buf = new Uint8Array(options.bufferSize ?? 65536);
  }

  get peer(): Deno.NetAddr {
    return this.#peer;
  }

  protected sendRaw(packet: Uint8Array): Promise<unknown> {
    return this.#conn.send(packet, this.#peer);
  }

  protected take(): Uint8Array | null {
    const ready = this.#ready;
    if (ready) {
      this.#ready = null;
      return ready;
    }
    if (!this.#reading) this.#pump();
    return null;
  }

  async #pump(): Promise<void> {
    this.#reading = true;
    let failures = 0;
    try {
      while (!this.closed) {
        let data: Uint8Array, from: Deno.Addr;
        try {
          [data, from] = await this.#conn.receive(this.#buf);
        } catch {
          // Closed under the pending receive, or a transient error (an ICMP report): retry a
          // few times, then leave it to the retransmission timer.
          if (this.closed || ++failures > 3) return;
          continue;
        }
        const addr = from as Deno.NetAddr;
        if (!this.#locked && addr.hostname === this.#peer.hostname) {
          if (!this.#firstReply!(data)) continue;
          this.#peer = addr;
          this.#locked = true;
        } else if (!sameAddr(addr, this.#peer)) {
          // Another TID: tell it so and keep waiting (RFC 1350 §4). Never let it stop us.
          if (this.#locked) sendError((p) => this.#conn.send(p, addr), UNKNOWN_TID);
          continue;
        }
        if (!this.deliver(data)) this.#ready = data;
        return;
      }
    } finally {
      this.#reading = false;
    }
  }

  override close(): void {
    if (this.closed) return;
    super.close();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/** What a {@linkcode MuxChannel} sends through: the listening socket, or a stand-in for it. */
export interface PacketSender {
  /** Sends one datagram to `addr`. */
  send(packet: Uint8Array, addr: Deno.NetAddr): Promise<number>;
}

/**
 * A channel that shares a listening socket (`--single-port`): the listener routes each datagram
 * from this peer here with {@linkcode MuxChannel.push}; sends go out of the listening socket.
 *
 * @example
 * ```ts
 * import { MuxChannel } from "./channel.ts";
 * import { equal } from "node:assert/strict";
 * const listening = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 * const peer: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 40000 };
 * const ch = new MuxChannel(listening, peer);
 * ch.push(new Uint8Array([0, 4, 0, 1]));
 * equal((await ch.receive(ch.clock.now()))?.length, 4);
 * ch.close();
 * listening.close();
 * ```
 */
export class MuxChannel extends WaitingChannel {
  #conn: PacketSender;
  #queue: Uint8Array[] = [];
  readonly peer: Deno.NetAddr;
  /** Datagrams queued beyond this are dropped, as a socket buffer would. */
  static readonly MAX_QUEUE = 256;

  /**
   * @param conn The listening socket (not closed by the channel), or whatever sends for it.
   * @param peer The client.
   * @param signal Stops the transfer.
   * @param clock The clock for deadlines (default {@linkcode transferClock}).
   */
  constructor(conn: PacketSender, peer: Deno.NetAddr, signal?: AbortSignal, clock?: Clock) {
    super(signal, clock ?? transferClock);
    this.#conn = conn;
    this.peer = peer;
  }

  protected sendRaw(packet: Uint8Array): Promise<unknown> {
    return this.#conn.send(packet, this.peer);
  }

  /** Routes a datagram (the listener's buffer is reused: this copies it). */
  push(data: Uint8Array): void {
    if (this.closed) return;
    const copy = data.slice();
    if (!this.deliver(copy) && this.#queue.length < MuxChannel.MAX_QUEUE) this.#queue.push(copy);
  }

  protected take(): Uint8Array | null {
    return this.#queue.shift() ?? null;
  }

  override close(): void {
    if (this.closed) return;
    super.close();
    this.#queue.length = 0;
  }
}
