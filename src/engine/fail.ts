/**
 * The one place that decides which ERROR packet a failure sends, and sends it. Every ERROR that
 * tftpkit puts on the wire — a refusal from the listening port, ERROR 5 to a stranger, the end of
 * a failed transfer on either side — goes through {@linkcode sendError}.
 *
 * @module
 */

import { AbortedError, ErrorCode, printable, RefusedError, TftpError } from "../errors.ts";
import { errorPacket } from "../wire/packet.ts";

/**
 * The ERROR packet due to the peer for `e`, or `null` when none is: the peer's own ERROR and a
 * timeout are never answered; a refusal sends its code and message; an abort sends ERROR 0 with
 * the abort's message ("server shutting down", "cancelled"). Messages are made printable ASCII.
 *
 * @example
 * ```ts
 * import { errorPacketFor } from "./fail.ts";
 * import { PeerError, RefusedError } from "../errors.ts";
 * import { equal } from "node:assert/strict";
 * equal(errorPacketFor(new RefusedError(1, "file not found"))?.[3], 1);
 * equal(errorPacketFor(new PeerError(8, "User aborted")), null);
 * ```
 */
export function errorPacketFor(e: TftpError): Uint8Array | null {
  if (e instanceof RefusedError) return errorPacket(e.code, printable(e.message));
  if (e instanceof AbortedError) return errorPacket(ErrorCode.NOT_DEFINED, printable(e.message));
  return null;
}

/**
 * Sends the ERROR due for `e` (see {@linkcode errorPacketFor}) through `send`; never throws.
 *
 * @param send Sends one datagram to the peer.
 * @param e The failure.
 *
 * @example
 * ```ts
 * import { sendError } from "./fail.ts";
 * import { RefusedError } from "../errors.ts";
 * import { equal } from "node:assert/strict";
 * const sent: Uint8Array[] = [];
 * await sendError(async (p) => void sent.push(p), new RefusedError(2, "access violation"));
 * equal(sent.length, 1);
 * ```
 */
export async function sendError(
  send: (packet: Uint8Array) => Promise<unknown>,
  e: TftpError,
): Promise<void> {
  const packet = errorPacketFor(e);
  if (!packet) return;
  try {
    await send(packet);
  } catch {
    // The peer learns of the failure by its own timeout.
  }
}
