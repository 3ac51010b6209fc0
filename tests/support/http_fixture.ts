/**
 * Test support for the HTTP-origin end-to-end tests: a test origin with an in-process tftpkit
 * server (library `serve`) over an `HttpFileSource`, and the real clients (tftp-hpa, curl).
 *
 * @module
 */

import { serve, type Server, type TransferRecord } from "../../src/mod.ts";
import { HttpFileSource, type HttpSourceOptions } from "../../src/storage/http/origin.ts";
import { startOrigin, type TestOrigin } from "./http_origin.ts";
import { run } from "./server.ts";
import { HOST } from "../../src/testing/loopback.ts";
export { HOST };
export { readOrEmpty } from "./files.ts";

/** What a test gets from {@linkcode withRig}. */
export interface Rig {
  /** The HTTP origin. */
  origin: TestOrigin;
  /** The tftpkit server. */
  server: Server;
  /** The source the server reads from. */
  source: HttpFileSource;
  /** Where to send TFTP requests. */
  target: { hostname: string; port: number };
  /** Every transfer the server finished, in order. */
  records: TransferRecord[];
  /** A temp dir, removed afterwards. */
  dir: string;
}

/** Origin + tftpkit server over it + a temp dir; all closed and removed afterwards. */
export async function withRig(
  setup: (origin: TestOrigin, dir: string) => Promise<HttpFileSource> | HttpFileSource,
  fn: (rig: Rig) => Promise<void>,
): Promise<void> {
  const origin = await startOrigin();
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-http-" });
  let source: HttpFileSource | undefined;
  let server: Server | undefined;
  try {
    source = await setup(origin, dir);
    const records: TransferRecord[] = [];
    server = await serve({
      source,
      hostname: HOST,
      port: 0,
      onTransfer: (r) => records.push(r),
    });
    await fn({
      origin,
      server,
      source,
      target: { hostname: HOST, port: server.port },
      records,
      dir,
    });
  } finally {
    await server?.close();
    await source?.close();
    await origin.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** A tree-mode source over the origin's `/pxe/`. */
export function tree(origin: TestOrigin, options: HttpSourceOptions = {}): HttpFileSource {
  return new HttpFileSource(`${origin.base}/pxe/`, { tree: true, ...options });
}

/** Downloads `remote` into `local` with the tftp-hpa client. */
export function hpa(port: number, remote: string, local: string): ReturnType<typeof run> {
  return run("tftp", ["-m", "binary", HOST, String(port), "-c", "get", remote, local]);
}

/** Downloads `remote` into `local` with curl (`extra` flags before the URL). */
export function curl(
  port: number,
  remote: string,
  local: string,
  extra: string[] = [],
): ReturnType<typeof run> {
  return run("curl", ["-sS", ...extra, "-o", local, `tftp://${HOST}:${port}/${remote}`]);
}
