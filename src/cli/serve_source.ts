/**
 * What `serve` serves, checked before it listens: a directory that can be searched (and written,
 * with `--write`), a single file that can be read, an HTTP origin that answers a HEAD. A problem
 * the server could only report as a refusal of every request stops the start instead (exit 1,
 * one line naming it); for an origin it is a warning unless `--once`/`--max-transfers` waits for
 * transfers that could not happen.
 *
 * @module
 */

import { join } from "node:path";
import { DirectorySource, SingleFileSource } from "../storage/files.ts";
import { MapRulesError, parseMapRules } from "../storage/names.ts";
import type { FileSource } from "../storage/source.ts";
import { HttpCache } from "../storage/http/cache.ts";
import { HttpFileSource } from "../storage/http/origin.ts";
import { literal, type Logger, redactSecrets } from "../log.ts";
import { UsageError } from "./args.ts";
import { isUrl, type ServeConfig } from "./serve_args.ts";

/**
 * The server cannot serve what it was given; printed as one line, exit 1.
 *
 * @example
 * ```ts
 * import { StartupError } from "./serve_source.ts";
 * const e = new StartupError("cannot read /srv/floppy.img: permission denied");
 * ```
 */
export class StartupError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong, naming the path or URL.
   */
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

/** Why a file-system call failed, in a few words. */
function why(e: unknown): string {
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  const m = (e as Error).message ?? String(e);
  if (/EROFS|read-only file system/i.test(m)) return "read-only file system";
  if (/ENOSPC|no space/i.test(m)) return "no space left on the device";
  return m.replace(/ \(os error \d+\)$/, "").replace(/:? ?(readdir|open|stat|mkstemp) '.*'$/, "");
}

/**
 * Opens what `config` serves, after checking that it can be served.
 *
 * @throws {UsageError} A missing PATH, a flag that does not fit what PATH is.
 * @throws {StartupError} An unreadable file or directory, an unwritable `--write` directory, a
 *   dead origin with `--once`/`--max-transfers`.
 *
 * @example
 * ```ts
 * import { openSource } from "./serve_source.ts";
 * import { parseServeArgs } from "./serve_args.ts";
 * import { getLogger } from "../log.ts";
 * import { match } from "node:assert/strict";
 * const source = await openSource(parseServeArgs(["demo"]), getLogger("server"));
 * match(source.describe(), /^directory .*demo \(read-only\)$/);
 * ```
 */
export async function openSource(config: ServeConfig, log: Logger): Promise<FileSource> {
  if (config.origin !== undefined) return await openHttpSource(config, config.origin, log);
  const path = config.path!;
  if (isUrl(path)) return await openHttpSource(config, path, log);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UsageError(`${path}: no such file or directory`);
    }
    if (e instanceof Deno.errors.NotCapable) {
      throw new UsageError(`${path}: no read permission (run with --allow-read)`);
    }
    throw new StartupError(`cannot serve ${path}: ${why(e)}`);
  }
  if (info.isDirectory) return await openDirectory(config, path);
  if (config.write) throw new UsageError("--write needs a directory to write into, not a file");
  if (config.ignoreCase) {
    throw new UsageError("--ignore-case and a single file do not go together: it cannot list");
  }
  if (config.mapFile !== undefined) {
    throw new UsageError("--map and a single file do not go together: every name gets the file");
  }
  let source: SingleFileSource;
  try {
    source = await SingleFileSource.open(path);
  } catch (e) {
    throw new StartupError(`cannot serve ${path}: ${why(e)}`);
  }
  try {
    (await Deno.open(source.path, { read: true })).close();
  } catch (e) {
    throw new StartupError(`cannot read ${path}: ${why(e)}`);
  }
  return source;
}

async function openDirectory(config: ServeConfig, path: string): Promise<FileSource> {
  const rules = config.mapFile ? await readRules(config.mapFile) : undefined;
  try {
    // Every request looks a name up in the directory (its x bit): a name that does not exist
    // is "not found" when it may, "permission denied" when it may not.
    await Deno.stat(join(path, ".tftpkit-search-probe")).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    if (config.ignoreCase) { for await (const _ of Deno.readDir(path)) break; }
  } catch (e) {
    throw new StartupError(`cannot read the directory ${path}: ${why(e)}`);
  }
  if (config.write) {
    const perm = await Deno.permissions.query({ name: "write", path });
    if (perm.state !== "granted") {
      throw new UsageError("--write needs write permission: run with --allow-write");
    }
    try {
      const probe = await Deno.makeTempFile({ dir: path, prefix: ".tftpkit-probe-" });
      await Deno.remove(probe);
    } catch (e) {
      throw new StartupError(`--write: cannot write in ${path}: ${why(e)}`);
    }
  }
  return await DirectorySource.open(path, {
    write: config.write,
    overwrite: config.overwrite,
    ignoreCase: config.ignoreCase,
    rules,
  });
}

async function openHttpSource(config: ServeConfig, url: string, log: Logger): Promise<FileSource> {
  const rules = config.mapFile ? await readRules(config.mapFile) : undefined;
  let source: HttpFileSource;
  try {
    source = new HttpFileSource(url, { tree: config.origin !== undefined, rules });
  } catch (e) {
    if (e instanceof TypeError) throw new UsageError(redactSecrets(e.message));
    throw e;
  }
  const problem = await probeOrigin(source.url, source.tree);
  if (problem) {
    const message = `origin ${redactSecrets(source.url.href)}: ${problem}`;
    if (config.maxTransfers !== undefined) {
      await source.close();
      throw new StartupError(`${message} (--once/--max-transfers cannot succeed)`);
    }
    log.warn(literal(`${message}: starting anyway; requests fail until it answers`), {
      event: "origin-unreachable",
      origin: redactSecrets(source.url.href),
      error: problem,
    });
  }
  if (!config.cache) return source;
  await source.close();
  const perm = await Deno.permissions.query({ name: "write", path: config.cache.dir });
  if (perm.state !== "granted") {
    throw new UsageError("--cache needs write permission: run with --allow-write=DIR");
  }
  const cache = await HttpCache.open(config.cache.dir, {
    maxBytes: config.cache.maxBytes,
    ttlSeconds: config.cache.ttlSeconds,
  });
  return new HttpFileSource(url, { tree: config.origin !== undefined, rules, cache });
}

/**
 * Sends the origin a HEAD (4 s, redirects followed) and says what is wrong, or undefined. A
 * single URL must exist (2xx; 405/501 mean HEAD is not supported, which is fine); a tree's base
 * only has to answer below 500.
 *
 * @example
 * ```ts
 * import { probeOrigin } from "./serve_source.ts";
 * import { equal } from "node:assert/strict";
 * const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response("no", { status: 404 }));
 * const base = `http://127.0.0.1:${origin.addr.port}`;
 * equal(await probeOrigin(new URL(`${base}/fw.img`), false), "not found (HTTP 404)");
 * equal(await probeOrigin(new URL(`${base}/pxe/`), true), undefined);
 * await origin.shutdown();
 * ```
 */
export async function probeOrigin(url: URL, tree: boolean): Promise<string | undefined> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: "HEAD",
      headers: { "accept-encoding": "identity" },
      signal: AbortSignal.timeout(4000),
    });
    await res.body?.cancel();
  } catch (e) {
    if (e instanceof DOMException && e.name === "TimeoutError") {
      return "unreachable: no response to HEAD within 4 s";
    }
    const m = (e as Error).message.replace(/^(error sending request[^:]*|fetch failed): ?/i, "");
    return `unreachable: ${m.replace(/ \(os error \d+\)/, "")}`;
  }
  if (res.status >= 500 && res.status !== 501) return `HEAD answered HTTP ${res.status}`;
  if (tree || res.ok || res.status === 405 || res.status === 501) return undefined;
  if (res.status === 404 || res.status === 410) return `not found (HTTP ${res.status})`;
  if (res.status === 401 || res.status === 403) return `access denied (HTTP ${res.status})`;
  return `HEAD answered HTTP ${res.status}`;
}

async function readRules(file: string) {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new UsageError(`--map ${file}: ${(e as Error).message}`);
  }
  try {
    return parseMapRules(text);
  } catch (e) {
    if (e instanceof MapRulesError) throw new UsageError(`--map ${file}: ${e.message}`);
    throw e;
  }
}
