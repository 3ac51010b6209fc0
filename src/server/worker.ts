/**
 * A transfer worker: the entry module of the isolates of a server's pool (`pool.ts`). It takes
 * prepared transfers, binds each its own socket (or, in single-port mode, gets its datagrams from
 * the server and sends through it), runs the engine, and reports the record. Files stay with the
 * server: reads and writes go through `remote.ts`.
 *
 * @module
 */

import { type Channel, MuxChannel, SocketChannel } from "../engine/channel.ts";
import { AbortedError } from "../errors.ts";
import { bindTransferSocket } from "./addresses.ts";
import {
  type FromWorker,
  type IoAnswer,
  type IoCall,
  type Job,
  remoteReader,
  remoteWriter,
  SharedState,
  type ToWorker,
} from "./remote.ts";
import { type PreparedTransfer, run, SUPERSEDED } from "./session.ts";

/** The worker's side of the message port. */
interface Scope {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
}

const scope = globalThis as unknown as Scope;
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

interface Running {
  controller: AbortController;
  /** Answers to this transfer's I/O requests, by sequence number. */
  answers: Map<number, (a: IoAnswer) => void>;
  /** Single-port mode: datagrams from the client. */
  mux?: MuxChannel;
}

const running = new Map<number, Running>();

scope.onmessage = (e) => {
  const m = e.data;
  switch (m.t) {
    case "run":
      start(m.job).catch((err) => {
        // run() never throws; this is a bug, and the server's worker-failure path handles it.
        setTimeout(() => {
          throw err;
        });
      });
      break;
    case "io": {
      const r = running.get(m.id);
      const answer = r?.answers.get(m.seq);
      r?.answers.delete(m.seq);
      answer?.(m);
      break;
    }
    case "packet":
      running.get(m.id)?.mux?.push(new Uint8Array(m.data));
      break;
    case "abort":
      running.get(m.id)?.controller.abort(
        m.superseded ? SUPERSEDED : new AbortedError(m.reason),
      );
      break;
  }
};

/** Sends for a transfer over the server's listening socket: datagrams batched per turn. */
function sharedSender(id: number) {
  let batch: ArrayBuffer[] = [];
  const flush = () => {
    const packets = batch;
    batch = [];
    post({ t: "send", id, packets }, packets);
  };
  return {
    send(packet: Uint8Array): Promise<number> {
      if (batch.length === 0) queueMicrotask(flush);
      batch.push(packet.slice().buffer);
      return Promise.resolve(packet.length);
    },
  };
}

async function start(job: Job): Promise<void> {
  const { id } = job;
  const r: Running = { controller: new AbortController(), answers: new Map() };
  running.set(id, r);
  let seq = 0;
  const call: IoCall = (op, size, buf) =>
    new Promise((resolve) => {
      const s = ++seq;
      r.answers.set(s, resolve);
      post({ t: "io", id, seq: s, op, size, buf }, buf ? [buf] : []);
    });
  const peer: Deno.NetAddr = { transport: "udp", ...job.peer };
  const signal = r.controller.signal;
  let channel: Channel;
  if (job.bind === "shared") {
    channel = r.mux = new MuxChannel(sharedSender(id), peer, signal);
  } else {
    try {
      const socket = bindTransferSocket(job.bind.hostname, job.bind.portRange);
      post({ t: "bound", id, port: (socket.addr as Deno.NetAddr).port });
      channel = new SocketChannel(socket, peer, {
        signal,
        bufferSize: job.op === "WRQ" ? undefined : 1024,
      });
    } catch (e) {
      running.delete(id);
      post({ t: "no-port", id, message: (e as Error).message });
      return;
    }
  }
  const prepared: PreparedTransfer = {
    op: job.op,
    peer,
    mode: job.mode,
    negotiated: job.negotiated,
    oack: job.oack,
    reader: job.op === "RRQ" ? remoteReader(job.name, job.size, call) : undefined,
    writer: job.op === "WRQ" ? remoteWriter(job.name, call) : undefined,
    record: job.record,
    started: job.requestedAt - performance.timeOrigin,
  };
  const { record, closed } = await run(prepared, channel, {
    knobs: job.knobs,
    signal,
    maxUploadSize: job.maxUploadSize,
    state: new SharedState(job.state),
  });
  post({ t: "record", id, record });
  await closed;
  running.delete(id);
  post({ t: "closed", id });
}

post({ t: "ready" });
