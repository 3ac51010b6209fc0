/**
 * Test support: an in-memory {@linkcode Channel} pair for deterministic engine tests.
 *
 * Each end applies a fault plan to what it sends (drop / duplicate / reorder, decided by a
 * seeded PRNG, or by a script for exact scenarios) and keeps counters and a copy of every
 * datagram it sent, so a test can check exactly what went over the "wire".
 *
 * Reordering holds a datagram back until the next one in the same direction has been delivered
 * (it then follows it), or until the current macrotask ends when nothing follows. The engine
 * sends a whole window synchronously, so a held datagram swaps places inside its window.
 *
 * @module
 */

import type { Channel } from "../engine/channel.ts";
import { mulberry32 } from "./fault_relay.ts";

export { mulberry32 };
import { type Clock, transferClock } from "../engine/clock.ts";
import { AbortedError } from "../errors.ts";
import { blockOf, Opcode, opcodeOf } from "../wire/packet.ts";

/** What happens to one datagram. */
export type Fault = "deliver" | "drop" | "duplicate" | "reorder";

/** Faults applied to the datagrams of one direction. */
export interface DirectionPlan {
  /** Probability (0..1) that a datagram is lost. */
  drop?: number;
  /** Probability that a datagram arrives twice (the copy right after the original). */
  duplicate?: number;
  /** Probability that a datagram is held back and arrives after the next one. */
  reorder?: number;
  /**
   * Exact faults: called for every datagram (with its 0-based index in this direction); a
   * returned fault overrides the probabilities, `undefined` falls back to them.
   */
  script?: (packet: Uint8Array, index: number) => Fault | undefined;
}

/** The faults of a channel pair. */
export interface MemoryPlan {
  /** PRNG seed (mulberry32); each direction gets its own stream. Default 1. */
  seed?: number;
  /** Faults on what end A sends (A → B). */
  aToB?: DirectionPlan;
  /** Faults on what end B sends (B → A). */
  bToA?: DirectionPlan;
}

/** Counters of what one end sent (before faults) and what became of it. */
export interface SendCounters {
  /** Datagrams handed to `send`. */
  packets: number;
  /** Bytes handed to `send`. */
  bytes: number;
  /** Datagrams the plan dropped. */
  dropped: number;
  /** Datagrams the plan delivered twice. */
  duplicated: number;
  /** Datagrams the plan held back. */
  reordered: number;
  /** Datagrams put into the other end's inbox (duplicates count twice). */
  delivered: number;
}

interface Waiter {
  resolve(v: Uint8Array | null): void;
  reject(e: unknown): void;
  deadline: number;
}

/** One end of an in-memory channel pair; see {@linkcode memoryChannelPair}. */
export class MemoryChannel implements Channel {
  /** A made-up peer address (the other end). */
  readonly peer: Deno.NetAddr;
  /** The clock deadlines are measured on: the production transfer clock unless given another. */
  readonly clock: Clock;
  /** `"A"` or `"B"`, for messages. */
  readonly name: string;
  /** Copies of every datagram this end sent, in order, before faults. */
  readonly sent: Uint8Array[] = [];
  /** Counters of what this end sent. */
  readonly counters: SendCounters = {
    packets: 0,
    bytes: 0,
    dropped: 0,
    duplicated: 0,
    reordered: 0,
    delivered: 0,
  };
  /** Datagrams this end took out of its inbox through `receive`. */
  received = 0;
  /** `receive` calls that ended with `null` (a timeout). */
  timeouts = 0;

  #other: MemoryChannel | null = null;
  #plan: DirectionPlan;
  #rng: () => number;
  #inbox: Uint8Array[] = [];
  #waiter: Waiter | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #held: Uint8Array | null = null;
  #holdTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * Use {@linkcode memoryChannelPair}.
   *
   * @param name `"A"` or `"B"`.
   * @param peerPort The made-up port of the other end.
   * @param plan Faults applied to what this end sends.
   * @param seed PRNG seed of this direction.
   * @param clock The clock (default the transfer clock channels use in production).
   */
  constructor(
    name: string,
    peerPort: number,
    plan: DirectionPlan,
    seed: number,
    clock: Clock = transferClock,
  ) {
    this.name = name;
    this.clock = clock;
    clock.watch(this);
    this.peer = { transport: "udp", hostname: "127.0.0.1", port: peerPort };
    this.#plan = plan;
    this.#rng = mulberry32(seed);
  }

  /** @internal Wires the two ends together. */
  connect(other: MemoryChannel): void {
    this.#other = other;
  }

  /** Has `close` been called? */
  get closed(): boolean {
    return this.#closed;
  }

  /** Datagrams waiting in this end's inbox. */
  get pending(): number {
    return this.#inbox.length;
  }

  #takeWaiter(): Waiter | null {
    const w = this.#waiter;
    this.#waiter = null;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return w;
  }

  /** Called on every clock tick: a waiter whose deadline passed gets `null`. */
  expire(now: number): void {
    const w = this.#waiter;
    if (w && now >= w.deadline) {
      this.#takeWaiter();
      this.timeouts++;
      w.resolve(null);
    }
  }

  send(packet: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const copy = packet.slice();
    const index = this.sent.length;
    this.sent.push(copy);
    this.counters.packets++;
    this.counters.bytes += copy.length;
    // Always draw three numbers so the stream stays aligned whatever the outcome.
    const r1 = this.#rng(), r2 = this.#rng(), r3 = this.#rng();
    let fault = this.#plan.script?.(copy, index);
    if (fault === undefined) {
      if (r1 < (this.#plan.drop ?? 0)) fault = "drop";
      else if (r2 < (this.#plan.reorder ?? 0)) fault = "reorder";
      else if (r3 < (this.#plan.duplicate ?? 0)) fault = "duplicate";
      else fault = "deliver";
    }
    switch (fault) {
      case "drop":
        this.counters.dropped++;
        break;
      case "reorder":
        this.counters.reordered++;
        if (this.#held) {
          // Already holding one: this one goes now, the held one right after it.
          this.#forward(copy);
          this.#releaseHeld();
        } else {
          this.#held = copy;
          this.#holdTimer = setTimeout(() => {
            this.#holdTimer = undefined;
            this.#releaseHeld();
          }, 0);
        }
        break;
      case "duplicate":
        this.counters.duplicated++;
        this.#forward(copy);
        this.#forward(copy.slice());
        this.#releaseHeld();
        break;
      default:
        this.#forward(copy);
        this.#releaseHeld();
    }
    return Promise.resolve();
  }

  #forward(bytes: Uint8Array): void {
    this.counters.delivered++;
    this.#other?.deliver(bytes);
  }

  #releaseHeld(): void {
    const held = this.#held;
    if (!held) return;
    this.#held = null;
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    this.#forward(held);
  }

  /** @internal Puts a datagram into this end's inbox (or hands it to the waiting receive). */
  deliver(bytes: Uint8Array): void {
    if (this.#closed) return;
    const w = this.#takeWaiter();
    if (w) {
      this.received++;
      w.resolve(bytes);
      return;
    }
    this.#inbox.push(bytes);
  }

  receive(deadline: number): Promise<Uint8Array | null> {
    if (this.#closed) return Promise.reject(new AbortedError("channel closed"));
    if (this.#waiter) throw new Error(`${this.name}: receive called while another is pending`);
    const next = this.#inbox.shift();
    if (next) {
      this.received++;
      return Promise.resolve(next);
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject, deadline };
      // As the real channels do: a deadline closer than a tick gets a timer of its own.
      const left = deadline - this.clock.now();
      if (left < this.clock.tickMs) {
        this.#timer = setTimeout(() => this.expire(this.clock.now()), Math.max(0, left));
      }
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.clock.unwatch(this);
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    this.#held = null;
    this.#inbox.length = 0;
    const w = this.#takeWaiter();
    w?.reject(new AbortedError("channel closed"));
  }

  /** The sent datagrams with the given opcode. */
  sentWith(op: number): Uint8Array[] {
    return this.sent.filter((p) => opcodeOf(p) === op);
  }

  /** Wire block numbers of the DATA packets this end sent, in order. */
  dataBlocks(): number[] {
    return this.sentWith(Opcode.DATA).map(blockOf);
  }

  /** Wire block numbers of the ACK packets this end sent, in order. */
  ackBlocks(): number[] {
    return this.sentWith(Opcode.ACK).map(blockOf);
  }
}

/**
 * Creates two connected ends. What A sends arrives at B and the other way round; `plan.aToB`
 * applies to A's sends, `plan.bToA` to B's.
 *
 * @example
 * ```ts
 * import { memoryChannelPair } from "./memory_channel.ts";
 * const [a, b] = memoryChannelPair({ seed: 7, aToB: { drop: 0.1 } });
 * await a.send(new Uint8Array([0, 4, 0, 0]));
 * const got = await b.receive(b.clock.now() + 100);
 * a.close();
 * b.close();
 * ```
 */
export function memoryChannelPair(plan: MemoryPlan = {}): [MemoryChannel, MemoryChannel] {
  const seed = plan.seed ?? 1;
  const a = new MemoryChannel("A", 40002, plan.aToB ?? {}, seed);
  const b = new MemoryChannel("B", 40001, plan.bToA ?? {}, (seed ^ 0x9e3779b9) >>> 0);
  a.connect(b);
  b.connect(a);
  return [a, b];
}
