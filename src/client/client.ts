/**
 * The TFTP client: the request (one exchange step, RFC 1350 and option negotiation), then the
 * same engine the server uses — {@linkcode receiveBlocks} for a download, {@linkcode sendBlocks}
 * for an upload.
 *
 * @module
 */

import type { BlockSink } from "../engine/blocks.ts";
import { SocketChannel } from "../engine/channel.ts";
import { exchange } from "../engine/exchange.ts";
import { sendError } from "../engine/fail.ts";
import { dally, receiveBlocks } from "../engine/receive.ts";
import { RECEIVER_QUICK_RETRIES, Rto } from "../engine/rto.ts";
import { sendBlocks } from "../engine/send.ts";
import {
  DEFAULT_RETRIES,
  DEFAULT_TIMEOUT_MS,
  newStats,
  type TransferStats,
} from "../engine/settings.ts";
import { type Negotiated, plainSettings } from "../wire/options.ts";
import { asTftpError, ErrorCode, PeerError, RefusedError } from "../errors.ts";
import { formatAddr, listenUdp, resolveUdp } from "../net.ts";
import { getLogger, literal } from "../log.ts";
import { ChunkReader, chunkSizeFor, netasciiReadHandle, netasciiSink } from "../storage/chunks.ts";
import type { ReadHandle } from "../storage/source.ts";
import { acceptOack, type OptionRequest, requestOptions } from "../wire/options.ts";
import { ack, blockOf, decode, encode, Opcode, opcodeOf } from "../wire/packet.ts";

const log = getLogger("client");

/** Options as `name=value` words, for debug lines. */
function words(options: Map<string, string>): string {
  return [...options].map(([k, v]) => `${k}=${v}`).join(" ") || "none";
}

/** Where the server is. */
export interface Target {
  /** Host name or IP literal (IPv6 with or without brackets). */
  hostname: string;
  /** UDP port (default 69). */
  port?: number;
}

/** Options of the client functions. */
export interface ClientOptions extends OptionRequest {
  /**
   * Retransmission timeout in milliseconds (default 1000); when set, it is also asked of the
   * server as the `timeout` option (in whole seconds).
   */
  timeoutMs?: number;
  /** Retransmissions at the full timeout before giving up (default 5). */
  retries?: number;
  /** `octet` (default) or `netascii`. */
  mode?: "octet" | "netascii";
  /** Stops the transfer: the server is sent ERROR 0 with the reason's message. */
  signal?: AbortSignal;
  /**
   * After the final ACK of a download, stay this long to answer a repeated final DATA (default 0:
   * like most clients, return at once; the server's own retries cover a lost final ACK).
   */
  dallyMs?: number;
  /** Progress: payload bytes so far, and the total when known (`tsize`). */
  onProgress?: (bytes: number, total?: number) => void;
}

/** What a finished client transfer reports. */
export interface ClientResult extends TransferStats {
  /** What the transfer ran with. */
  negotiated: Negotiated;
  /** The options the server acknowledged (empty without an OACK). */
  acknowledged: Map<string, string>;
  /** The file size: announced by the server (`tsize`) on a download, known locally on an upload. */
  tsize?: number;
}

/**
 * Could `d` be the server's first reply to our request? An OACK or an ERROR; a DATA 1 of at most
 * 512 bytes to a read (a server that ignores options uses 512-byte blocks, RFC 2347); an ACK 0 to
 * a write. Anything else is a stray packet of an older transfer to a reused port.
 */
function couldAnswer(d: Uint8Array, op: "RRQ" | "WRQ"): boolean {
  if (d.length < 4) return false;
  switch (opcodeOf(d)) {
    case Opcode.OACK:
    case Opcode.ERROR:
      return true;
    case Opcode.DATA:
      return op === "RRQ" && blockOf(d) === 1 && d.length - 4 <= 512;
    case Opcode.ACK:
      return op === "WRQ" && blockOf(d) === 0;
    default:
      return false;
  }
}

interface Answered {
  channel: SocketChannel;
  reply: Uint8Array;
  negotiated: Negotiated;
  acknowledged: Map<string, string>;
  rto: Rto;
}

/**
 * Sends the request until the server answers (from its new port) and applies its OACK. A server
 * that refuses options with ERROR 8 is asked once more without them (RFC 2347).
 */
async function request(
  target: Target,
  op: "RRQ" | "WRQ",
  remote: string,
  o: ClientOptions,
  size?: number,
): Promise<Answered> {
  o.signal?.throwIfAborted();
  const server = await resolveUdp(target.hostname, target.port ?? 69);
  const retries = o.retries ?? DEFAULT_RETRIES;
  let asked = requestOptions(o, op, size);
  for (let attempt = 0;; attempt++) {
    const conn = listenUdp({
      hostname: server.hostname.includes(":") ? "::" : "0.0.0.0",
      port: 0,
    });
    const channel = new SocketChannel(conn, server, {
      firstReply: (d) => couldAnswer(d, op),
      signal: o.signal,
    });
    const packet = encode({
      op,
      filename: new TextEncoder().encode(remote),
      mode: o.mode ?? "octet",
      options: asked,
    });
    const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // The server retransmits on its own timer, typically ours: wait 10 of them for a silent one.
    const quickRetries = op === "RRQ" ? RECEIVER_QUICK_RETRIES : undefined;
    const rto = new Rto({ timeoutMs, retries, peerTimeoutMs: timeoutMs, quickRetries });
    log.debug(
      literal(
        `${op} ${JSON.stringify(remote)} to ${formatAddr(server)} (${o.mode ?? "octet"}), ` +
          `options asked: ${words(asked)}`,
      ),
      {
        event: "request",
        op,
        file: remote,
        server: formatAddr(server),
        asked: Object.fromEntries(asked),
      },
    );
    let reply: Uint8Array;
    try {
      reply = await exchange(channel, packet, (d) => couldAnswer(d, op), rto, {
        what: `answer from ${formatAddr(server)}`,
        sent: "requests",
      });
    } catch (e) {
      channel.close();
      if (e instanceof PeerError && e.code === ErrorCode.OPTION_REFUSED && asked.size > 0) {
        if (attempt === 0) {
          log.debug("the server refused the options (ERROR 8): asking again without them", {
            event: "options-refused",
          });
          asked = new Map();
          continue;
        }
      }
      throw asTftpError(e, "internal error", o.signal);
    }
    if (opcodeOf(reply) !== Opcode.OACK) {
      log.debug("the server answered without options (RFC 1350): blksize 512, windowsize 1", {
        event: "answered",
        answered: {},
      });
      return { channel, reply, negotiated: plainSettings(), acknowledged: new Map(), rto };
    }
    const acknowledged = (decode(reply) as { options: Map<string, string> }).options;
    log.debug(literal(`the server answered with an OACK: ${words(acknowledged)}`), {
      event: "answered",
      answered: Object.fromEntries(acknowledged),
    });
    try {
      const negotiated = acceptOack(acknowledged, asked);
      // A negotiated timeout replaces ours for the rest of the transfer.
      const timed = negotiated.timeoutMs
        ? new Rto({
          timeoutMs: negotiated.timeoutMs,
          retries,
          peerTimeoutMs: negotiated.timeoutMs,
          quickRetries,
        })
        : rto;
      return { channel, reply, negotiated, acknowledged, rto: timed };
    } catch (e) {
      await fail(channel, e, o.signal);
    }
  }
}

function done(what: string, remote: string, stats: TransferStats): void {
  log.debug(
    literal(
      `${what} of ${JSON.stringify(remote)} done: ${stats.bytes} bytes, ` +
        `${stats.retransmits} retransmits`,
    ),
    { event: "done", bytes: stats.bytes, retransmits: stats.retransmits },
  );
}

/** Sends the server the ERROR due for `e`, closes the channel, and throws `e` as a TftpError. */
async function fail(channel: SocketChannel, e: unknown, signal?: AbortSignal): Promise<never> {
  const err = asTftpError(e, "internal error", signal);
  await sendError((p) => channel.send(p), err);
  channel.close();
  throw err;
}

/**
 * Downloads `remote` into `sink` (`write` per block, `finish` at the end).
 *
 * @throws {PeerError} The server refused or aborted (its code and message included).
 * @throws {TimeoutError} The server stopped answering.
 * @throws {RefusedError} We ended the transfer (the sink failed, the server's OACK was not
 *   acceptable); the server was sent the same ERROR.
 * @throws {AbortedError} `signal` aborted; the server was sent ERROR 0.
 *
 * @example Download block by block into a sink of your own
 * ```ts
 * import { DirectorySource, download, serve } from "../mod.ts";
 * import { equal } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hello.txt`, "hello\n");
 * const server = await serve({
 *   source: await DirectorySource.open(dir),
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 *
 * const chunks: Uint8Array[] = [];
 * const result = await download({ hostname: "127.0.0.1", port: server.port }, "hello.txt", {
 *   write: (d) => void chunks.push(d.slice()), // the view is reused: keep a copy
 *   finish: () => Promise.resolve(),
 * });
 * equal(new TextDecoder().decode(chunks[0]), "hello\n");
 * equal(result.bytes, 6);
 * equal(result.tsize, 6); // the server announced the size
 *
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function download(
  target: Target,
  remote: string,
  sink: BlockSink,
  options?: ClientOptions,
): Promise<ClientResult> {
  options ??= {};
  const { channel, reply, negotiated, acknowledged, rto } = await request(
    target,
    "RRQ",
    remote,
    options,
  );
  try {
    const op = opcodeOf(reply);
    if (op === Opcode.ACK) {
      throw new RefusedError(ErrorCode.ILLEGAL_OPERATION, "server answered a download with an ACK");
    }
    const tsize = negotiated.tsize;
    const onProgress = options.onProgress;
    const stats = newStats();
    await receiveBlocks(
      channel,
      options.mode === "netascii" ? netasciiSink(sink) : sink,
      negotiated,
      {
        rto,
        // After an OACK, ACK 0 starts the transfer; a server without options sent DATA 1.
        reply: op === Opcode.OACK ? ack(0) : undefined,
        first: op === Opcode.DATA ? reply : undefined,
        stats,
        onProgress: onProgress ? (b) => onProgress(b, tsize) : undefined,
      },
    );
    if (options.dallyMs) await dally(channel, stats.blocks, options.dallyMs);
    channel.close();
    done("download", remote, stats);
    return { ...stats, negotiated, acknowledged, tsize };
  } catch (e) {
    return await fail(channel, e, options.signal);
  }
}

/**
 * Uploads everything `source` yields as `remote`.
 *
 * @throws {PeerError} The server refused or aborted (its code and message included).
 * @throws {TimeoutError} The server stopped answering.
 * @throws {RefusedError} We ended the transfer (the source failed); the server was told.
 * @throws {AbortedError} `signal` aborted; the server was sent ERROR 0.
 *
 * @example Upload a local file
 * ```ts
 * import { DirectorySource, serve, upload } from "../mod.ts";
 * import { equal } from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir(); // what the server serves, uploads allowed
 * const server = await serve({
 *   source: await DirectorySource.open(root, { write: true }),
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 * const local = await Deno.makeTempFile();
 * await Deno.writeTextFile(local, "hostname sw1\n");
 *
 * const file = await Deno.open(local);
 * const result = await upload({ hostname: "127.0.0.1", port: server.port }, "backup.cfg", {
 *   name: local,
 *   size: (await file.stat()).size, // announced to the server as tsize
 *   read: (p) => file.read(p),
 *   close: () => file.close(),
 * });
 * file.close(); // the handle stays the caller's to close
 * equal(result.bytes, 13);
 * equal(await Deno.readTextFile(`${root}/backup.cfg`), "hostname sw1\n");
 *
 * await server.close();
 * await Deno.remove(local);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function upload(
  target: Target,
  remote: string,
  source: ReadHandle,
  options?: ClientOptions,
): Promise<ClientResult> {
  options ??= {};
  const size = options.mode === "netascii" ? undefined : source.size;
  const { channel, reply, negotiated, acknowledged, rto } = await request(
    target,
    "WRQ",
    remote,
    options,
    size,
  );
  try {
    if (opcodeOf(reply) !== Opcode.OACK && opcodeOf(reply) !== Opcode.ACK) {
      throw new RefusedError(
        ErrorCode.ILLEGAL_OPERATION,
        "server answered an upload without ACK 0",
      );
    }
    const handle = options.mode === "netascii" ? netasciiReadHandle(source) : source;
    const reader = new ChunkReader(handle, chunkSizeFor(negotiated.blksize, negotiated.windowsize));
    const onProgress = options.onProgress;
    const stats = newStats();
    await sendBlocks(channel, reader, negotiated, {
      rto,
      stats,
      onProgress: onProgress ? (b) => onProgress(b, size) : undefined,
    });
    channel.close();
    done("upload", remote, stats);
    return { ...stats, negotiated, acknowledged, tsize: size };
  } catch (e) {
    return await fail(channel, e, options.signal);
  }
}
