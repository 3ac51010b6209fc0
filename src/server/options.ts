/**
 * The options of {@linkcode serve} and their defaults.
 *
 * @module
 */

import type { FileSource } from "../storage/source.ts";
import type { PortRange } from "./addresses.ts";
import { USUAL_CLIENT_TIMEOUT_MS } from "../engine/rto.ts";
import { DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS } from "../engine/settings.ts";
import type { TransferRecord } from "./record.ts";

/** Options of `serve`. Only `source` is required. */
export interface ServerOptions {
  /** Where files come from (see `DirectorySource`, `SingleFileSource`). */
  source: FileSource;
  /**
   * Address or addresses to listen on; default: every local address, one socket each (when
   * they can be listed: `--allow-sys=networkInterfaces`), else one wildcard socket.
   */
  hostname?: string | string[];
  /** UDP port (default 69). 0 picks a free port, the same on every address. */
  port?: number;
  /** Run every transfer over the listening socket itself (for NAT and firewalls). */
  singlePort?: boolean;
  /**
   * Worker isolates that run the transfers (default 1: this isolate runs them; the CLI's
   * default is the number of cores). See `pool.ts`.
   */
  workers?: number;
  /** Largest blksize granted (default 65464). */
  maxBlksize?: number;
  /** Largest windowsize granted (default 64). */
  maxWindowsize?: number;
  /** Largest window in payload bytes (default 64 KiB, see `DEFAULT_MAX_WINDOW_BYTES`). */
  maxWindowBytes?: number;
  /** Retransmission timeout in ms when the client asks for none (default 1000). */
  timeoutMs?: number;
  /**
   * Retransmissions at the full timeout before an unanswered reply is given up (default 5; a
   * client that has answered is given up after max(timeout × (retries + 1), 10 × its timer)).
   */
  retries?: number;
  /**
   * The retransmission timer assumed for clients that negotiate no `timeout`, in ms (default
   * 5000, what U-Boot, atftp and tftp-hpa use): a silent client is waited for 10 of them.
   */
  clientTimeoutMs?: number;
  /** Largest upload in bytes. */
  maxUploadSize?: number;
  /** Transfers at once (default 512); more get ERROR 3. */
  maxSessions?: number;
  /** Transfers at once from one client address (default 64). */
  maxSessionsPerClient?: number;
  /** Ports for transfer sockets (`--port-range`). */
  portRange?: PortRange;
  /** Clients allowed (CIDR); default all. */
  allow?: string[];
  /** Clients refused without an answer (CIDR); wins over `allow`. */
  deny?: string[];
  /** How long in-flight transfers may finish after `close()` (default 5000 ms). */
  graceMs?: number;
  /** Stops the server like `close()`. */
  signal?: AbortSignal;
  /** Called after every transfer with its record. */
  onTransfer?: (record: TransferRecord) => void;
}

/** Options of {@linkcode Server.close}. */
export interface CloseOptions {
  /**
   * How long running transfers may finish (default: `graceMs` of the server's options). Calling
   * `close({ graceMs: 0 })` while an earlier `close()` waits ends that wait at once.
   */
  graceMs?: number;
}

/** A running server, from `serve`. */
export interface Server {
  /** The addresses the server listens on. */
  readonly addresses: Deno.NetAddr[];
  /** The UDP port the server listens on. */
  readonly port: number;
  /** Transfers in progress (an upload that is complete no longer counts). */
  readonly activeTransfers: number;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  /**
   * Stops accepting requests, lets running transfers finish for the grace period, then aborts
   * what is left (their clients are sent ERROR 0). Resolves when everything is closed.
   *
   * @param options The grace period.
   */
  close(options?: CloseOptions): Promise<void>;
}

/** The defaults of {@linkcode ServerOptions}. */
export const DEFAULTS = {
  port: 69,
  maxBlksize: 65464,
  maxWindowsize: 64,
  timeoutMs: DEFAULT_TIMEOUT_MS,
  retries: DEFAULT_RETRIES,
  clientTimeoutMs: USUAL_CLIENT_TIMEOUT_MS,
  maxSessions: 512,
  maxSessionsPerClient: 64,
  graceMs: 5000,
  workers: 1,
};

/**
 * `options` with every option left undefined set to its default.
 *
 * @example
 * ```ts
 * import { withDefaults } from "./options.ts";
 * import { SingleFileSource } from "../storage/files.ts";
 * import { equal } from "node:assert/strict";
 * const source = await SingleFileSource.open("deno.json");
 * equal(withDefaults({ source, port: undefined }).port, 69);
 * ```
 */
export function withDefaults(options: ServerOptions): ServerOptions & typeof DEFAULTS {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return { ...DEFAULTS, ...given } as ServerOptions & typeof DEFAULTS;
}
