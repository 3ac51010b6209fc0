/**
 * tftpkit's command line: `deno run --allow-net --allow-read main.ts serve …`.
 *
 * @module
 */

import { main } from "./src/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
