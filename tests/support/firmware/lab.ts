/**
 * Firmware test support: a lab network in a network namespace of the test's own — a bridge with
 * one tap for a QEMU guest and a veth whose other end holds the server's address — with dnsmasq
 * answering DHCP (its TFTP off), `main.ts serve` on port 69, tcpdump recording every TFTP request,
 * OACK and ERROR, and optional datagram loss by an nftables rule in the bridge family (the frames
 * are dropped between bridge ports, never in a sender's output path). Everything is stopped by
 * PID and removed by {@linkcode Lab.close}.
 *
 * @module
 */

import { MAIN, ROOT, run } from "../server.ts";
import { type Negotiation, negotiations, readPcap } from "./pcap.ts";
import { SYSTEM } from "./preflight.ts";
import { Proc, tail } from "./proc.ts";
import type { LoggedTransfer } from "../../../src/testing/proc.ts";

/** The server's address in every lab (each lab is its own namespace). */
export const SERVER_IP = "10.66.0.1";
/** The guest's tap device. */
export const TAP = "fwtap";
const BRIDGE = "fwbr";
const VETH = "fwsrv";
const PORT = "fwport";
const LOSS_TABLE = "tftpkit_fw_loss";

/** How the server listens. */
export type Listen =
  /** `--address 10.66.0.1` */
  | "bound"
  /** no `--address`, with `--allow-sys=networkInterfaces`: one socket per local address */
  | "listed"
  /** no `--address` and no permission to list addresses: one wildcard socket */
  | "wildcard";

/** Options of {@linkcode Lab.open}. */
export interface LabOptions {
  /** A short name for messages. */
  name: string;
  /** The boot file name DHCP offers. */
  bootFile: string;
  listen: Listen;
  /** Run the server with `--single-port`. */
  singlePort?: boolean;
}

/** One transfer record of the server's JSON log. */
export type TransferRec = LoggedTransfer & { event: "transfer" };

async function must(args: string[]): Promise<string> {
  const r = await run(args[0], args.slice(1), { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** A lab network with its DHCP server, TFTP server and capture running. */
export class Lab {
  readonly ns = `tftpkit-fw-${crypto.randomUUID().slice(0, 8)}`;
  /** The temporary directory: the served tree is {@linkcode root}, the rest is scratch. */
  readonly dir: string;
  readonly root: string;
  readonly pcap: string;
  server: Proc | null = null;
  dhcp: Proc | null = null;
  capture: Proc | null = null;
  readonly guests: Proc[] = [];
  #nsMade = false;

  private constructor(readonly options: LabOptions, dir: string) {
    this.dir = dir;
    this.root = `${dir}/root`;
    this.pcap = `${dir}/tftp.pcap`;
  }

  /** Creates the namespace and network and starts tcpdump, dnsmasq and the server. */
  static async open(options: LabOptions): Promise<Lab> {
    const dir = await Deno.makeTempDir({ prefix: `tftpkit_fw_${options.name}_` });
    const lab = new Lab(options, dir);
    try {
      await Deno.mkdir(lab.root);
      await lab.#network();
      await lab.#startCapture();
      await lab.#startDhcp();
      await lab.#startServer();
      return lab;
    } catch (e) {
      await lab.close();
      throw e;
    }
  }

  /** `ip netns exec NS ARGS…` as an argument list for `ip`. */
  inNs(...args: string[]): string[] {
    return ["netns", "exec", this.ns, ...args];
  }

  async #network(): Promise<void> {
    await must(["ip", "netns", "add", this.ns]);
    this.#nsMade = true;
    const x = (...a: string[]) => must(["ip", ...this.inNs(...a)]);
    await x("ip", "link", "set", "lo", "up");
    await x("ip", "link", "add", BRIDGE, "type", "bridge", "stp_state", "0", "forward_delay", "0");
    // The bridge device must not answer ARP for the server's address (Linux answers for any local
    // address on any link): guests would send to it, and their datagrams would reach the server
    // through the bridge's own input rather than across the bridge and the veth.
    await x("ip", "link", "set", BRIDGE, "arp", "off");
    await x("ip", "link", "add", VETH, "type", "veth", "peer", "name", PORT);
    await x("ip", "link", "set", PORT, "master", BRIDGE);
    await x("ip", "tuntap", "add", "dev", TAP, "mode", "tap");
    await x("ip", "link", "set", TAP, "master", BRIDGE);
    await x("ip", "addr", "add", `${SERVER_IP}/24`, "dev", VETH);
    // A global IPv6 prefix lets dnsmasq send router advertisements: iPXE waits ~15 s for IPv6
    // autoconfiguration without one.
    await x("ip", "addr", "add", "fd66::1/64", "dev", VETH, "nodad");
    for (const dev of [TAP, PORT, VETH, BRIDGE]) await x("ip", "link", "set", dev, "up");
  }

  async #startCapture(): Promise<void> {
    // Requests (opcodes 1, 2), ERRORs (5) and OACKs (6): what was asked and answered.
    const filter = "udp and not port 67 and not port 68 and " +
      "(udp[8:2] = 1 or udp[8:2] = 2 or udp[8:2] = 5 or udp[8:2] = 6)";
    this.capture = new Proc(
      "tcpdump",
      "ip",
      this.inNs(
        SYSTEM.tcpdump,
        "-i",
        VETH,
        "-n",
        "-U",
        "--immediate-mode",
        "-Z",
        "root",
        "-w",
        this.pcap,
        filter,
      ),
    );
    await this.capture.expect(/listening on/, 15_000, "tcpdump's listening line");
  }

  async #startDhcp(): Promise<void> {
    const d = this.dir;
    this.dhcp = new Proc(
      "dnsmasq",
      "ip",
      this.inNs(
        SYSTEM.dnsmasq,
        "--no-daemon",
        "--conf-file=/dev/null",
        `--pid-file=${d}/dnsmasq.pid`,
        "--leasefile-ro",
        "--port=0", // no DNS; no --enable-tftp: TFTP is the server under test
        "--user=root",
        `--interface=${VETH}`,
        "--bind-interfaces",
        "--log-dhcp",
        "--dhcp-range=10.66.0.100,10.66.0.199,255.255.255.0,1h",
        `--dhcp-range=::,constructor:${VETH},ra-only`,
        "--enable-ra",
        `--dhcp-boot=${this.options.bootFile},,${SERVER_IP}`,
      ),
    );
    await this.dhcp.expect(/DHCP, sockets bound/, 15_000, "dnsmasq's start");
  }

  async #startServer(): Promise<void> {
    const { listen, singlePort } = this.options;
    const perms = ["--allow-net", "--allow-read"];
    if (listen !== "wildcard") perms.push("--allow-sys=networkInterfaces");
    const args = [this.root, "--port", "69", "--log-format", "json", "-v"];
    if (listen === "bound") args.push("--address", SERVER_IP);
    if (singlePort) args.push("--single-port");
    this.server = new Proc(
      "tftpkit",
      "ip",
      this.inNs(Deno.execPath(), "run", ...perms, MAIN, "serve", ...args),
      { cwd: ROOT },
    );
    await this.server.expect(/"event":"listening"[^\n]*\n/, 60_000, "its listening record");
    const addresses: string[] = this.server.lines
      .filter((l) => l.includes('"event":"listening"'))
      .map((l) => JSON.parse(l).addresses)[0] ?? [];
    // The sockets each mode must give: one address, every local address, one wildcard socket.
    const as = addresses.join(" ");
    const fits = {
      bound: as === `${SERVER_IP}:69`,
      listed: addresses.includes(`${SERVER_IP}:69`) && addresses.includes("127.0.0.1:69"),
      wildcard: as === "[::]:69" || as === "0.0.0.0:69",
    }[listen];
    if (!fits) throw new Error(`the server is not listening as "${listen}" asks: ${as}`);
  }

  /** Starts a QEMU guest in the namespace; its serial console is its stdin and stdout. */
  guest(label: string, qemu: string, args: string[]): Proc {
    const p = new Proc(label, "ip", this.inNs(qemu, ...args), { stdin: true });
    this.guests.push(p);
    return p;
  }

  /** QEMU arguments for a NIC `device` on the lab's tap. */
  nic(device: string, mac: string, extra = ""): string[] {
    return [
      "-netdev",
      `tap,id=n0,ifname=${TAP},script=no,downscript=no`,
      "-device",
      `${device},netdev=n0,mac=${mac}${extra}`,
    ];
  }

  /** The server's transfer records so far. */
  records(): TransferRec[] {
    const out: TransferRec[] = [];
    for (const l of this.server?.lines ?? []) {
      if (!l.startsWith("{")) continue;
      try {
        const r = JSON.parse(l);
        if (r.event === "transfer") out.push(r);
      } catch { /* not a record */ }
    }
    return out;
  }

  /**
   * Waits for the first record of a transfer of `file` that `accept` takes (by default: any that
   * was not superseded by a repeated request, as when a lost OACK makes the client ask again).
   */
  async record(
    file: string,
    accept: (r: TransferRec) => boolean = (r) => r.outcome !== "aborted",
    timeoutMs = 20_000,
  ): Promise<TransferRec> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const all = this.records().filter((r) => r.file === file);
      const found = all.find(accept);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `no fitting record of ${file} within ${timeoutMs / 1000} s; all: ${JSON.stringify(all)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Drops `percent` % of the UDP datagrams (DHCP excepted) the bridge forwards, both ways; 0
   * stops. An ACK of one of `lastBlocks` is never dropped: when the final ACK is lost the server
   * cannot tell that the client has everything (TFTP's last-ACK problem) and ends the transfer as
   * a timeout after its retries, while the firmware goes on with every byte.
   */
  async setLoss(percent: number, lastBlocks: number[] = []): Promise<void> {
    if (percent <= 0) {
      await must(["ip", ...this.inNs(SYSTEM.nft, "delete", "table", "bridge", LOSS_TABLE)]);
      return;
    }
    // @th,64,32: the TFTP opcode and block number after the UDP header; 4 is ACK.
    const acks = lastBlocks.map((b) => `0x${((4 << 16) | b).toString(16)}`).join(", ");
    const udp = "meta l4proto udp udp sport != { 67, 68 } udp dport != { 67, 68 }";
    const rules = `table bridge ${LOSS_TABLE} {
  chain drop_some {
    type filter hook forward priority 0; policy accept;
    ${acks ? `${udp} @th,64,32 { ${acks} } accept` : ""}
    ${udp} numgen random mod 100 < ${percent} counter drop
  }
}
`;
    const file = `${this.dir}/loss.nft`;
    await Deno.writeTextFile(file, rules);
    await must(["ip", ...this.inNs(SYSTEM.nft, "-f", file)]);
  }

  /** Datagrams the loss rule has dropped so far. */
  async dropped(): Promise<number> {
    const out = await must([
      "ip",
      ...this.inNs(SYSTEM.nft, "-j", "list", "table", "bridge", LOSS_TABLE),
    ]);
    let n = 0;
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object") {
        const o = v as { counter?: { packets?: number } };
        if (typeof o.counter?.packets === "number") n += o.counter.packets;
        else Object.values(o).forEach(walk);
      }
    };
    walk(JSON.parse(out));
    return n;
  }

  /** Stops the capture and returns what each request asked for and what it got. */
  async negotiations(): Promise<Negotiation[]> {
    await this.capture?.stop();
    return negotiations(readPcap(await Deno.readFile(this.pcap)), SERVER_IP);
  }

  /** The tails of the server's and dnsmasq's output, for a failure message. */
  diagnostics(): string {
    return [
      `--- server (${this.ns}) ---`,
      tail(this.server?.text ?? "", 30),
      "--- dnsmasq ---",
      tail(this.dhcp?.text ?? "", 12),
    ].join("\n");
  }

  /** Stops every process by PID, deletes the namespace (its links go with it) and the files. */
  async close(): Promise<void> {
    for (const p of [...this.guests, this.server, this.dhcp, this.capture]) {
      if (p) await p.stop("SIGTERM", 3000).catch(() => {});
    }
    if (this.#nsMade) await run("ip", ["netns", "del", this.ns], { timeoutMs: 20_000 });
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Runs `body` with an open lab; on failure, the error is re-thrown with the tails of the guest
 * consoles, the server log and dnsmasq's log appended. The lab is always closed.
 */
export async function withLab<T>(options: LabOptions, body: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await Lab.open(options);
  try {
    return await body(lab);
  } catch (e) {
    const consoles = lab.guests.map((g) => `--- ${g.label} console ---\n${tail(g.text, 40)}`);
    const message = e instanceof Error ? e.message : String(e);
    throw new Error(`${options.name}: ${message}\n${consoles.join("\n")}\n${lab.diagnostics()}`, {
      cause: e,
    });
  } finally {
    await lab.close();
  }
}
