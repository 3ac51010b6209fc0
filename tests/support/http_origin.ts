/**
 * Test support: a real HTTP origin (`Deno.serve` on 127.0.0.1, a free port) with scripted
 * behaviours — normal, slow headers, stalls mid-body, truncated bodies, errors, redirects,
 * conditional GETs — and a log of every request it received.
 *
 * @module
 */

/** One request the origin received. */
export interface SeenRequest {
  /** HTTP method. */
  method: string;
  /** The path exactly as sent (percent-encoding kept), without the query. */
  path: string;
  /** The query string (with `?`), or "". */
  search: string;
  /** The request headers. */
  headers: Headers;
}

/** How the origin answers one path. */
export type Route = (req: Request, seen: SeenRequest) => Response | Promise<Response>;

/** A running test origin. */
export interface TestOrigin {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  base: string;
  /** Every request received, in order. */
  requests: SeenRequest[];
  /** Requests received for `path` (all paths when omitted). */
  count(path?: string): number;
  /** Sets (or replaces) the route for `path`. */
  route(path: string, handler: Route): void;
  /** Waits `ms`, cut short when the origin closes. */
  delay(ms: number): Promise<void>;
  /**
   * A body stream that the origin ends (with an error) when it closes, so a stalled response
   * never holds up shutdown.
   */
  stream(source: UnderlyingDefaultSource<Uint8Array>): ReadableStream<Uint8Array>;
  /** Stops the server and ends every pending body and delay. */
  close(): Promise<void>;
}

/**
 * Starts a test origin. Unknown paths get 404.
 *
 * @example
 * ```ts ignore
 * const origin = await startOrigin();
 * origin.route("/hello", () => new Response("hi"));
 * ```
 */
export function startOrigin(): Promise<TestOrigin> {
  const routes = new Map<string, Route>();
  const requests: SeenRequest[] = [];
  const closers = new Set<() => void>();
  const controller = new AbortController();
  let closed = false;
  const { promise: listening, resolve } = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: controller.signal,
    onListen: (addr) => resolve(addr as Deno.NetAddr),
    onError: () => new Response("handler failed", { status: 500 }),
  }, async (req) => {
    const url = new URL(req.url);
    // The path as sent: Deno keeps the percent-encoding in req.url.
    const seen: SeenRequest = {
      method: req.method,
      path: url.pathname,
      search: url.search,
      headers: req.headers,
    };
    requests.push(seen);
    const handler = routes.get(url.pathname);
    if (!handler) return new Response("not found", { status: 404 });
    return await handler(req, seen);
  });
  const origin: TestOrigin = {
    base: "",
    requests,
    count: (path) =>
      path === undefined ? requests.length : requests.filter((r) => r.path === path).length,
    route: (path, handler) => void routes.set(path, handler),
    delay(ms) {
      if (closed) return Promise.resolve();
      return new Promise((r) => {
        const done = () => {
          clearTimeout(timer);
          closers.delete(done);
          r();
        };
        const timer = setTimeout(done, ms);
        closers.add(done);
      });
    },
    stream(source) {
      let close = () => {};
      return new ReadableStream<Uint8Array>({
        start(c) {
          close = () => {
            try {
              c.error(new Error("origin closed"));
            } catch { /* already closed */ }
          };
          closers.add(close);
          return source.start?.(c);
        },
        pull: source.pull ? (c) => source.pull!(c) : undefined,
        cancel(reason) {
          closers.delete(close);
          return source.cancel?.(reason);
        },
      }, { highWaterMark: 0 });
    },
    async close() {
      closed = true;
      for (const c of [...closers]) c();
      controller.abort();
      await server.finished;
    },
  };
  return listening.then((addr) => {
    origin.base = `http://127.0.0.1:${addr.port}`;
    return origin;
  });
}

/** Deterministic test bytes: a simple xorshift stream from `seed`. */
export function testBytes(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Options of {@linkcode bytesRoute}. */
export interface BytesRouteOptions {
  /** ETag to send (and to honour in `If-None-Match` with a 304). */
  etag?: string;
  /** Last-Modified to send. */
  lastModified?: string;
  /** Bytes per body chunk (default 16 KiB). */
  chunk?: number;
  /** Send no Content-Length (chunked transfer). */
  noLength?: boolean;
  /** Extra response headers. */
  headers?: Record<string, string>;
}

/**
 * A route serving `data` (200) with `Content-Length`, chunked into pieces; answers 304 when the
 * request's `If-None-Match` equals `etag`.
 */
export function bytesRoute(
  origin: TestOrigin,
  data: () => Uint8Array,
  options: BytesRouteOptions = {},
): Route {
  return (req) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.etag) headers.etag = options.etag;
    if (options.lastModified) headers["last-modified"] = options.lastModified;
    if (options.etag && req.headers.get("if-none-match") === options.etag) {
      return new Response(null, { status: 304, headers });
    }
    const bytes = data();
    if (!options.noLength) headers["content-length"] = String(bytes.length);
    const step = options.chunk ?? 16 * 1024;
    let pos = 0;
    return new Response(
      origin.stream({
        pull(c) {
          if (pos >= bytes.length) return c.close();
          c.enqueue(bytes.slice(pos, pos + step));
          pos += step;
        },
      }),
      { headers },
    );
  };
}
