import { deepEqual } from "node:assert/strict";
import fc from "fast-check";
import { NetasciiDecoder, NetasciiEncoder } from "./netascii.ts";

const CR = 13, LF = 10, NUL = 0;
const te = new TextEncoder();

function decodeAll(chunks: Uint8Array[]): number[] {
  const dec = new NetasciiDecoder();
  const out: number[] = [];
  for (const c of chunks) out.push(...dec.decode(c));
  out.push(...dec.flush());
  return out;
}

/** Splits `data` at the given cut points (any numbers; taken modulo the length, sorted). */
function split(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => (data.length ? c % (data.length + 1) : 0)))]
    .sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    out.push(data.subarray(from, p));
    from = p;
  }
  out.push(data.subarray(from));
  return out;
}

Deno.test("the encoder sends LF as CR LF and a bare CR as CR NUL", async (t) => {
  const enc = new NetasciiEncoder();
  await t.step("line ends", () => {
    deepEqual(enc.encode(te.encode("a\nb\n")), new Uint8Array([97, CR, LF, 98, CR, LF]));
  });
  await t.step("bare CR", () => {
    deepEqual(enc.encode(new Uint8Array([CR])), new Uint8Array([CR, NUL]));
    deepEqual(enc.encode(new Uint8Array([65, CR, 66])), new Uint8Array([65, CR, NUL, 66]));
  });
  await t.step("a local CR LF becomes CR NUL CR LF", () => {
    deepEqual(enc.encode(new Uint8Array([CR, LF])), new Uint8Array([CR, NUL, CR, LF]));
  });
  await t.step("other bytes (NUL, 8-bit) pass through", () => {
    deepEqual(enc.encode(new Uint8Array([0, 255, 128, 9])), new Uint8Array([0, 255, 128, 9]));
    deepEqual(enc.encode(new Uint8Array(0)), new Uint8Array(0));
  });
  await t.step("the encoder keeps no state between chunks", () => {
    deepEqual(enc.encode(new Uint8Array([CR])), new Uint8Array([CR, NUL]));
    deepEqual(enc.encode(new Uint8Array([LF])), new Uint8Array([CR, LF]));
  });
});

Deno.test("the decoder turns CR LF into LF and CR NUL into CR", async (t) => {
  await t.step("whole input", () => {
    deepEqual(decodeAll([new Uint8Array([97, CR, LF, 98, CR, NUL, 99])]), [97, LF, 98, CR, 99]);
  });
  await t.step("a CR at the end of a chunk waits for the next one", () => {
    const dec = new NetasciiDecoder();
    deepEqual([...dec.decode(new Uint8Array([65, CR]))], [65]);
    deepEqual([...dec.decode(new Uint8Array([LF, 66]))], [LF, 66]);
    deepEqual([...dec.decode(new Uint8Array([CR]))], []);
    deepEqual([...dec.decode(new Uint8Array([NUL]))], [CR]);
    deepEqual([...dec.flush()], []);
  });
  await t.step("empty chunks keep a pending CR pending", () => {
    const dec = new NetasciiDecoder();
    deepEqual([...dec.decode(new Uint8Array([CR]))], []);
    deepEqual([...dec.decode(new Uint8Array(0))], []);
    deepEqual([...dec.decode(new Uint8Array([LF]))], [LF]);
  });
  await t.step("a CR at the very end comes out of flush()", () => {
    const dec = new NetasciiDecoder();
    deepEqual([...dec.decode(new Uint8Array([65, CR]))], [65]);
    deepEqual([...dec.flush()], [CR]);
    deepEqual([...dec.flush()], [], "flush is idempotent");
  });
  await t.step("lenient: a bare CR followed by anything else is kept", () => {
    deepEqual(decodeAll([new Uint8Array([65, CR, 66])]), [65, CR, 66]);
    deepEqual(decodeAll([new Uint8Array([CR, CR, LF])]), [CR, LF]);
    deepEqual(decodeAll([new Uint8Array([CR]), new Uint8Array([66])]), [CR, 66]);
    deepEqual(decodeAll([new Uint8Array([CR]), new Uint8Array([CR]), new Uint8Array([LF])]), [
      CR,
      LF,
    ]);
  });
  await t.step("a bare LF is kept", () => {
    deepEqual(decodeAll([new Uint8Array([65, LF, 66])]), [65, LF, 66]);
  });
});

Deno.test("decode(encode(x)) == x for any bytes and any chunk splits on both sides", () => {
  // Bytes rich in CR, LF and NUL.
  const byte = fc.oneof(
    fc.constantFrom(CR, LF, NUL, CR, LF),
    fc.integer({ min: 0, max: 255 }),
  );
  fc.assert(
    fc.property(
      fc.array(byte, { maxLength: 400 }).map((a) => new Uint8Array(a)),
      fc.array(fc.nat(), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (data, encodeCuts, decodeCuts) => {
        const enc = new NetasciiEncoder();
        const wire: number[] = [];
        for (const chunk of split(data, encodeCuts)) wire.push(...enc.encode(chunk));
        // The wire has no bare CR and no bare LF.
        for (let i = 0; i < wire.length; i++) {
          if (wire[i] === CR && wire[i + 1] !== LF && wire[i + 1] !== NUL) {
            throw new Error(`bare CR at ${i}`);
          }
          if (wire[i] === LF && wire[i - 1] !== CR) throw new Error(`bare LF at ${i}`);
        }
        const back = decodeAll(split(new Uint8Array(wire), decodeCuts));
        deepEqual(back, [...data]);
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("every split between CR and its partner decodes correctly", () => {
  const wire = new Uint8Array([CR, LF, CR, NUL, 65, CR, LF, CR, NUL]);
  for (let cut = 0; cut <= wire.length; cut++) {
    deepEqual(
      decodeAll([wire.subarray(0, cut), wire.subarray(cut)]),
      [LF, CR, 65, LF, CR],
      `${cut}`,
    );
  }
});
