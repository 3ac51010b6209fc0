import { deepEqual, equal, match, throws } from "node:assert/strict";
import { AccessList, cidrContains, parseCidr, parseIp } from "./access.ts";

function v6(...words: number[]): Uint8Array {
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

Deno.test("parseIp reads IPv4 and IPv6 literals into bytes", async (t) => {
  await t.step("IPv4", () => {
    deepEqual(parseIp("10.0.0.1"), new Uint8Array([10, 0, 0, 1]));
    deepEqual(parseIp("0.0.0.0"), new Uint8Array([0, 0, 0, 0]));
    deepEqual(parseIp("255.255.255.255"), new Uint8Array([255, 255, 255, 255]));
  });
  await t.step("IPv6, full and compressed forms", () => {
    const cases: Array<[string, Uint8Array]> = [
      ["2001:db8:0:0:0:0:0:1", v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)],
      ["2001:db8::1", v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)],
      ["2001:DB8::1", v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)],
      ["::1", v6(0, 0, 0, 0, 0, 0, 0, 1)],
      ["::", v6()],
      ["fe80::", v6(0xfe80)],
      ["1::", v6(1)],
      ["1:2:3:4:5:6:7::", v6(1, 2, 3, 4, 5, 6, 7, 0)],
      ["::2:3:4:5:6:7:8", v6(0, 2, 3, 4, 5, 6, 7, 8)],
      ["1:2::7:8", v6(1, 2, 0, 0, 0, 0, 7, 8)],
      ["0001:0002:0003:0004:0005:0006:0007:0008", v6(1, 2, 3, 4, 5, 6, 7, 8)],
      ["fe80::1%eth0", v6(0xfe80, 0, 0, 0, 0, 0, 0, 1)],
    ];
    for (const [text, bytes] of cases) deepEqual(parseIp(text), bytes, text);
  });
  await t.step("IPv4-mapped IPv6 becomes 4 bytes", () => {
    deepEqual(parseIp("::ffff:10.0.0.1"), new Uint8Array([10, 0, 0, 1]));
    deepEqual(parseIp("::FFFF:192.0.2.33"), new Uint8Array([192, 0, 2, 33]));
    deepEqual(parseIp("0:0:0:0:0:ffff:192.0.2.33"), new Uint8Array([192, 0, 2, 33]));
    deepEqual(parseIp("::ffff:c000:221"), new Uint8Array([192, 0, 2, 33]));
  });
  await t.step("other embedded IPv4 stays 16 bytes", () => {
    deepEqual(parseIp("64:ff9b::192.0.2.33"), v6(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x221));
    deepEqual(parseIp("::192.0.2.33"), v6(0, 0, 0, 0, 0, 0, 0xc000, 0x221));
    deepEqual(parseIp("1:2:3:4:5:6:1.2.3.4"), v6(1, 2, 3, 4, 5, 6, 0x102, 0x304));
  });
  await t.step("invalid literals give null", () => {
    const bad = [
      "",
      "localhost",
      "10.0.0",
      "10.0.0.256",
      "10.0.0.1.2",
      "1.2.3.-4",
      " 10.0.0.1",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      ":::",
      ":1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:",
      "12345::1",
      "g::1",
      "::ffff:1.2.3",
      "::ffff:1.2.3.256",
      "1.2.3.4::",
      "::1.2.3.4:5",
      "1:2:3:4:5:6:7:1.2.3.4",
    ];
    for (const text of bad) equal(parseIp(text), null, JSON.stringify(text));
  });
  await t.step("'::' with eight groups besides it is invalid (it stands for at least one)", () => {
    // inet_pton and node:net isIP refuse these too.
    for (const text of ["1:2:3:4::5:6:7:8", "::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8::"]) {
      equal(parseIp(text), null, JSON.stringify(text));
    }
  });
});

Deno.test("parseCidr reads blocks and bare hosts, and names bad input", async (t) => {
  await t.step("valid", () => {
    deepEqual(parseCidr("10.0.0.0/8"), {
      bytes: new Uint8Array([10, 0, 0, 0]),
      bits: 8,
      text: "10.0.0.0/8",
    });
    equal(parseCidr("192.0.2.7").bits, 32);
    equal(parseCidr("2001:db8::/32").bits, 32);
    equal(parseCidr("::1").bits, 128);
    equal(parseCidr("0.0.0.0/0").bits, 0);
    equal(parseCidr("::/0").bits, 0);
    equal(parseCidr("::ffff:10.0.0.1").bytes.length, 4);
  });
  await t.step("errors", () => {
    const cases: Array<[string, RegExp]> = [
      ["bogus", /not an IP address or CIDR block: bogus/],
      ["10.0.0.0/8/8", /not an IP address or CIDR block: 10\.0\.0\.0\/8\/8/],
      ["10.0.0.256/8", /not an IP address/],
      ["10.0.0.0/33", /bad prefix length in 10\.0\.0\.0\/33: expected 0-32/],
      ["10.0.0.0/", /bad prefix length/],
      ["10.0.0.0/-1", /bad prefix length/],
      ["10.0.0.0/8a", /bad prefix length/],
      ["2001:db8::/129", /bad prefix length in 2001:db8::\/129: expected 0-128/],
    ];
    for (const [text, message] of cases) {
      throws(() => parseCidr(text), (e: unknown) => {
        match((e as Error).message, message);
        return true;
      }, text);
    }
  });
});

Deno.test("cidrContains compares the prefix bits only", () => {
  const c = parseCidr("192.0.2.128/25");
  equal(cidrContains(c, parseIp("192.0.2.128")!), true);
  equal(cidrContains(c, parseIp("192.0.2.255")!), true);
  equal(cidrContains(c, parseIp("192.0.2.127")!), false);
  equal(cidrContains(parseCidr("10.0.0.0/12"), parseIp("10.15.255.255")!), true);
  equal(cidrContains(parseCidr("10.0.0.0/12"), parseIp("10.16.0.0")!), false);
  equal(cidrContains(parseCidr("0.0.0.0/0"), parseIp("203.0.113.9")!), true);
  equal(cidrContains(parseCidr("2001:db8::/33"), parseIp("2001:db8:7fff::1")!), true);
  equal(cidrContains(parseCidr("2001:db8::/33"), parseIp("2001:db8:8000::1")!), false);
  equal(cidrContains(parseCidr("::/0"), parseIp("10.0.0.1")!), false, "families never mix");
});

Deno.test("AccessList: deny wins over allow, no allow means all", async (t) => {
  await t.step("no rules: everything", () => {
    const acl = new AccessList();
    equal(acl.empty, true);
    equal(acl.allows("10.0.0.1"), true);
    equal(acl.allows("::1"), true);
    equal(acl.allows("not an address"), true);
  });
  await t.step("allow only", () => {
    const acl = new AccessList(["10.0.0.0/8", "2001:db8::/32"]);
    equal(acl.empty, false);
    equal(acl.allows("10.1.2.3"), true);
    equal(acl.allows("11.0.0.1"), false);
    equal(acl.allows("2001:db8::5"), true);
    equal(acl.allows("2001:db9::5"), false);
    equal(acl.allows("garbage"), false, "an unparsable address is refused");
  });
  await t.step("deny only", () => {
    const acl = new AccessList([], ["192.0.2.0/24"]);
    equal(acl.allows("192.0.2.9"), false);
    equal(acl.allows("198.51.100.1"), true);
    equal(acl.allows("::1"), true);
  });
  await t.step("deny inside allow: deny wins", () => {
    const acl = new AccessList(["10.0.0.0/8"], ["10.0.0.66", "10.9.0.0/16"]);
    equal(acl.allows("10.1.2.3"), true);
    equal(acl.allows("10.0.0.66"), false);
    equal(acl.allows("10.9.1.1"), false);
    equal(acl.allows("192.0.2.1"), false);
  });
  await t.step("allow inside deny: deny still wins", () => {
    const acl = new AccessList(["10.0.0.5"], ["10.0.0.0/8"]);
    equal(acl.allows("10.0.0.5"), false);
  });
  await t.step("IPv4-mapped IPv6 clients match IPv4 rules", () => {
    const acl = new AccessList(["10.0.0.0/8"], ["10.0.0.66"]);
    equal(acl.allows("::ffff:10.1.2.3"), true);
    equal(acl.allows("::ffff:10.0.0.66"), false);
    equal(acl.allows("::ffff:192.0.2.1"), false);
    const deny = new AccessList([], ["192.0.2.0/24"]);
    equal(deny.allows("::ffff:192.0.2.1"), false);
  });
  await t.step("a bad rule is refused when the list is built", () => {
    throws(() => new AccessList(["10.0.0.0/40"]), /bad prefix length/);
    throws(() => new AccessList([], ["nope"]), /not an IP address/);
  });
});
