/**
 * The pieces of the HTTP cache that readers hold: a shared origin request ({@linkcode Flight}),
 * a handle that reads a download's temporary file as it grows ({@linkcode TailHandle}), and a
 * handle on a complete cached file ({@linkcode diskHandle}).
 *
 * @module
 */

import { ErrorCode, RefusedError } from "../../errors.ts";
import { fsErrorToTftp } from "../fs_errors.ts";
import type { ReadHandle } from "../source.ts";
import type { OriginBody } from "./origin_client.ts";

/** A requester waiting for the origin's answer. */
export interface Waiter {
  /** Hands over the handle. */
  resolve(h: ReadHandle): void;
  /** Hands over the error. */
  reject(e: unknown): void;
}

/** One origin request for one URL, shared by every requester that arrives while it runs. */
export class Flight {
  /** Waiting for headers, streaming into `temp`, or over. */
  state: "pending" | "downloading" | "done" | "failed" = "pending";
  /** Bytes written to `temp` so far (all readable by other handles). */
  written = 0;
  /** `Content-Length`, when known. */
  size?: number;
  /** The temporary file being written. */
  temp = "";
  /** Why it failed. */
  error: RefusedError | null = null;
  /** The origin body being pumped. */
  body: OriginBody | null = null;
  /** Requesters waiting for the origin's answer. */
  waiters: Waiter[] = [];
  /** Cancels the origin request. */
  readonly controller: AbortController = new AbortController();
  /** Resolves when the flight is over. */
  finished: Promise<void> = Promise.resolve();
  /** The cache key. */
  readonly key: string;
  /** The URL fetched. */
  readonly url: URL;
  /** The URL without credentials (handle name). */
  readonly name: string;
  #wake = Promise.withResolvers<void>();

  /**
   * @param key The cache key.
   * @param url The URL to fetch.
   * @param name The URL without credentials.
   */
  constructor(key: string, url: URL, name: string) {
    this.key = key;
    this.url = url;
    this.name = name;
  }

  /** Resolves at the next change (bytes written, done, failed). */
  changed(): Promise<void> {
    return this.#wake.promise;
  }

  /** Wakes every reader waiting in {@linkcode Flight.changed}. */
  notify(): void {
    const w = this.#wake;
    this.#wake = Promise.withResolvers();
    w.resolve();
  }
}

/** A handle on a complete cached file. */
export function diskHandle(file: Deno.FsFile, name: string): ReadHandle {
  let closed = false;
  let size: number | undefined;
  try {
    size = file.statSync().size;
  } catch {
    size = undefined;
  }
  return {
    name,
    size,
    read(p: Uint8Array): Promise<number | null> {
      if (closed) return Promise.resolve(null);
      // A read-ahead may still be pending when the handle is closed: end it quietly.
      return file.read(p).catch((e) => {
        if (closed) return null;
        throw fsErrorToTftp(e, "cache read error");
      });
    },
    close() {
      if (closed) return;
      closed = true;
      file.close();
    },
  };
}

/** A handle that reads a download's temporary file as it grows. */
export class TailHandle implements ReadHandle {
  readonly name: string;
  readonly size?: number;
  readonly #flight: Flight;
  readonly #file: Deno.FsFile;
  #pos = 0;
  #closed = false;

  /**
   * @param flight The download to follow.
   * @param file The temporary file, opened for reading.
   */
  constructor(flight: Flight, file: Deno.FsFile) {
    this.#flight = flight;
    this.#file = file;
    this.name = flight.name;
    this.size = flight.size;
  }

  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#closed) return null;
      const f = this.#flight;
      if (f.state === "failed") throw f.error!;
      const available = f.written - this.#pos;
      if (available > 0) {
        let n: number | null;
        try {
          n = await this.#file.read(p.subarray(0, Math.min(p.length, available)));
        } catch (e) {
          if (this.#closed) return null;
          throw fsErrorToTftp(e, "cache read error");
        }
        if (n === null || n === 0) {
          throw new RefusedError(
            ErrorCode.NOT_DEFINED,
            "cache read error: file shorter than written",
          );
        }
        this.#pos += n;
        return n;
      }
      if (f.state === "done") return null;
      await f.changed();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}
