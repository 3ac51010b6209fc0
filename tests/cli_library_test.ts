/**
 * The library as a script outside the repository sees it: `src/mod.ts` imported by URL from a
 * temporary directory with `--no-config` (no import map, no deno.json to borrow), the README's
 * example run as printed (twice in a row), and a clear error naming `--unstable-net` without it.
 */

import { equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { ROOT, run } from "./support/server.ts";

const MOD = new URL("../src/mod.ts", import.meta.url).href;

/** The first ```ts block of the README's "Library" section, importing src/mod.ts by URL. */
async function readmeExample(): Promise<string> {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const section = readme.slice(readme.indexOf("## Library"));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  ok(code, "README has no ts block under ## Library");
  ok(code.includes('from "./src/mod.ts"'), "the example imports ./src/mod.ts");
  return code.replace('"./src/mod.ts"', JSON.stringify(MOD));
}

/** `deno run --no-config FLAGS script` in `cwd` (outside the repository). */
function denoRun(cwd: string, flags: string[], script: string) {
  return run(Deno.execPath(), ["run", "--no-config", "--no-lock", ...flags, script], {
    cwd,
    timeoutMs: 120_000,
  });
}

Deno.test("a script outside the repository imports src/mod.ts as is", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-outside-" });
  try {
    const script = join(dir, "example.ts");
    await Deno.writeTextFile(script, await readmeExample());
    const perms = ["--unstable-net", "--allow-net", "--allow-read", "--allow-write"];

    await t.step("the README example runs, and runs again", async () => {
      for (const round of [1, 2]) {
        const r = await denoRun(dir, perms, script);
        equal(r.code, 0, `round ${round}:\n${r.stderr}`);
        match(r.stdout, /^hello$/m, `round ${round}`);
        match(r.stdout, /^ok hello\.txt 6$/m, `round ${round}`);
        ok(!/not a dependency/.test(r.stderr), r.stderr);
      }
    });

    await t.step("without --unstable-net the error names --unstable-net", async () => {
      const r = await denoRun(dir, perms.slice(1), script);
      ok(r.code !== 0, "ran without --unstable-net");
      match(r.stderr, /UnstableNetError: .*--unstable-net/);
      ok(!/listenDatagram is not a function/.test(r.stderr), r.stderr);
    });

    await t.step("a client alone says the same", async () => {
      const client = join(dir, "client.ts");
      await Deno.writeTextFile(
        client,
        `import { get, UnstableNetError } from ${JSON.stringify(MOD)};
try {
  await get({ hostname: "127.0.0.1", port: 9 }, "x");
} catch (e) {
  console.log(e instanceof UnstableNetError ? "unstable: " + (e as Error).message : String(e));
}
`,
      );
      const r = await denoRun(dir, ["--allow-net"], client);
      equal(r.code, 0, r.stderr);
      match(r.stdout, /^unstable: .*--unstable-net/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Every object below `node` (depth first). */
function* walk(node: unknown): Generator<Record<string, unknown>> {
  if (Array.isArray(node)) { for (const x of node) yield* walk(x); }
  else if (node && typeof node === "object") {
    yield node as Record<string, unknown>;
    for (const v of Object.values(node)) yield* walk(v);
  }
}

Deno.test("deno doc of src/mod.ts: optional parameters, named codes, no @internal, clean examples", async () => {
  const lint = await run(Deno.execPath(), ["doc", "--lint", "src/mod.ts"], { cwd: ROOT });
  equal(lint.code, 0, lint.stdout + lint.stderr);
  const r = await run(Deno.execPath(), ["doc", "--json", "src/mod.ts"], { cwd: ROOT });
  equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  const symbols = (Object.values(doc.nodes)[0] as { symbols: Array<{ name: string }> }).symbols;
  const exported = new Set(symbols.map((s) => s.name));
  for (const node of walk(symbols)) {
    // A parameter with a default (`options = {}`) shows as required; it must be `options?`.
    equal(node.kind === "assign", false, `a parameter with a default: ${JSON.stringify(node)}`);
    if (!Array.isArray(node.tags)) continue;
    for (const tag of node.tags as Array<{ kind: string; doc?: string }>) {
      ok(tag.kind !== "internal", "an @internal member is documented");
      if (tag.kind !== "example" || !tag.doc) continue;
      for (const m of tag.doc.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
        if (m[2].startsWith("node:")) continue;
        match(m[2], /(^|\/)mod\.ts$|^@tftpkit\/tftpkit$/, `an example imports ${m[2]}`);
        for (const name of m[1].split(",").map((n) => n.replace(/^\s*type\s+/, "").trim())) {
          if (name) ok(exported.has(name), `an example imports ${name}, which is not exported`);
        }
      }
    }
  }
  const codes = JSON.stringify(symbols.find((s) => s.name === "ErrorCode"));
  for (const [name, value] of [["FILE_NOT_FOUND", 1], ["DISK_FULL", 3], ["NO_SUCH_USER", 7]]) {
    match(codes, new RegExp(`"name":"${name}".*?"repr":"${value}"`), `ErrorCode.${name}`);
  }
});
