import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import fc from "fast-check";
import {
  ack,
  blockOf,
  decode,
  encode,
  errorPacket,
  MAX_OPTIONS,
  Opcode,
  opcodeOf,
  type Packet,
  PacketError,
  readError,
  type RequestPacket,
  writeHeader,
} from "./packet.ts";
import { ErrorCode } from "../errors.ts";

const te = new TextEncoder();

/** Bytes from a mix of numbers and strings (strings as ASCII, no terminator added). */
function bytes(...parts: Array<number | string>): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else out.push(...te.encode(p));
  }
  return new Uint8Array(out);
}

function throwsPacketError(input: Uint8Array, message: RegExp): void {
  throws(() => decode(input), (e: unknown) => {
    ok(e instanceof PacketError, `expected PacketError, got ${e}`);
    equal(e.name, "PacketError");
    match(e.message, message);
    return true;
  });
}

Deno.test("requests encode and decode to exact bytes", async (t) => {
  await t.step("RRQ with options", () => {
    const wire = bytes(
      0,
      1,
      "pxelinux.0",
      0,
      "octet",
      0,
      "blksize",
      0,
      "1468",
      0,
      "tsize",
      0,
      "0",
      0,
    );
    const p: RequestPacket = {
      op: "RRQ",
      filename: te.encode("pxelinux.0"),
      mode: "octet",
      options: new Map([["blksize", "1468"], ["tsize", "0"]]),
    };
    deepEqual(encode(p), wire);
    const d = decode(wire) as RequestPacket;
    deepEqual(d, p);
    deepEqual([...d.options.keys()], ["blksize", "tsize"], "options keep the client's order");
  });

  await t.step("WRQ without options", () => {
    const wire = bytes(0, 2, "up/load.bin", 0, "netascii", 0);
    const p: RequestPacket = {
      op: "WRQ",
      filename: te.encode("up/load.bin"),
      mode: "netascii",
      options: new Map(),
    };
    deepEqual(encode(p), wire);
    deepEqual(decode(wire), p);
  });

  await t.step("mode and option names are lower-cased, values and file names are not", () => {
    const wire = bytes(0, 1, "Boot.IMG", 0, "OcTeT", 0, "BlkSize", 0, "512", 0, "X", 0, "AbC", 0);
    const d = decode(wire) as RequestPacket;
    equal(d.mode, "octet");
    deepEqual(d.filename, te.encode("Boot.IMG"));
    deepEqual([...d.options], [["blksize", "512"], ["x", "AbC"]]);
  });

  await t.step("the file name is raw bytes (not necessarily UTF-8)", () => {
    const wire = bytes(0, 1, 0xff, 0xfe, 0x80, 0, "octet", 0);
    const d = decode(wire) as RequestPacket;
    deepEqual(d.filename, new Uint8Array([0xff, 0xfe, 0x80]));
    deepEqual(encode(d), wire);
  });

  await t.step("duplicate options: the first one wins, whatever the case", () => {
    const wire = bytes(
      0,
      1,
      "f",
      0,
      "octet",
      0,
      "blksize",
      0,
      "512",
      0,
      "BLKSIZE",
      0,
      "1024",
      0,
      "tsize",
      0,
      "0",
      0,
    );
    const d = decode(wire) as RequestPacket;
    deepEqual([...d.options], [["blksize", "512"], ["tsize", "0"]]);
  });

  await t.step("the decoded file name is a copy, not a view of the datagram", () => {
    const wire = bytes(0, 1, "abc", 0, "octet", 0);
    const d = decode(wire) as RequestPacket;
    wire[2] = 0x7a;
    deepEqual(d.filename, te.encode("abc"));
  });
});

Deno.test("DATA, ACK, ERROR and OACK encode and decode to exact bytes", async (t) => {
  await t.step("DATA", () => {
    const wire = bytes(0, 3, 0x01, 0x02, "hello");
    const p = { op: "DATA" as const, block: 258, data: te.encode("hello") };
    deepEqual(encode(p), wire);
    deepEqual(decode(wire), p);
  });

  await t.step("empty DATA (the end of a file that is a multiple of blksize)", () => {
    const wire = bytes(0, 3, 0xff, 0xff);
    deepEqual(decode(wire), { op: "DATA", block: 65535, data: new Uint8Array(0) });
    deepEqual(encode({ op: "DATA", block: 65535, data: new Uint8Array(0) }), wire);
  });

  await t.step("DATA payload is a view into the datagram", () => {
    const wire = bytes(0, 3, 0, 1, 1, 2, 3);
    const d = decode(wire) as { data: Uint8Array };
    equal(d.data.buffer, wire.buffer);
    equal(d.data.byteOffset, 4);
  });

  await t.step("ACK", () => {
    deepEqual(encode({ op: "ACK", block: 0 }), bytes(0, 4, 0, 0));
    deepEqual(encode({ op: "ACK", block: 65535 }), bytes(0, 4, 0xff, 0xff));
    deepEqual(decode(bytes(0, 4, 0x12, 0x34)), { op: "ACK", block: 0x1234 });
    deepEqual(ack(65536 + 7), bytes(0, 4, 0, 7), "ack() takes the block modulo 65536");
  });

  await t.step("ERROR with the trailing NUL", () => {
    const wire = bytes(0, 5, 0, 1, "File not found", 0);
    deepEqual(encode({ op: "ERROR", code: 1, message: "File not found" }), wire);
    deepEqual(errorPacket(1, "File not found"), wire);
    deepEqual(decode(wire), { op: "ERROR", code: 1, message: "File not found" });
  });

  await t.step("ERROR without the trailing NUL, and with padding after it", () => {
    deepEqual(decode(bytes(0, 5, 0, 2, "Access violation")), {
      op: "ERROR",
      code: 2,
      message: "Access violation",
    });
    deepEqual(decode(bytes(0, 5, 0, 3, "Disk full", 0, "junk", 0, 0)), {
      op: "ERROR",
      code: 3,
      message: "Disk full",
    });
    deepEqual(decode(bytes(0, 5, 0, 8)), { op: "ERROR", code: 8, message: "" });
  });

  await t.step("OACK", () => {
    const wire = bytes(0, 6, "blksize", 0, "1428", 0, "windowsize", 0, "16", 0);
    const p = {
      op: "OACK" as const,
      options: new Map([["blksize", "1428"], ["windowsize", "16"]]),
    };
    deepEqual(encode(p), wire);
    const d = decode(wire) as typeof p;
    deepEqual(d, p);
    deepEqual([...d.options.keys()], ["blksize", "windowsize"]);
    deepEqual(decode(bytes(0, 6)), { op: "OACK", options: new Map() });
  });

  await t.step("writeHeader writes opcode and block", () => {
    const slot = new Uint8Array(6).fill(9);
    writeHeader(slot, Opcode.DATA, 0xabcd);
    deepEqual(slot, bytes(0, 3, 0xab, 0xcd, 9, 9));
  });
});

Deno.test("opcodeOf, blockOf, and readError read datagrams without failing", async (t) => {
  await t.step("opcodeOf", () => {
    equal(opcodeOf(bytes(0, 4, 0, 1)), Opcode.ACK);
    equal(opcodeOf(bytes(0, 1)), Opcode.RRQ);
    equal(opcodeOf(bytes(1, 2)), 0x0102);
    equal(opcodeOf(bytes(0)), 0);
    equal(opcodeOf(new Uint8Array(0)), 0);
  });

  await t.step("blockOf", () => {
    equal(blockOf(bytes(0, 3, 0, 1)), 1);
    equal(blockOf(bytes(0, 4, 1, 2)), 258);
    equal(blockOf(bytes(0, 4, 0xff, 0xff)), 65535);
  });

  await t.step("readError", () => {
    deepEqual(readError(errorPacket(ErrorCode.OPTION_REFUSED, "User aborted")), {
      op: "ERROR",
      code: 8,
      message: "User aborted",
    });
    deepEqual(readError(bytes(0, 5, 0)), { op: "ERROR", code: 0, message: "" });
    deepEqual(readError(new Uint8Array(0)), { op: "ERROR", code: 0, message: "" });
    deepEqual(readError(bytes(0, 5, 0, 6, "exists")), { op: "ERROR", code: 6, message: "exists" });
  });
});

Deno.test("malformed datagrams give PacketError with a useful message", async (t) => {
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ["empty datagram", new Uint8Array(0), /too short \(0 bytes\)/],
    ["one byte", bytes(0), /too short \(1 bytes\)/],
    ["opcode 0", bytes(0, 0, 1, 2), /unknown opcode 0/],
    ["opcode 7", bytes(0, 7, 0, 1), /unknown opcode 7/],
    ["opcode 256", bytes(1, 0, 0, 1), /unknown opcode 256/],
    ["RRQ with nothing", bytes(0, 1), /without file name and mode/],
    ["RRQ without mode", bytes(0, 1, "a", 0), /without file name and mode/],
    ["RRQ with an empty file name", bytes(0, 1, 0, "octet", 0), /empty file name/],
    ["RRQ without the final NUL", bytes(0, 1, "a", 0, "octet"), /not NUL-terminated/],
    ["WRQ file name without NUL", bytes(0, 2, "abc"), /not NUL-terminated/],
    [
      "option without a value",
      bytes(0, 1, "a", 0, "octet", 0, "blksize", 0),
      /option without a value/,
    ],
    [
      "option value without NUL",
      bytes(0, 1, "a", 0, "octet", 0, "blksize", 0, "512"),
      /not NUL-terminated/,
    ],
    ["empty option name", bytes(0, 1, "a", 0, "octet", 0, 0, "512", 0), /empty option name/],
    ["DATA of 3 bytes", bytes(0, 3, 0), /DATA packet shorter than 4 bytes/],
    ["ACK of 3 bytes", bytes(0, 4, 0), /ACK packet shorter than 4 bytes/],
    ["ACK of 2 bytes", bytes(0, 4), /ACK packet shorter than 4 bytes/],
    ["ERROR of 3 bytes", bytes(0, 5, 0), /ERROR packet shorter than 4 bytes/],
    ["OACK without the final NUL", bytes(0, 6, "blksize", 0, "512"), /not NUL-terminated/],
    ["OACK option without a value", bytes(0, 6, "blksize", 0), /option without a value/],
  ];
  for (const [name, input, message] of cases) {
    await t.step(name, () => throwsPacketError(input, message));
  }

  await t.step(`at most ${MAX_OPTIONS} options`, () => {
    const request = (n: number) => {
      const parts: Array<number | string> = [0, 1, "f", 0, "octet", 0];
      for (let i = 0; i < n; i++) parts.push(`o${i}`, 0, "1", 0);
      return bytes(...parts);
    };
    equal((decode(request(MAX_OPTIONS)) as RequestPacket).options.size, MAX_OPTIONS);
    throwsPacketError(request(MAX_OPTIONS + 1), /too many options/);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const lowerAscii = fc.constantFrom(
  ..."abcdefghijklmnopqrstuvwxyz0123456789-_.".split(""),
);
const lowerWord = fc.string({ unit: lowerAscii, minLength: 1, maxLength: 12 });
/** ASCII text without NUL (1-127): what TFTP strings carry. */
const asciiNoNul = fc.string({
  unit: fc.integer({ min: 1, max: 127 }).map((c) => String.fromCharCode(c)),
  maxLength: 40,
});
const options = fc.uniqueArray(fc.tuple(lowerWord, asciiNoNul), {
  selector: ([k]) => k,
  maxLength: MAX_OPTIONS,
}).map((pairs) => new Map(pairs));
const block = fc.integer({ min: 0, max: 65535 });

const packetArb: fc.Arbitrary<Packet> = fc.oneof(
  fc.record({
    op: fc.constantFrom("RRQ" as const, "WRQ" as const),
    filename: fc.uint8Array({ min: 1, max: 255, minLength: 1, maxLength: 300 }),
    mode: fc.string({ unit: lowerAscii, maxLength: 10 }),
    options,
  }),
  fc.record({
    op: fc.constant("DATA" as const),
    block,
    data: fc.uint8Array({ maxLength: 600 }),
  }),
  fc.record({ op: fc.constant("ACK" as const), block }),
  fc.record({ op: fc.constant("ERROR" as const), code: block, message: asciiNoNul }),
  fc.record({ op: fc.constant("OACK" as const), options }),
);

Deno.test("decode of any byte string returns a packet or throws PacketError, nothing else", () => {
  const anyBytes = fc.oneof(
    fc.uint8Array({ maxLength: 700 }),
    // Byte strings that start like real packets reach deeper into the decoder.
    fc.tuple(
      fc.integer({ min: 0, max: 7 }),
      fc.array(
        fc.oneof(
          fc.constant(0),
          fc.integer({ min: 0, max: 255 }),
          fc.integer({ min: 97, max: 122 }),
        ),
        { maxLength: 300 },
      ),
    ).map(([op, rest]) => new Uint8Array([0, op, ...rest])),
  );
  fc.assert(
    fc.property(anyBytes, (input) => {
      try {
        const p = decode(input);
        ok(["RRQ", "WRQ", "DATA", "ACK", "ERROR", "OACK"].includes(p.op));
      } catch (e) {
        if (!(e instanceof PacketError)) throw new Error(`decode threw ${e}`);
      }
    }),
    { numRuns: 5000 },
  );
});

Deno.test("decode(encode(p)) deep-equals p for arbitrary valid packets", () => {
  fc.assert(
    fc.property(packetArb, (p) => {
      const wire = encode(p);
      const back = decode(wire);
      deepEqual(back, p);
      if ("options" in p) {
        deepEqual([...(back as { options: Map<string, string> }).options], [...p.options]);
      }
      // And encoding is stable: the same bytes again.
      deepEqual(encode(back), wire);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("option names of any case decode lower-cased, the first of duplicates winning", () => {
  const caseWord = fc.string({
    unit: fc.constantFrom(..."abcdefgABCDEFG".split("")),
    minLength: 1,
    maxLength: 4,
  });
  fc.assert(
    fc.property(fc.array(fc.tuple(caseWord, asciiNoNul), { maxLength: 20 }), (pairs) => {
      const parts: Array<number | string> = [0, 1, "f", 0, "octet", 0];
      for (const [k, v] of pairs) parts.push(k, 0, v, 0);
      const d = decode(bytes(...parts)) as RequestPacket;
      const expected = new Map<string, string>();
      for (const [k, v] of pairs) {
        if (!expected.has(k.toLowerCase())) expected.set(k.toLowerCase(), v);
      }
      deepEqual([...d.options], [...expected]);
    }),
    { numRuns: 1000 },
  );
});
