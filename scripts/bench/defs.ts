/**
 * The rows of `scripts/bench/bench.ts` in one place: ids, titles, files, options asked, the
 * tftpkit variants and C servers of each row, whether it is CPU-pinned, and the targets.
 *
 * @module
 */

import { MiB } from "./lib.ts";

/** The C servers, in table order. */
export const C_SERVERS = ["tftpd-hpa", "atftpd", "dnsmasq"] as const;
/** A C server's name. */
export type CName = typeof C_SERVERS[number];

/** Files served by the bench (created once per run). */
export type FileKey = "small" | "large" | "firmware" | "many";

/** One tftpkit server of a row: its row id in the table and its extra `serve` arguments. */
export interface OursVariant {
  /** Row id in the tables, e.g. "3/w2". */
  key: string;
  /** Extra `serve` arguments, e.g. `["--workers", "2"]`. */
  args: string[];
  /** Sample this server's memory (rows 4/wN and 6). */
  memory?: boolean;
}

/**
 * An option asked of the server. tsize is asked as `tsize 0` (atftp's `--option "tsize enable"`
 * sends the word "enable", which tftpd-hpa and tftpkit rightly ignore).
 */
export type Option = [name: string, value: number];

/** One timed TFTP row (rows 1, 2a–2c, 3, 6, 7a, 7b; rows 5 and 8 have modules of their own). */
export interface RowDef {
  id: string;
  title: string;
  fileKey: FileKey;
  options: Option[];
  ours: OursVariant[];
  cServers: readonly CName[];
  /** Many clients: `clients` at once until `total` downloads are done. */
  concurrency?: { clients: number; total: number };
  /** Single-transfer row: servers and client follow `--pin`. */
  pinned: boolean;
  /** tftpkit may answer a smaller windowsize (its default window fit, row 2b). */
  oursMayLowerWindow?: boolean;
}

/** Sizes of the files, full run and `--quick`. */
export function fileSizes(quick: boolean): Record<FileKey, number> {
  return quick
    ? { small: 2 * MiB, large: 10 * MiB, firmware: 4 * MiB, many: MiB }
    : { small: 10 * MiB, large: 60 * MiB, firmware: 16 * MiB, many: 2 * MiB };
}

/** Every row id `--only` accepts, and the groups it expands. */
export const ROW_GROUPS: Record<string, string[]> = {
  "1": ["1"],
  "2": ["2a", "2b", "2c"],
  "2a": ["2a"],
  "2b": ["2b"],
  "2c": ["2c"],
  "3": ["3"],
  "4": ["3"],
  "5": ["5"],
  "6": ["6"],
  "7": ["7a", "7b"],
  "7a": ["7a"],
  "7b": ["7b"],
  "8": ["8"],
};

/** Parses `--only` (e.g. "1,2a,3") into the set of row ids to run. */
export function parseOnly(list: string): Set<string> {
  const out = new Set<string>();
  for (const raw of list.split(",")) {
    const s = raw.trim().toLowerCase();
    if (s === "") continue;
    const ids = ROW_GROUPS[s];
    if (!ids) {
      throw new Error(`--only: unknown row "${raw}" (use ${Object.keys(ROW_GROUPS).join(", ")})`);
    }
    for (const id of ids) out.add(id);
  }
  return out;
}

/** Parses `--workers-list` ("1,2,4") into positive integers. */
export function parseWorkersList(list: string): number[] {
  const out = list.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`--workers-list must be positive integers, e.g. 1,2,4`);
  }
  return [...new Set(out)];
}

const mib = (bytes: number) => `${+(bytes / MiB).toFixed(1)} MiB`;

/** The TFTP rows, in order. */
export function rowDefs(quick: boolean, workers: number[]): RowDef[] {
  const size = fileSizes(quick);
  const one: OursVariant[] = [{ key: "", args: [] }];
  // 50 at once, one download each: 6 servers x 3 runs of 200 downloads would not fit in 8 min.
  const conc = { clients: 50, total: 50 };
  const many = quick ? 100 : 200;
  return [
    {
      id: "1",
      title: `lock-step, 512 B blocks, ${mib(size.small)}`,
      fileKey: "small",
      options: [],
      ours: one,
      cServers: C_SERVERS,
      pinned: true,
    },
    {
      id: "2a",
      title: `windowed 16 @ 1468, ${mib(size.large)}`,
      fileKey: "large",
      options: [["blksize", 1468], ["windowsize", 16]],
      ours: one,
      cServers: C_SERVERS,
      pinned: true,
    },
    {
      id: "2b",
      title: `windowed 64 @ 8192 asked (default window fit), ${mib(size.large)}`,
      fileKey: "large",
      options: [["blksize", 8192], ["windowsize", 64]],
      ours: one,
      cServers: C_SERVERS,
      pinned: true,
      oursMayLowerWindow: true,
    },
    {
      id: "2c",
      title: `windowed 64 @ 8192, serve --max-window-bytes 1M, ${mib(size.large)}`,
      fileKey: "large",
      options: [["blksize", 8192], ["windowsize", 64]],
      ours: [{ key: "", args: ["--max-window-bytes", "1M"] }],
      cServers: C_SERVERS,
      pinned: true,
    },
    {
      id: "3",
      title: `${conc.clients} clients, ${conc.total} x ${mib(size.small)}, blksize 1468`,
      fileKey: "small",
      options: [["blksize", 1468]],
      ours: workers.map((n) => ({
        key: `3/w${n}`,
        args: ["--workers", String(n)],
        memory: true,
      })),
      cServers: C_SERVERS,
      concurrency: conc,
      pinned: false,
    },
    {
      id: "6",
      title: `${many} at once, ${many} x ${mib(size.many)}, blksize 1468, default pool`,
      fileKey: "many",
      options: [["blksize", 1468]],
      ours: [{ key: "", args: [], memory: true }],
      cServers: [],
      concurrency: { clients: many, total: many },
      pinned: false,
    },
    // Firmware-shaped: UEFI PXE and U-Boot ask blksize 1468, pxelinux 1408.
    ...([["7a", 1468], ["7b", 1408]] as const).map(([id, blksize]): RowDef => ({
      id,
      title: `firmware: lock-step ${blksize} + tsize, ${mib(size.firmware)}`,
      fileKey: "firmware",
      options: [["blksize", blksize], ["tsize", 0]],
      ours: one,
      cServers: C_SERVERS,
      pinned: true,
    })),
  ];
}

/** Peak RSS target of rows 4/wN and 6. */
export const RSS_TARGET_MIB = 150;

/** One line of the targets table (issue 16). */
export interface TargetDef {
  what: string;
  /** Row whose tftpkit median is compared ("8": wall time of `get`). */
  row: string;
  /** The C server (or client) compared against. */
  against: CName | "atftp client";
  min: number;
}

/** Issue 16's targets; `row3` is the 3/wN row used for the concurrency targets. */
export function targetDefs(row3: string): TargetDef[] {
  return [
    { what: "50 concurrent >= 1.5x tftpd-hpa", row: row3, against: "tftpd-hpa", min: 1.5 },
    { what: "50 concurrent >= 1.0x dnsmasq (on the way)", row: row3, against: "dnsmasq", min: 1 },
    { what: "lock-step 512 B >= 1.0x tftpd-hpa", row: "1", against: "tftpd-hpa", min: 1 },
    { what: "windowed 16@1468 >= 1.0x atftpd", row: "2a", against: "atftpd", min: 1 },
    { what: "64@8192, --max-window-bytes 1M >= 1.0x atftpd", row: "2c", against: "atftpd", min: 1 },
    {
      what: "get as fast as atftp client (60 MiB, start-up incl.)",
      row: "8",
      against: "atftp client",
      min: 1,
    },
  ];
}
