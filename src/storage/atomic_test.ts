/**
 * The atomic writer (`atomic.ts`): the hidden temporary file beside the target, commit by rename
 * (overwrite) or hard link (no overwrite: ERROR 6 when the name exists), abort, `onSettled`, and
 * the write-all loop over short writes.
 */

import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import { ErrorCode, RefusedError } from "../errors.ts";
import { listDir } from "../../tests/support/files.ts";
import { AtomicFile, writeAll, writeAllSync } from "./atomic.ts";

const enc = new TextEncoder();

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-atomic-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function refused(code: number, message?: string) {
  return (e: unknown) => {
    ok(e instanceof RefusedError, `expected RefusedError, got ${e}`);
    equal(e.code, code, e.message);
    if (message !== undefined) equal(e.message, message);
    return true;
  };
}

Deno.test("the temporary file is hidden, beside the target, and the name appears only at commit", async () => {
  await withDir(async (dir) => {
    const target = join(dir, "a.bin");
    const f = await AtomicFile.create(target, { suffix: ".tftpkit-partial" });
    equal(f.name, target);
    equal(dirname(f.temp), dir);
    const temp = basename(f.temp);
    ok(temp.startsWith(".a.bin."), temp);
    ok(temp.endsWith(".tftpkit-partial"), temp);
    await f.write(enc.encode("hello"));
    deepEqual(await listDir(dir), [temp], "only the temporary file exists while writing");
    await f.commit();
    deepEqual(await listDir(dir), ["a.bin"]);
    equal(await Deno.readTextFile(target), "hello");
  });
});

Deno.test("the default suffix is .part, an explicit temp path and mode are used", async () => {
  await withDir(async (dir) => {
    const f = await AtomicFile.create(join(dir, "b.txt"));
    ok(basename(f.temp).startsWith(".b.txt.") && f.temp.endsWith(".part"), f.temp);
    await f.abort();
    const temp = join(dir, "my-temp");
    const g = await AtomicFile.create(join(dir, "c.txt"), { temp, mode: 0o600 });
    equal(g.temp, temp);
    equal((await Deno.stat(temp)).mode! & 0o777, 0o600);
    await g.commit();
    equal((await Deno.stat(join(dir, "c.txt"))).mode! & 0o777, 0o600);
    deepEqual(await listDir(dir), ["c.txt"]);
  });
});

Deno.test("commit with overwrite renames over an existing file", async () => {
  await withDir(async (dir) => {
    const target = join(dir, "cfg");
    await Deno.writeTextFile(target, "old contents, longer than the new ones");
    const f = await AtomicFile.create(target, { overwrite: true });
    await f.write(enc.encode("new"));
    equal(await Deno.readTextFile(target), "old contents, longer than the new ones");
    await f.commit();
    equal(await Deno.readTextFile(target), "new");
    deepEqual(await listDir(dir), ["cfg"], "no temporary file is left");
  });
});

Deno.test("commit without overwrite fails with ERROR 6 when the name exists and leaves no temp", async (t) => {
  await withDir(async (dir) => {
    const target = join(dir, "cfg");
    await t.step("the name existed before", async () => {
      await Deno.writeTextFile(target, "theirs");
      let settled = 0;
      const f = await AtomicFile.create(target, {
        overwrite: false,
        onSettled: () => settled++,
      });
      await f.write(enc.encode("mine"));
      await rejects(f.commit(), refused(ErrorCode.FILE_EXISTS, "file already exists"));
      equal(await Deno.readTextFile(target), "theirs");
      deepEqual(await listDir(dir), ["cfg"], "the temporary file was removed");
      equal(settled, 1);
      await f.abort();
      equal(settled, 1, "abort after a failed commit does not settle again");
    });
    await Deno.remove(target);
    await t.step("the name appeared while writing", async () => {
      const f = await AtomicFile.create(target, { overwrite: false });
      await f.write(enc.encode("mine"));
      await Deno.writeTextFile(target, "theirs");
      await rejects(f.commit(), refused(ErrorCode.FILE_EXISTS));
      equal(await Deno.readTextFile(target), "theirs");
      deepEqual(await listDir(dir), ["cfg"]);
    });
    await Deno.remove(target);
    await t.step("a free name is linked into place", async () => {
      const f = await AtomicFile.create(target, { overwrite: false });
      await f.write(enc.encode("mine"));
      await f.commit();
      equal(await Deno.readTextFile(target), "mine");
      deepEqual(await listDir(dir), ["cfg"]);
    });
  });
});

Deno.test("abort removes the temporary file; onSettled is called exactly once", async (t) => {
  await withDir(async (dir) => {
    await t.step("abort, twice", async () => {
      let settled = 0;
      const f = await AtomicFile.create(join(dir, "x"), { onSettled: () => settled++ });
      await f.write(enc.encode("partial"));
      await f.abort();
      deepEqual(await listDir(dir), []);
      equal(settled, 1);
      await f.abort();
      equal(settled, 1);
    });
    await t.step("commit, then abort", async () => {
      let settled = 0;
      const f = await AtomicFile.create(join(dir, "y"), { onSettled: () => settled++ });
      await f.write(enc.encode("done"));
      equal(settled, 0, "not settled while writing");
      await f.commit();
      equal(settled, 1);
      await f.abort();
      equal(settled, 1);
      equal(await Deno.readTextFile(join(dir, "y")), "done", "abort after commit keeps the file");
    });
    await t.step("a failing place() removes the temp and settles once", async () => {
      let settled = 0;
      const f = await AtomicFile.create(join(dir, "z"), { onSettled: () => settled++ });
      await rejects(
        f.commit(() => {
          throw new Error("boom");
        }),
        refused(ErrorCode.NOT_DEFINED, "cannot move the file into place"),
      );
      equal(settled, 1);
      deepEqual(await listDir(dir), ["y"]);
    });
  });
});

Deno.test("create refuses with a RefusedError where the temporary file cannot be made", async () => {
  await withDir(async (dir) => {
    await rejects(
      AtomicFile.create(join(dir, "no-such-dir", "f")),
      refused(ErrorCode.FILE_NOT_FOUND),
    );
    deepEqual(await listDir(dir), []);
  });
});

Deno.test("writeAll and writeAllSync keep writing after short writes", async (t) => {
  const data = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
  for (const most of [1, 3, 999, 1000, 4096]) {
    await t.step(`writes of at most ${most} bytes`, async () => {
      const out: number[] = [];
      let calls = 0;
      const take = (p: Uint8Array) => {
        calls++;
        const n = Math.min(p.length, most);
        out.push(...p.subarray(0, n));
        return n;
      };
      await writeAll({ write: (p) => Promise.resolve(take(p)) }, data);
      deepEqual(Uint8Array.from(out), data);
      equal(calls, Math.ceil(data.length / most));
      out.length = 0;
      calls = 0;
      writeAllSync({ writeSync: take }, data);
      deepEqual(Uint8Array.from(out), data);
      equal(calls, Math.ceil(data.length / most));
    });
  }
  await t.step("an empty buffer writes nothing", async () => {
    let calls = 0;
    await writeAll({ write: () => Promise.resolve(++calls) }, new Uint8Array());
    equal(calls, 0);
  });
});
