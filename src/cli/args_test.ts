import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import {
  addressFlag,
  choiceFlag,
  intFlag,
  parse,
  rangeFlag,
  sizeFlag,
  UsageError,
  windowBytesFlag,
} from "./args.ts";

/** Expects a UsageError whose message names `flag` and matches `message`. */
function usage(fn: () => unknown, flag: string, message?: RegExp): void {
  throws(fn, (e: unknown) => {
    ok(e instanceof UsageError, `expected UsageError, got ${e}`);
    equal(e.name, "UsageError");
    ok(e.message.includes(flag), `${JSON.stringify(e.message)} does not name ${flag}`);
    if (message) match(e.message, message);
    ok(!e.message.includes("\n"), "one line");
    return true;
  });
}

Deno.test("intFlag accepts whole numbers in range and names the flag otherwise", async (t) => {
  await t.step("valid", () => {
    equal(intFlag("--port", "69", 0, 65535), 69);
    equal(intFlag("--port", "0", 0, 65535), 0);
    equal(intFlag("--port", "65535", 0, 65535), 65535);
    equal(intFlag("--retries", "007", 1, 10), 7);
  });
  await t.step("invalid", () => {
    for (const value of ["", "x", "-1", "1.5", "1e3", " 5", "65536", "0x10"]) {
      usage(
        () => intFlag("--port", value, 0, 65535),
        "--port",
        new RegExp(`from 0 to 65535: got '${value.replace(/[.+]/g, "\\$&")}'`),
      );
    }
    usage(() => intFlag("--retries", "0", 1, 10), "--retries", /from 1 to 10/);
  });
});

Deno.test("sizeFlag reads sizes with K, M, G, T suffixes", async (t) => {
  await t.step("valid", () => {
    const cases: Array<[string, number]> = [
      ["0", 0],
      ["1048576", 1048576],
      ["512K", 512 * 1024],
      ["512k", 512 * 1024],
      ["100M", 100 * 1024 ** 2],
      ["100MB", 100 * 1024 ** 2],
      ["100MiB", 100 * 1024 ** 2],
      ["4G", 4 * 1024 ** 3],
      ["2T", 2 * 1024 ** 4],
      ["10B", 10],
    ];
    for (const [value, bytes] of cases) equal(sizeFlag("--max-upload-size", value), bytes, value);
  });
  await t.step("invalid", () => {
    for (const value of ["", "M", "12Q", "1.5M", "-1", "10 M", "ten"]) {
      usage(() => sizeFlag("--max-upload-size", value), "--max-upload-size", /got '/);
    }
  });
});

Deno.test("windowBytesFlag reads 512 to 1M, undefined when absent", () => {
  equal(windowBytesFlag(undefined), undefined);
  equal(windowBytesFlag("512"), 512);
  equal(windowBytesFlag("64K"), 64 * 1024);
  equal(windowBytesFlag("1M"), 1024 * 1024);
  for (const bad of ["511", "2M", "lots", "-1"]) {
    throws(() => windowBytesFlag(bad), (e: Error) => {
      ok(e instanceof UsageError, bad);
      match(e.message, /--max-window-bytes/);
      return true;
    });
  }
});

Deno.test("rangeFlag reads LO-HI port ranges", async (t) => {
  await t.step("valid", () => {
    deepEqual(rangeFlag("--port-range", "50000-50100"), { lo: 50000, hi: 50100 });
    deepEqual(rangeFlag("--port-range", "1-65535"), { lo: 1, hi: 65535 });
    deepEqual(rangeFlag("--port-range", "6000-6000"), { lo: 6000, hi: 6000 });
  });
  await t.step("invalid", () => {
    for (const value of ["", "5000", "0-10", "10-65536", "200-100", "a-b", "1-2-3", " 1-2"]) {
      usage(() => rangeFlag("--port-range", value), "--port-range", /LO-HI/);
    }
  });
});

Deno.test("choiceFlag accepts only the listed words", () => {
  equal(choiceFlag("--log-format", "json", ["text", "json"]), "json");
  equal(choiceFlag("--mode", "netascii", ["octet", "netascii"]), "netascii");
  usage(
    () => choiceFlag("--log-format", "xml", ["text", "json"]),
    "--log-format",
    /one of text, json: got 'xml'/,
  );
  usage(() => choiceFlag("--mode", "OCTET", ["octet", "netascii"]), "--mode");
});

Deno.test("addressFlag accepts IPv4 and IPv6 literals, with or without brackets", () => {
  equal(addressFlag("--address", "127.0.0.1"), "127.0.0.1");
  equal(addressFlag("--address", "0.0.0.0"), "0.0.0.0");
  equal(addressFlag("--address", "::"), "::");
  equal(addressFlag("--address", "[::1]"), "::1");
  equal(addressFlag("--address", "fe80::1"), "fe80::1");
  equal(addressFlag("--address", "::ffff:10.0.0.1"), "::ffff:10.0.0.1");
  for (const value of ["", "localhost", "10.0.0.256", "1.2.3", "[10.0.0.1", "example.com"]) {
    usage(() => addressFlag("--address", value), "--address", /IPv4 or IPv6/);
  }
});

Deno.test("parse turns bad command lines into one-line UsageErrors naming the flag", async (t) => {
  const options = {
    port: { type: "string", short: "p" },
    verbose: { type: "boolean", short: "v" },
    timeout: { type: "string" },
  } as const;
  await t.step("valid", () => {
    const { values, positionals } = parse(["serve", "-p", "69", "--verbose", "dir"], options);
    equal(values.port, "69");
    equal(values.verbose, true);
    deepEqual(positionals, ["serve", "dir"]);
  });
  await t.step("unknown long flag", () => {
    usage(() => parse(["--bogus"], options), "--bogus", /^unknown option '--bogus'$/);
  });
  await t.step("unknown short flag", () => {
    usage(() => parse(["-x"], options), "-x", /^unknown option '-x'$/);
  });
  await t.step("missing value", () => {
    usage(() => parse(["--port"], options), "--port", /^option '--port' needs a value$/);
    usage(() => parse(["-p"], options), "--port", /needs a value/);
    usage(() => parse(["--timeout"], options), "--timeout", /^option '--timeout' needs a value$/);
  });
  await t.step("a value for a boolean flag", () => {
    usage(() => parse(["--verbose=yes"], options), "--verbose");
  });
});
