/**
 * A transfer's view of the network: send a datagram to the peer, or wait for the next one from
 * the peer with a timeout. Two kinds: {@linkcode SocketChannel} owns a UDP socket of its own (a
 * fresh TID per transfer), {@linkcode MuxChannel} shares the listening socket (`--single-port`).
 *
 * Deno's `DatagramConn.receive()` cannot be cancelled, so each socket has exactly one pending
 * receive at a time, owned by the channel; a timeout only stops *waiting* for it, and a datagram
 * that arrives later is kept for the next call instead of being lost.
 *
 * @module
 */

import { AbortedError } from "../errors.ts";
import { ErrorCode, errorPacket } from "../wire/packet.ts";

/** The engine's only dependency on the network. */
export interface Channel {
  /** The peer's address; fixed once the first reply arrived. */
  readonly peer: Deno.NetAddr;
  /** Sends one datagram to the peer. */
  send(packet: Uint8Array): Promise<unknown>;
  /**
   * Waits for the next datagram from the peer. Resolves `null` after `timeoutMs` without one.
   * The returned view stays valid until the next call. Rejects with {@linkcode AbortedError}
   * when the channel's signal aborts or the channel is closed.
   */
  receive(timeoutMs: number): Promise<Uint8Array | null>;
  /** Releases the socket or the registration; idempotent. */
  close(): void;
}

/** The same address and port? (Host names are compared as Deno reports them.) */
export function sameAddr(a: Deno.NetAddr, b: Deno.NetAddr): boolean {
  return a.port === b.port && a.hostname === b.hostname;
}

/** `host:port`, with brackets around IPv6 literals. */
export function formatAddr(a: { hostname: string; port: number }): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

const UNKNOWN_TID = errorPacket(ErrorCode.UNKNOWN_TID, "unknown transfer ID");

interface Waiter {
  resolve(v: Uint8Array | null): void;
  reject(e: unknown): void;
  deadline: number;
}

/**
 * A coarse clock and timeout checker shared by every open channel. A timer per `receive`
 * (setTimeout + clearTimeout) costs more than the rest of a lock-step round trip in Deno, and
 * `performance.now()` costs microseconds here, so one interval ticks while channels are open,
 * updates `now` and fires due timeouts. Timeouts are therefore accurate to one tick.
 */
const ticker = {
  /** Milliseconds since the epoch, updated every tick. */
  now: Date.now(),
  tickMs: 20,
  open: new Set<WaitingChannel>(),
  timer: undefined as ReturnType<typeof setInterval> | undefined,
  add(ch: WaitingChannel) {
    this.open.add(ch);
    if (this.timer === undefined) {
      this.now = Date.now();
      this.timer = setInterval(() => this.tick(), this.tickMs);
    }
  },
  remove(ch: WaitingChannel) {
    this.open.delete(ch);
    if (this.open.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  },
  tick() {
    this.now = Date.now();
    for (const ch of this.open) ch.expire(this.now);
  },
};

/**
 * A cheap clock for deadlines: milliseconds, accurate to one tick (~20 ms) while channels are
 * open.
 */
export function coarseNow(): number {
  return ticker.timer === undefined ? Date.now() : ticker.now;
}

/** Shared waiting logic: one waiter at a time, a datagram kept when nobody waits. */
abstract class WaitingChannel implements Channel {
  abstract readonly peer: Deno.NetAddr;
  #waiter: Waiter | null = null;
  protected closed = false;
  #signal?: AbortSignal;
  #onAbort = () => this.#stopWaiting();

  constructor(signal?: AbortSignal) {
    this.#signal = signal;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    ticker.add(this);
  }

  /** Called by the ticker: resolves a waiter whose deadline has passed with `null`. */
  expire(now: number): void {
    const w = this.#waiter;
    if (w && now >= w.deadline) {
      this.#waiter = null;
      w.resolve(null);
    }
  }

  abstract send(packet: Uint8Array): Promise<unknown>;
  /** Returns a datagram already waiting, or starts reading and returns null. */
  protected abstract take(): Uint8Array | null;

  receive(timeoutMs: number): Promise<Uint8Array | null> {
    if (this.closed || this.#signal?.aborted) {
      return Promise.reject(new AbortedError(this.#reason()));
    }
    const ready = this.take();
    if (ready) return Promise.resolve(ready);
    const deadline = coarseNow() + timeoutMs;
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject, deadline };
    });
  }

  /** Hands a datagram to the waiter; returns false (keep it) when nobody waits. */
  protected deliver(data: Uint8Array): boolean {
    const w = this.#waiter;
    if (!w) return false;
    this.#waiter = null;
    w.resolve(data);
    return true;
  }

  #reason(): string {
    const r = this.#signal?.reason;
    return r instanceof Error ? r.message : r ? String(r) : "transfer aborted";
  }

  /** Rejects the pending `receive` (abort or close); sending still works until `close`. */
  #stopWaiting(): void {
    const w = this.#waiter;
    this.#waiter = null;
    if (w) {
      w.reject(new AbortedError(this.#reason()));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    ticker.remove(this);
    this.#stopWaiting();
  }
}

/** Options for {@linkcode SocketChannel}. */
export interface SocketChannelOptions {
  /** Stops the transfer: pending and later `receive` calls reject (the socket stays open). */
  signal?: AbortSignal;
  /**
   * Client mode: the first datagram from `peer.hostname` on any port fixes the peer's port
   * (the server answers a request from a new TID).
   */
  lockOnFirstReply?: boolean;
  /**
   * Client mode: only a datagram this accepts may fix the peer's port; others are dropped, so a
   * stray packet of an older transfer to a reused local port cannot capture the transfer.
   */
  firstReply?: (data: Uint8Array) => boolean;
  /**
   * Receive buffer size (default 65536). A sender only receives ACKs and ERRORs, so 1024 does;
   * a receiver needs blksize + 5 (one byte more, so an oversized DATA is seen as such).
   */
  bufferSize?: number;
}

/**
 * A channel on a UDP socket of its own. Datagrams from anyone but the peer get ERROR 5 (unknown
 * transfer ID) and are otherwise ignored.
 *
 * @example
 * ```ts ignore
 * import { SocketChannel } from "./channel.ts";
 * const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
 * const ch = new SocketChannel(conn, { transport: "udp", hostname: "127.0.0.1", port: 6969 });
 * await ch.send(new Uint8Array([0, 4, 0, 0]));
 * const reply = await ch.receive(1000);
 * ch.close();
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

   * Creates the instance.

   *
   * @param conn The socket; the channel closes it.
   * @param peer Where datagrams go (in client mode: the server's request port).
   * @param options Signal and client mode.
   */
  constructor(conn: Deno.DatagramConn, peer: Deno.NetAddr, options: SocketChannelOptions = {}) {
    super(options.signal);
    this.#conn = conn;
    this.#peer = peer;
    this.#locked = !options.lockOnFirstReply;
    this.#firstReply = options.firstReply;
    this.#buf = new Uint8Array(options.bufferSize ?? 65536);
  }

  get peer(): Deno.NetAddr {
    return this.#peer;
  }

  /** The local address of the socket. */
  get local(): Deno.NetAddr {
    return this.#conn.addr as Deno.NetAddr;
  }

  send(packet: Uint8Array): Promise<unknown> {
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
    try {
      while (!this.closed) {
        const [data, from] = await this.#conn.receive(this.#buf);
        const addr = from as Deno.NetAddr;
        if (!this.#locked && addr.hostname === this.#peer.hostname) {
          if (this.#firstReply && !this.#firstReply(data)) continue;
          this.#peer = addr;
          this.#locked = true;
        } else if (!sameAddr(addr, this.#peer)) {
          // Another TID: tell it so and keep waiting (RFC 1350 §4). Never let it stop us.
          if (this.#locked) this.#conn.send(UNKNOWN_TID, addr).catch(() => {});
          continue;
        }
        if (!this.deliver(data)) this.#ready = data;
        return;
      }
    } catch {
      // The socket was closed under the pending receive; nothing more will arrive.
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

/**
 * A channel that shares a listening socket (`--single-port`): the listener routes each datagram
 * from this peer here with {@linkcode MuxChannel.push}; sends go out of the listening socket.
 *
 * @example
 * ```ts ignore
 * import { MuxChannel } from "./channel.ts";
 * declare const listening: Deno.DatagramConn;
 * const peer: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 40000 };
 * const ch = new MuxChannel(listening, peer, () => {});
 * ch.push(new Uint8Array([0, 4, 0, 1]));
 * ```
 */
export class MuxChannel extends WaitingChannel {
  #conn: Deno.DatagramConn;
  #queue: Uint8Array[] = [];
  #current: Uint8Array | null = null;
  #onClose: () => void;
  readonly peer: Deno.NetAddr;
  /** Datagrams queued beyond this are dropped, as a socket buffer would. */
  static readonly MAX_QUEUE = 256;

  /**

   * Creates the instance.

   *
   * @param conn The listening socket (not closed by the channel).
   * @param peer The client.
   * @param onClose Called once on close, to unregister the peer from the listener.
   * @param signal Stops the transfer.
   */
  constructor(
    conn: Deno.DatagramConn,
    peer: Deno.NetAddr,
    onClose: () => void,
    signal?: AbortSignal,
  ) {
    super(signal);
    this.#conn = conn;
    this.peer = peer;
    this.#onClose = onClose;
  }

  send(packet: Uint8Array): Promise<unknown> {
    return this.#conn.send(packet, this.peer);
  }

  /** Routes a datagram (the listener's buffer is reused: this copies it). */
  push(data: Uint8Array): void {
    if (this.closed) return;
    const copy = data.slice();
    if (!this.deliver(copy)) {
      if (this.#queue.length < MuxChannel.MAX_QUEUE) this.#queue.push(copy);
    }
  }

  protected take(): Uint8Array | null {
    this.#current = this.#queue.shift() ?? null;
    return this.#current;
  }

  override close(): void {
    if (this.closed) return;
    super.close();
    this.#queue.length = 0;
    this.#onClose();
  }
}
