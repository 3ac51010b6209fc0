import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { RefusedError } from "../errors.ts";
import { DirectorySource, PARTIAL_SUFFIX, SingleFileSource } from "./files.ts";
import { parseMapRules } from "./names.ts";
import type { FileSource, ReadHandle, RequestInfo } from "./source.ts";

const info: RequestInfo = {
  peer: { transport: "udp", hostname: "127.0.0.1", port: 40000 },
  mode: "octet",
};
const te = new TextEncoder();
const td = new TextDecoder();

async function readAll(h: ReadHandle): Promise<Uint8Array> {
  const parts: number[] = [];
  const buf = new Uint8Array(7);
  for (;;) {
    const n = await h.read(buf);
    if (n === null) break;
    parts.push(...buf.subarray(0, n));
  }
  return new Uint8Array(parts);
}

async function readText(source: DirectorySource | SingleFileSource, name: string) {
  const h = await source.openRead(name, info);
  try {
    return td.decode(await readAll(h));
  } finally {
    h.close();
  }
}

async function refusedWith(p: Promise<unknown>, code: number, message?: RegExp): Promise<void> {
  await rejects(p, (e: unknown) => {
    ok(e instanceof RefusedError, `expected RefusedError ${code}, got ${e}`);
    equal(e.code, code, `code of ${JSON.stringify(e.message)}`);
    if (message) match(e.message, message);
    return true;
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function entries(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** A root with some files, and a sibling directory "outside" with a secret. */
async function withTree(fn: (root: string, outside: string) => Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "tftpkit-files-" });
  const root = join(base, "root");
  const outside = join(base, "outside");
  try {
    await Deno.mkdir(join(root, "sub", "deeper"), { recursive: true });
    await Deno.mkdir(outside);
    await Deno.writeTextFile(join(root, "hello.txt"), "hello\n");
    await Deno.writeTextFile(join(root, "sub", "inner.txt"), "inner\n");
    await Deno.writeTextFile(join(root, "sub", "deeper", "deep.bin"), "deep");
    await Deno.writeTextFile(join(root, "empty"), "");
    await Deno.writeTextFile(join(outside, "secret"), "top secret\n");
    await fn(root, outside);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

Deno.test("DirectorySource reads files inside the root", async (t) => {
  await withTree(async (root) => {
    const source = await DirectorySource.open(root);
    await t.step("plain, nested, with leading slashes and backslashes", async () => {
      equal(await readText(source, "hello.txt"), "hello\n");
      equal(await readText(source, "/hello.txt"), "hello\n");
      equal(await readText(source, "sub/inner.txt"), "inner\n");
      equal(await readText(source, "\\sub\\inner.txt"), "inner\n");
      equal(await readText(source, "//sub/./deeper/deep.bin"), "deep");
      equal(await readText(source, "empty"), "");
    });
    await t.step("the handle knows the size and the real path, and closes twice", async () => {
      const h = await source.openRead("sub/inner.txt", info);
      equal(h.size, 6);
      equal(h.name, join(source.root, "sub", "inner.txt"));
      h.close();
      h.close();
    });
    await t.step("symbolic links that stay inside are followed", async () => {
      await Deno.symlink("sub/inner.txt", join(root, "alias.txt"));
      await Deno.symlink(join(root, "sub"), join(root, "subdir-link"));
      equal(await readText(source, "alias.txt"), "inner\n");
      equal(await readText(source, "subdir-link/deeper/deep.bin"), "deep");
    });
    await t.step("missing files are ERROR 1, '..' is ERROR 2", async () => {
      await refusedWith(source.openRead("nope.txt", info), 1);
      await refusedWith(source.openRead("sub/nope/x", info), 1);
      await refusedWith(source.openRead("../outside/secret", info), 2);
      await refusedWith(source.openRead("sub/../../outside/secret", info), 2);
    });
    await t.step("a file used as a directory is ERROR 1", async () => {
      await refusedWith(source.openRead("hello.txt/x", info), 1);
    });
    await t.step("map rules apply before the path rules", async () => {
      const mapped = await DirectorySource.open(root, {
        rules: parseMapRules("^FW$ sub/deeper/deep.bin\n^ESCAPE$ ../outside/secret\n"),
      });
      equal(await readText(mapped, "FW"), "deep");
      await refusedWith(mapped.openRead("ESCAPE", info), 2);
    });
    equal(source.describe(), `directory ${source.root} (read-only)`);
  });
});

Deno.test("DirectorySource refuses symbolic links that leave the root", async (t) => {
  await withTree(async (root, outside) => {
    const source = await DirectorySource.open(root);
    await t.step("a file link, absolute", async () => {
      await Deno.symlink(join(outside, "secret"), join(root, "abs-link"));
      await refusedWith(source.openRead("abs-link", info), 2, /outside/);
    });
    await t.step("a file link, relative", async () => {
      await Deno.symlink("../outside/secret", join(root, "rel-link"));
      await refusedWith(source.openRead("rel-link", info), 2, /outside/);
    });
    await t.step("a directory link", async () => {
      await Deno.symlink(outside, join(root, "sub", "out-dir"));
      await refusedWith(source.openRead("sub/out-dir/secret", info), 2, /outside/);
    });
    await t.step("a link to the root's parent", async () => {
      await Deno.symlink("..", join(root, "up"));
      await refusedWith(source.openRead("up/outside/secret", info), 2);
    });
    await t.step("a dangling link", async () => {
      await Deno.symlink(join(outside, "missing"), join(root, "dangling"));
      await refusedWith(source.openRead("dangling", info), 1);
    });
  });
});

Deno.test("DirectorySource refuses directories and FIFOs without blocking", async (t) => {
  await withTree(async (root) => {
    const source = await DirectorySource.open(root);
    await t.step("a directory", async () => {
      await refusedWith(source.openRead("sub", info), 2, /not a regular file/);
      await refusedWith(source.openRead("sub/deeper/", info), 2, /not a regular file/);
    });
    await t.step("a FIFO", async () => {
      const fifo = join(root, "pipe");
      const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
      ok(made.success, `mkfifo failed: ${td.decode(made.stderr)}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hang = new Promise<"hang">((r) => (timer = setTimeout(() => r("hang"), 5000)));
      try {
        const outcome = await Promise.race([
          source.openRead("pipe", info).then(
            (h) => {
              h.close();
              return "opened" as const;
            },
            (e: unknown) => e,
          ),
          hang,
        ]);
        ok(outcome !== "hang", "opening a FIFO blocked");
        ok(outcome instanceof RefusedError, `expected a refusal, got ${String(outcome)}`);
        equal(outcome.code, 2);
        match(outcome.message, /not a regular file/);
      } finally {
        clearTimeout(timer);
      }
    });
  });
});

Deno.test("DirectorySource with ignoreCase: exact name first, else the first in code-point order", async (t) => {
  await withTree(async (root) => {
    await Deno.writeTextFile(join(root, "Readme.txt"), "Readme");
    await Deno.writeTextFile(join(root, "README.txt"), "README");
    await Deno.writeTextFile(join(root, "readme.TXT"), "readme.TXT");
    await Deno.mkdir(join(root, "Boot"));
    await Deno.writeTextFile(join(root, "Boot", "BCD"), "bcd");
    const plain = await DirectorySource.open(root);
    const source = await DirectorySource.open(root, { ignoreCase: true });
    await t.step("an exact match wins", async () => {
      equal(await readText(source, "Readme.txt"), "Readme");
      equal(await readText(source, "readme.TXT"), "readme.TXT");
      equal(await readText(source, "README.txt"), "README");
    });
    await t.step("several matches: the first in code-point order", async () => {
      // "README.txt" < "Readme.txt" < "readme.TXT" in code-point order.
      equal(await readText(source, "readme.txt"), "README");
      equal(await readText(source, "ReadMe.Txt"), "README");
    });
    await t.step("a single match in any case, in every segment", async () => {
      equal(await readText(source, "HELLO.TXT"), "hello\n");
      equal(await readText(source, "boot/bcd"), "bcd");
      equal(await readText(source, "\\BOOT\\bcd"), "bcd");
      equal(await readText(source, "SUB/Deeper/DEEP.bin"), "deep");
    });
    await t.step("no match is still ERROR 1", async () => {
      await refusedWith(source.openRead("nothing.txt", info), 1);
      await refusedWith(source.openRead("boot/nothing", info), 1);
    });
    await t.step("without ignoreCase the case must match", async () => {
      await refusedWith(plain.openRead("HELLO.TXT", info), 1);
      await refusedWith(plain.openRead("readme.txt", info), 1);
    });
  });
});

Deno.test("DirectorySource uploads go to a temporary file and appear only when committed", async (t) => {
  await withTree(async (root, outside) => {
    const source = await DirectorySource.open(root, { write: true });
    equal(source.describe(), `directory ${source.root} (uploads of new files)`);

    await t.step("commit: temp file during the upload, final file after", async () => {
      const before = await entries(join(root, "sub"));
      const h = await source.openWrite("sub/new.bin", info);
      equal(h.name, join(source.root, "sub", "new.bin"));
      await h.write(te.encode("part one, "));
      await h.write(te.encode("part two"));
      const during = (await entries(join(root, "sub"))).filter((n) => !before.includes(n));
      equal(during.length, 1, `one temporary file, got ${during}`);
      ok(during[0].startsWith(".new.bin.") && during[0].endsWith(PARTIAL_SUFFIX), during[0]);
      equal(await exists(join(root, "sub", "new.bin")), false, "no final file before commit");
      await refusedWith(source.openRead(`sub/${during[0]}`, info), 1);
      await h.commit();
      equal(await Deno.readTextFile(join(root, "sub", "new.bin")), "part one, part two");
      deepEqual(await entries(join(root, "sub")), [...before, "new.bin"].sort());
      await h.abort(); // after commit: harmless
      equal(await Deno.readTextFile(join(root, "sub", "new.bin")), "part one, part two");
    });

    await t.step("abort: no final file and no temporary file", async () => {
      const before = await entries(root);
      const h = await source.openWrite("aborted.bin", info);
      await h.write(te.encode("half"));
      await h.abort();
      await h.abort();
      deepEqual(await entries(root), before);
    });

    await t.step("an existing file is ERROR 6 without overwrite", async () => {
      await refusedWith(source.openWrite("hello.txt", info), 6);
      equal(await Deno.readTextFile(join(root, "hello.txt")), "hello\n");
    });

    await t.step("a file that appears during the upload is not replaced", async () => {
      const h = await source.openWrite("race.bin", info);
      await h.write(te.encode("from the upload"));
      await Deno.writeTextFile(join(root, "race.bin"), "from elsewhere");
      await refusedWith(h.commit(), 6);
      equal(await Deno.readTextFile(join(root, "race.bin")), "from elsewhere");
      equal((await entries(root)).some((n) => n.endsWith(PARTIAL_SUFFIX)), false);
    });

    await t.step("concurrent uploads of the same name are refused", async () => {
      const first = await source.openWrite("same.bin", info);
      await refusedWith(source.openWrite("same.bin", info), 2, /in progress/);
      await refusedWith(source.openWrite("/same.bin", info), 2, /in progress/);
      const other = await source.openWrite("other.bin", info);
      await other.abort();
      await first.abort();
      const again = await source.openWrite("same.bin", info);
      await again.write(te.encode("second try"));
      await again.commit();
      equal(await Deno.readTextFile(join(root, "same.bin")), "second try");
    });

    await t.step("temporary names are refused for reading and writing", async () => {
      await Deno.writeTextFile(join(root, `.x.1234${PARTIAL_SUFFIX}`), "partial");
      await refusedWith(source.openRead(`.x.1234${PARTIAL_SUFFIX}`, info), 1);
      await refusedWith(source.openWrite(`y${PARTIAL_SUFFIX}`, info), 2);
    });

    await t.step("paths that leave the root or do not exist", async () => {
      await refusedWith(source.openWrite("../outside/new", info), 2);
      await Deno.symlink(outside, join(root, "out-dir"));
      await refusedWith(source.openWrite("out-dir/new", info), 2, /outside/);
      equal(await exists(join(outside, "new")), false);
      await refusedWith(source.openWrite("no/such/dir/file", info), 1);
    });
  });
});

Deno.test("DirectorySource with overwrite replaces files atomically", async (t) => {
  await withTree(async (root, outside) => {
    const source = await DirectorySource.open(root, { write: true, overwrite: true });
    equal(source.describe(), `directory ${source.root} (uploads may overwrite)`);
    await t.step("the old content stays until commit", async () => {
      const h = await source.openWrite("hello.txt", info);
      await h.write(te.encode("replaced\n"));
      equal(await Deno.readTextFile(join(root, "hello.txt")), "hello\n");
      await h.commit();
      equal(await Deno.readTextFile(join(root, "hello.txt")), "replaced\n");
      equal((await entries(root)).some((n) => n.endsWith(PARTIAL_SUFFIX)), false);
    });
    await t.step("an aborted overwrite keeps the old file", async () => {
      const h = await source.openWrite("hello.txt", info);
      await h.write(te.encode("never"));
      await h.abort();
      equal(await Deno.readTextFile(join(root, "hello.txt")), "replaced\n");
    });
    await t.step("directories and symbolic links are not overwritten", async () => {
      await refusedWith(source.openWrite("sub", info), 2, /not a regular file/);
      await Deno.symlink(join(outside, "secret"), join(root, "secret-link"));
      await refusedWith(source.openWrite("secret-link", info), 2);
      equal(await Deno.readTextFile(join(outside, "secret")), "top secret\n");
    });
  });
});

Deno.test("DirectorySource refuses uploads when writing is off", async () => {
  await withTree(async (root) => {
    const source = await DirectorySource.open(root);
    await refusedWith(source.openWrite("new.bin", info), 2, /disabled/);
    equal(await exists(join(root, "new.bin")), false);
  });
});

Deno.test("DirectorySource.open and SingleFileSource.open check what they are given", async () => {
  await withTree(async (root) => {
    await rejects(DirectorySource.open(join(root, "hello.txt")), /not a directory/);
    await rejects(DirectorySource.open(join(root, "missing")), Deno.errors.NotFound);
    await rejects(SingleFileSource.open(root), /is a directory/);
    await rejects(SingleFileSource.open(join(root, "missing")), Deno.errors.NotFound);
  });
});

Deno.test("SingleFileSource serves its file under any name", async () => {
  await withTree(async (root) => {
    const source = await SingleFileSource.open(join(root, "sub", "inner.txt"));
    equal(source.describe(), `file ${source.path} under every name (read-only)`);
    for (const name of ["inner.txt", "floppy.img", "a/b/c", "../../etc/passwd", "\\x"]) {
      const h = await source.openRead(name, info);
      try {
        equal(h.name, "inner.txt");
        equal(h.size, 6);
        equal(td.decode(await readAll(h)), "inner\n", name);
      } finally {
        h.close();
      }
    }
    const asSource: FileSource = source;
    equal(asSource.openWrite, undefined, "read-only");
  });
});
