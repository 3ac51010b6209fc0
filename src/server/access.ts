/**
 * Access control by client address: `--allow CIDR` and `--deny CIDR`, IPv4 and IPv6 (IPv4-mapped
 * IPv6 addresses match IPv4 rules). A denied address wins over an allowed one; with no `--allow`
 * every address not denied is allowed.
 *
 * @module
 */

/** A parsed CIDR block. */
export interface Cidr {
  /** The address bytes (4 or 16). */
  bytes: Uint8Array;
  /** Prefix length in bits. */
  bits: number;
  /** The text it was parsed from. */
  text: string;
}

/**
 * Parses an IPv4 or IPv6 literal into 4 or 16 bytes; IPv4-mapped IPv6 becomes 4 bytes.
 * Returns `null` for anything else.
 *
 * @example
 * ```ts
 * import { parseIp } from "./access.ts";
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(parseIp("::ffff:10.0.0.1"), new Uint8Array([10, 0, 0, 1]));
 * ```
 */
export function parseIp(text: string): Uint8Array | null {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const b = v4.slice(1).map(Number);
    return b.every((x) => x <= 255) ? new Uint8Array(b) : null;
  }
  if (!text.includes(":")) return null;
  let s = text.replace(/%.*$/, "");
  let tail: number[] = [];
  const embedded = /:(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (embedded) {
    const b = parseIp(embedded[1]);
    if (!b) return null;
    tail = [(b[0] << 8) | b[1], (b[2] << 8) | b[3]];
    s = s.slice(0, -embedded[1].length) + "0";
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parse = (h: string) => (h === "" ? [] : h.split(":"));
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  if (embedded) rest.length ? rest.pop() : head.pop();
  const want = 8 - tail.length;
  const fill = halves.length === 2 ? want - head.length - rest.length : 0;
  if ((halves.length === 2 && fill < 1) || (halves.length === 1 && head.length !== want)) {
    return null;
  }
  const groups = [...head, ...Array(fill).fill("0"), ...rest];
  if (!groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return null;
  const words = [...groups.map((g) => parseInt(g, 16)), ...tail];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  const mapped = out.subarray(0, 10).every((x) => x === 0) && out[10] === 0xff && out[11] === 0xff;
  return mapped ? out.slice(12) : out;
}

/**
 * Parses `ADDR/BITS` or a bare address (a host).
 *
 * @throws {Error} With a message naming the bad value.
 *
 * @example
 * ```ts
 * import { parseCidr } from "./access.ts";
 * import { equal } from "node:assert/strict";
 * equal(parseCidr("10.0.0.0/8").bits, 8);
 * ```
 */
export function parseCidr(text: string): Cidr {
  const [addr, bitsText, extra] = text.split("/");
  const bytes = parseIp(addr);
  if (!bytes || extra !== undefined) throw new Error(`not an IP address or CIDR block: ${text}`);
  // An IPv4-mapped IPv6 block (::ffff:a.b.c.d/n) is kept as IPv4: its prefix counts 96 bits less.
  const mapped = addr.includes(":") && bytes.length === 4;
  const min = mapped ? 96 : 0;
  const max = mapped ? 128 : bytes.length * 8;
  const given = bitsText === undefined ? max : Number(bitsText);
  if (!/^\d+$/.test(bitsText ?? "0") || given > max || given < min) {
    throw new Error(`bad prefix length in ${text}: expected ${min}-${max}`);
  }
  return { bytes, bits: given - min, text };
}

/** Does `ip` (bytes from {@linkcode parseIp}) lie in `cidr`? */
export function cidrContains(cidr: Cidr, ip: Uint8Array): boolean {
  if (cidr.bytes.length !== ip.length) return false;
  let bits = cidr.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((cidr.bytes[i] & mask) !== (ip[i] & mask)) return false;
  }
  return true;
}

/**
 * Decides whether a client may talk to the server.
 *
 * @example
 * ```ts
 * import { AccessList } from "./access.ts";
 * import { equal } from "node:assert/strict";
 * const acl = new AccessList(["10.0.0.0/8"], ["10.0.0.66"]);
 * equal(acl.allows("10.1.2.3"), true);
 * equal(acl.allows("10.0.0.66"), false);
 * equal(acl.allows("192.0.2.1"), false);
 * ```
 */
export class AccessList {
  #allow: Cidr[];
  #deny: Cidr[];

  /**
   * @param allow CIDR blocks allowed (empty: all).
   * @param deny CIDR blocks denied (wins over allow).
   */
  constructor(allow: string[] = [], deny: string[] = []) {
    this.#allow = allow.map(parseCidr);
    this.#deny = deny.map(parseCidr);
  }

  /** True when no rule is configured. */
  get empty(): boolean {
    return this.#allow.length === 0 && this.#deny.length === 0;
  }

  /** May `hostname` (an IP literal as Deno reports it) be served? */
  allows(hostname: string): boolean {
    if (this.empty) return true;
    const ip = parseIp(hostname);
    if (!ip) return false;
    if (this.#deny.some((c) => cidrContains(c, ip))) return false;
    return this.#allow.length === 0 || this.#allow.some((c) => cidrContains(c, ip));
  }
}
