/**
 * tftpkit: a TFTP server and client (RFC 1350 with option negotiation, blksize, timeout, tsize,
 * windowsize and block-number rollover) for Deno.
 *
 * Serve a directory (uploads optional), one file under every name, or any {@linkcode FileSource}
 * of your own; download and upload from code with {@linkcode get}, {@linkcode put} and friends.
 * UDP needs Deno's unstable net API: run with `--unstable-net` (or `"unstable": ["net"]` in your
 * deno.json), or the first socket throws {@linkcode UnstableNetError}. The server needs
 * `--allow-net --allow-read` (and `--allow-write` for uploads); the client `--allow-net`. The
 * module imports only full specifiers (`npm:`, `node:`, relative paths), so a script anywhere can
 * import it by path or URL without an import map.
 *
 * @example Serve a directory until aborted
 * ```ts
 * import { DirectorySource, serve } from "@tftpkit/tftpkit";
 * import { ok } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir(); // e.g. "/srv/tftp"
 * const controller = new AbortController();
 * const server = await serve({
 *   source: await DirectorySource.open(dir, { write: true }),
 *   hostname: "127.0.0.1",
 *   port: 0, // any free port; TFTP's own is 69
 *   signal: controller.signal,
 * });
 * ok(server.port > 0);
 * // … later
 * controller.abort();
 * await server.finished;
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @example Download and upload
 * ```ts
 * import { DirectorySource, get, put, serve } from "@tftpkit/tftpkit";
 * import { deepEqual } from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const server = await serve({
 *   source: await DirectorySource.open(dir, { write: true }),
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 *
 * const target = { hostname: "127.0.0.1", port: server.port };
 * const config = new TextEncoder().encode("hostname sw1\n");
 * await put(target, "backup.cfg", config);
 * deepEqual(await get(target, "backup.cfg"), config);
 *
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

export { type CloseOptions, serve, type Server, type ServerOptions } from "./server/server.ts";
export type { Outcome, TransferRecord } from "./server/record.ts";
export { BindError, type PortRange } from "./server/addresses.ts";
export { type DirectoryOptions, DirectorySource, SingleFileSource } from "./storage/files.ts";
export type { FileSource, ReadHandle, RequestInfo, WriteHandle } from "./storage/source.ts";
export { HttpFileSource, type HttpSourceOptions } from "./storage/http/origin.ts";
export {
  type CacheEntry,
  type CacheOptions,
  type CacheStats,
  HttpCache,
} from "./storage/http/cache.ts";
export {
  type OriginBody,
  OriginClient,
  type OriginOptions,
  type OriginResponse,
  type Validators,
} from "./storage/http/origin_client.ts";
export type { TransferStats } from "./engine/settings.ts";
export type { BlockSink } from "./engine/blocks.ts";
export {
  type ClientOptions,
  type ClientResult,
  download,
  type Target,
  upload,
} from "./client/client.ts";
export { get, getToStream, put, readHandleOf } from "./client/streams.ts";
export {
  AbortedError,
  ErrorCode,
  PeerError,
  RefusedError,
  TftpError,
  TimeoutError,
} from "./errors.ts";
export { HostNotFoundError, UnstableNetError } from "./net.ts";
export {
  DEFAULT_MAX_WINDOW_BYTES,
  MAX_WINDOW_BYTES,
  type Negotiated,
  type OptionRequest,
} from "./wire/options.ts";
export { type MapRule, MapRulesError, parseMapRules } from "./storage/names.ts";
export { type LogFormat, type LoggingOptions, type LogLevel, setupLogging } from "./log.ts";
