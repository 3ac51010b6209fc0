/**
 * The `tftpkit` command: dispatches to `serve`, `get`, `put` and `help`, and turns errors into
 * one-line messages (one JSON object with `--log-format json`) and exit codes.
 *
 * @module
 */

import config from "../../deno.json" with { type: "json" };
import { redactSecrets } from "../log.ts";
import { UsageError } from "./args.ts";
import { SERVE_HELP } from "./serve_args.ts";
import { didYouMean } from "./suggest.ts";
import { GET_HELP, PUT_HELP } from "./transfer_args.ts";

/** The version from `deno.json`. */
export const VERSION: string = config.version;

/** `tftpkit --help`. */
export const HELP = `tftpkit ${VERSION}: a TFTP server and client

Usage:
  tftpkit serve PATH [options]                      serve a directory, or one file under every
                                                    name (or an http(s) URL)
  tftpkit get HOST[:PORT] REMOTE [LOCAL] [options]  download (or tftp://host[:port]/path)
  tftpkit put HOST[:PORT] LOCAL [REMOTE] [options]  upload (or put LOCAL tftp://host/REMOTE)
  tftpkit help COMMAND                              a command's options and exit codes

'tftpkit --version' prints the version.
`;

const COMMANDS = ["serve", "get", "put", "help", "version"];

function helpOf(command: string | undefined): string | undefined {
  switch (command) {
    case undefined:
      return HELP;
    case "serve":
      return SERVE_HELP;
    case "get":
      return GET_HELP;
    case "put":
      return PUT_HELP;
  }
  return undefined;
}

/** Does the command line ask for JSON logs (so that a failure is printed as JSON too)? */
function wantsJson(args: string[]): boolean {
  const i = args.indexOf("--log-format");
  return args.includes("--log-format=json") || (i >= 0 && args[i + 1] === "json");
}

/** Prints a failure: `tftpkit CMD: message`, or one JSON object with `--log-format json`. */
function report(command: string | undefined, e: unknown, code: number, json: boolean): void {
  const who = command && COMMANDS.includes(command) ? `tftpkit ${command}` : "tftpkit";
  const message = redactSecrets(e instanceof Error ? e.message : String(e));
  if (json) {
    console.error(JSON.stringify({
      time: new Date().toISOString(),
      level: "error",
      logger: command ?? "",
      msg: `${who}: ${message}`,
      event: code === 2 ? "usage-error" : "startup-failed",
      error: message,
      exitCode: code,
    }));
  } else console.error(`${who}: ${message}`);
}

/**
 * Runs the command line and resolves with the exit code.
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * import { equal } from "node:assert/strict";
 *
 * // The entry point (main.ts) runs `Deno.exit(await main(Deno.args))`.
 * equal(await main(["--version"]), 0); // prints "tftpkit 0.1.0"
 * // A mistyped command is a usage error, exit code 2, with one line on standard error:
 * // "tftpkit: unknown command 'sevre' (did you mean 'serve'?)".
 * equal(await main(["sevre", "."]), 2);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "serve":
        return await (await import("./serve.ts")).runServe(rest);
      case "get":
      case "put": {
        const { runTransfer } = await import("./transfer.ts");
        return await runTransfer(command, rest);
      }
      case "--version":
      case "-V":
      case "version":
        console.log(`tftpkit ${VERSION}`);
        return 0;
      case undefined:
        // A bare `tftpkit` is a mistake in a script: usage on stderr, exit 2.
        console.error(HELP);
        return 2;
      case "--help":
      case "-h":
      case "help": {
        if (rest.length > 1) throw new UsageError(`help takes one COMMAND, got ${rest.join(" ")}`);
        const text = helpOf(rest[0]);
        if (text === undefined) {
          throw new UsageError(
            `no command '${rest[0]}'${
              didYouMean(rest[0], ["serve", "get", "put"]) || " (commands: serve, get, put)"
            }`,
          );
        }
        console.log(text);
        return 0;
      }
      default:
        throw new UsageError(
          `unknown command '${command}'${
            didYouMean(command, COMMANDS) || " (commands: serve, get, put, help)"
          }`,
        );
    }
  } catch (e) {
    const code = e instanceof UsageError ? 2 : 1;
    report(command, e, code, command === "serve" && wantsJson(rest));
    return code;
  }
}
