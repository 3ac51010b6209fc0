/**
 * A minimal static HTTP origin for the benchmark (`scripts/bench/origin.ts`): serves the files of
 * one directory (no subdirectories) with `Content-Length`, `ETag` and `Last-Modified`, answers
 * `If-None-Match` with 304, streams bodies from disk, and prints one line per request
 * (`GET /name 200 1048576`) so the benchmark can count what reached the origin.
 *
 * Usage: `deno run --allow-net --allow-read scripts/bench/origin_server.ts DIR PORT`
 *
 * Prints `origin listening on http://127.0.0.1:PORT/` once ready.
 *
 * @module
 */

const [dir, portText] = Deno.args;
const port = Number(portText);
if (!dir || !Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error("usage: bench_origin_server.ts DIR PORT");
  Deno.exit(2);
}

async function handle(req: Request): Promise<Response> {
  const path = new URL(req.url).pathname;
  const name = decodeURIComponent(path.slice(1));
  if (req.method !== "GET" && req.method !== "HEAD") return new Response(null, { status: 405 });
  if (name === "" || name.includes("/") || name.startsWith(".")) {
    return new Response(null, { status: 404 });
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(`${dir}/${name}`, { read: true });
  } catch {
    return new Response(null, { status: 404 });
  }
  const info = await file.stat();
  const etag = `"${info.size.toString(16)}-${(info.mtime?.getTime() ?? 0).toString(16)}"`;
  const headers = new Headers({
    "content-length": String(info.size),
    "content-type": "application/octet-stream",
    etag,
    "last-modified": (info.mtime ?? new Date(0)).toUTCString(),
  });
  if (req.headers.get("if-none-match") === etag) {
    file.close();
    headers.delete("content-length");
    return new Response(null, { status: 304, headers });
  }
  if (req.method === "HEAD") {
    file.close();
    return new Response(null, { headers });
  }
  return new Response(file.readable, { headers });
}

Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: ({ port }) => console.log(`origin listening on http://127.0.0.1:${port}/`),
}, async (req) => {
  const res = await handle(req);
  console.log(
    `${req.method} ${new URL(req.url).pathname} ${res.status} ${
      res.headers.get("content-length") ?? "-"
    }`,
  );
  return res;
});
