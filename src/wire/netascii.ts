/**
 * Netascii (RFC 764 as used by RFC 1350): LF is sent as CR LF and a bare CR as CR NUL.
 *
 * Both directions are stateful streams, so a CR at the end of one block and its LF or NUL at the
 * start of the next are handled correctly. Local files use LF line ends on every platform.
 *
 * @module
 */

const CR = 13;
const LF = 10;
const NUL = 0;

/**
 * Encodes local bytes to netascii, chunk by chunk.
 *
 * @example
 * ```ts
 * import { NetasciiEncoder } from "./netascii.ts";
 * import { deepEqual } from "node:assert/strict";
 * const enc = new NetasciiEncoder();
 * deepEqual(enc.encode(new Uint8Array([65, 10, 13])), new Uint8Array([65, 13, 10, 13, 0]));
 * ```
 */
export class NetasciiEncoder {
  /**
   * Encodes one chunk. The output is at most twice the input.
   *
   * @param input Local bytes.
   * @returns The netascii bytes (a new array).
   */
  encode(input: Uint8Array): Uint8Array {
    const out = new Uint8Array(input.length * 2);
    let o = 0;
    for (let i = 0; i < input.length; i++) {
      const b = input[i];
      if (b === LF) {
        out[o++] = CR;
        out[o++] = LF;
      } else if (b === CR) {
        out[o++] = CR;
        out[o++] = NUL;
      } else {
        out[o++] = b;
      }
    }
    return out.subarray(0, o);
  }
}

/**
 * Decodes netascii to local bytes, chunk by chunk: CR LF → LF, CR NUL → CR. A CR followed by
 * anything else is kept as it is (lenient, as most servers are).
 *
 * @example
 * ```ts
 * import { NetasciiDecoder } from "./netascii.ts";
 * import { deepEqual } from "node:assert/strict";
 * const dec = new NetasciiDecoder();
 * const a = dec.decode(new Uint8Array([65, 13]));
 * const b = dec.decode(new Uint8Array([10, 66]));
 * deepEqual([...a, ...b, ...dec.flush()], [65, 10, 66]);
 * ```
 */
export class NetasciiDecoder {
  #pendingCr = false;

  /**
   * Decodes one chunk; a trailing CR is held until the next chunk or {@linkcode flush}.
   *
   * @param input Netascii bytes.
   * @returns Local bytes (a new array).
   */
  decode(input: Uint8Array): Uint8Array {
    const out = new Uint8Array(input.length + 1);
    let o = 0;
    let i = 0;
    if (this.#pendingCr && input.length > 0) {
      this.#pendingCr = false;
      const b = input[0];
      if (b === LF) {
        out[o++] = LF;
        i = 1;
      } else if (b === NUL) {
        out[o++] = CR;
        i = 1;
      } else {
        out[o++] = CR;
      }
    }
    for (; i < input.length; i++) {
      const b = input[i];
      if (b !== CR) {
        out[o++] = b;
        continue;
      }
      if (i + 1 === input.length) {
        this.#pendingCr = true;
        break;
      }
      const n = input[i + 1];
      if (n === LF) {
        out[o++] = LF;
        i++;
      } else if (n === NUL) {
        out[o++] = CR;
        i++;
      } else {
        out[o++] = CR;
      }
    }
    return out.subarray(0, o);
  }

  /**
   * Ends the stream: returns a CR still held back, if any.
   *
   * @returns The remaining bytes.
   */
  flush(): Uint8Array {
    if (!this.#pendingCr) return new Uint8Array(0);
    this.#pendingCr = false;
    return new Uint8Array([CR]);
  }
}
