import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { RefusedError } from "../errors.ts";
import {
  applyMapRules,
  MapRulesError,
  MAX_NAME_LENGTH,
  parseMapRules,
  splitName,
} from "./names.ts";

function refused(name: string, reason: RegExp, windows = false): void {
  throws(() => splitName(name, windows), (e: unknown) => {
    ok(e instanceof RefusedError, `expected RefusedError for ${JSON.stringify(name)}, got ${e}`);
    equal(e.code, 2, "access violation");
    match(e.message, reason);
    return true;
  });
}

Deno.test("splitName turns a requested name into segments below the root", async (t) => {
  const cases: Array<[string, string[]]> = [
    ["pxelinux.0", ["pxelinux.0"]],
    ["/pxelinux.0", ["pxelinux.0"]],
    ["///pxelinux.0", ["pxelinux.0"]],
    ["pxelinux.cfg/default", ["pxelinux.cfg", "default"]],
    ["//pxelinux.cfg/./default", ["pxelinux.cfg", "default"]],
    ["\\Boot\\BCD", ["Boot", "BCD"]],
    ["boot\\x86/grub.efi", ["boot", "x86", "grub.efi"]],
    ["a//b///c/", ["a", "b", "c"]],
    ["./a/./b/.", ["a", "b"]],
    ["...", ["..."]],
    ["..a/b..", ["..a", "b.."]],
    ["a b/c d", ["a b", "c d"]],
    ["ünïcödé/файл", ["ünïcödé", "файл"]],
    ["C:boot.ini", ["C:boot.ini"]], // ':' is fine off Windows
  ];
  for (const [name, segments] of cases) {
    await t.step(JSON.stringify(name), () => deepEqual(splitName(name, false), segments));
  }
});

Deno.test("splitName refuses names that could leave the root or are not names", async (t) => {
  await t.step("'..' anywhere", () => {
    for (const name of ["..", "../etc/passwd", "a/../b", "a/..", "\\..\\x", "a\\..", "/./../x"]) {
      refused(name, /'\.\.'/);
    }
  });
  await t.step("control characters", () => {
    for (const name of ["a\u0000b", "a\nb", "a\rb", "\tfile", "del\u007f", "esc\u001b[0m"]) {
      refused(name, /control characters/);
    }
  });
  await t.step("names that were not valid UTF-8", () => {
    const name = new TextDecoder().decode(new Uint8Array([0x61, 0xff, 0x62]));
    refused(name, /UTF-8/);
  });
  await t.step("too long", () => {
    refused("a".repeat(MAX_NAME_LENGTH + 1), /too long/);
    deepEqual(splitName("a".repeat(MAX_NAME_LENGTH), false), ["a".repeat(MAX_NAME_LENGTH)]);
  });
  await t.step("nothing left", () => {
    for (const name of ["", "/", "//", ".", "./.", "\\", "/./"]) refused(name, /no file name/);
  });
  await t.step("':' on Windows (drive letters, streams)", () => {
    refused("C:\\boot.ini", /':'/, true);
    refused("file.txt:stream", /':'/, true);
    refused("c:", /':'/, true);
    deepEqual(splitName("Boot\\BCD", true), ["Boot", "BCD"]);
  });
});

Deno.test("parseMapRules reads REGEX REPLACEMENT lines", async (t) => {
  await t.step("comments, blank lines and CRLF", () => {
    const rules = parseMapRules(
      "# BMC firmware asks in upper case\r\n\r\n   \n^FIRMWARE\\.BIN$ fw/firmware.bin\n" +
        "  # indented comment\n\t^(.*)\\.TXT$\t\ttext/$1.txt  \n",
    );
    equal(rules.length, 2);
    equal(rules[0].pattern.source, "^FIRMWARE\\.BIN$");
    equal(rules[0].replacement, "fw/firmware.bin");
    equal(rules[0].line, 4);
    equal(rules[1].replacement, "text/$1.txt");
    equal(rules[1].line, 6);
  });
  await t.step("an empty file has no rules", () => {
    deepEqual(parseMapRules(""), []);
    deepEqual(parseMapRules("# only a comment\n"), []);
  });
  await t.step("a bad regular expression names its line", () => {
    throws(() => parseMapRules("# c\n^ok$ fine\n\n([a-z ok\n"), (e: unknown) => {
      ok(e instanceof MapRulesError, String(e));
      equal(e.line, 4);
      match(e.message, /^line 4: invalid regular expression/);
      return true;
    });
  });
  await t.step("a missing replacement names its line", () => {
    throws(() => parseMapRules("^a$ b\n^lonely$\n"), (e: unknown) => {
      ok(e instanceof MapRulesError, String(e));
      equal(e.line, 2);
      match(e.message, /^line 2: expected 'REGEX REPLACEMENT'/);
      match(e.message, /lonely/);
      return true;
    });
  });
  await t.step("three fields are refused", () => {
    throws(
      () => parseMapRules("a b c"),
      (e: unknown) => e instanceof MapRulesError && e.line === 1,
    );
  });
});

Deno.test("applyMapRules rewrites with the first matching rule only", () => {
  const rules = parseMapRules(
    "^(.*)\\.TXT$ text/$1.txt\n^FW$ firmware/current.bin\n^(.*)$ all/$1\n",
  );
  equal(applyMapRules("README.TXT", rules), "text/README.txt");
  equal(applyMapRules("FW", rules), "firmware/current.bin");
  equal(applyMapRules("other", rules), "all/other");
  equal(applyMapRules("x", parseMapRules("^y$ z")), "x", "no match: unchanged");
  equal(applyMapRules("x", []), "x");
  // Only the matched part is replaced (String.replace semantics).
  equal(applyMapRules("boot/old/vmlinuz", parseMapRules("old new")), "boot/new/vmlinuz");
  // The same rules give the same answers again (no lastIndex state).
  equal(applyMapRules("README.TXT", rules), "text/README.txt");
});
