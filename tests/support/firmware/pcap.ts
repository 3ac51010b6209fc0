/**
 * Firmware test support: reads the TFTP requests, OACKs and ERRORs out of a classic pcap file
 * (as `tcpdump -w` writes on Ethernet) and pairs each request with what the server answered, so a
 * test can state which options a firmware asked for and what tftpkit granted.
 *
 * @module
 */

/** One IPv4/UDP datagram of a capture. */
export interface Datagram {
  /** Seconds since the epoch. */
  time: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  payload: Uint8Array;
}

/** A request and what came of it, as seen on the wire. */
export interface Negotiation {
  /** The client's address and port. */
  client: string;
  op: "RRQ" | "WRQ";
  file: string;
  mode: string;
  /** Options of the request (names lower-cased), in order. */
  asked: Record<string, string>;
  /** Options of the server's OACK, or null when it sent none (plain transfer or refusal). */
  answered: Record<string, string> | null;
  /** An ERROR the client sent (e.g. 8 after a tsize probe). */
  clientError?: { code: number; message: string };
  /** An ERROR the server sent. */
  serverError?: { code: number; message: string };
}

/** The IPv4/UDP datagrams of a pcap file (link type Ethernet); other frames are skipped. */
export function readPcap(bytes: Uint8Array): Datagram[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 24) return [];
  const magic = view.getUint32(0, true);
  const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const big = magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1;
  if (!little && !big) throw new Error(`not a pcap file (magic ${magic.toString(16)})`);
  const nanos = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  if (view.getUint32(20, little) !== 1) throw new Error("pcap link type is not Ethernet");
  const out: Datagram[] = [];
  for (let at = 24; at + 16 <= bytes.length;) {
    const sec = view.getUint32(at, little);
    const frac = view.getUint32(at + 4, little);
    const caplen = view.getUint32(at + 8, little);
    const frame = bytes.subarray(at + 16, at + 16 + caplen);
    at += 16 + caplen;
    const d = udpOf(frame);
    if (d) out.push({ time: sec + frac / (nanos ? 1e9 : 1e6), ...d });
  }
  return out;
}

function udpOf(frame: Uint8Array): Omit<Datagram, "time"> | null {
  if (frame.length < 14 + 20 + 8) return null;
  let ip = 14;
  let type = (frame[12] << 8) | frame[13];
  if (type === 0x8100) {
    type = (frame[16] << 8) | frame[17];
    ip = 18;
  }
  if (type !== 0x0800 || frame[ip] >> 4 !== 4 || frame[ip + 9] !== 17) return null;
  const fragment = ((frame[ip + 6] & 0x1f) << 8) | frame[ip + 7];
  if (fragment !== 0) return null;
  const udp = ip + (frame[ip] & 0x0f) * 4;
  const addr = (o: number) => Array.from(frame.subarray(o, o + 4)).join(".");
  const length = (frame[udp + 4] << 8) | frame[udp + 5];
  return {
    src: addr(ip + 12),
    dst: addr(ip + 16),
    sport: (frame[udp] << 8) | frame[udp + 1],
    dport: (frame[udp + 2] << 8) | frame[udp + 3],
    payload: frame.subarray(udp + 8, Math.min(frame.length, udp + length)),
  };
}

/** The NUL-separated strings of `bytes` (a trailing NUL ends the last one). */
function strings(bytes: Uint8Array): string[] {
  const parts = new TextDecoder().decode(bytes).split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

function optionsOf(parts: string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) o[parts[i].toLowerCase()] = parts[i + 1];
  return o;
}

/**
 * Pairs every request sent to `server` port 69 with the OACK and ERRORs exchanged with the same
 * client port afterwards (a repeated request from the same port counts once).
 */
export function negotiations(packets: Datagram[], server: string): Negotiation[] {
  const out: Negotiation[] = [];
  const open = new Map<string, Negotiation>();
  for (const p of packets) {
    if (p.payload.length < 2) continue;
    const op = (p.payload[0] << 8) | p.payload[1];
    if ((op === 1 || op === 2) && p.dst === server && p.dport === 69) {
      const client = `${p.src}:${p.sport}`;
      const [file = "", mode = "", ...opts] = strings(p.payload.subarray(2));
      const known = open.get(client);
      if (known && known.file === file && known.answered === null && !known.serverError) continue;
      const n: Negotiation = {
        client,
        op: op === 1 ? "RRQ" : "WRQ",
        file,
        mode: mode.toLowerCase(),
        asked: optionsOf(opts),
        answered: null,
      };
      out.push(n);
      open.set(client, n);
      continue;
    }
    const fromServer = p.src === server;
    const n = open.get(fromServer ? `${p.dst}:${p.dport}` : `${p.src}:${p.sport}`);
    if (!n) continue;
    if (op === 6 && fromServer && n.answered === null) {
      n.answered = optionsOf(strings(p.payload.subarray(2)));
    } else if (op === 5 && p.payload.length >= 4) {
      const e = {
        code: (p.payload[2] << 8) | p.payload[3],
        message: strings(p.payload.subarray(4))[0] ?? "",
      };
      if (fromServer) n.serverError ??= e;
      else n.clientError ??= e;
    }
  }
  return out;
}

/** `key=value` pairs of an option set, or "-" for none. */
export function describeOptions(o: Record<string, string> | null): string {
  if (o === null) return "(no OACK)";
  const keys = Object.keys(o);
  return keys.length ? keys.map((k) => `${k}=${o[k]}`).join(" ") : "-";
}
