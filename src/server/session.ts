/**
 * One request, in two phases. {@linkcode prepare} applies the name rules, opens the file and
 * negotiates — no network I/O, so every refusal is known before anything but an ERROR is sent,
 * and the server decides where that ERROR goes. {@linkcode run} then drives the engine over the
 * channel the server chose (a socket of its own, or the shared port) and reports the record.
 *
 * @module
 */

import type { Channel } from "../engine/channel.ts";
import { sendError } from "../engine/fail.ts";
import { dally, receiveBlocks } from "../engine/receive.ts";
import { RECEIVER_QUICK_RETRIES, Rto, USUAL_CLIENT_TIMEOUT_MS } from "../engine/rto.ts";
import { sendBlocks } from "../engine/send.ts";
import { type Knobs, newState, newStats, type TransferState } from "../engine/settings.ts";
import { type Negotiated } from "../wire/options.ts";
import {
  AbortedError,
  asTftpError,
  describeError,
  ErrorCode,
  PeerError,
  printable,
  RefusedError,
  TftpError,
  TimeoutError,
} from "../errors.ts";
import { formatAddr } from "../net.ts";
import { getLogger, literal } from "../log.ts";
import {
  ChunkReader,
  chunkSizeFor,
  ChunkWriter,
  netasciiReadHandle,
  netasciiSink,
} from "../storage/chunks.ts";
import type { FileSource, ReadHandle, WriteHandle } from "../storage/source.ts";
import { negotiate, type NegotiationPolicy } from "../wire/options.ts";
import { ack, encode, type RequestPacket } from "../wire/packet.ts";
import { finishRecord, newRecord, type Outcome, type TransferRecord } from "./record.ts";

/**
 * The abort reason of a transfer whose client sent a new request from the same address and port
 * (see the server): it ends without an ERROR to the peer, which may already be talking to the
 * new transfer. Compared by identity.
 */
export const SUPERSEDED: Error = new Error(
  "superseded by a new request from the same address and port",
);

/** A request that was accepted: the file is open and the options are negotiated. */
export interface PreparedTransfer {
  /** `RRQ` (we send) or `WRQ` (we receive). */
  readonly op: "RRQ" | "WRQ";
  /** The client. */
  readonly peer: Deno.NetAddr;
  /** `octet` or `netascii`. */
  readonly mode: "octet" | "netascii";
  /** What the transfer runs with. */
  readonly negotiated: Negotiated;
  /** The OACK to send first, if the client asked for options we accepted. */
  readonly oack?: Uint8Array;
  /** RRQ: the open file. */
  readonly reader?: ReadHandle;
  /** WRQ: where the upload goes (nothing under its final name until complete). */
  readonly writer?: WriteHandle;
  /** The record, filled in as the transfer goes. */
  readonly record: TransferRecord;
  /** When the request arrived (`performance.now()`). */
  readonly started: number;
}

const utf8 = new TextDecoder();
const log = getLogger("server");

/**
 * A record for `request`, before anything is known about its outcome.
 *
 * @example
 * ```ts
 * import { recordFor } from "./session.ts";
 * import { decode, encode, type RequestPacket } from "../wire/packet.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const request = decode(encode({
 *   op: "RRQ",
 *   filename: new TextEncoder().encode("pxelinux.0"),
 *   mode: "octet",
 *   options: new Map([["tsize", "0"]]),
 * })) as RequestPacket;
 * const peer: Deno.NetAddr = { transport: "udp", hostname: "10.0.0.9", port: 2000 };
 * const record = recordFor(request, peer);
 * equal(record.peer, "10.0.0.9:2000");
 * equal(record.file, "pxelinux.0");
 * deepEqual(record.asked, { tsize: "0" });
 * equal(record.outcome, "error"); // until the transfer says otherwise
 * ```
 */
export function recordFor(request: RequestPacket, peer: Deno.NetAddr): TransferRecord {
  const record = newRecord(
    request.op,
    formatAddr(peer),
    utf8.decode(request.filename),
    request.mode,
  );
  record.asked = Object.fromEntries(request.options);
  return record;
}

/**
 * Prepares `request` from `peer`: checks the mode and, for a read, opens the file and then
 * negotiates (the size is part of the answer); for a write, negotiates and then opens (the
 * announced size is checked against the limits and the free space before anything is created).
 *
 * @throws {RefusedError} Why the request is refused (the caller sends it from the port the
 *   request came to, and reports the record).
 *
 * @example Accept one request, refuse another
 * ```ts
 * import { prepare } from "./session.ts";
 * import { ErrorCode, RefusedError } from "../errors.ts";
 * import { DirectorySource } from "../storage/files.ts";
 * import { decode, encode, type RequestPacket } from "../wire/packet.ts";
 * import { equal, ok, rejects } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hello.txt`, "hello\n");
 * const source = await DirectorySource.open(dir);
 * const peer: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: 40000 };
 * const policy = { maxBlksize: 1468, maxWindowsize: 64 };
 * const rrq = (name: string) =>
 *   decode(encode({
 *     op: "RRQ",
 *     filename: new TextEncoder().encode(name),
 *     mode: "octet",
 *     options: new Map([["blksize", "8192"], ["tsize", "0"]]),
 *   })) as RequestPacket;
 *
 * const prepared = await prepare(rrq("hello.txt"), peer, source, policy);
 * equal(prepared.negotiated.blksize, 1468); // lowered to the server's cap
 * equal(prepared.negotiated.tsize, 6); // the file's size
 * ok(prepared.oack); // both go back to the client in an OACK
 * prepared.reader?.close(); // an executor would run it; here the open file is only released
 *
 * await rejects(
 *   prepare(rrq("missing.txt"), peer, source, policy),
 *   (e) => e instanceof RefusedError && e.code === ErrorCode.FILE_NOT_FOUND,
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function prepare(
  request: RequestPacket,
  peer: Deno.NetAddr,
  source: FileSource,
  policy: NegotiationPolicy,
  started: number = performance.now(),
): Promise<PreparedTransfer> {
  const record = recordFor(request, peer);
  log.debug(
    literal(
      `${record.peer} ${record.op} ${JSON.stringify(record.file)} (${printable(request.mode)}), ` +
        `options asked: ${optionWords(record.asked!)}`,
    ),
    { event: "request", peer: record.peer, op: record.op, file: record.file, asked: record.asked },
  );
  const mode = request.mode;
  if (mode !== "octet" && mode !== "netascii") {
    throw new RefusedError(
      ErrorCode.ILLEGAL_OPERATION,
      mode === "mail"
        ? "mode 'mail' is not supported"
        : `unknown transfer mode '${printable(mode)}'`,
    );
  }
  const info = { peer, mode };
  const base = { op: request.op, peer, mode, record, started } as const;
  if (request.op === "RRQ") {
    // Open first: the file's size is part of the answer (tsize).
    const reader = await source.openRead(record.file, info);
    try {
      const { negotiated, oack } = negotiate(request.options, {
        op: "RRQ",
        mode,
        fileSize: reader.size,
      }, policy);
      return withSettings({ ...base, negotiated, reader, oack: oackPacket(oack) }, oack);
    } catch (e) {
      reader.close();
      throw e;
    }
  }
  if (!source.openWrite) {
    throw new RefusedError(ErrorCode.ACCESS_VIOLATION, "uploads are disabled on this server");
  }
  // Negotiate first: an announced size over the limits is refused before anything is created.
  const freeSpace = request.options.has("tsize")
    ? await source.freeSpace?.(record.file)
    : undefined;
  const { negotiated, oack } = negotiate(request.options, { op: "WRQ", mode, freeSpace }, policy);
  const writer = await source.openWrite(record.file, info);
  return withSettings({ ...base, negotiated, writer, oack: oackPacket(oack) }, oack);
}

function oackPacket(oack: Map<string, string>): Uint8Array | undefined {
  return oack.size > 0 ? encode({ op: "OACK", options: oack }) : undefined;
}

function withSettings(t: PreparedTransfer, oack: Map<string, string>): PreparedTransfer {
  const r = t.record;
  r.path = t.reader?.name ?? t.writer?.name;
  r.blksize = t.negotiated.blksize;
  r.windowsize = t.negotiated.windowsize;
  r.answered = Object.fromEntries(oack);
  log.debug(
    literal(
      `${r.peer} ${r.op} ${JSON.stringify(r.file)} resolved to ${r.path}; options answered: ` +
        `${optionWords(r.answered)}`,
    ),
    { event: "accepted", peer: r.peer, file: r.file, path: r.path, answered: r.answered },
  );
  return t;
}

function optionWords(options: Record<string, string>): string {
  const words = Object.entries(options).map(([k, v]) => `${printable(k)}=${printable(v)}`);
  return words.join(" ") || "none";
}

/** Options of {@linkcode run}. */
export interface RunOptions {
  /** Local timeout and retries (a negotiated `timeout` wins over the knob's). */
  knobs: Knobs;
  /** Ends the transfer (its reason becomes the `AbortedError`'s cause). */
  signal: AbortSignal;
  /** Largest upload in bytes. */
  maxUploadSize?: number;
  /** Kept up to date by the engine, for the server's view of the transfer. */
  state?: TransferState;
}

/** What {@linkcode run} resolves with. */
export interface RunResult {
  /** The transfer's record, complete (the server logs it). */
  record: TransferRecord;
  /** Resolves once the channel is closed: after an upload's dally, at once otherwise. */
  closed: Promise<void>;
}

/**
 * Runs a prepared transfer over `channel` and resolves with its record as soon as the outcome is
 * known (an upload is complete at its final ACK; the dally that answers a lost final ACK goes on
 * quietly until `closed`). Never throws: a failure is in the record, and the peer is sent the
 * ERROR due (none for its own ERROR, a timeout, or a superseded transfer).
 *
 * @example Serve one RRQ over an in-memory channel
 * ```ts
 * import { prepare, run } from "./session.ts";
 * import { DirectorySource } from "../storage/files.ts";
 * import { memoryChannelPair } from "../testing/memory_channel.ts";
 * import { ack, blockOf, decode, encode, type RequestPacket } from "../wire/packet.ts";
 * import { equal } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hello.txt`, "hello\n");
 * const [channel, client] = memoryChannelPair();
 * const request = decode(encode({
 *   op: "RRQ",
 *   filename: new TextEncoder().encode("hello.txt"),
 *   mode: "octet",
 *   options: new Map(), // no options: no OACK, DATA 1 comes first
 * })) as RequestPacket;
 * const prepared = await prepare(request, channel.peer, await DirectorySource.open(dir), {
 *   maxBlksize: 1468,
 *   maxWindowsize: 64,
 * });
 *
 * const running = run(prepared, channel, {
 *   knobs: { timeoutMs: 1000, retries: 5 },
 *   signal: new AbortController().signal,
 * });
 * const data = (await client.receive(client.clock.now() + 1000))!;
 * equal(blockOf(data), 1);
 * equal(new TextDecoder().decode(data.subarray(4)), "hello\n");
 * await client.send(ack(1));
 *
 * const { record, closed } = await running;
 * await closed; // the channel is closed
 * equal(record.outcome, "ok");
 * equal(record.bytes, 6);
 * client.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function run(
  t: PreparedTransfer,
  channel: Channel,
  options: RunOptions,
): Promise<RunResult> {
  const { record, negotiated } = t;
  const stats = newStats();
  const timeoutMs = negotiated.timeoutMs ?? options.knobs.timeoutMs;
  // A negotiated timeout is the client's retransmission timer too (RFC 2349).
  const clientTimeoutMs = negotiated.timeoutMs ?? options.knobs.peerTimeoutMs ??
    USUAL_CLIENT_TIMEOUT_MS;
  const rto = new Rto({
    timeoutMs,
    retries: options.knobs.retries,
    peerTimeoutMs: clientTimeoutMs,
    quickRetries: t.op === "WRQ" ? RECEIVER_QUICK_RETRIES : undefined,
  });
  const state = options.state ?? newState();
  let dallying: Promise<void> | undefined;
  try {
    if (t.op === "RRQ") {
      const reader = t.reader!;
      const handle = t.mode === "netascii" ? netasciiReadHandle(reader) : reader;
      const size = t.mode === "octet" ? reader.size : undefined;
      const chunks = new ChunkReader(
        handle,
        chunkSizeFor(negotiated.blksize, negotiated.windowsize, size),
      );
      await sendBlocks(channel, chunks, negotiated, { rto, oack: t.oack, stats, state });
    } else {
      const writer = new ChunkWriter(
        t.writer!,
        chunkSizeFor(negotiated.blksize, negotiated.windowsize),
      );
      const sink = t.mode === "netascii" ? netasciiSink(writer) : writer;
      await receiveBlocks(channel, sink, negotiated, {
        rto,
        reply: t.oack ?? ack(0),
        stats,
        maxBytes: options.maxUploadSize,
        expectBytes: t.mode === "octet" ? negotiated.tsize : undefined,
        state,
      });
      // Stay for a repeated final DATA: twice the client's retransmission timer, so that a
      // client whose final ACK was lost is answered when it sends its last block again.
      dallying = dally(channel, stats.blocks, 2 * clientTimeoutMs);
    }
    record.outcome = "ok";
  } catch (e) {
    const err = asTftpError(e, t.op === "RRQ" ? "read error" : "write error", options.signal);
    record.error = describeError(err);
    record.outcome = outcomeOf(err, t.op === "RRQ" && !!t.oack && !state.answered);
    if (!(err instanceof AbortedError && err.cause === SUPERSEDED)) {
      await sendError((p) => channel.send(p), err);
    }
    if (t.writer) await t.writer.abort();
  }
  t.reader?.close();
  record.bytes = stats.bytes;
  record.retransmits = stats.retransmits;
  if (stats.note) record.note = stats.note;
  finishRecord(record, t.started);
  const closed = (dallying ?? Promise.resolve()).finally(() => channel.close());
  return { record, closed };
}

function outcomeOf(e: TftpError, oackUnanswered: boolean): Outcome {
  // A client that reads the OACK and answers ERROR is asking for tsize (PXE does this).
  if (e instanceof PeerError) return oackUnanswered ? "size-probe" : "peer-error";
  if (e instanceof TimeoutError) return "timeout";
  if (e instanceof AbortedError) return "aborted";
  return "error";
}
