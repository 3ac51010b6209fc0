/**
 * Firmware test support: a child process whose output (stdout and stderr, in arrival order) is
 * kept as text that can be awaited with a pattern and a timeout, and whose stdin can be written
 * (a serial console). Stopped by its own PID only.
 *
 * @module
 */

/** Removes ANSI escape sequences and carriage returns (what firmware consoles are full of). */
export function plain(text: string): string {
  // deno-lint-ignore no-control-regex -- ESC is exactly what is being removed
  return text.replace(/\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[78=>c])|\r/g, "");
}

/** Last `lines` lines of `text`, after {@linkcode plain}. */
export function tail(text: string, lines = 40): string {
  return plain(text).split("\n").slice(-lines).join("\n");
}

/** A spawned process with its output as text. */
export class Proc {
  readonly child: Deno.ChildProcess;
  /** Everything printed so far (stdout and stderr interleaved as they arrived). */
  text = "";
  /** Where {@linkcode expect} searches from: an index into {@linkcode plainText}. */
  cursor = 0;
  /** Resolves with the exit code once the process has ended and its output is read. */
  readonly exited: Promise<number>;
  #done = false;
  #plain = "";
  #plainOf = 0;
  #waiters: Array<() => void> = [];
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;

  constructor(readonly label: string, cmd: string, args: string[], opts: ProcOptions = {}) {
    this.child = new Deno.Command(cmd, {
      args,
      cwd: opts.cwd,
      stdin: opts.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (opts.stdin) this.#writer = this.child.stdin.getWriter();
    const pumps = Promise.all([this.#pump(this.child.stdout), this.#pump(this.child.stderr)]);
    this.exited = pumps.then(() => this.child.status).then((s) => {
      this.#done = true;
      this.#wake();
      return s.code;
    });
  }

  /** The process ID. */
  get pid(): number {
    return this.child.pid;
  }

  /** Whether the process has ended. */
  get done(): boolean {
    return this.#done;
  }

  /** The output as lines. */
  get lines(): string[] {
    return this.text.split("\n").filter((l) => l.length > 0);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      this.text += dec.decode(chunk, { stream: true });
    }
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The output without escape sequences and carriage returns ({@linkcode plain}). */
  get plainText(): string {
    if (this.#plainOf !== this.text.length) {
      this.#plain = plain(this.text);
      this.#plainOf = this.text.length;
    }
    return this.#plain;
  }

  /**
   * Waits until the plain output after {@linkcode cursor} matches `pattern`, moves the cursor
   * past the match and returns it. Polls every 100 ms (consoles arrive a byte at a time).
   *
   * @throws {Error} On timeout or when the process ends first; the message has the output's tail.
   */
  async expect(
    pattern: RegExp,
    timeoutMs: number,
    what = String(pattern),
  ): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const done = this.#done;
      const m = this.plainText.slice(this.cursor).match(pattern);
      if (m && m.index !== undefined) {
        this.cursor += m.index + m[0].length;
        return m;
      }
      if (done) {
        throw new Error(`${this.label} ended before printing ${what}:\n${tail(this.text, 15)}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${this.label}: no ${what} within ${timeoutMs / 1000} s:\n${tail(this.text, 15)}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Writes `text` to the process's stdin (a serial console's input). */
  async write(text: string): Promise<void> {
    if (!this.#writer) throw new Error(`${this.label} has no stdin`);
    await this.#writer.write(new TextEncoder().encode(text));
  }

  /** Sends `signal` (SIGKILL after `graceMs`) and waits for the end. Returns the exit code. */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 5000): Promise<number> {
    try {
      await this.#writer?.close();
    } catch { /* already closed */ }
    if (!this.#done) {
      try {
        this.child.kill(signal);
      } catch { /* already gone */ }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        try {
          this.child.kill("SIGKILL");
        } catch { /* gone */ }
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    return await this.exited;
  }
}

/** Options of {@linkcode Proc}. */
export interface ProcOptions {
  cwd?: string;
  /** Keep stdin open for {@linkcode Proc.write}. */
  stdin?: boolean;
}
