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
 * ```ts ignore
 * import { DirectorySource, serve } from "@tftpkit/tftpkit";
 *
 * const controller = new AbortController();
 * const server = await serve({
 *   source: await DirectorySource.open("/srv/tftp", { write: true }),
 *   hostname: "127.0.0.1",
 *   port: 6969,
 *   signal: controller.signal,
 * });
 * console.log(`listening on port ${server.port}`);
 * // … later
 * controller.abort();
 * await server.finished;
 * ```
 *
 * @example Download and upload
 * ```ts ignore
 * import { get, put } from "@tftpkit/tftpkit";
 *
 * const target = { hostname: "127.0.0.1", port: 6969 };
 * const bytes = await get(target, "pxelinux.0");
 * await put(target, "backup.cfg", new TextEncoder().encode("hostname sw1\n"));
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
