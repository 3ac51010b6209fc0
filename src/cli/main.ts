/**
 * The `tftpkit` command: dispatches to `serve`, `get` and `put`, and turns errors into one-line
 * messages and exit codes.
 *
 * @module
 */

import config from "../../deno.json" with { type: "json" };
import { UsageError } from "./args.ts";
import { runServe } from "./serve.ts";

/** The version from `deno.json`. */
export const VERSION: string = config.version;

const HELP = `tftpkit ${VERSION}: a TFTP server and client

Usage:
  tftpkit serve [PATH] [options]        serve a directory, or one file under every name
  tftpkit get HOST[:PORT] REMOTE [LOCAL] [options]   download (or tftp://host[:port]/path)
  tftpkit put HOST[:PORT] LOCAL [REMOTE] [options]   upload

Run 'tftpkit COMMAND --help' for a command's options. 'tftpkit --version' prints the version.
`;

/**
 * Runs the command line and resolves with the exit code.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "serve":
        return await runServe(rest);
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
      case "--help":
      case "-h":
      case "help":
        console.log(HELP);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}' (expected serve, get or put)`);
    }
  } catch (e) {
    const who = command && !command.startsWith("-") ? `tftpkit ${command}` : "tftpkit";
    console.error(`${who}: ${e instanceof Error ? e.message : String(e)}`);
    return e instanceof UsageError ? 2 : 1;
  }
}
