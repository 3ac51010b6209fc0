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
  return record.message.map((m) => (typeof m === "string" ? m : String(m))).join("");
}

/**
 * Formats a record as one JSON object: `time`, `level`, `logger`, `msg`, then the record's
 * properties (for transfers: `event`, `peer`, `file`, `direction`, `bytes`, `durationMs`,
 * `rateBps`, `outcome`, …).
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
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    logger: record.category.slice(1).join("."),
    msg: render(record),
    ...record.properties,
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
}

/**
 * Configures logging for an application (the CLI calls this once).
 *
 * @example
 * ```ts ignore
 * import { setupLogging } from "./mod.ts";
 * await setupLogging({ level: "debug", format: "json" });
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
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["out"] },
    ],
  });
}
