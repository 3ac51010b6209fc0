/**
 * Command-line parsing helpers shared by the commands: `node:util` parseArgs with messages that
 * name the flag, and value parsers for numbers, sizes and ranges.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseCidr } from "../server/access.ts";
import { MAX_WINDOW_BYTES } from "../wire/options.ts";
import { didYouMean } from "./suggest.ts";

/** A bad command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  /**
   * @param message What is wrong, naming the flag.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses `args` strictly; unknown flags (with the closest known one suggested) and missing values
 * become {@linkcode UsageError}. A negative number after a flag that takes a value is that flag's
 * value (`--port -1`), so the value check can name the flag.
 *
 * @example
 * ```ts
 * import { parse } from "./args.ts";
 * import { equal } from "node:assert/strict";
 * const { values } = parse(["--port", "6969"], { port: { type: "string" } });
 * equal(values.port, "6969");
 * ```
 */
export function parse<O extends Options>(args: string[], options: O) {
  const takesValue = (arg: string) => {
    const long = /^--([^=]+)$/.exec(arg)?.[1];
    const short = /^-([^-])$/.exec(arg)?.[1];
    const name = long ?? Object.keys(options).find((k) => options[k].short === short);
    return name !== undefined && options[name]?.type === "string";
  };
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (takesValue(args[i]) && /^-\d/.test(args[i + 1] ?? "")) {
      joined.push(`${args[i]}=${args[++i]}`);
    } else joined.push(args[i]);
  }
  try {
    return parseArgs({ args: joined, options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message;
    const unknown = /Unknown option '([^']+)'/.exec(msg);
    if (unknown) {
      // Suggest long names only: every one-letter flag is one edit from every other.
      const hint = unknown[1].startsWith("--")
        ? didYouMean(unknown[1], Object.keys(options).map((k) => `--${k}`))
        : "";
      throw new UsageError(`unknown option '${unknown[1]}'${hint}`);
    }
    const missing = /Option '(-[^\s,]+)(?:, (--[^\s,]+))?[^']*' argument missing/.exec(msg);
    if (missing) throw new UsageError(`option '${missing[2] ?? missing[1]}' needs a value`);
    const ambiguous = /Option '(-[^\s,]+)(?:, (--[^\s,]+))?[^']*' argument is ambiguous/.exec(msg);
    if (ambiguous) {
      const flag = ambiguous[2] ?? ambiguous[1];
      throw new UsageError(
        `option '${flag}' needs a value (to give one that starts with '-', write ${flag}=VALUE)`,
      );
    }
    throw new UsageError(msg.split("\n")[0]);
  }
}

/**
 * Parses an integer flag value within bounds.
 *
 * @example
 * ```ts
 * import { intFlag } from "./args.ts";
 * import { equal } from "node:assert/strict";
 * equal(intFlag("--port", "69", 0, 65535), 69);
 * ```
 */
export function intFlag(flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}: got '${value}'`);
  }
  return Number(value);
}

/**
 * Parses a byte size: a number with an optional K, M, G or T suffix (powers of 1024).
 *
 * @example
 * ```ts
 * import { sizeFlag } from "./args.ts";
 * import { equal } from "node:assert/strict";
 * equal(sizeFlag("--max-upload-size", "2M"), 2 * 1024 * 1024);
 * ```
 */
export function sizeFlag(flag: string, value: string): number {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(value);
  if (!m) {
    throw new UsageError(`${flag} must be a size like 1048576, 512K, 100M or 4G: got '${value}'`);
  }
  const power = " KMGT".indexOf(m[2].toUpperCase() || " ");
  return Number(m[1]) * 1024 ** power;
}

/**
 * Parses `--max-window-bytes SIZE` (512 to 1M; undefined when the flag is absent).
 *
 * @example
 * ```ts
 * import { windowBytesFlag } from "./args.ts";
 * import { equal } from "node:assert/strict";
 * equal(windowBytesFlag("256K"), 256 * 1024);
 * ```
 */
export function windowBytesFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = sizeFlag("--max-window-bytes", value);
  if (n < 512 || n > MAX_WINDOW_BYTES) {
    throw new UsageError(`--max-window-bytes must be between 512 and 1M: got '${value}'`);
  }
  return n;
}

/**
 * Parses `LO-HI` (a port range).
 *
 * @example
 * ```ts
 * import { rangeFlag } from "./args.ts";
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(rangeFlag("--port-range", "50000-50100"), { lo: 50000, hi: 50100 });
 * ```
 */
export function rangeFlag(flag: string, value: string): { lo: number; hi: number } {
  const m = /^(\d+)-(\d+)$/.exec(value);
  const lo = m ? Number(m[1]) : NaN, hi = m ? Number(m[2]) : NaN;
  if (!m || lo < 1 || hi > 65535 || lo > hi) {
    throw new UsageError(`${flag} must be LO-HI with 1 <= LO <= HI <= 65535: got '${value}'`);
  }
  return { lo, hi };
}

/**
 * Parses one of a fixed set of words.
 *
 * @example
 * ```ts
 * import { choiceFlag } from "./args.ts";
 * import { equal } from "node:assert/strict";
 * equal(choiceFlag("--log-format", "json", ["text", "json"]), "json");
 * ```
 */
export function choiceFlag<T extends string>(flag: string, value: string, choices: T[]): T {
  if (!choices.includes(value as T)) {
    throw new UsageError(`${flag} must be one of ${choices.join(", ")}: got '${value}'`);
  }
  return value as T;
}

/**
 * Validates an IP literal for `--address`.
 *
 * @example
 * ```ts
 * import { addressFlag } from "./args.ts";
 * import { equal } from "node:assert/strict";
 * equal(addressFlag("--address", "[::1]"), "::1");
 * ```
 */
export function addressFlag(flag: string, value: string): string {
  const v = value.replace(/^\[(.*)\]$/, "$1");
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v);
  const ok = v4 ? v4.slice(1).every((x) => Number(x) <= 255) : /^[0-9a-fA-F:.]+$/.test(v) &&
    v.includes(":");
  if (!ok) throw new UsageError(`${flag} must be an IPv4 or IPv6 address: got '${value}'`);
  return v;
}

/**
 * Validates an `--address` value: an IP literal, or tftpd-hpa's `ADDR:PORT` habit
 * (`127.0.0.1:6969`, `[::1]:6969`), which gives the port as well.
 *
 * @example
 * ```ts
 * import { addressPortFlag } from "./args.ts";
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(addressPortFlag("127.0.0.1:6969"), { address: "127.0.0.1", port: 6969 });
 * deepEqual(addressPortFlag("::1"), { address: "::1", port: undefined });
 * ```
 */
export function addressPortFlag(value: string): { address: string; port?: number } {
  const withPort = /^(\d{1,3}(?:\.\d{1,3}){3}):([^:]*)$/.exec(value) ??
    /^\[([^\]]*)\]:(.*)$/.exec(value);
  if (!withPort) {
    try {
      return { address: addressFlag("--address", value), port: undefined };
    } catch {
      throw new UsageError(
        `--address must be an IPv4 or IPv6 address, optionally with a port (192.0.2.10, ` +
          `192.0.2.10:69, [2001:db8::1]:69): got '${value}'`,
      );
    }
  }
  return {
    address: addressFlag("--address", withPort[1]),
    port: intFlag(`--address (port of '${value}')`, withPort[2], 0, 65535),
  };
}

/**
 * Validates an `--allow`/`--deny` value: an address or a CIDR block with a prefix length that
 * fits the address (`10.0.0.0/33` is refused).
 *
 * @example
 * ```ts
 * import { cidrFlag } from "./args.ts";
 * import { equal } from "node:assert/strict";
 * equal(cidrFlag("--allow", "10.0.0.0/8"), "10.0.0.0/8");
 * ```
 */
export function cidrFlag(flag: string, value: string): string {
  try {
    parseCidr(value);
  } catch (e) {
    throw new UsageError(`${flag} must be an address or CIDR block: ${(e as Error).message}`);
  }
  return value;
}
