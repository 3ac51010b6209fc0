/**
 * Runs a script in a network namespace of its own: the script calls {@link enterNetns} first; the
 * outer process creates the namespace, re-runs the same script inside it with `ip netns exec`,
 * waits for it, cleans up and exits with its code. Needs root (CAP_SYS_ADMIN) and iproute2.
 *
 * @module
 */

/** Environment variable that tells the re-run script which namespace it is in. */
export const NETNS_ENV = "TFTPKIT_NETNS";

async function ip(args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  const o = await new Deno.Command("ip", { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { ok: o.success, out: dec.decode(o.stdout), err: dec.decode(o.stderr).trim() };
}

async function mustIp(args: string[]): Promise<void> {
  const r = await ip(args);
  if (!r.ok) throw new Error(`ip ${args.join(" ")}: ${r.err || "failed"}`);
}

/** SIGKILLs every process still in namespace `ns` (by PID, as `ip netns pids` lists them). */
async function killNetnsPids(ns: string): Promise<number> {
  let killed = 0;
  for (let round = 0; round < 5; round++) {
    const r = await ip(["netns", "pids", ns]);
    const pids = r.out.split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
        killed++;
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return killed;
}

/**
 * If env TFTPKIT_NETNS is set, returns it (we are inside). Otherwise creates namespace
 * `${prefix}-${random}`, brings lo up, adds 127.0.0.2/8 to lo (tftpd-hpa exits 66 in a namespace
 * with only 127.0.0.1 because glibc sees no other IPv4 address), re-runs `Deno.execPath()` with
 * the same script + args (+ same permission flags: `--allow-all`, and `--v8-flags`/unstable as
 * needed) under `ip netns exec NS`, env TFTPKIT_NETNS=NS; forwards SIGINT/SIGTERM to the child;
 * afterwards kills by PID anything left in the namespace (`ip netns pids NS`), deletes the
 * namespace, and calls Deno.exit with the child's code.
 *
 * @param prefix namespace name prefix, e.g. "tftpkit-bench"
 * @returns the namespace's name (only ever returns inside the namespace)
 */
export async function enterNetns(prefix: string): Promise<string> {
  const inside = Deno.env.get(NETNS_ENV);
  if (inside) return inside;

  const ns = `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
  let code = 1;
  let made = false;
  let child: Deno.ChildProcess | null = null;
  let stopped = false;
  const forward: [Deno.Signal, () => void][] = [];
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const handler = () => {
      stopped = true;
      try {
        child?.kill(sig);
      } catch {
        // already gone
      }
    };
    Deno.addSignalListener(sig, handler);
    forward.push([sig, handler]);
  }
  try {
    await mustIp(["netns", "add", ns]);
    made = true;
    await mustIp(["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    await mustIp(["netns", "exec", ns, "ip", "addr", "add", "127.0.0.2/8", "dev", "lo"]);

    const flags = ["--allow-all"];
    const v8 = Deno.env.get("DENO_V8_FLAGS");
    if (v8) flags.push(`--v8-flags=${v8}`);
    // The script is re-run from the same working directory, so deno.json (and its "unstable"
    // list) is found the same way; --unstable-net covers a script run outside the repo.
    flags.push("--unstable-net");
    if (stopped) throw new Error("stopped before start");
    child = new Deno.Command("ip", {
      args: ["netns", "exec", ns, Deno.execPath(), "run", ...flags, Deno.mainModule, ...Deno.args],
      env: { [NETNS_ENV]: ns },
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const st = await child.status;
    const signals: Record<string, number> = { SIGINT: 2, SIGTERM: 15, SIGKILL: 9 };
    code = st.signal ? 128 + (signals[st.signal] ?? 1) : st.code;
  } catch (err) {
    console.error(`netns: ${err instanceof Error ? err.message : String(err)}`);
    code = 1;
  } finally {
    if (made) {
      const killed = await killNetnsPids(ns);
      if (killed > 0) console.error(`netns: killed ${killed} process(es) left in ${ns}`);
      const del = await ip(["netns", "del", ns]);
      if (!del.ok) console.error(`netns: ip netns del ${ns}: ${del.err}`);
    }
    for (const [sig, handler] of forward) Deno.removeSignalListener(sig, handler);
  }
  Deno.exit(code);
}
