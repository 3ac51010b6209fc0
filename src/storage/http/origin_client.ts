/**
 * Talking to an HTTP origin: one GET (optionally conditional) with its own redirect handling and
 * a headers timeout, and a body reader that copies into caller buffers with bounded memory and an
 * idle timeout. Every failure becomes a {@linkcode TftpError} the server can send as is.
 *
 * @module
 */

import { ErrorCode, RefusedError, TftpError } from "../../errors.ts";

/** Default time allowed from the request to the final response headers (redirects included). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 4000;
/** Default time allowed between two body chunks. */
export const DEFAULT_IDLE_TIMEOUT_MS = 4000;
/** Default number of redirects followed. */
export const DEFAULT_MAX_REDIRECTS = 5;

/** Options of {@linkcode OriginClient}. */
export interface OriginOptions {
  /**
   * Milliseconds from sending the request to the final response's headers, redirects included
   * (default 4000). Keep it below a TFTP client's patience (timeout × retries, about 6 s for
   * most clients at their defaults) so the client sees an ERROR instead of timing out.
   */
  headersTimeoutMs?: number;
  /** Milliseconds the body may go without delivering a byte (default 4000). */
  idleTimeoutMs?: number;
  /** Redirects followed before giving up (default 5). */
  maxRedirects?: number;
  /** Extra request headers (e.g. `authorization`, `user-agent`). */
  headers?: Record<string, string>;
}

/** What a previous response said about its version, for a conditional GET. */
export interface Validators {
  /** The `ETag` (sent back as `If-None-Match`). */
  etag?: string;
  /** The `Last-Modified` date (sent back as `If-Modified-Since`). */
  lastModified?: string;
}

/** A successful origin response: a body to stream (200) or "not modified" (304). */
export interface OriginResponse extends Validators {
  /** 200 with a body, or 304 when the validators still match. */
  status: 200 | 304;
  /** The URL that answered, after redirects. */
  url: string;
  /** Body size from `Content-Length` when the body is not content-encoded. */
  size?: number;
  /** The body; present exactly when `status` is 200. */
  body?: OriginBody;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

const DECODERS: Record<string, CompressionFormat | undefined> = {
  gzip: "gzip",
  "x-gzip": "gzip",
  deflate: "deflate",
};

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

function describeError(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/^(TypeError: )?(Fetch failed|error sending request[^:]*): ?/i, "") || m;
}

/**
 * Removes credentials from a URL for logs, error messages and cache metadata.
 *
 * @example
 * ```ts
 * import { redactUrl } from "./origin_client.ts";
 * import { equal } from "node:assert/strict";
 * equal(redactUrl(new URL("http://u:secret@h/f")), "http://h/f");
 * ```
 */
export function redactUrl(url: URL): string {
  if (!url.username && !url.password) return url.href;
  const copy = new URL(url.href);
  copy.username = "";
  copy.password = "";
  return copy.href;
}

/**
 * Issues GETs to an origin. Redirects are followed by hand (at most `maxRedirects`, only to
 * http and https URLs); status codes map to TFTP errors:
 *
 * | HTTP                      | TFTP ERROR                            |
 * | ------------------------- | ------------------------------------- |
 * | 404, 410                  | 1 file not found                      |
 * | 401, 403                  | 2 access violation                    |
 * | anything else but 200/304 | 0 `origin returned HTTP N`            |
 * | no answer, timeout        | 0 `origin unreachable: …`             |
 *
 * The request asks for `Accept-Encoding: identity`; a gzip or deflate body sent anyway is
 * decoded (its size is then unknown), any other encoding is refused with ERROR 0.
 *
 * @example
 * ```ts
 * import { OriginClient } from "../../mod.ts";
 * import { equal, rejects } from "node:assert/strict";
 *
 * const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) =>
 *   new URL(req.url).pathname === "/pxelinux.0"
 *     ? new Response(new Uint8Array(100_000))
 *     : new Response(null, { status: 404 }));
 * const base = `http://127.0.0.1:${http.addr.port}`;
 * const origin = new OriginClient();
 * const res = await origin.get(new URL(`${base}/pxelinux.0`));
 * equal(res.size, 100_000);
 * const buf = new Uint8Array(65536);
 * let total = 0;
 * for (let n; (n = await res.body!.read(buf)) !== null;) total += n;
 * equal(total, 100_000);
 * // A 404 is a refusal with TFTP code 1, ready to send to the client.
 * await rejects(origin.get(new URL(`${base}/missing`)), { code: 1 });
 * origin.close();
 * await http.shutdown();
 * ```
 */
export class OriginClient {
  readonly #client: Deno.HttpClient;
  readonly #headersTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #maxRedirects: number;
  readonly #headers: Record<string, string>;
  #closed = false;

  /**
   * Creates the client (one connection pool, closed by {@linkcode OriginClient.close}).
   *
   * @param options Timeouts, redirect limit, extra headers.
   */
  constructor(options?: OriginOptions) {
    options ??= {};
    this.#client = Deno.createHttpClient({});
    this.#headersTimeoutMs = options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.#maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
    // Ask for the bytes as they are: no transparent decompression, so Content-Length is the size.
    this.#headers = { "accept-encoding": "identity", ...options.headers };
  }

  /**
   * GETs `url`; with `validators`, conditionally (a 304 then comes back as `status: 304`).
   *
   * @param url What to fetch.
   * @param validators From a cached copy: `If-None-Match` / `If-Modified-Since`.
   * @param signal Cancels the request (and later the body).
   * @throws {RefusedError} For every status but 200 (and 304 when validators were sent), for
   *   network failures and timeouts, and for redirect loops or redirects to other schemes.
   */
  async get(url: URL, validators?: Validators, signal?: AbortSignal): Promise<OriginResponse> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted) controller.abort(signal.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#headersTimeoutMs);
    const headers = new Headers(this.#headers);
    if (validators?.etag) headers.set("if-none-match", validators.etag);
    if (validators?.lastModified) headers.set("if-modified-since", validators.lastModified);
    let settled = false;
    try {
      let current = url;
      for (let hop = 0;; hop++) {
        let res: Response;
        try {
          if (this.#closed) throw new Error("origin client closed");
          res = await fetch(current, {
            client: this.#client,
            redirect: "manual",
            signal: controller.signal,
            headers,
          });
        } catch (e) {
          if (timedOut) {
            throw new RefusedError(
              ErrorCode.NOT_DEFINED,
              `origin unreachable: no response within ${seconds(this.#headersTimeoutMs)}`,
              { cause: e },
            );
          }
          throw new RefusedError(ErrorCode.NOT_DEFINED, `origin unreachable: ${describeError(e)}`, {
            cause: e,
          });
        }
        const location = res.headers.get("location");
        if (REDIRECTS.has(res.status) && location !== null) {
          await res.body?.cancel().catch(() => {});
          if (hop >= this.#maxRedirects) {
            throw new RefusedError(
              ErrorCode.NOT_DEFINED,
              `origin redirected more than ${this.#maxRedirects} times`,
            );
          }
          let next: URL;
          try {
            next = new URL(location, current);
          } catch {
            throw new RefusedError(ErrorCode.NOT_DEFINED, "origin sent an invalid redirect");
          }
          if (next.protocol !== "http:" && next.protocol !== "https:") {
            throw new RefusedError(
              ErrorCode.NOT_DEFINED,
              `origin redirected to a non-HTTP URL (${next.protocol})`,
            );
          }
          current = next;
          continue;
        }
        const common = {
          url: redactUrl(current),
          etag: res.headers.get("etag") ?? undefined,
          lastModified: res.headers.get("last-modified") ?? undefined,
        };
        if (res.status === 304 && validators) {
          await res.body?.cancel().catch(() => {});
          settled = true;
          return { status: 304, ...common };
        }
        if (res.status !== 200 || !res.body) {
          await res.body?.cancel().catch(() => {});
          throw statusError(res.status);
        }
        const length = res.headers.get("content-length");
        const encoding = (res.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
        const decoder = DECODERS[encoding];
        if (encoding !== "identity" && !decoder) {
          await res.body.cancel().catch(() => {});
          throw new RefusedError(
            ErrorCode.NOT_DEFINED,
            `origin sent an unsupported Content-Encoding (${encoding})`,
          );
        }
        const size = length !== null && /^\d+$/.test(length.trim()) && !decoder
          ? Number(length.trim())
          : undefined;
        clearTimeout(timer);
        settled = true;
        // An origin that compresses anyway (despite `Accept-Encoding: identity`) is decoded.
        const stream = decoder ? res.body.pipeThrough(new DecompressionStream(decoder)) : res.body;
        const body = new OriginBody(stream, controller, this.#idleTimeoutMs, size, () => {
          signal?.removeEventListener("abort", onAbort);
        });
        return { status: 200, ...common, size, body };
      }
    } finally {
      clearTimeout(timer);
      if (!settled) signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Closes the connection pool; later requests fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.close();
  }
}

function statusError(status: number): TftpError {
  if (status === 404 || status === 410) {
    return new RefusedError(
      ErrorCode.FILE_NOT_FOUND,
      `file not found (origin returned HTTP ${status})`,
    );
  }
  if (status === 401 || status === 403) {
    return new RefusedError(
      ErrorCode.ACCESS_VIOLATION,
      `access denied (origin returned HTTP ${status})`,
    );
  }
  return new RefusedError(ErrorCode.NOT_DEFINED, `origin returned HTTP ${status}`);
}

/**
 * A response body read like a `Deno.Reader`: `read(p)` copies at most `p.length` bytes and keeps
 * the rest of the current chunk for the next call, so at most one network chunk is held. Fails
 * with ERROR 0 `origin stalled` after the idle timeout and `origin connection broken` when the
 * connection ends early (including fewer bytes than `Content-Length`).
 */
export class OriginBody {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #controller: AbortController;
  readonly #idleTimeoutMs: number;
  readonly #expected?: number;
  readonly #detach: () => void;
  #leftover: Uint8Array | null = null;
  #received = 0;
  #done = false;
  #closed = false;
  #released = false;
  #error: RefusedError | null = null;

  /** Created by {@linkcode OriginClient.get}; not meant to be called directly. */
  constructor(
    body: ReadableStream<Uint8Array>,
    controller: AbortController,
    idleTimeoutMs: number,
    expected: number | undefined,
    detach: () => void,
  ) {
    this.#reader = body.getReader();
    this.#controller = controller;
    this.#idleTimeoutMs = idleTimeoutMs;
    this.#expected = expected;
    this.#detach = detach;
  }

  /**
   * Reads up to `p.length` bytes into `p`; `null` at the end (or after {@linkcode cancel}).
   *
   * @throws {RefusedError} ERROR 0 when the origin stalls or the connection breaks (again on every
   *   later call).
   */
  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#closed) return null;
      if (this.#leftover) {
        const n = Math.min(p.length, this.#leftover.length);
        p.set(this.#leftover.subarray(0, n));
        this.#leftover = n < this.#leftover.length ? this.#leftover.subarray(n) : null;
        return n;
      }
      if (this.#error) throw this.#error;
      if (this.#done) return null;
      const chunk = await this.#next();
      if (chunk === null) return null;
      if (chunk.length > 0) this.#leftover = chunk;
    }
  }

  async #next(): Promise<Uint8Array | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = await new Promise((resolve, reject) => {
        timer = setTimeout(() => {
          reject(
            new RefusedError(
              ErrorCode.NOT_DEFINED,
              `origin stalled: no data for ${seconds(this.#idleTimeoutMs)}`,
            ),
          );
        }, this.#idleTimeoutMs);
        this.#reader.read().then(resolve, reject);
      });
    } catch (e) {
      if (this.#closed) return null;
      this.#release();
      this.#error = e instanceof RefusedError
        ? e
        : new RefusedError(ErrorCode.NOT_DEFINED, "origin connection broken", { cause: e });
      throw this.#error;
    } finally {
      clearTimeout(timer);
    }
    if (this.#closed) return null;
    if (result.done) {
      this.#done = true;
      this.#release();
      if (this.#expected !== undefined && this.#received < this.#expected) {
        this.#error = new RefusedError(
          ErrorCode.NOT_DEFINED,
          `origin connection broken: got ${this.#received} of ${this.#expected} bytes`,
        );
        throw this.#error;
      }
      return null;
    }
    this.#received += result.value.length;
    return result.value;
  }

  /** Lets go of the connection (idempotent). */
  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#reader.cancel().catch(() => {});
    this.#controller.abort();
    this.#detach();
  }

  /** Stops reading and releases the connection; safe to call more than once. */
  cancel(): void {
    this.#closed = true;
    this.#leftover = null;
    this.#release();
  }
}
