/**
 * Test support for the hostile-input test: the catalogue of requests an attacker or a broken
 * client may send, each with the answer the server must give.
 *
 * @module
 */

import { concat, rawRequest } from "./raw_transfer.ts";

const RRQ = 1, WRQ = 2;
const enc = new TextEncoder();
const b = (...xs: number[]) => new Uint8Array(xs);

/** What the server must answer. */
export type Expect =
  | { error: number }
  | { silence: true }
  | { oack: Record<string, string> }
  | { plain: true };

/** One catalogue entry: the datagram sent and the answer expected. */
export interface Case {
  name: string;
  packet: Uint8Array;
  expect: Expect;
}

/** The size of ok.txt, which the served root must contain. */
export const OK_SIZE = 300; // ok.txt: one short DATA block

/** An RRQ for ok.txt with the given option pairs. */
function withOptions(...pairs: string[]): Uint8Array {
  return rawRequest(RRQ, "ok.txt", "octet", ...pairs);
}

const manyOptions: string[] = [];
for (let i = 0; i < 300; i++) manyOptions.push(`x${i}`, "1");

/** The hostile requests, by topic, each with the answer the server must give. */
export const CATALOGUE: Case[] = [
  // Traversal in every spelling.
  { name: "RRQ '..'", packet: rawRequest(RRQ, "..", "octet"), expect: { error: 2 } },
  { name: "RRQ '../x'", packet: rawRequest(RRQ, "../x", "octet"), expect: { error: 2 } },
  {
    name: "RRQ '../outside/secret'",
    packet: rawRequest(RRQ, "../outside/secret", "octet"),
    expect: { error: 2 },
  },
  { name: "RRQ 'a/../../x'", packet: rawRequest(RRQ, "a/../../x", "octet"), expect: { error: 2 } },
  {
    name: "RRQ '/abs/../../etc/passwd'",
    packet: rawRequest(RRQ, "/abs/../../etc/passwd", "octet"),
    expect: { error: 2 },
  },
  { name: "RRQ '\\..\\x'", packet: rawRequest(RRQ, "\\..\\x", "octet"), expect: { error: 2 } },
  {
    name: "RRQ '..\\outside\\secret'",
    packet: rawRequest(RRQ, "..\\outside\\secret", "octet"),
    expect: { error: 2 },
  },
  {
    name: "RRQ 'ok.txt/../../outside/secret'",
    packet: rawRequest(RRQ, "ok.txt/../../outside/secret", "octet"),
    expect: { error: 2 },
  },
  {
    name: "RRQ '/etc/passwd' is root-relative (not found)",
    packet: rawRequest(RRQ, "/etc/passwd", "octet"),
    expect: { error: 1 },
  },
  {
    name: "RRQ '..%2f' is a literal name",
    packet: rawRequest(RRQ, "..%2f", "octet"),
    expect: { error: 1 },
  },
  {
    name: "RRQ '..%2foutside%2fsecret' is a literal name",
    packet: rawRequest(RRQ, "..%2foutside%2fsecret", "octet"),
    expect: { error: 1 },
  },
  {
    name: "RRQ '%2e%2e/x' is a literal name",
    packet: rawRequest(RRQ, "%2e%2e/x", "octet"),
    expect: { error: 1 },
  },
  {
    name: "RRQ '....//outside/secret' is a literal name",
    packet: rawRequest(RRQ, "....//outside/secret", "octet"),
    expect: { error: 1 },
  },
  {
    name: "RRQ with full-width dots '．．/outside/secret'",
    packet: rawRequest(RRQ, "．．/outside/secret", "octet"),
    expect: { error: 1 },
  },
  {
    name: "RRQ for a symlink to a file outside the root",
    packet: rawRequest(RRQ, "link_out", "octet"),
    expect: { error: 2 },
  },
  {
    name: "RRQ for a symlink to a directory outside the root",
    packet: rawRequest(RRQ, "dirlink", "octet"),
    expect: { error: 2 },
  },
  {
    name: "RRQ through a symlinked directory outside the root",
    packet: rawRequest(RRQ, "dirlink/secret", "octet"),
    expect: { error: 2 },
  },
  {
    name: "RRQ through a symlink with options (no OACK first)",
    packet: rawRequest(RRQ, "link_out", "octet", "tsize", "0", "blksize", "1468"),
    expect: { error: 2 },
  },
  {
    name: "WRQ '../evil'",
    packet: rawRequest(WRQ, "../evil", "octet"),
    expect: { error: 2 },
  },
  {
    name: "WRQ '/../evil'",
    packet: rawRequest(WRQ, "/../evil", "octet"),
    expect: { error: 2 },
  },
  {
    name: "WRQ through a symlinked directory outside the root",
    packet: rawRequest(WRQ, "dirlink/evil", "octet"),
    expect: { error: 2 },
  },
  {
    name: "WRQ onto a symlink that points outside (exists, no --overwrite)",
    packet: rawRequest(WRQ, "link_out", "octet"),
    expect: { error: 6 },
  },
  {
    name: "WRQ for a name with the partial-upload suffix",
    packet: rawRequest(WRQ, "x.tftpkit-partial", "octet"),
    expect: { error: 2 },
  },
  {
    name: "RRQ for a name with the partial-upload suffix",
    packet: rawRequest(RRQ, ".ok.txt.1234.tftpkit-partial", "octet"),
    expect: { error: 1 },
  },
  // NUL embedded: the bytes after the first NUL are the mode.
  {
    name: "NUL in the name: the rest is read as mode '../../etc/passwd'",
    packet: rawRequest(RRQ, "ok.txt\0../../etc/passwd", "octet"),
    expect: { error: 4 },
  },
  {
    name: "NUL in the name, nothing after the fake mode",
    packet: rawRequest(RRQ, "ok.txt", "../../etc/passwd"),
    expect: { error: 4 },
  },
  // Names the path rules refuse.
  {
    name: "a 5000-character name",
    packet: rawRequest(RRQ, "a".repeat(5000), "octet"),
    expect: { error: 2 },
  },
  {
    name: "a 5000-character name of 2500 directories",
    packet: rawRequest(RRQ, "a/".repeat(2499) + "a", "octet"),
    expect: { error: 2 },
  },
  {
    name: "a 300-character path segment",
    packet: rawRequest(RRQ, "s".repeat(300), "octet"),
    expect: { error: 2 },
  },
  {
    name: "non-UTF-8 bytes 0xff 0xfe",
    packet: rawRequest(RRQ, concat([b(0xff, 0xfe), enc.encode("ok.txt")]), "octet"),
    expect: { error: 2 },
  },
  {
    name: "overlong UTF-8 dots (0xc0 0xae)",
    packet: rawRequest(RRQ, b(0xc0, 0xae, 0xc0, 0xae, 0x2f, 0x78), "octet"),
    expect: { error: 2 },
  },
  {
    name: "control character 0x01",
    packet: rawRequest(RRQ, "ok\x01.txt", "octet"),
    expect: { error: 2 },
  },
  {
    name: "a trailing newline",
    packet: rawRequest(RRQ, "ok.txt\n", "octet"),
    expect: { error: 2 },
  },
  {
    name: "an ANSI escape",
    packet: rawRequest(RRQ, "\x1b[2Jok.txt", "octet"),
    expect: { error: 2 },
  },
  { name: "DEL (0x7f)", packet: rawRequest(RRQ, "ok\x7f.txt", "octet"), expect: { error: 2 } },
  { name: "the name '.'", packet: rawRequest(RRQ, ".", "octet"), expect: { error: 2 } },
  { name: "the name '/'", packet: rawRequest(RRQ, "/", "octet"), expect: { error: 2 } },
  { name: "the name './/.'", packet: rawRequest(RRQ, ".//.", "octet"), expect: { error: 2 } },
  {
    name: "a drive letter 'C:\\Windows\\win.ini' (a literal name on Linux)",
    packet: rawRequest(RRQ, "C:\\Windows\\win.ini", "octet"),
    expect: { error: 1 },
  },
  // Malformed and truncated packets.
  { name: "an empty datagram", packet: b(), expect: { error: 4 } },
  { name: "1 byte", packet: b(1), expect: { error: 4 } },
  { name: "RRQ opcode only", packet: b(0, 1), expect: { error: 4 } },
  { name: "WRQ opcode only", packet: b(0, 2), expect: { error: 4 } },
  {
    name: "RRQ without a NUL",
    packet: concat([b(0, 1), enc.encode("ok.txt")]),
    expect: { error: 4 },
  },
  { name: "RRQ without a mode", packet: rawRequest(RRQ, "ok.txt"), expect: { error: 4 } },
  {
    name: "RRQ whose mode is not NUL-terminated",
    packet: concat([rawRequest(RRQ, "ok.txt"), enc.encode("octet")]),
    expect: { error: 4 },
  },
  { name: "an empty file name", packet: rawRequest(RRQ, "", "octet"), expect: { error: 4 } },
  { name: "an empty mode", packet: rawRequest(RRQ, "ok.txt", ""), expect: { error: 4 } },
  { name: "an option without a value", packet: withOptions("blksize"), expect: { error: 4 } },
  {
    name: "an odd option list",
    packet: withOptions("blksize", "512", "tsize"),
    expect: { error: 4 },
  },
  { name: "an empty option name", packet: withOptions("", "512"), expect: { error: 4 } },
  { name: "300 options in one packet", packet: withOptions(...manyOptions), expect: { error: 4 } },
  {
    name: "300 NUL bytes after the opcode",
    packet: concat([b(0, 1), new Uint8Array(300)]),
    expect: { error: 4 },
  },
  // Unknown opcodes.
  { name: "opcode 0", packet: b(0, 0, 0x61, 0, 0x62, 0), expect: { error: 4 } },
  { name: "opcode 7", packet: b(0, 7, 0x61, 0, 0x62, 0), expect: { error: 4 } },
  { name: "opcode 255", packet: b(0, 255, 0, 1), expect: { error: 4 } },
  { name: "opcode 256", packet: b(1, 0, 0, 1), expect: { error: 4 } },
  { name: "opcode 65535", packet: b(255, 255, 0, 1), expect: { error: 4 } },
  // Transfer packets sent to the listening port (no transfer): ERROR 5, and never an answer to
  // an ERROR (RFC 1350: an ERROR is not acknowledged).
  { name: "DATA to the listening port", packet: b(0, 3, 0, 1, 0x61), expect: { error: 5 } },
  { name: "a truncated DATA to the listening port", packet: b(0, 3), expect: { error: 5 } },
  { name: "ACK to the listening port", packet: b(0, 4, 0, 1), expect: { error: 5 } },
  {
    name: "a 1000-byte ACK to the listening port",
    packet: concat([b(0, 4, 0, 0), new Uint8Array(996).fill(7)]),
    expect: { error: 5 },
  },
  {
    name: "OACK to the listening port",
    packet: rawRequest(6, "blksize", "512"),
    expect: { error: 5 },
  },
  {
    name: "ERROR to the listening port",
    packet: rawRequest(5, "\0\x01oops"),
    expect: { silence: true },
  },
  { name: "a truncated ERROR to the listening port", packet: b(0, 5), expect: { silence: true } },
  // Every option at and past its bounds (RFC 2348/2349/7440).
  { name: "blksize 8", packet: withOptions("blksize", "8"), expect: { oack: { blksize: "8" } } },
  {
    name: "blksize 65464",
    packet: withOptions("blksize", "65464"),
    expect: { oack: { blksize: "65464" } },
  },
  {
    name: "blksize 65465 is lowered to 65464",
    packet: withOptions("blksize", "65465"),
    expect: { oack: { blksize: "65464" } },
  },
  {
    name: "blksize 4294967296 is lowered to 65464",
    packet: withOptions("blksize", "4294967296"),
    expect: { oack: { blksize: "65464" } },
  },
  { name: "blksize 7 is left out", packet: withOptions("blksize", "7"), expect: { plain: true } },
  { name: "blksize 0 is left out", packet: withOptions("blksize", "0"), expect: { plain: true } },
  { name: "blksize -1 is left out", packet: withOptions("blksize", "-1"), expect: { plain: true } },
  {
    name: "blksize 1e99 is left out",
    packet: withOptions("blksize", "1e99"),
    expect: { plain: true },
  },
  {
    name: "blksize 'abc' is left out",
    packet: withOptions("blksize", "abc"),
    expect: { plain: true },
  },
  {
    name: "an empty blksize is left out",
    packet: withOptions("blksize", ""),
    expect: { plain: true },
  },
  {
    name: "a 20-digit blksize is left out",
    packet: withOptions("blksize", "99999999999999999999"),
    expect: { plain: true },
  },
  {
    name: "windowsize 1",
    packet: withOptions("windowsize", "1"),
    expect: { oack: { windowsize: "1" } },
  },
  {
    name: "windowsize 65535 is lowered to --max-windowsize (64)",
    packet: withOptions("windowsize", "65535"),
    expect: { oack: { windowsize: "64" } },
  },
  {
    name: "windowsize 65536 is left out",
    packet: withOptions("windowsize", "65536"),
    expect: { plain: true },
  },
  {
    name: "windowsize 0 is left out",
    packet: withOptions("windowsize", "0"),
    expect: { plain: true },
  },
  { name: "timeout 1", packet: withOptions("timeout", "1"), expect: { oack: { timeout: "1" } } },
  {
    name: "timeout 255",
    packet: withOptions("timeout", "255"),
    expect: { oack: { timeout: "255" } },
  },
  { name: "timeout 0 is left out", packet: withOptions("timeout", "0"), expect: { plain: true } },
  {
    name: "timeout 256 is left out",
    packet: withOptions("timeout", "256"),
    expect: { plain: true },
  },
  {
    name: "tsize 'abc' on an RRQ is left out",
    packet: withOptions("tsize", "abc"),
    expect: { plain: true },
  },
  {
    name: "tsize 99 on an RRQ is answered with the real size",
    packet: withOptions("tsize", "99"),
    expect: { oack: { tsize: String(OK_SIZE) } },
  },
  {
    name: "duplicate options: the first wins",
    packet: withOptions("blksize", "600", "blksize", "700"),
    expect: { oack: { blksize: "600" } },
  },
  {
    name: "duplicate options in different case: the first wins",
    packet: withOptions("blksize", "600", "BLKSIZE", "700", "TSIZE", "0", "tsize", "5"),
    expect: { oack: { blksize: "600", tsize: String(OK_SIZE) } },
  },
  // Size.
  {
    name: "a 65000-byte request (a 64990-byte name)",
    packet: rawRequest(RRQ, "n".repeat(64990), "octet"),
    expect: { error: 2 },
  },
  {
    name: "a 65000-byte request (one unknown option with a huge value)",
    packet: withOptions("x-junk", "v".repeat(64975)),
    expect: { plain: true },
  },
];
