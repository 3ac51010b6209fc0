/**
 * The TFTP client: the request handshake (RFC 1350 and option negotiation), then the same engine
 * the server uses — {@linkcode receiveBlocks} for a download, {@linkcode sendBlocks} for an upload.
 *
 * @module
 */

import { lookup } from "node:dns/promises";
import { ChunkReader, chunkSizeFor, netasciiReadHandle } from "../storage/chunks.ts";
import { SocketChannel } from "../engine/channel.ts";
import { receiveBlocks, type ReceiveSink } from "../engine/receive.ts";
import { sendBlocks } from "../engine/send.ts";
import type { TransferSettings, TransferStats } from "../engine/window.ts";
import { PeerError, TimeoutError } from "../errors.ts";
import { NetasciiDecoder } from "../wire/netascii.ts";
import { LIMITS, windowFit } from "../wire/options.ts";
import {
  ack,
  blockOf,
  decode,
  encode,
  ErrorCode,
  errorPacket,
  Opcode,
  opcodeOf,
  readError,
} from "../wire/packet.ts";
import type { ReadHandle } from "../storage/source.ts";

/** Where the server is. */
export interface Target {
  /** Host name or IP literal. */
  hostname: string;
  /** UDP port (default 69). */
  port?: number;
}

/** Options of the client functions. */
export interface ClientOptions {
  /** Block size to ask for (default 1468; 512 asks for none). */
  blksize?: number;
  /**
   * Window size to ask for (default 16; 1 asks for none), lowered to fit `maxWindowBytes` given
   * the block size.
   */
  windowsize?: number;
  /**
   * Largest window to ask for, in payload bytes (default 64 KiB): a download's window arrives
   * as one burst that our socket's receive buffer must hold (see `DEFAULT_MAX_WINDOW_BYTES`).
   */
  maxWindowBytes?: number;
  /** Retransmission timeout in seconds, also sent as the `timeout` option when set. */
  timeout?: number;
  /** Retransmissions before giving up (default 5). */
  retries?: number;
  /** `octet` (default) or `netascii`. */
  mode?: "octet" | "netascii";
  /** Ask for no options at all: plain RFC 1350 (default false). */
  noOptions?: boolean;
  /** Stops the transfer. */
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
  /** The negotiated settings. */
  settings: TransferSettings;
  /** The options the server acknowledged (empty without an OACK). */
  acknowledged: Map<string, string>;
  /** The file size the server announced (`tsize`), if any. */
  tsize?: number;
}

const DEFAULT_TIMEOUT_MS = 1000;
const DEFAULT_RETRIES = 5;

async function resolve(target: Target): Promise<Deno.NetAddr> {
  const host = target.hostname.replace(/^\[(.*)\]$/, "$1");
  const literal = /^[\d.]+$/.test(host) || host.includes(":");
  // Resolve once: sending to a name would resolve it again for every packet.
  const address = literal ? host : (await lookup(host)).address;
  return { transport: "udp", hostname: address, port: target.port ?? 69 };
}

function requestOptions(o: ClientOptions, op: "RRQ" | "WRQ", size?: number): Map<string, string> {
  const m = new Map<string, string>();
  if (o.noOptions) return m;
  const blksize = o.blksize ?? 1468;
  const windowsize = Math.min(o.windowsize ?? 16, windowFit(blksize, o.maxWindowBytes));
  if (blksize !== 512) m.set("blksize", String(blksize));
  if (windowsize !== 1) m.set("windowsize", String(windowsize));
  if (o.timeout !== undefined) m.set("timeout", String(o.timeout));
  if (op === "RRQ") m.set("tsize", "0");
  else if (size !== undefined) m.set("tsize", String(size));
  return m;
}

/** Applies the server's OACK to our settings, refusing values we did not allow. */
function accept(oack: Map<string, string>, asked: Map<string, string>, base: TransferSettings) {
  const s = { ...base };
  for (const [name, value] of oack) {
    const n = Number(value);
    const mine = asked.get(name);
    if (mine === undefined) {
      throw new PeerError(ErrorCode.OPTION_REFUSED, `unrequested option ${name}`);
    }
    if (name === "blksize") {
      if (!(n >= LIMITS.blksize.min && n <= Number(mine))) throw badOption(name, value);
      s.blksize = n;
    } else if (name === "windowsize") {
      if (!(n >= 1 && n <= Number(mine))) throw badOption(name, value);
      s.windowsize = n;
    } else if (name === "timeout") {
      if (!(n >= 1 && n <= 255)) throw badOption(name, value);
      s.timeoutMs = n * 1000;
    }
  }
  return s;
}

function badOption(name: string, value: string): PeerError {
  return new PeerError(ErrorCode.OPTION_REFUSED, `server answered ${name}=${value}`);
}

interface Handshake {
  channel: SocketChannel;
  reply: Uint8Array;
  asked: Map<string, string>;
  settings: TransferSettings;
}

/** Reads the server's OACK; refuses (ERROR 8 to the server, then throws) what we did not allow. */
async function applyOack(h: Handshake) {
  const acknowledged = (decode(h.reply) as { options: Map<string, string> }).options;
  try {
    return { settings: accept(acknowledged, h.asked, h.settings), acknowledged };
  } catch (e) {
    await h.channel.send(errorPacket(ErrorCode.OPTION_REFUSED, (e as Error).message));
    throw e;
  }
}

/** Sends the request until the first reply arrives (from the server's new port). */
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

async function handshake(
  target: Target,
  op: "RRQ" | "WRQ",
  remote: string,
  o: ClientOptions,
  size?: number,
): Promise<Handshake> {
  const server = await resolve(target);
  const settings: TransferSettings = {
    blksize: 512,
    windowsize: 1,
    timeoutMs: o.timeout ? o.timeout * 1000 : DEFAULT_TIMEOUT_MS,
    retries: o.retries ?? DEFAULT_RETRIES,
  };
  let asked = requestOptions(o, op, size);
  for (let attempt = 0;; attempt++) {
    const conn = Deno.listenDatagram({
      transport: "udp",
      hostname: server.hostname.includes(":") ? "::" : "0.0.0.0",
      port: 0,
    });
    const channel = new SocketChannel(conn, server, {
      lockOnFirstReply: true,
      firstReply: (d) => couldAnswer(d, op),
      signal: o.signal,
    });
    const request = encode({
      op,
      filename: new TextEncoder().encode(remote),
      mode: o.mode ?? "octet",
      options: asked,
    });
    try {
      for (let tries = 0;; tries++) {
        await channel.send(request);
        const reply = await channel.receive(settings.timeoutMs);
        if (reply === null) {
          if (tries >= settings.retries) {
            throw new TimeoutError(
              `no answer from ${target.hostname}:${server.port} after ${tries + 1} requests`,
            );
          }
          continue;
        }
        const code = opcodeOf(reply);
        if (code === Opcode.ERROR) {
          const e = readError(reply);
          // A server that refuses options: ask again without them (RFC 2347).
          if (e.code === ErrorCode.OPTION_REFUSED && asked.size > 0 && attempt === 0) break;
          throw new PeerError(e.code, e.message);
        }
        if (code === Opcode.OACK || code === Opcode.DATA || code === Opcode.ACK) {
          return { channel, reply, asked, settings };
        }
      }
    } catch (e) {
      channel.close();
      throw e;
    }
    channel.close();
    asked = new Map();
  }
}

/**
 * Downloads `remote` into `sink` (`write` per block, `finish` at the end).
 *
 * @throws {PeerError} The server refused or aborted (its message included).
 * @throws {TimeoutError} The server stopped answering.
 *
 * @example
 * ```ts ignore
 * import { download } from "./client.ts";
 * const chunks: Uint8Array[] = [];
 * await download({ hostname: "127.0.0.1", port: 6969 }, "hello.txt", {
 *   write: (d) => void chunks.push(d.slice()),
 *   finish: () => Promise.resolve(),
 * });
 * ```
 */
export async function download(
  target: Target,
  remote: string,
  sink: ReceiveSink,
  options: ClientOptions = {},
): Promise<ClientResult> {
  const h = await handshake(target, "RRQ", remote, options);
  const { channel, reply } = h;
  try {
    let settings = h.settings;
    let acknowledged = new Map<string, string>();
    let first: Uint8Array | undefined;
    let firstReply: Uint8Array | undefined;
    if (opcodeOf(reply) === Opcode.OACK) {
      ({ settings, acknowledged } = await applyOack(h));
      firstReply = ack(0);
    } else if (opcodeOf(reply) === Opcode.DATA) {
      first = reply;
    } else {
      throw new PeerError(ErrorCode.ILLEGAL_OPERATION, "server answered a download with an ACK");
    }
    const tsize = acknowledged.has("tsize") ? Number(acknowledged.get("tsize")) : undefined;
    const decoder = options.mode === "netascii" ? new NetasciiDecoder() : null;
    const onProgress = options.onProgress;
    const stats = await receiveBlocks(
      channel,
      {
        write: decoder ? (d) => sink.write(decoder.decode(d)) : (d) => sink.write(d),
        finish: async () => {
          if (decoder) {
            const rest = decoder.flush();
            if (rest.length) await sink.write(rest);
          }
          await sink.finish();
        },
      },
      settings,
      {
        reply: firstReply,
        first,
        dallyMs: options.dallyMs ?? 0,
        onProgress: onProgress ? (b) => onProgress(b, tsize) : undefined,
      },
    );
    return { ...stats, settings, acknowledged, tsize };
  } finally {
    channel.close();
  }
}

/**
 * Uploads everything `source` yields as `remote`.
 *
 * @throws {PeerError} The server refused or aborted (its message included).
 * @throws {TimeoutError} The server stopped answering.
 *
 * @example
 * ```ts ignore
 * import { upload } from "./client.ts";
 * const file = await Deno.open("backup.cfg");
 * await upload({ hostname: "127.0.0.1", port: 6969 }, "backup.cfg", {
 *   name: "backup.cfg",
 *   read: (p) => file.read(p),
 *   close: () => file.close(),
 * });
 * ```
 */
export async function upload(
  target: Target,
  remote: string,
  source: ReadHandle,
  options: ClientOptions = {},
): Promise<ClientResult> {
  const size = options.mode === "netascii" ? undefined : source.size;
  const h = await handshake(target, "WRQ", remote, options, size);
  const { channel, reply } = h;
  try {
    let settings = h.settings;
    let acknowledged = new Map<string, string>();
    if (opcodeOf(reply) === Opcode.OACK) {
      ({ settings, acknowledged } = await applyOack(h));
    } else if (opcodeOf(reply) !== Opcode.ACK || (reply[2] | reply[3]) !== 0) {
      throw new PeerError(ErrorCode.ILLEGAL_OPERATION, "server answered an upload without ACK 0");
    }
    const handle = options.mode === "netascii" ? netasciiReadHandle(source) : source;
    const reader = new ChunkReader(handle, chunkSizeFor(settings.blksize, settings.windowsize));
    const onProgress = options.onProgress;
    const stats = await sendBlocks(channel, reader, settings, {
      onProgress: onProgress ? (b) => onProgress(b, size) : undefined,
    });
    return { ...stats, settings, acknowledged, tsize: size };
  } finally {
    channel.close();
  }
}
