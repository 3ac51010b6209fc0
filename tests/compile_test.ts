/**
 * Shipping: `scripts/release/compile.ts` (the `deno compile` commands it runs, DENORT_BIN/DENORT_DIR for
 * offline builds, its failure message when the runtime cannot be downloaded, SHA256SUMS) and
 * `scripts/release/smoke.sh` (run against main.ts through a wrapper, since denort cannot be downloaded
 * here, plus wrappers that must make it fail).
 */

import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import config from "../deno.json" with { type: "json" };
import { writeChecksums } from "../scripts/release/compile.ts";
import { planBuilds, UsageError } from "../scripts/release/plan.ts";
import { detectBinaryTarget, TARGETS } from "../scripts/release/targets.ts";
import { makeFile, ROOT, run } from "./support/server.ts";

const SCRIPT = join(ROOT, "scripts", "release", "compile.ts");
const SMOKE = join(ROOT, "scripts", "release", "smoke.sh");

/** Runs scripts/release/compile.ts with exactly `env` on top of this environment minus DENORT_*. */
async function compile(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000) {
  const base = Deno.env.toObject();
  delete base.DENORT_BIN;
  delete base.DENORT_DIR;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", SCRIPT, ...args],
    cwd: ROOT,
    env: { ...base, NO_COLOR: "1", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The command lines of a dry run (comments dropped), split into words. */
function commands(stdout: string): string[][] {
  return stdout.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(" "));
}

/** The value after `flag` in `words`. */
function after(words: string[], flag: string): string | undefined {
  const i = words.indexOf(flag);
  return i < 0 ? undefined : words[i + 1];
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A fake executable header for `target` (enough for detectBinaryTarget). */
function fakeHeader(target: string): Uint8Array {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  if (target.includes("linux")) {
    b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    v.setUint16(18, target.startsWith("x86_64") ? 0x3e : 0xb7, true);
  } else if (target.includes("darwin")) {
    v.setUint32(0, 0xfeedfacf, true);
    v.setUint32(4, target.startsWith("x86_64") ? 0x01000007 : 0x0100000c, true);
  } else {
    b.set([0x4d, 0x5a]);
    v.setUint32(0x3c, 0x80, true);
    b.set([0x50, 0x45, 0, 0], 0x80);
    v.setUint16(0x84, 0x8664, true);
  }
  return b;
}

const FORBIDDEN = ["-A", "--allow-all", "--allow-env", "--allow-run", "--allow-ffi", "--allow-sys"];

Deno.test("compile --dry-run prints the exact deno compile command of every target", async (t) => {
  const out = await Deno.makeTempDir({ prefix: "tftpkit-compile-" });
  try {
    await t.step(
      "--all: five targets, unstable net, net/read/write only, named outputs",
      async () => {
        const r = await compile(["--all", "--dry-run", "--out", join(out, "dist")]);
        equal(r.code, 0, r.stderr);
        const cmds = commands(r.stdout);
        equal(cmds.length, TARGETS.length, r.stdout);
        deepEqual(cmds.map((w) => after(w, "--target")), [...TARGETS]);
        for (const w of cmds) {
          const target = after(w, "--target")!;
          equal(w[0], Deno.execPath());
          equal(w[1], "compile");
          const flags = [
            "--unstable-net",
            "--allow-net",
            "--allow-read",
            "--allow-write",
            "--no-prompt",
            "--frozen",
            "--exclude-unused-npm",
            "--v8-flags=--max-semi-space-size=2,--optimize-for-size",
          ];
          equal(
            after(w, "--include"),
            "src/server/worker.ts",
            "the workers' module is compiled in",
          );
          for (const flag of flags) {
            ok(w.includes(flag), `${target}: ${flag} missing: ${w.join(" ")}`);
          }
          for (const flag of FORBIDDEN) ok(!w.includes(flag), `${target}: ${flag}`);
          ok(!w.some((x) => /^--allow-(net|read|write)=/.test(x)), "scoped permissions");
          const exe = target.includes("windows") ? ".exe" : "";
          equal(after(w, "--output"), join(out, "dist", `tftpkit-${target}${exe}`));
          equal(w.at(-1), "main.ts");
          ok(!w.join(" ").includes("DENORT_BIN"), w.join(" "));
        }
        match(r.stdout, new RegExp(`tftpkit ${config.version.replaceAll(".", "\\.")}`));
        ok(r.stdout.includes(join(out, "dist", "SHA256SUMS")), r.stdout);
        ok(!exists(join(out, "dist")), "a dry run created the output directory");
      },
    );

    await t.step("no option: one binary for this machine, dist/tftpkit", async () => {
      const r = await compile(["--dry-run"]);
      equal(r.code, 0, r.stderr);
      const cmds = commands(r.stdout);
      equal(cmds.length, 1, r.stdout);
      equal(after(cmds[0], "--target"), Deno.build.target);
      equal(
        after(cmds[0], "--output"),
        Deno.build.os === "windows" ? "dist/tftpkit.exe" : "dist/tftpkit",
      );
      ok(cmds[0].includes("--allow-write"));
    });

    await t.step("--read-only leaves --allow-write out", async () => {
      const r = await compile(["--dry-run", "--read-only", "--all"]);
      equal(r.code, 0, r.stderr);
      const cmds = commands(r.stdout);
      equal(cmds.length, TARGETS.length);
      for (const w of cmds) {
        ok(!w.includes("--allow-write"), w.join(" "));
        ok(w.includes("--allow-net") && w.includes("--allow-read"), w.join(" "));
      }
    });

    await t.step("--target picks targets; unknown targets and flags exit 2", async () => {
      const r = await compile([
        "--dry-run",
        "--target",
        "aarch64-apple-darwin",
        "--target",
        "x86_64-pc-windows-msvc",
      ]);
      equal(r.code, 0, r.stderr);
      deepEqual(commands(r.stdout).map((w) => after(w, "--output")), [
        "dist/tftpkit-aarch64-apple-darwin",
        "dist/tftpkit-x86_64-pc-windows-msvc.exe",
      ]);
      const bad = await compile(["--dry-run", "--target", "riscv64-unknown-linux-gnu"]);
      equal(bad.code, 2);
      match(bad.stderr, /riscv64-unknown-linux-gnu/);
      const flag = await compile(["--dry-run", "--bogus"]);
      equal(flag.code, 2);
      match(flag.stderr, /--bogus/);
    });
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("DENORT_BIN and DENORT_DIR supply the runtime per target, checked against its header", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-denort-" });
  try {
    for (const target of TARGETS) {
      const exe = target.includes("windows") ? ".exe" : "";
      await Deno.writeFile(join(dir, `denort-${target}${exe}`), fakeHeader(target));
    }
    await t.step("DENORT_BIN prefixes the one build", async () => {
      const bin = join(dir, "denort-aarch64-apple-darwin");
      const r = await compile(["--dry-run", "--target", "aarch64-apple-darwin"], {
        DENORT_BIN: bin,
      });
      equal(r.code, 0, r.stderr);
      const cmds = commands(r.stdout);
      equal(cmds.length, 1);
      equal(cmds[0][0], `DENORT_BIN=${bin}`);
      equal(cmds[0][2], "compile");
    });
    await t.step("DENORT_BIN for another target is refused with both named", async () => {
      const r = await compile(["--dry-run", "--target", "x86_64-apple-darwin"], {
        DENORT_BIN: join(dir, "denort-aarch64-unknown-linux-gnu"),
      });
      equal(r.code, 2, r.stdout);
      match(r.stderr, /DENORT_BIN.*aarch64-unknown-linux-gnu.*not for x86_64-apple-darwin/);
    });
    await t.step("DENORT_BIN with --all is refused and points to DENORT_DIR", async () => {
      const r = await compile(["--dry-run", "--all"], { DENORT_BIN: Deno.execPath() });
      equal(r.code, 2, r.stdout);
      match(r.stderr, /DENORT_BIN/);
      match(r.stderr, /DENORT_DIR/);
    });
    await t.step("a DENORT_BIN that does not exist is refused", async () => {
      const r = await compile(["--dry-run"], { DENORT_BIN: join(dir, "nothing-here") });
      equal(r.code, 2, r.stdout);
      match(r.stderr, /DENORT_BIN: .*nothing-here/);
    });
    await t.step("DENORT_DIR gives every --all build its own DENORT_BIN", async () => {
      const r = await compile(["--dry-run", "--all"], { DENORT_DIR: dir });
      equal(r.code, 0, r.stderr);
      const cmds = commands(r.stdout);
      equal(cmds.length, TARGETS.length);
      for (const w of cmds) {
        const target = after(w, "--target")!;
        const exe = target.includes("windows") ? ".exe" : "";
        equal(w[0], `DENORT_BIN=${join(dir, `denort-${target}${exe}`)}`);
      }
    });
    await t.step("DENORT_DIR missing a target's runtime is refused, naming it", async () => {
      await Deno.remove(join(dir, "denort-x86_64-apple-darwin"));
      const r = await compile(["--dry-run", "--all"], { DENORT_DIR: dir });
      equal(r.code, 2, r.stdout);
      match(r.stderr, /denort-x86_64-apple-darwin/);
    });
    await t.step("planBuilds refuses DENORT_BIN and DENORT_DIR together", () => {
      let error: unknown;
      try {
        planBuilds({ denortBin: Deno.execPath(), denortDir: dir });
      } catch (e) {
        error = e;
      }
      ok(error instanceof UsageError, String(error));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("detectBinaryTarget reads ELF, Mach-O and PE headers", async () => {
  for (const target of TARGETS) deepEqual(detectBinaryTarget(fakeHeader(target)), [target]);
  equal(detectBinaryTarget(new TextEncoder().encode("#!/bin/sh\necho hi\n")), null);
  // The deno running this test is an executable for this machine.
  const file = await Deno.open(Deno.execPath());
  const head = new Uint8Array(4096);
  const n = await file.read(head);
  file.close();
  deepEqual(detectBinaryTarget(head.subarray(0, n ?? 0)), [Deno.build.target]);
});

Deno.test("writeChecksums writes SHA256SUMS that sha256sum -c accepts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-sums-" });
  try {
    await makeFile(join(dir, "tftpkit-a"), 10_000, 1);
    await makeFile(join(dir, "tftpkit-b.exe"), 0, 2);
    const text = await writeChecksums(dir, ["tftpkit-a", "tftpkit-b.exe"]);
    equal(await Deno.readTextFile(join(dir, "SHA256SUMS")), text);
    equal(text.trimEnd().split("\n").length, 2);
    match(text, /^[0-9a-f]{64} {2}tftpkit-a\n[0-9a-f]{64} {2}tftpkit-b\.exe\n$/);
    // The SHA-256 of nothing.
    ok(
      text.includes(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  tftpkit-b.exe",
      ),
    );
    const ok1 = await run("sha256sum", ["-c", "SHA256SUMS"], { cwd: dir });
    equal(ok1.code, 0, ok1.stdout + ok1.stderr);
    await Deno.writeFile(join(dir, "tftpkit-a"), new Uint8Array([1]), { append: true });
    const bad = await run("sha256sum", ["-c", "SHA256SUMS"], { cwd: dir });
    ok(bad.code !== 0, "sha256sum -c accepted a changed file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a build without DENORT_BIN fails here with a message that explains DENORT_BIN", async () => {
  const out = await Deno.makeTempDir({ prefix: "tftpkit-compile-" });
  try {
    const r = await compile(["--out", out]);
    const binary = join(out, Deno.build.os === "windows" ? "tftpkit.exe" : "tftpkit");
    if (r.code === 0) {
      // This machine could download denort after all: the binary must then be tftpkit.
      const v = await run(binary, ["--version"], { timeoutMs: 60_000 });
      equal(v.code, 0, v.stderr);
      equal(v.stdout.trim(), `tftpkit ${config.version}`);
      match(
        await Deno.readTextFile(join(out, "SHA256SUMS")),
        /^[0-9a-f]{64} {2}tftpkit(\.exe)?\n$/,
      );
      return;
    }
    equal(r.code, 1, `exit ${r.code}\n${r.stderr}`);
    match(r.stderr, /could not download the Deno runtime \(denort\)/);
    match(r.stderr, /DENORT_BIN=\/path\/to\/denort/);
    match(r.stderr, /DENORT_DIR=/);
    ok(r.stderr.includes(Deno.version.deno), "the message does not name the Deno version");
    ok(!exists(binary), "a binary was left behind");
    ok(!exists(join(out, "SHA256SUMS")), "SHA256SUMS written for a failed build");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a build honours DENORT_BIN and rejects a runtime that is the deno CLI", async () => {
  // No denort can be had here, but deno compile accepts any executable as DENORT_BIN. Giving it
  // the deno CLI proves the variable is used (nothing is downloaded) and exercises the check
  // that a binary built for this machine really runs tftpkit.
  const out = await Deno.makeTempDir({ prefix: "tftpkit-compile-" });
  try {
    const r = await compile(["--out", out], { DENORT_BIN: Deno.execPath() });
    equal(r.code, 1, `exit ${r.code}\n${r.stderr}`);
    ok(!/could not download/.test(r.stderr), r.stderr);
    match(r.stderr, /--version printed 'deno /);
    match(r.stderr, /DENORT_BIN must be denort/);
    ok(!exists(join(out, "tftpkit")), "the bad binary was left behind");
    ok(!exists(join(out, "SHA256SUMS")), "SHA256SUMS written for a failed build");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

/** Writes an executable bash script. */
async function script(path: string, body: string): Promise<string> {
  await Deno.writeTextFile(path, `#!/usr/bin/env bash\n${body}`);
  await Deno.chmod(path, 0o755);
  return path;
}

Deno.test("scripts/release/smoke.sh passes against main.ts and fails on wrong bytes or a bad exit", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "tftpkit-smoke-" });
  const deno = Deno.execPath();
  const main = join(ROOT, "main.ts");
  const perms = "--allow-net --allow-read --allow-write";
  try {
    const good = await script(join(dir, "tftpkit"), `exec "${deno}" run ${perms} "${main}" "$@"\n`);
    // Serves a decoy directory whose files have the right names but other bytes.
    const decoy = join(dir, "decoy");
    await Deno.mkdir(decoy);
    await makeFile(join(decoy, "download.bin"), 300_123, 5);
    await makeFile(join(decoy, "exact.bin"), 32_768, 6);
    const liar = await script(
      join(dir, "liar"),
      `if [ "$1" = serve ]; then shift 2; set -- serve "${decoy}" "$@"; fi\n` +
        `exec "${deno}" run ${perms} "${main}" "$@"\n`,
    );
    // Exits 7 on SIGTERM instead of 0.
    const stubborn = await script(
      join(dir, "stubborn"),
      `"${deno}" run ${perms} "${main}" "$@" &\nchild=$!\n` +
        `trap 'kill -TERM $child; wait $child; exit 7' TERM\nwait $child\n`,
    );
    // smoke.sh makes its work directory under $TMPDIR: give it one to check it cleans up.
    const tmp = join(dir, "tmp");
    await Deno.mkdir(tmp);
    const smoke = (binary: string[], clients: string) =>
      run("bash", [SMOKE, ...binary], {
        env: { SMOKE_CLIENTS: clients, TMPDIR: tmp },
        timeoutMs: 240_000,
      });
    const [pass, wrong, badExit, usage] = await Promise.all([
      smoke([good], "tftp-hpa busybox curl"),
      smoke([liar], "curl"),
      smoke([stubborn], "curl"),
      smoke([], "curl"),
    ]);
    await t.step("with tftp-hpa, busybox and curl: 9 transfers, exit 0 after SIGTERM", () => {
      equal(pass.code, 0, pass.stdout + pass.stderr);
      for (const client of ["tftp-hpa", "busybox", "curl"]) {
        ok(pass.stdout.includes(`ok: ${client} download of download.bin (300123 bytes)`), client);
        ok(pass.stdout.includes(`ok: ${client} download of exact.bin (32768 bytes)`), client);
        ok(pass.stdout.includes(`ok: ${client} upload as up-${client}.bin (200123 bytes)`), client);
      }
      ok(pass.stdout.includes(`tftpkit ${config.version}`), pass.stdout);
      match(pass.stdout, /server stopped by SIGTERM with exit 0/);
      match(pass.stdout, /PASS: 9 transfers compared byte for byte/);
    });
    await t.step("a server that sends other bytes fails the comparison", () => {
      equal(wrong.code, 1, wrong.stdout + wrong.stderr);
      match(wrong.stderr, /FAIL: curl download of download\.bin: contents differ/);
    });
    await t.step("a server that exits non-zero on SIGTERM fails", () => {
      equal(badExit.code, 1, badExit.stdout + badExit.stderr);
      match(badExit.stdout, /ok: curl upload as up-curl\.bin/);
      match(badExit.stderr, /exited 7 after SIGTERM/);
    });
    await t.step("no BINARY is a usage error", () => {
      equal(usage.code, 2);
      match(usage.stderr, /usage: bash scripts\/release\/smoke\.sh BINARY/);
    });
    await t.step("every run removed its work directory", () => {
      deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name), []);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
