/**
 * The real clients and loss plans of the loss tests (`tests/loss_clients_test.ts`) and of the
 * loss bench with the real clients (`scripts/bench/loss_clients.ts`): each client's command line,
 * how many bytes it moves, and the client limits that show under loss.
 *
 * @module
 */

import type { FaultDecision, FaultPlan } from "../../src/testing/fault_relay.ts";
import { Opcode, opcodeOf } from "../../src/wire/packet.ts";

/** Bytes a download moves (and an upload, unless the client says otherwise). */
export const LOSS_SIZE = 40 * 1024 + 77;

/** One real client. */
export interface LossClient {
  /** Display name, e.g. "tftp-hpa put". */
  name: string;
  /** Uploads (`remote` is written on the server) instead of downloading. */
  upload?: boolean;
  /** Bytes to move: a lock-step sender that waits out its own 5 s timer for every loss is slow. */
  size?: number;
  /** Asks for options, so a repeated OACK may stop it (a client limit). */
  options?: boolean;
  /** The command line (program, then arguments) moving `remote` on `h:p` from/to `local`. */
  argv(h: string, p: number, remote: string, local: string): string[];
}

/** atftp's options for the windowed transfer. */
const WIN = "blksize 1468,windowsize 16".split(",").flatMap((o) => ["--option", o]);

/** atftp lock-step and windowed, tftp-hpa get and put, curl, busybox. */
export const LOSS_CLIENTS: readonly LossClient[] = [
  {
    name: "atftp",
    argv: (h, p, remote, local) => ["atftp", "-g", "-r", remote, "-l", local, h, `${p}`],
  },
  {
    name: "atftp blksize 1468 windowsize 16",
    options: true,
    argv: (h, p, remote, local) => ["atftp", ...WIN, "-g", "-r", remote, "-l", local, h, `${p}`],
  },
  {
    name: "tftp-hpa get",
    argv: (h, p, remote, local) => ["tftp", "-m", "octet", h, `${p}`, "-c", "get", remote, local],
  },
  {
    name: "tftp-hpa put",
    upload: true,
    size: 8 * 1024 + 77,
    argv: (h, p, remote, local) => ["tftp", "-m", "octet", h, `${p}`, "-c", "put", local, remote],
  },
  {
    name: "curl",
    options: true,
    argv: (h, p, remote, local) => ["curl", "-sS", "-o", local, `tftp://${h}:${p}/${remote}`],
  },
  {
    name: "busybox",
    argv: (h, p, remote, local) => ["busybox", "tftp", "-g", "-r", remote, "-l", local, h, `${p}`],
  },
];

/** The fault plans, by name: 10 % loss, 10 % duplication + 10 % reordering, 20 % loss. */
export const LOSS_PLANS: ReadonlyArray<readonly [string, FaultPlan]> = [
  ["10 % loss", { drop: 0.1 }],
  ["10 % dup + 10 % reorder", { duplicate: 0.1, reorder: 0.1 }],
  ["20 % loss", { drop: 0.2 }],
];

/**
 * The client limit that explains a failed transfer, if any: atftp aborts on a repeated OACK,
 * curl does not answer one, tftp-hpa gives a block up after 25 s of its own resends.
 * `oacks` is how many OACKs reached the client; `out` is its output.
 */
export function clientLimit(client: LossClient, out: string, oacks: number): string | undefined {
  if (client.options && oacks > 1) {
    return client.name.startsWith("atftp")
      ? "atftp aborts on a repeated OACK ('unexpected OACK')"
      : "curl does not answer a repeated OACK";
  }
  if (client.name.startsWith("tftp-hpa") && /timed out/.test(out)) {
    // tftpkit waits 10 client timers (50 s); tftp-hpa gives a block up after 25 s.
    return "tftp-hpa gives up a block after 25 s of its own resends";
  }
  return undefined;
}

/**
 * Counts the OACKs that reach the client (a duplicated one twice), for {@link clientLimit}: give
 * `onDatagram` to the fault relay.
 */
export function oackCounter(): {
  onDatagram: (dir: "toServer" | "toClient", data: Uint8Array, d: FaultDecision) => void;
  count: () => number;
} {
  let n = 0;
  return {
    onDatagram: (dir, data, d) => {
      if (dir === "toClient" && opcodeOf(data) === Opcode.OACK && !d.drop) {
        n += d.duplicate ? 2 : 1;
      }
    },
    count: () => n,
  };
}
