/**
 * Logging through `@logtape/logtape`: the library logs under the `tftpkit` category and stays
 * silent until an application configures it; the CLI configures text or JSON lines.
 *
 * @module
 */

import {
  configure,
  getLogger as getLogtapeLogger,
  type Logger,
  type LogRecord,
  reset,
  type Sink,
} from "npm:@logtape/logtape@2.4.2";
import { writeAllSync } from "./storage/atomic.ts";

/** Severity levels, lowest first. */
export type LogLevel = "trace" | "debug" | "info" | "warning" | "error" | "fatal";

/** Output formats of {@linkcode setupLogging}. */
export type LogFormat = "text" | "json";

export type { Logger };

const URL_IN_TEXT = /\bhttps?:\/\/[^\s"'<>]+/gi;

/**
 * Hides the secrets of every http(s) URL in `text`: the user name and password, and the query
 * string (tokens, signatures) become `REDACTED`. Every log line and every message of the CLI
 * goes through it.
 *
 * @example
 * ```ts
 * import { redactSecrets } from "./log.ts";
 * import { equal } from "node:assert/strict";
 * equal(
 *   redactSecrets("origin https://u:pw@h/a.img?sig=xyz is down"),
 *   "origin https://REDACTED@h/a.img?REDACTED is down",
 * );
 * ```
 */
export function redactSecrets(text: string): string {
  if (!text.includes("://")) return text;
  return text.replace(URL_IN_TEXT, (match) => {
    // Punctuation that ends a sentence is not part of the URL.
    const tail = /[.,:;!?)\]]+$/.exec(match)?.[0] ?? "";
    const url = match.slice(0, match.length - tail.length);
    const m = /^(https?:\/\/)([^/?#]*@)?([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(url);
    if (!m) return match;
    const [, scheme, userinfo, rest, query, hash] = m;
    const q = query && query.length > 1 ? "?REDACTED" : (query ?? "");
    return `${scheme}${userinfo ? "REDACTED@" : ""}${rest}${q}${hash ?? ""}${tail}`;
  });
}

/**
 * `text` as a log message with no placeholders: its braces doubled, so that a peer's file name
 * such as `{peer}` is printed as is instead of being filled in.
 *
 * @example
 * ```ts
 * import { literal } from "./log.ts";
 * import { equal } from "node:assert/strict";
 * equal(literal('RRQ "{peer}"'), 'RRQ "{{peer}}"');
 * ```
 */
export function literal(text: string): string {
  return text.replace(/[{}]/g, (c) => c + c);
}

function redactValue(v: unknown): unknown {
  if (typeof v === "string") return redactSecrets(v);
  if (Array.isArray(v)) return v.map(redactValue);
  return v;
}

/**
 * The logger of one part of tftpkit (`server`, `transfer`, `files`, `client`).
 *
 * @example
 * ```ts
 * import { getLogger } from "./log.ts";
 * getLogger("server").info("started");
 * ```
 */
export function getLogger(part: string): Logger {
  return getLogtapeLogger(["tftpkit", part]);
}

function render(record: LogRecord): string {
  return redactSecrets(
    record.message.map((m) => (typeof m === "string" ? m : String(m))).join(""),
  );
}

/**
 * Formats a record as one JSON object: `time`, `level`, `logger`, `msg`, `event` (`"log"` when
 * the record names none), then the record's properties (for transfers: `peer`, `file`, `op`,
 * `bytes`, `durationMs`, `rateBps`, `outcome`, …). URLs' secrets are redacted.
 *
 * @example
 * ```ts
 * import { formatJson } from "./log.ts";
 * const line = formatJson({
 *   category: ["tftpkit", "server"],
 *   level: "info",
 *   message: ["hello"],
 *   rawMessage: "hello",
 *   timestamp: 0,
 *   properties: { event: "listening" },
 * });
 * ```
 */
export function formatJson(record: LogRecord): string {
  const properties: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record.properties)) properties[k] = redactValue(v);
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    logger: record.category.slice(1).join("."),
    msg: render(record),
    event: "log",
    ...properties,
  }) + "\n";
}

/**
 * Formats a record as one line of text: time, level, message.
 *
 * @example
 * ```ts
 * import { formatText } from "./log.ts";
 * const line = formatText({
 *   category: ["tftpkit", "server"],
 *   level: "info",
 *   message: ["hello"],
 *   rawMessage: "hello",
 *   timestamp: 0,
 *   properties: {},
 * });
 * ```
 */
export function formatText(record: LogRecord): string {
  const level = record.level.toUpperCase().padEnd(7);
  return `${new Date(record.timestamp).toISOString()} ${level} ${render(record)}\n`;
}

/** Options of {@linkcode setupLogging}. */
export interface LoggingOptions {
  /** Lowest level written (default `info`). */
  level?: LogLevel;
  /** `text` (default) or `json` (one object per line). */
  format?: LogFormat;
  /** Where lines go (default: standard output). */
  write?: (line: string) => void;
  /**
   * Parts logged from a lower level than `level` (e.g. `{ start: "info" }` keeps the start line
   * when `level` is `warning`).
   */
  parts?: Record<string, LogLevel>;
}

/**
 * Configures logging for an application (the CLI calls this once).
 *
 * @example A server's transfer records as JSON lines (to standard output unless `write` is given)
 * ```ts
 * import { DirectorySource, get, serve, setupLogging } from "./mod.ts";
 * import { equal } from "node:assert/strict";
 *
 * const lines: string[] = [];
 * await setupLogging({ format: "json", write: (line) => lines.push(line) });
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/hello.txt`, "hello\n");
 * const server = await serve({
 *   source: await DirectorySource.open(dir),
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 * await get({ hostname: "127.0.0.1", port: server.port }, "hello.txt");
 * await server.close();
 *
 * const record = JSON.parse(lines.find((line) => line.includes('"event":"transfer"'))!);
 * equal(record.outcome, "ok");
 * equal(record.bytes, 6);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function setupLogging(options?: LoggingOptions): Promise<void> {
  options ??= {};
  const format = options.format === "json" ? formatJson : formatText;
  const encoder = new TextEncoder();
  const write = options.write ??
    ((line: string) => writeAllSync(Deno.stdout, encoder.encode(line)));
  const sink: Sink = (record) => write(format(record));
  await reset();
  await configure({
    reset: true,
    sinks: { out: sink },
    loggers: [
      { category: ["tftpkit"], lowestLevel: options.level ?? "info", sinks: ["out"] },
      ...Object.entries(options.parts ?? {}).map(([part, level]) => ({
        category: ["tftpkit", part],
        lowestLevel: level,
        sinks: ["out"],
        parentSinks: "override" as const,
      })),
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["out"] },
    ],
  });
}
