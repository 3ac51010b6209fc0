/**
 * One request, from the moment it is accepted to its log line: open the file and negotiate
 * (every refusal is found before anything but an ERROR is sent), run the engine in the right
 * direction, clean up, and report.
 *
 * @module
 */

import { ChunkReader, chunkSizeFor, ChunkWriter, netasciiReadHandle } from "../storage/chunks.ts";
import { type Channel, formatAddr } from "../engine/channel.ts";
import { receiveBlocks } from "../engine/receive.ts";
import { sendBlocks } from "../engine/send.ts";
import type { TransferStats } from "../engine/window.ts";
import { AbortedError, PeerError, TftpError, TimeoutError } from "../errors.ts";
import { getLogger } from "../log.ts";
import { negotiate, type NegotiationPolicy } from "../wire/options.ts";
import { ack, encode, ErrorCode, errorPacket, type RequestPacket } from "../wire/packet.ts";
import type { FileSource, ReadHandle, WriteHandle } from "../storage/source.ts";

const log = getLogger("transfer");

/** How a transfer ended. */
export type Outcome =
  | "ok"
  | "size-probe"
  | "refused"
  | "peer-error"
  | "timeout"
  | "error"
  | "aborted";

/** What the server reports about each finished transfer (also the JSON log fields). */
export interface TransferRecord {
  /** `RRQ` (the client downloads) or `WRQ` (the client uploads). */
  op: "RRQ" | "WRQ";
  /** The client's address and port. */
  peer: string;
  /** The name the client asked for. */
  file: string;
  /** What was served or written (a path), when it got that far. */
  path?: string;
  /** `octet` or `netascii`. */
  mode: string;
  /** Payload bytes transferred (as sent on the wire). */
  bytes: number;
  /** Negotiated block size. */
  blksize: number;
  /** Negotiated window size. */
  windowsize: number;
  /** Packets sent again (timeouts, rewinds). */
  retransmits: number;
  /** From the request to the final ACK, in milliseconds. */
  duration_ms: number;
  /** Payload bytes per second. */
  rate_bps: number;
  /** How it ended. */
  outcome: Outcome;
  /** The error's message, for outcomes other than `ok`. */
  error?: string;
}

/**
 * The abort reason of a transfer whose client sent a new request from the same address and port:
 * a TID takes part in one transfer at a time, so the old one is over (most often it was still
 * repeating a final DATA the client no longer waited for). Such a transfer ends without an ERROR
 * to the peer, which may already be talking to the new transfer (in single-port mode from the
 * same server port).
 */
export const SUPERSEDED = "superseded by a new request from the same address and port";

/** What a session needs from the server. */
export interface SessionContext {
  source: FileSource;
  policy: NegotiationPolicy;
  /** Sends a request-stage ERROR (from the listening socket). */
  reject(code: number, message: string): void;
  /** Creates the transfer's channel; called only once the request is accepted. */
  openChannel(): Channel;
  /** Called once the peer has answered the first reply (the transfer is under way). */
  answered?(): void;
}

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

/**
 * Serves one decoded request to the end and returns its record (never throws).
 *
 * @example
 * ```ts ignore
 * import { runSession } from "./session.ts";
 * const record = await runSession(request, peer, context);
 * ```
 */
export async function runSession(
  request: RequestPacket,
  peer: Deno.NetAddr,
  ctx: SessionContext,
): Promise<TransferRecord> {
  const started = performance.now();
  const name = utf8.decode(request.filename);
  const record: TransferRecord = {
    op: request.op,
    peer: formatAddr(peer),
    file: name,
    mode: request.mode,
    bytes: 0,
    blksize: 512,
    windowsize: 1,
    retransmits: 0,
    duration_ms: 0,
    rate_bps: 0,
    outcome: "error",
  };
  let channel: Channel | null = null;
  let reader: ReadHandle | null = null;
  let writer: WriteHandle | null = null;
  let stats: TransferStats | null = null;
  let oackSent = false;
  let progressed = false;
  let completedAt = 0;
  const onProgress = (bytes: number) => {
    record.bytes = bytes;
    if (!progressed) ctx.answered?.();
    progressed = true;
  };
  try {
    if (request.mode !== "octet" && request.mode !== "netascii") {
      throw new TftpError(
        ErrorCode.ILLEGAL_OPERATION,
        request.mode === "mail"
          ? "mode 'mail' is not supported"
          : `unknown transfer mode '${latin1.decode(new TextEncoder().encode(request.mode))}'`,
      );
    }
    const info = { peer, mode: request.mode };
    if (request.op === "RRQ") {
      reader = await ctx.source.openRead(name, info);
      record.path = reader.name;
      const { settings, oack } = negotiate(request.options, {
        op: "RRQ",
        mode: request.mode,
        fileSize: reader.size,
      }, ctx.policy);
      Object.assign(record, { blksize: settings.blksize, windowsize: settings.windowsize });
      channel = ctx.openChannel();
      const handle = request.mode === "netascii" ? netasciiReadHandle(reader) : reader;
      const size = request.mode === "octet" ? reader.size : undefined;
      const chunks = new ChunkReader(
        handle,
        chunkSizeFor(settings.blksize, settings.windowsize, size),
      );
      oackSent = oack.size > 0;
      stats = await sendBlocks(channel, chunks, settings, {
        oack: oack.size ? encode({ op: "OACK", options: oack }) : undefined,
        onProgress,
      });
    } else {
      if (!ctx.source.openWrite) {
        throw new TftpError(ErrorCode.ACCESS_VIOLATION, "uploads are disabled on this server");
      }
      const negotiated = negotiate(request.options, { op: "WRQ", mode: request.mode }, ctx.policy);
      const { settings, oack } = negotiated;
      Object.assign(record, { blksize: settings.blksize, windowsize: settings.windowsize });
      writer = await ctx.source.openWrite(name, { ...info, tsize: negotiated.tsize });
      record.path = writer.name;
      channel = ctx.openChannel();
      const sink = new ChunkWriter(
        writer,
        chunkSizeFor(settings.blksize, settings.windowsize),
        request.mode === "netascii",
      );
      oackSent = oack.size > 0;
      stats = await receiveBlocks(
        channel,
        {
          write: (d) => sink.write(d),
          finish: () => sink.finish(),
        },
        settings,
        {
          reply: oack.size ? encode({ op: "OACK", options: oack }) : ack(0),
          maxBytes: ctx.policy.maxUploadSize,
          onComplete: () => (completedAt = performance.now()),
          onProgress,
        },
      );
    }
    record.outcome = "ok";
  } catch (e) {
    record.error = e instanceof Error ? e.message : String(e);
    if (e instanceof TftpError && !channel) {
      record.outcome = "refused";
      ctx.reject(e.code, e.message);
    } else if (e instanceof PeerError) {
      // A client that reads the OACK and answers ERROR is asking for tsize (PXE does this).
      record.outcome = request.op === "RRQ" && oackSent && !progressed
        ? "size-probe"
        : "peer-error";
    } else if (e instanceof TimeoutError) {
      record.outcome = "timeout";
    } else if (e instanceof AbortedError) {
      record.outcome = "aborted";
      if (e.message !== SUPERSEDED) {
        channel?.send(errorPacket(ErrorCode.NOT_DEFINED, "server shutting down")).catch(() => {});
      }
    } else if (channel && !(e instanceof TftpError && request.op === "WRQ")) {
      // A local failure mid-transfer (read error, …): tell the peer. (The receiver has already
      // sent its own ERROR for sink failures.)
      const t = e instanceof TftpError ? e : new TftpError(ErrorCode.NOT_DEFINED, "read error");
      channel.send(errorPacket(t.code, t.message)).catch(() => {});
    }
  } finally {
    if (stats) {
      record.bytes = stats.bytes;
      record.retransmits = stats.retransmits;
    }
    reader?.close();
    if (writer && record.outcome !== "ok") await writer.abort();
    channel?.close();
    record.duration_ms = Math.round((completedAt || performance.now()) - started);
    record.rate_bps = record.duration_ms > 0
      ? Math.round(record.bytes / (record.duration_ms / 1000))
      : record.bytes;
    report(record);
  }
  return record;
}

function report(r: TransferRecord): void {
  const props = { event: "transfer", ...r };
  const dir = r.op === "RRQ" ? "sent" : "received";
  const what = `${r.peer} ${r.op} ${JSON.stringify(r.file)}`;
  switch (r.outcome) {
    case "ok":
      log.info(
        `${what} ok: ${dir} ${r.bytes} bytes in ${r.duration_ms} ms (${rate(r.rate_bps)})`,
        props,
      );
      break;
    case "size-probe":
      log.info(`${what} size probe: client read the OACK and ended the transfer`, props);
      break;
    case "refused":
      // Refusals are routine (PXE ROMs and Raspberry Pis probe for files that do not exist).
      log.info(`${what} refused: ${r.error}`, props);
      break;
    default:
      log.warn(`${what} failed (${r.outcome}): ${r.error}; ${dir} ${r.bytes} bytes`, props);
  }
}

function rate(bps: number): string {
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)} MB/s`;
  if (bps >= 1e3) return `${(bps / 1e3).toFixed(1)} kB/s`;
  return `${bps} B/s`;
}
