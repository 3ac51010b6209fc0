/**
 * Test support for the field-compatibility tests: a served tree shaped like a PXE/WDS boot root,
 * its files' contents, and a `main.ts serve` subprocess around a test.
 *
 * @module
 */

import { join } from "node:path";
import { makeFile, type ServerProcess, startServer } from "./server.ts";

/** A served boot tree: its directory and every file's contents, removed on dispose. */
export interface Tree {
  /** The tree's root directory. */
  dir: string;
  /** Each file's contents by its `/`-separated name under `dir`. */
  files: Map<string, Uint8Array>;
  /** Removes the tree. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** A served tree shaped like a PXE/WDS boot root. */
export async function tree(): Promise<Tree> {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit_field_" });
  await Deno.chmod(dir, 0o755);
  const files = new Map<string, Uint8Array>();
  const sizes: Record<string, number> = {
    "pxelinux.0": 3000,
    "Boot/BCD": 2000,
    "sub/file": 1500,
    "images/kernel": 2600,
    "dup/README": 700,
    "dup/Readme": 800,
    "big.img": 40 * 512 + 33,
    "empty": 0,
  };
  let seed = 3;
  for (const [name, size] of Object.entries(sizes)) {
    const parent = name.includes("/") ? join(dir, name.slice(0, name.lastIndexOf("/"))) : dir;
    await Deno.mkdir(parent, { recursive: true });
    files.set(name, await makeFile(join(dir, name), size, seed++));
  }
  return {
    dir,
    files,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** The contents of the tree's file `name` (throws for a name not in the tree). */
export function bytes(t: Tree, name: string): Uint8Array {
  const f = t.files.get(name);
  if (!f) throw new Error(`no fixture ${name}`);
  return f;
}

/** Runs `fn` with a `main.ts serve ARGS…` subprocess, killed afterwards. */
export async function withServer(
  args: string[],
  fn: (server: ServerProcess) => Promise<void>,
): Promise<void> {
  const server = await startServer(args);
  try {
    await fn(server);
  } finally {
    await server.stop("SIGKILL");
  }
}
