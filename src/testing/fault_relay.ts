/**
 * Seeded fault-injection UDP relay for TFTP tests.
 *
 * Sits between a TFTP client and server, understands TFTP's per-transfer ports (TIDs) and
 * drops / duplicates / reorders / delays datagrams according to a {@link FaultPlan}, using a
 * seeded PRNG so a run is reproducible for a given seed and datagram sequence.
 *
 * @module
 */

/** Which faults to inject. Every probability is applied independently per datagram. */
export interface FaultPlan {
  /** Probability (0..1) that a datagram is dropped. */
  drop?: number;
  /** Probability that a datagram is delivered twice. */
  duplicate?: number;
  /**
   * Probability that a datagram is held back and delivered after the next one on the same
   * path, or after `reorderMs`, whichever comes first.
   */
  reorder?: number;
  /** Maximum time (ms) a reordered datagram is held back; default 50. */
  reorderMs?: number;
  /** Fixed extra delay (ms) added to every datagram; 0 (default) forwards synchronously. */
  delayMs?: number;
  /** Uniform random extra delay in 0..jitterMs (ms). */
  jitterMs?: number;
  /** PRNG seed (mulberry32); default 1. */
  seed?: number;
  /** Which direction the faults apply to; default "both". */
  direction?: "both" | "toServer" | "toClient";
}

/** Counters kept by a relay (datagram counts are of datagrams received, before faults). */
export interface FaultRelayStats {
  /** Datagrams received from clients (to be forwarded to the server). */
  toServer: number;
  /** Datagrams received from the server (to be forwarded to clients). */
  toClient: number;
  /** Datagrams dropped by the plan. */
  dropped: number;
  /** Datagrams delivered twice by the plan. */
  duplicated: number;
  /** Datagrams held back by the plan. */
  reordered: number;
  /** Client sessions (distinct client address:port) opened so far. */
  sessions: number;
}

/** A running relay, created by {@link startFaultRelay}. */
export interface FaultRelay {
  /** Address the relay's request port is bound to. */
  hostname: string;
  /** The relay's request port (stand-in for the server's port 69). */
  port: number;
  /** Live counters. */
  stats: FaultRelayStats;
  /** Number of UDP sockets the relay currently holds. */
  openSockets(): number;
  /** Close every socket and timer; idempotent. */
  close(): void;
  /** Replace the plan; the PRNG is re-seeded from `p.seed` (default 1). */
  setPlan(p: FaultPlan): void;
}

/** mulberry32: a tiny deterministic PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What the relay does with one datagram. */
export interface FaultDecision {
  /** Drop the datagram. */
  drop: boolean;
  /** Deliver it twice. */
  duplicate: boolean;
  /** Hold it back until the next datagram on the same path (or reorderMs). */
  reorder: boolean;
  /** Extra delay in ms (0 = forward synchronously). */
  delayMs: number;
}

/**
 * Decide the fate of one datagram. Always draws exactly four numbers from `rng`, so the
 * decision sequence depends only on the seed and the number of datagrams seen.
 */
export function decideFault(rng: () => number, plan: FaultPlan): FaultDecision {
  const [d, u, r, j] = [rng(), rng(), rng(), rng()];
  return {
    drop: d < (plan.drop ?? 0),
    duplicate: u < (plan.duplicate ?? 0),
    reorder: r < (plan.reorder ?? 0),
    delayMs: (plan.delayMs ?? 0) + (plan.jitterMs ? j * plan.jitterMs : 0),
  };
}

type Addr = { hostname: string; port: number };
type Conn = Deno.DatagramConn;
type Timer = ReturnType<typeof setTimeout>;

/** One direction between two endpoints; the unit for reordering. */
interface Path {
  conn: Conn;
  to: Addr;
  dir: "toServer" | "toClient";
  held?: { data: Uint8Array; timer: Timer };
}

interface Session {
  upstream: Conn;
  toServerMain: Path;
  toClientMain: Path;
  /** Per server TID T: socket R_{C,T} plus its two paths. */
  tids: Map<number, { conn: Conn; toClient: Path; toServer: Path }>;
  last: number;
}

const ipLiteral = (h: string) => (h === "localhost" ? "127.0.0.1" : h);

/**
 * Start a relay in front of `opts.target`. Clients send requests to `relay.port`; the relay
 * opens one upstream socket per client and one client-facing socket per server TID.
 * Sessions idle for `opts.idleMs` (default 30 s) are closed.
 */
export function startFaultRelay(opts: {
  target: { hostname: string; port: number };
  hostname?: string;
  plan?: FaultPlan;
  idleMs?: number;
  /** Called for every datagram with its direction and what the plan does to it. */
  onDatagram?: (dir: "toServer" | "toClient", data: Uint8Array, decision: FaultDecision) => void;
}): FaultRelay {
  const hostname = ipLiteral(opts.hostname ?? "127.0.0.1");
  const target = { hostname: ipLiteral(opts.target.hostname), port: opts.target.port };
  const idleMs = opts.idleMs ?? 30_000;
  const stats = { toServer: 0, toClient: 0, dropped: 0, duplicated: 0, reordered: 0, sessions: 0 };
  let plan: FaultPlan = opts.plan ?? {};
  let rng = mulberry32(plan.seed ?? 1);
  let closed = false;
  const timers = new Set<Timer>();
  const sessions = new Map<string, Session>();
  const listen = (): Conn => Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
  const main = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });

  const later = (ms: number, fn: () => void): Timer => {
    const id = setTimeout(() => {
      timers.delete(id);
      fn();
    }, ms);
    timers.add(id);
    return id;
  };
  const send = (p: Path, data: Uint8Array): Promise<void> =>
    p.conn.send(data, { transport: "udp", ...p.to }).then(() => {}, () => {});
  /** Send now (returned promise must settle before `data`'s buffer is reused) or later. */
  const emit = (p: Path, data: Uint8Array, delayMs: number, sync: Promise<void>[]) => {
    if (delayMs <= 0) sync.push(send(p, data));
    else later(delayMs, () => void send(p, data));
  };
  const flushHeld = (p: Path, sync: Promise<void>[]) => {
    if (!p.held) return;
    clearTimeout(p.held.timer);
    timers.delete(p.held.timer);
    const data = p.held.data;
    p.held = undefined;
    emit(p, data, 0, sync);
  };

  /** Apply the plan to one datagram on `p`; returns promises for synchronous sends. */
  const forward = (p: Path, data: Uint8Array): Promise<void>[] => {
    const sync: Promise<void>[] = [];
    stats[p.dir]++;
    const dir = plan.direction ?? "both";
    const d: FaultDecision = dir === "both" || dir === p.dir
      ? decideFault(rng, plan)
      : { drop: false, duplicate: false, reorder: false, delayMs: 0 };
    opts.onDatagram?.(p.dir, data, d);
    if (d.drop) {
      stats.dropped++;
      return sync;
    }
    if (d.reorder && !p.held) {
      stats.reordered++;
      const copy = data.slice();
      const timer = later(plan.reorderMs ?? 50, () => flushHeld(p, []));
      p.held = { data: copy, timer };
      if (d.duplicate) { // the duplicate goes out now, the held copy later
        stats.duplicated++;
        emit(p, copy, d.delayMs, sync);
      }
      return sync;
    }
    const out = d.delayMs > 0 ? data.slice() : data;
    emit(p, out, d.delayMs, sync);
    if (d.duplicate) {
      stats.duplicated++;
      emit(p, out, d.delayMs, sync);
    }
    flushHeld(p, sync);
    return sync;
  };

  /** One reader loop per socket, reusing one buffer; ends when the socket is closed. */
  const readLoop = async (conn: Conn, onPacket: (data: Uint8Array, from: Addr) => unknown[]) => {
    const buf = new Uint8Array(65536);
    while (!closed) {
      let data: Uint8Array, from: Deno.Addr;
      try {
        [data, from] = await conn.receive(buf);
      } catch (e) {
        if (
          closed || e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted
        ) {
          return;
        }
        continue; // e.g. ICMP-induced errors: keep relaying
      }
      const a = from as Deno.NetAddr;
      try {
        const pending = onPacket(data, { hostname: a.hostname, port: a.port });
        if (pending.length) await Promise.all(pending); // buf is reused only after sends finish
      } catch { /* e.g. no socket for a new TID: drop this datagram, keep the loop alive */ }
    }
  };

  const closeConn = (c: Conn) => {
    try {
      c.close();
    } catch { /* already closed */ }
  };
  /** Held/delayed datagrams of a closed session just fail to send; close() clears all timers. */
  const closeSession = (key: string, s: Session) => {
    sessions.delete(key);
    for (const t of s.tids.values()) closeConn(t.conn);
    closeConn(s.upstream);
  };

  const openSession = (client: Addr): Session => {
    const upstream = listen();
    const s: Session = {
      upstream,
      toServerMain: { conn: upstream, to: target, dir: "toServer" },
      toClientMain: { conn: main, to: client, dir: "toClient" },
      tids: new Map(),
      last: Date.now(),
    };
    stats.sessions++;
    readLoop(upstream, (data, from) => {
      if (from.hostname !== target.hostname) return [];
      s.last = Date.now();
      if (from.port === target.port) return forward(s.toClientMain, data);
      let t = s.tids.get(from.port);
      if (!t) {
        const conn = listen();
        const srv = { hostname: target.hostname, port: from.port };
        t = {
          conn,
          toClient: { conn, to: client, dir: "toClient" },
          toServer: { conn: upstream, to: srv, dir: "toServer" },
        };
        s.tids.set(from.port, t);
        const tid = t;
        readLoop(conn, (d2, f2) => {
          if (f2.hostname !== client.hostname || f2.port !== client.port) return [];
          s.last = Date.now();
          return forward(tid.toServer, d2);
        });
      }
      return forward(t.toClient, data);
    });
    return s;
  };

  readLoop(main, (data, from) => {
    const key = `${from.hostname}:${from.port}`;
    let s = sessions.get(key);
    if (!s) sessions.set(key, s = openSession(from));
    s.last = Date.now();
    return forward(s.toServerMain, data);
  });

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [k, s] of sessions) if (now - s.last > idleMs) closeSession(k, s);
  }, Math.max(10, Math.min(1000, idleMs / 4)));
  Deno.unrefTimer(sweep);

  return {
    hostname,
    port: (main.addr as Deno.NetAddr).port,
    stats,
    openSockets: () => {
      if (closed) return 0;
      let n = 1;
      for (const s of sessions.values()) n += 1 + s.tids.size;
      return n;
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(sweep);
      for (const [k, s] of sessions) closeSession(k, s);
      for (const t of timers) clearTimeout(t);
      timers.clear();
      closeConn(main);
    },
    setPlan(p: FaultPlan) {
      plan = p;
      rng = mulberry32(p.seed ?? 1);
    },
  };
}
