import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { RefusedError } from "../errors.ts";
import {
  acceptOack,
  DEFAULT_MAX_WINDOW_BYTES,
  LIMITS,
  MAX_WINDOW_BYTES,
  negotiate,
  type NegotiationContext,
  type NegotiationPolicy,
  requestOptions,
  windowFit,
} from "./options.ts";

const policy: NegotiationPolicy = {
  maxBlksize: 65464,
  maxWindowsize: 65535,
};
const rrq: NegotiationContext = { op: "RRQ", mode: "octet", fileSize: 1000 };
const wrq: NegotiationContext = { op: "WRQ", mode: "octet" };

function ask(
  options: Array<[string, string]>,
  context: NegotiationContext = rrq,
  p: NegotiationPolicy = policy,
) {
  return negotiate(new Map(options), context, p);
}

Deno.test("negotiate without options gives RFC 1350 defaults and no OACK", () => {
  const r = ask([]);
  deepEqual(r.negotiated, { blksize: 512, windowsize: 1 });
  equal(r.oack.size, 0);
});

Deno.test("blksize is accepted from 8 to 65464 and clamped to the server's cap", async (t) => {
  const cases: Array<[string, number | null, number?]> = [
    // [requested, granted (null: left out), server cap]
    ["0", null],
    ["7", null],
    ["8", 8],
    ["512", 512],
    ["1468", 1468],
    ["65464", 65464],
    ["65465", 65464],
    ["100000", 65464],
    ["9999999999", 65464],
    ["1468", 1468, 1468],
    ["1469", 1468, 1468],
    ["9000", 1468, 1468],
    ["600", 600, 1468],
  ];
  for (const [value, granted, cap] of cases) {
    await t.step(`blksize ${value}${cap ? ` (cap ${cap})` : ""}`, () => {
      const r = ask([["blksize", value]], rrq, { ...policy, maxBlksize: cap ?? policy.maxBlksize });
      if (granted === null) {
        equal(r.oack.has("blksize"), false);
        equal(r.negotiated.blksize, 512);
      } else {
        equal(r.oack.get("blksize"), String(granted));
        equal(r.negotiated.blksize, granted);
      }
    });
  }
  equal(LIMITS.blksize.min, 8);
  equal(LIMITS.blksize.max, 65464);
});

Deno.test("timeout is accepted from 1 to 255 seconds", async (t) => {
  const cases: Array<[string, number | null]> = [
    ["0", null],
    ["1", 1],
    ["5", 5],
    ["255", 255],
    ["256", null],
    ["1000", null],
  ];
  for (const [value, granted] of cases) {
    await t.step(`timeout ${value}`, () => {
      const r = ask([["timeout", value]]);
      if (granted === null) {
        equal(r.oack.has("timeout"), false);
        equal(
          r.negotiated.timeoutMs,
          undefined,
          "no timeout negotiated: the server's knob applies",
        );
      } else {
        equal(r.oack.get("timeout"), String(granted));
        equal(r.negotiated.timeoutMs, granted * 1000);
      }
    });
  }
});

Deno.test("windowsize is accepted from 1 to 65535, clamped to the cap and to the window bytes", async (t) => {
  const MiB = 1024 * 1024;
  const cases: Array<[Array<[string, string]>, number | null, number?, number?]> = [
    // [options, granted windowsize (null: left out), server cap, maxWindowBytes]
    [[["windowsize", "0"]], null],
    [[["windowsize", "1"]], 1],
    [[["windowsize", "16"]], 16],
    [[["windowsize", "65535"]], 128], // 64 KiB / 512 by default
    [[["windowsize", "65535"]], 2048, undefined, MiB], // 1 MiB / 512
    [[["windowsize", "65536"]], null],
    [[["windowsize", "64"]], 32, 32],
    [[["windowsize", "32"]], 32, 32],
    // A window's payload must fit in maxWindowBytes (default 64 KiB: what a default UDP receive
    // buffer holds in one burst) whatever blksize was granted...
    [[["blksize", "8192"], ["windowsize", "64"]], 8],
    [[["blksize", "1468"], ["windowsize", "64"]], 44],
    [[["blksize", "1468"], ["windowsize", "16"]], 16],
    [[["blksize", "65464"], ["windowsize", "64"]], 1],
    [[["windowsize", "64"], ["blksize", "65464"]], 1],
    // ...and never more than MAX_WINDOW_BYTES, however high maxWindowBytes is set.
    [[["blksize", "65464"], ["windowsize", "64"]], Math.floor(MAX_WINDOW_BYTES / 65464), 64, MiB],
    [[["blksize", "1468"], ["windowsize", "1000"]], 714, 1000, MiB],
    [[["blksize", "1468"], ["windowsize", "1000"]], 714, 1000, 4 * MiB],
    [[["blksize", "1468"], ["windowsize", "714"]], 714, 1000, MiB],
    [[["blksize", "65464"], ["windowsize", "1"]], 1],
  ];
  for (const [options, granted, cap, maxWindowBytes] of cases) {
    const name = options.map(([k, v]) => `${k} ${v}`).join(", ") + (cap ? ` (cap ${cap})` : "") +
      (maxWindowBytes ? ` (max ${maxWindowBytes} bytes)` : "");
    await t.step(name, () => {
      const r = ask(options, rrq, {
        ...policy,
        maxWindowsize: cap ?? policy.maxWindowsize,
        maxWindowBytes,
      });
      if (granted === null) {
        equal(r.oack.has("windowsize"), false);
        equal(r.negotiated.windowsize, 1);
      } else {
        equal(r.oack.get("windowsize"), String(granted));
        equal(r.negotiated.windowsize, granted);
        const limit = Math.min(maxWindowBytes ?? DEFAULT_MAX_WINDOW_BYTES, MAX_WINDOW_BYTES);
        ok(r.negotiated.windowsize * r.negotiated.blksize <= limit || granted === 1);
      }
      // The OACK keeps the client's order even when windowsize was lowered afterwards.
      deepEqual([...r.oack.keys()], options.map(([k]) => k).filter((k) => r.oack.has(k)));
    });
  }
});

Deno.test("windowFit: the largest window whose payload fits, at least 1", () => {
  equal(windowFit(512), 128);
  equal(windowFit(1468), 44);
  equal(windowFit(8192), 8);
  equal(windowFit(65464), 1);
  equal(windowFit(1468, 1024 * 1024), 714);
  equal(windowFit(1468, 64 * 1024 * 1024), 714, "never above MAX_WINDOW_BYTES");
  equal(windowFit(65464, 1024), 1);
});

Deno.test("tsize on a read answers the file size, except for empty files and netascii", async (t) => {
  await t.step("octet with a size", () => {
    const r = ask([["tsize", "0"]], { op: "RRQ", mode: "octet", fileSize: 123456 });
    equal(r.oack.get("tsize"), "123456");
  });
  await t.step("empty file: no tsize", () => {
    const r = ask([["tsize", "0"]], { op: "RRQ", mode: "octet", fileSize: 0 });
    equal(r.oack.has("tsize"), false);
    equal(r.oack.size, 0);
  });
  await t.step("unknown size: no tsize", () => {
    const r = ask([["tsize", "0"]], { op: "RRQ", mode: "octet" });
    equal(r.oack.has("tsize"), false);
  });
  await t.step("netascii: no tsize (the size on the wire differs)", () => {
    const r = ask([["tsize", "0"]], { op: "RRQ", mode: "netascii", fileSize: 1000 });
    equal(r.oack.has("tsize"), false);
  });
  await t.step("with other options, in the client's order", () => {
    const r = ask([["tsize", "0"], ["blksize", "1024"]], rrq);
    deepEqual([...r.oack], [["tsize", "1000"], ["blksize", "1024"]]);
    equal(r.negotiated.tsize, 1000, "the announced size is part of the settings");
  });
});

Deno.test("tsize on a write is echoed, and refused with ERROR 3 over the upload limit", async (t) => {
  await t.step("echoed", () => {
    const r = ask([["tsize", "5000"]], wrq, { ...policy, maxUploadSize: 5000 });
    equal(r.oack.get("tsize"), "5000");
    equal(r.negotiated.tsize, 5000);
  });
  await t.step("no limit", () => {
    const r = ask([["tsize", "99999999"]], wrq);
    equal(r.negotiated.tsize, 99999999);
  });
  await t.step("over maxUploadSize", () => {
    throws(
      () => ask([["tsize", "5001"]], wrq, { ...policy, maxUploadSize: 5000 }),
      (e: unknown) => {
        ok(e instanceof RefusedError, String(e));
        equal(e.code, 3);
        match(e.message, /5001/);
        match(e.message, /5000/);
        return true;
      },
    );
  });
  await t.step("over the free space", () => {
    throws(
      () => ask([["tsize", "2000"]], { ...wrq, freeSpace: 1999 }),
      (e: unknown) => e instanceof RefusedError && e.code === 3,
    );
    equal(ask([["tsize", "2000"]], { ...wrq, freeSpace: 2000 }).negotiated.tsize, 2000);
  });
});

Deno.test("unknown options are ignored", () => {
  const r = ask([["multicast", ""], ["utimeout", "1000"], ["rollover", "0"], ["blksize", "1024"]]);
  deepEqual([...r.oack], [["blksize", "1024"]]);
  equal(r.negotiated.blksize, 1024);
});

Deno.test("malformed option values are ignored", async (t) => {
  for (const value of ["", "abc", "-1", "1e3", "0x200", "12.5", "12345678901234567", "5 1 2"]) {
    await t.step(JSON.stringify(value), () => {
      const r = ask(
        [["blksize", value], ["timeout", value], ["windowsize", value], [
          "tsize",
          value,
        ]],
        wrq,
        { ...policy, maxUploadSize: 1 },
      );
      equal(r.oack.size, 0);
      deepEqual(r.negotiated, { blksize: 512, windowsize: 1 });
      equal(r.negotiated.tsize, undefined);
    });
  }
});

Deno.test("requestOptions: what a client asks for", async (t) => {
  await t.step("defaults: blksize 1468, windowsize 16, tsize 0 on a read", () => {
    deepEqual([...requestOptions({}, "RRQ")], [["blksize", "1468"], ["windowsize", "16"], [
      "tsize",
      "0",
    ]]);
  });
  await t.step("a write announces its size; RFC 1350 values are not asked", () => {
    deepEqual([...requestOptions({ blksize: 512, windowsize: 1 }, "WRQ", 77)], [["tsize", "77"]]);
  });
  await t.step("the window is lowered to fit the window bytes", () => {
    equal(requestOptions({ blksize: 8192, windowsize: 64 }, "RRQ").get("windowsize"), "8");
    equal(
      requestOptions({ blksize: 8192, windowsize: 64, maxWindowBytes: MAX_WINDOW_BYTES }, "RRQ")
        .get("windowsize"),
      "64",
    );
  });
  await t.step("a timeout in ms is asked in whole seconds", () => {
    equal(requestOptions({ timeoutMs: 2500 }, "RRQ").get("timeout"), "3");
    equal(requestOptions({ timeoutMs: 100 }, "RRQ").get("timeout"), "1");
  });
  await t.step("noOptions asks for nothing", () => {
    equal(requestOptions({ noOptions: true }, "WRQ", 5).size, 0);
  });
});

Deno.test("acceptOack takes what the client allowed and refuses the rest with ERROR 8", async (t) => {
  const asked = new Map([["blksize", "1468"], ["windowsize", "16"], ["timeout", "3"], [
    "tsize",
    "0",
  ]]);
  await t.step("a smaller blksize and windowsize, a timeout and the size", () => {
    deepEqual(
      acceptOack(
        new Map([["blksize", "1024"], ["windowsize", "8"], ["timeout", "5"], ["tsize", "9"]]),
        asked,
      ),
      { blksize: 1024, windowsize: 8, timeoutMs: 5000, tsize: 9 },
    );
  });
  const refusals: Array<[string, string, RegExp]> = [
    ["blksize", "9999", /server answered blksize=9999/],
    ["blksize", "7", /server answered blksize=7/],
    ["windowsize", "17", /server answered windowsize=17/],
    ["timeout", "0", /server answered timeout=0/],
    ["tsize", "x", /server answered tsize=x/],
    ["multicast", "1", /unrequested option multicast/],
  ];
  for (const [name, value, message] of refusals) {
    await t.step(`${name}=${value} is refused`, () => {
      throws(() => acceptOack(new Map([[name, value]]), asked), (e: unknown) => {
        ok(e instanceof RefusedError, String(e));
        equal(e.code, 8);
        match(e.message, message);
        return true;
      });
    });
  }
});
