/**
 * The TFTP wire format (RFC 1350, RFC 2347): pure encoding and decoding, no I/O.
 *
 * Every packet starts with a 2-byte opcode. Requests carry a NUL-terminated file name and mode,
 * then option name/value pairs; DATA and ACK carry a 16-bit block number; ERROR carries a code
 * and a message; OACK carries option pairs.
 *
 * @module
 */

import { ErrorCode, RefusedError } from "../errors.ts";

/** Opcodes of the TFTP packet types. */
export const Opcode = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
} as const;

/** A read or write request. `options` keeps the client's order; names are lower-cased. */
export interface RequestPacket {
  op: "RRQ" | "WRQ";
  /** The requested name as raw bytes (it need not be UTF-8). */
  filename: Uint8Array;
  /** The mode, lower-cased (`octet`, `netascii`, `mail`, …). */
  mode: string;
  /** Option name (lower-cased) → value, in the order they were sent; the first of duplicates wins. */
  options: Map<string, string>;
}

/** A DATA packet. `data` is a view into the decoded buffer. */
export interface DataPacket {
  op: "DATA";
  block: number;
  data: Uint8Array;
}

/** An ACK packet. */
export interface AckPacket {
  op: "ACK";
  block: number;
}

/** An ERROR packet. */
export interface ErrorPacket {
  op: "ERROR";
  code: number;
  message: string;
}

/** An option acknowledgement (RFC 2347). */
export interface OackPacket {
  op: "OACK";
  options: Map<string, string>;
}

/** Any TFTP packet. */
export type Packet = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

/**
 * Raised by {@linkcode decode} for bytes that are not a well-formed TFTP packet: a refusal with
 * ERROR 4 (illegal TFTP operation).
 */
export class PacketError extends RefusedError {
  /** @param message What is wrong with the packet. */
  constructor(message: string) {
    super(ErrorCode.ILLEGAL_OPERATION, message);
    this.name = "PacketError";
  }
}

// Strings in packets are ASCII in practice; decode as UTF-8 (what encode writes), leniently.
const text = new TextDecoder();
const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();

/** Largest number of options a request may carry before it is refused as malformed. */
export const MAX_OPTIONS = 64;

/**
 * Reads the opcode of a datagram without decoding the rest (0 when shorter than 2 bytes).
 *
 * @example Peek at a packet's type
 * ```ts
 * import { opcodeOf, Opcode } from "./packet.ts";
 * import { equal } from "node:assert/strict";
 * equal(opcodeOf(new Uint8Array([0, 4, 0, 1])), Opcode.ACK);
 * ```
 */
export function opcodeOf(bytes: Uint8Array): number {
  return bytes.length < 2 ? 0 : (bytes[0] << 8) | bytes[1];
}

/**
 * Reads the block number of a DATA or ACK datagram (bytes 2–3) without allocating.
 *
 * @example
 * ```ts
 * import { blockOf } from "./packet.ts";
 * import { equal } from "node:assert/strict";
 * equal(blockOf(new Uint8Array([0, 4, 1, 2])), 258);
 * ```
 */
export function blockOf(bytes: Uint8Array): number {
  return (bytes[2] << 8) | bytes[3];
}

function splitStrings(bytes: Uint8Array, start: number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let from = start;
  for (let i = start; i < bytes.length; i++) {
    if (bytes[i] === 0) {
      parts.push(bytes.subarray(from, i));
      from = i + 1;
      if (parts.length > 2 + 2 * MAX_OPTIONS) {
        throw new PacketError(`too many options (more than ${MAX_OPTIONS})`);
      }
    }
  }
  if (from !== bytes.length) throw new PacketError("last string is not NUL-terminated");
  return parts;
}

function decodeOptions(parts: Uint8Array[]): Map<string, string> {
  if (parts.length % 2 !== 0) throw new PacketError("option without a value");
  const options = new Map<string, string>();
  for (let i = 0; i < parts.length; i += 2) {
    const name = text.decode(parts[i]).toLowerCase();
    if (name === "") throw new PacketError("empty option name");
    if (!options.has(name)) options.set(name, text.decode(parts[i + 1]));
  }
  return options;
}

/**
 * Decodes one datagram into a typed packet.
 *
 * @param bytes The datagram. DATA payloads are views into it, not copies.
 * @returns The packet.
 * @throws {PacketError} When the bytes are not a well-formed TFTP packet.
 *
 * @example Decode an ACK
 * ```ts
 * import { decode } from "./packet.ts";
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(decode(new Uint8Array([0, 4, 0, 7])), { op: "ACK", block: 7 });
 * ```
 */
export function decode(bytes: Uint8Array): Packet {
  if (bytes.length < 2) throw new PacketError(`packet too short (${bytes.length} bytes)`);
  const op = opcodeOf(bytes);
  switch (op) {
    case Opcode.RRQ:
    case Opcode.WRQ: {
      const parts = splitStrings(bytes, 2);
      if (parts.length < 2) throw new PacketError("request without file name and mode");
      if (parts[0].length === 0) throw new PacketError("empty file name");
      return {
        op: op === Opcode.RRQ ? "RRQ" : "WRQ",
        filename: parts[0].slice(),
        // Modes are ASCII words: one character per byte, so odd bytes show as they are.
        mode: latin1.decode(parts[1]).toLowerCase(),
        options: decodeOptions(parts.slice(2)),
      };
    }
    case Opcode.DATA:
      if (bytes.length < 4) throw new PacketError("DATA packet shorter than 4 bytes");
      return { op: "DATA", block: blockOf(bytes), data: bytes.subarray(4) };
    case Opcode.ACK:
      if (bytes.length < 4) throw new PacketError("ACK packet shorter than 4 bytes");
      return { op: "ACK", block: blockOf(bytes) };
    case Opcode.ERROR: {
      if (bytes.length < 4) throw new PacketError("ERROR packet shorter than 4 bytes");
      // Many clients omit the final NUL or pad after it: take the text up to the first NUL.
      let end = bytes.indexOf(0, 4);
      if (end < 0) end = bytes.length;
      return { op: "ERROR", code: blockOf(bytes), message: text.decode(bytes.subarray(4, end)) };
    }
    case Opcode.OACK:
      return { op: "OACK", options: decodeOptions(splitStrings(bytes, 2)) };
    default:
      throw new PacketError(`unknown opcode ${op}`);
  }
}

function strings(op: number, values: string[]): Uint8Array {
  const encoded = values.map((v) => encoder.encode(v));
  let length = 2;
  for (const e of encoded) length += e.length + 1;
  const out = new Uint8Array(length);
  out[1] = op;
  let at = 2;
  for (const e of encoded) {
    out.set(e, at);
    at += e.length + 1;
  }
  return out;
}

function flatten(options: Iterable<[string, string]>): string[] {
  const out: string[] = [];
  for (const [k, v] of options) out.push(k, v);
  return out;
}

/**
 * Encodes a packet into a new datagram.
 *
 * @example Round-trip a request
 * ```ts
 * import { decode, encode } from "./packet.ts";
 * import { equal } from "node:assert/strict";
 * const bytes = encode({
 *   op: "RRQ",
 *   filename: new TextEncoder().encode("pxelinux.0"),
 *   mode: "octet",
 *   options: new Map([["tsize", "0"]]),
 * });
 * equal((decode(bytes) as { mode: string }).mode, "octet");
 * ```
 */
export function encode(packet: Packet): Uint8Array {
  switch (packet.op) {
    case "RRQ":
    case "WRQ": {
      const rest = strings(0, [packet.mode, ...flatten(packet.options)]);
      const out = new Uint8Array(2 + packet.filename.length + 1 + rest.length - 2);
      out[1] = packet.op === "RRQ" ? Opcode.RRQ : Opcode.WRQ;
      out.set(packet.filename, 2);
      out.set(rest.subarray(2), 3 + packet.filename.length);
      return out;
    }
    case "DATA": {
      const out = new Uint8Array(4 + packet.data.length);
      writeHeader(out, Opcode.DATA, packet.block);
      out.set(packet.data, 4);
      return out;
    }
    case "ACK":
      return ack(packet.block);
    case "ERROR":
      return errorPacket(packet.code, packet.message);
    case "OACK":
      return strings(Opcode.OACK, flatten(packet.options));
  }
}

/**
 * Writes a 4-byte DATA/ACK header (opcode and block number) at the start of `into`.
 *
 * @example
 * ```ts
 * import { Opcode, writeHeader } from "./packet.ts";
 * const slot = new Uint8Array(516);
 * writeHeader(slot, Opcode.DATA, 1);
 * ```
 */
export function writeHeader(into: Uint8Array, op: number, block: number): void {
  into[0] = 0;
  into[1] = op;
  into[2] = (block >> 8) & 0xff;
  into[3] = block & 0xff;
}

/**
 * Encodes an ACK for `block` (taken modulo 65536).
 *
 * @example
 * ```ts
 * import { ack } from "./packet.ts";
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(ack(1), new Uint8Array([0, 4, 0, 1]));
 * ```
 */
export function ack(block: number): Uint8Array {
  const out = new Uint8Array(4);
  writeHeader(out, Opcode.ACK, block & 0xffff);
  return out;
}

/**
 * Encodes an ERROR packet.
 *
 * @example
 * ```ts
 * import { decode, errorPacket } from "./packet.ts";
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(decode(errorPacket(1, "no such file")), {
 *   op: "ERROR",
 *   code: 1,
 *   message: "no such file",
 * });
 * ```
 */
export function errorPacket(code: number, message: string): Uint8Array {
  const text = encoder.encode(message);
  const out = new Uint8Array(5 + text.length);
  writeHeader(out, Opcode.ERROR, code);
  out.set(text, 4);
  return out;
}

/**
 * Reads an ERROR datagram's code and message; never throws (a short packet reads as code 0).
 *
 * @example
 * ```ts
 * import { errorPacket, readError } from "./packet.ts";
 * import { equal } from "node:assert/strict";
 * equal(readError(errorPacket(8, "User aborted")).code, 8);
 * ```
 */
export function readError(bytes: Uint8Array): ErrorPacket {
  if (bytes.length < 4) return { op: "ERROR", code: 0, message: "" };
  return decode(bytes) as ErrorPacket;
}
