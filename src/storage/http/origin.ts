/**
 * Serving from an HTTP origin: {@linkcode HttpFileSource} answers every read request with a GET,
 * streamed block by block (bounded memory), optionally through an on-disk {@linkcode HttpCache}.
 *
 * Two modes:
 *
 * - single URL (`tftpkit serve URL`): every requested name gets that one resource;
 * - tree (`tftpkit serve --origin URL/`): a request for `a/b` becomes `GET URL/a/b`, after the
 *   `--map` rules and the usual name rules (`\` separator, leading `/` = root, `..` refused),
 *   each segment percent-encoded so no `..`, `?`, `#` or `%` can change the URL's meaning.
 *
 * Every failure known before the first byte (status, unreachable, timeout) is thrown from
 * `openRead`, so the client gets the right ERROR before any OACK.
 *
 * @module
 */

import { ErrorCode, RefusedError } from "../../errors.ts";
import { applyMapRules, type MapRule, splitName } from "../names.ts";
import type { FileSource, ReadHandle, RequestInfo } from "../source.ts";
import type { HttpCache } from "./cache.ts";
import { OriginClient, type OriginOptions, redactUrl } from "./origin_client.ts";

/** Options of {@linkcode HttpFileSource}. */
export interface HttpSourceOptions extends OriginOptions {
  /**
   * Tree mode (`--origin`): map each requested name below the URL. Without it, every name gets
   * the URL itself.
   */
  tree?: boolean;
  /** `--map` rewrite rules, applied to the name as received (tree mode only). */
  rules?: readonly MapRule[];
  /** Keep completed downloads on disk (see {@linkcode HttpCache}); closed with the source. */
  cache?: HttpCache;
}

/**
 * Parses and checks an origin URL (http or https only).
 *
 * @throws {TypeError} With a message fit for the command line.
 *
 * @example
 * ```ts
 * import { parseOriginUrl } from "./origin.ts";
 * import { equal } from "node:assert/strict";
 * equal(parseOriginUrl("http://boot.example/pxe/").pathname, "/pxe/");
 * ```
 */
export function parseOriginUrl(url: string | URL): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`not a URL: ${String(url)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TypeError(`only http:// and https:// origins are supported, got ${parsed.protocol}`);
  }
  parsed.hash = "";
  return parsed;
}

/**
 * The URL a requested name maps to in tree mode: `rules` first, then {@linkcode splitName}, then
 * each segment percent-encoded (`encodeURIComponent`) and appended to the base URL's path (which
 * is treated as a directory even without a trailing `/`); the base's query string is kept.
 *
 * @throws {RefusedError} ERROR 2 for names the name rules refuse (`..`, control characters, …).
 *
 * @example
 * ```ts
 * import { treeUrl } from "./origin.ts";
 * import { equal } from "node:assert/strict";
 * equal(treeUrl(new URL("http://h/pxe/"), "a b/c?d").href, "http://h/pxe/a%20b/c%3Fd");
 * ```
 */
export function treeUrl(base: URL, name: string, rules: readonly MapRule[] = []): URL {
  const segments = splitName(applyMapRules(name, rules));
  let encoded: string;
  try {
    encoded = segments.map((s) => encodeURIComponent(s)).join("/");
  } catch {
    throw new RefusedError(ErrorCode.ACCESS_VIOLATION, "file name is not valid UTF-8");
  }
  const dir = base.pathname.endsWith("/") ? base.pathname : `${base.pathname}/`;
  const url = new URL(base.href);
  url.pathname = dir + encoded;
  // Belt and braces: the result must still lie below the base.
  if (!url.pathname.startsWith(dir) || url.origin !== base.origin) {
    throw new RefusedError(ErrorCode.ACCESS_VIOLATION, "file name leads outside the origin");
  }
  return url;
}

/**
 * A read-only {@linkcode FileSource} backed by an HTTP origin.
 *
 * `size` (and so `tsize`) comes from `Content-Length` when the body is not content-encoded.
 * Reads hold at most one network chunk; a body that stalls longer than `idleTimeoutMs` or ends
 * early makes the transfer fail with ERROR 0.
 *
 * @example Serve a tree from an origin, with a cache
 * ```ts
 * import { HttpFileSource } from "../../mod.ts";
 * import { get, HttpCache, serve } from "../../mod.ts";
 * import { equal } from "node:assert/strict";
 *
 * // The origin (e.g. "http://boot.example/"): GET /pxe/NAME for the TFTP name NAME.
 * const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
 *   const path = new URL(req.url).pathname;
 *   if (path !== "/pxe/pxelinux.0") return new Response("not found", { status: 404 });
 *   return new Response(new Uint8Array(40_000).fill(0x90));
 * });
 *
 * const dir = await Deno.makeTempDir(); // e.g. "/var/cache/tftpkit"
 * const cache = await HttpCache.open(dir, { maxBytes: 2 ** 30, ttlSeconds: 60 });
 * const base = `http://127.0.0.1:${origin.addr.port}/pxe/`;
 * const source = new HttpFileSource(base, { tree: true, cache });
 * // In production: hostname "0.0.0.0", port 69.
 * const server = await serve({ source, hostname: "127.0.0.1", port: 0, singlePort: true });
 *
 * const bytes = await get({ hostname: "127.0.0.1", port: server.port }, "pxelinux.0");
 * equal(bytes.length, 40_000);
 *
 * await server.close();
 * await source.close(); // closes the cache and the connection pool
 * await origin.shutdown();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class HttpFileSource implements FileSource {
  /** The origin URL (a directory in tree mode). */
  readonly url: URL;
  /** Tree mode. */
  readonly tree: boolean;
  readonly #rules: readonly MapRule[];
  readonly #origin: OriginClient;
  readonly #cache?: HttpCache;
  #closing: Promise<void> | null = null;

  /**
   * Creates the source. Nothing is fetched until the first request.
   *
   * @param url An http:// or https:// URL (credentials in it are sent as Basic auth).
   * @param options Mode, map rules, timeouts, cache.
   * @throws {TypeError} When `url` is not an http(s) URL.
   */
  constructor(url: string | URL, options?: HttpSourceOptions) {
    options ??= {};
    this.url = parseOriginUrl(url);
    this.tree = options.tree ?? false;
    this.#rules = options.rules ?? [];
    this.#cache = options.cache;
    this.#origin = new OriginClient(options);
  }

  describe(): string {
    const cache = this.#cache ? `, cache ${this.#cache.dir}` : "";
    return this.tree
      ? `HTTP origin ${redactUrl(this.url)} (read-only${cache})`
      : `${redactUrl(this.url)} under every name (read-only${cache})`;
  }

  /**
   * The URL `name` maps to (the source's URL itself in single-URL mode).
   *
   * @throws {RefusedError} ERROR 2 for names the name rules refuse.
   */
  urlFor(name: string): URL {
    return this.tree ? treeUrl(this.url, name, this.#rules) : this.url;
  }

  async openRead(name: string, _info: RequestInfo): Promise<ReadHandle> {
    if (this.#closing) throw new RefusedError(ErrorCode.NOT_DEFINED, "server shutting down");
    const url = this.urlFor(name);
    if (this.#cache) return await this.#cache.openRead(url, this.#origin);
    const res = await this.#origin.get(url);
    const body = res.body!;
    return {
      name: redactUrl(url),
      size: res.size,
      read: (p: Uint8Array) => body.read(p),
      close: () => body.cancel(),
    };
  }

  /**
   * Stops new requests, closes the cache (cancelling downloads in progress) and the connection
   * pool. Resolves when everything is released; safe to call more than once.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#cache?.close();
      } finally {
        this.#origin.close();
      }
    })();
    return this.#closing;
  }
}
