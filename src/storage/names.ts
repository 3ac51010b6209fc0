/**
 * Turning a requested file name into a path inside the root, as pure functions: `--map` rewrite
 * rules first, then the field rules (`\` is a separator, leading `/` means the root), then the
 * containment rules (no `..`, no control characters, no drive letters).
 *
 * @module
 */

import { ErrorCode, RefusedError } from "../errors.ts";

/** Longest accepted name, in characters. */
export const MAX_NAME_LENGTH = 1024;

/** One `--map` rule: the first whose pattern matches rewrites the name. */
export interface MapRule {
  /** What the name must match. */
  pattern: RegExp;
  /** The new name (`$1` refers to a group). */
  replacement: string;
  /** 1-based line in the rules file. */
  line: number;
}

/** A rules file that cannot be used; the message names the line. */
export class MapRulesError extends Error {
  /** 1-based line of the problem. */
  readonly line: number;
  /**
   * Creates the error.
   *
   * @param line The line number.
   * @param message What is wrong.
   */
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.name = "MapRulesError";
    this.line = line;
  }
}

/**
 * Parses a `--map` rules file: one `REGEX REPLACEMENT` per line (separated by white space; an
 * empty replacement is not allowed), `#` starts a comment line, blank lines are skipped.
 *
 * @throws {MapRulesError} For a line without a replacement or with an invalid expression.
 *
 * @example
 * ```ts
 * import { parseMapRules } from "../mod.ts";
 * import { equal } from "node:assert/strict";
 * const rules = parseMapRules("# BMCs ask in upper case\n^FIRMWARE\\.BIN$ fw/firmware.bin\n");
 * equal(rules[0].replacement, "fw/firmware.bin");
 * equal(rules[0].pattern.test("FIRMWARE.BIN"), true);
 * ```
 */
export function parseMapRules(text: string): MapRule[] {
  const rules: MapRule[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const m = /^(\S+)\s+(\S+)$/.exec(line);
    if (!m) {
      throw new MapRulesError(i + 1, `expected 'REGEX REPLACEMENT', got ${JSON.stringify(line)}`);
    }
    let pattern: RegExp;
    try {
      pattern = new RegExp(m[1]);
    } catch (e) {
      throw new MapRulesError(i + 1, `invalid regular expression: ${(e as Error).message}`);
    }
    rules.push({ pattern, replacement: m[2], line: i + 1 });
  });
  return rules;
}

/**
 * Rewrites `name` with the first matching rule (JavaScript `String.replace` semantics, `$1`
 * groups); returns it unchanged when none matches.
 *
 * @example
 * ```ts
 * import { applyMapRules, parseMapRules } from "./names.ts";
 * import { equal } from "node:assert/strict";
 * equal(applyMapRules("a.txt", parseMapRules("^(.*)\\.txt$ text/$1.txt")), "text/a.txt");
 * ```
 */
export function applyMapRules(name: string, rules: readonly MapRule[]): string {
  for (const rule of rules) {
    if (rule.pattern.test(name)) return name.replace(rule.pattern, rule.replacement);
  }
  return name;
}

function refuse(message: string): never {
  throw new RefusedError(ErrorCode.ACCESS_VIOLATION, message);
}

/**
 * Splits a requested name into path segments relative to the root.
 *
 * `\` counts as `/`; leading slashes mean "from the root"; empty and `.` segments are dropped.
 * Refused with ERROR 2: `..` segments, control characters, names that are not valid UTF-8
 * (decoded as U+FFFD), names longer than {@linkcode MAX_NAME_LENGTH}, a `:` on Windows (drive
 * letters and streams), and names with nothing left.
 *
 * @throws {TftpError} ERROR 2 (access violation) with a short reason.
 *
 * @example
 * ```ts
 * import { splitName } from "./names.ts";
 * import { deepEqual } from "node:assert/strict";
 * deepEqual(splitName("\\Boot\\BCD"), ["Boot", "BCD"]);
 * deepEqual(splitName("//pxelinux.cfg/./default"), ["pxelinux.cfg", "default"]);
 * ```
 */
export function splitName(name: string, windows = Deno.build.os === "windows"): string[] {
  if (name.length > MAX_NAME_LENGTH) refuse("file name too long");
  if (name.includes("\uFFFD")) refuse("file name is not valid UTF-8");
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) refuse("file name contains control characters");
  const segments = name.replaceAll("\\", "/").split("/").filter((s) => s !== "" && s !== ".");
  for (const s of segments) {
    if (s === "..") refuse("'..' is not allowed in file names");
    if (windows && s.includes(":")) refuse("':' is not allowed in file names");
  }
  if (segments.length === 0) refuse("no file name");
  return segments;
}
