/** `serve`'s argument rules that are not a flag's own range: the default size of the pool. */

import { equal } from "node:assert/strict";
import { CORES, parseServeArgs } from "./serve_args.ts";

Deno.test("the pool is one worker per core, one isolate with --single-port unless --workers says", () => {
  equal(parseServeArgs(["demo"]).server.workers, CORES);
  equal(parseServeArgs(["demo", "--single-port"]).server.workers, 1);
  equal(parseServeArgs(["demo", "--single-port", "--workers", "2"]).server.workers, 2);
  equal(parseServeArgs(["demo", "--workers", "3"]).server.workers, 3);
});
