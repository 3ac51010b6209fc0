/**
 * Run a benchmark script inside a network namespace of its own: servers that only listen on a
 * fixed port (dnsmasq's TFTP is on port 69) cannot clash with anything on the host, and whatever
 * the run leaves behind is killed with the namespace.
 *
 * Needs root (`ip netns add`).
 *
 * @module
 */

/** Runs `ip ARGS…`; throws with its output if it fails. */
async function ip(args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")} failed (${out.code}): ${dec.decode(out.stderr).trim()}`);
  }
  return dec.decode(out.stdout);
}

/** SIGKILLs every process left in `ns` (by PID, from `ip netns pids`), then deletes `ns`. */
async function removeNetns(ns: string): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const pids = (await ip(["netns", "pids", ns]).catch(() => "")).split(/\s+/).filter(Boolean);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        Deno.kill(Number(pid), "SIGKILL");
      } catch { /* already gone */ }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await ip(["netns", "del", ns]).catch((e) => console.error((e as Error).message));
}

/**
 * If env TFTPKIT_NETNS is set, returns it (we are inside). Otherwise creates namespace
 * `${prefix}-${random}`, brings lo up, adds 127.0.0.2/8 to lo (tftpd-hpa exits 66 in a namespace
 * with only 127.0.0.1), re-runs `Deno.execPath()` with the same script + args under
 * `ip netns exec NS` (`--allow-all`, unstable net), env TFTPKIT_NETNS=NS; forwards SIGINT/SIGTERM
 * to the child; afterwards kills by PID anything left in the namespace (`ip netns pids NS`),
 * deletes the namespace, and Deno.exit()s with the child's code.
 *
 * @example
 * ```ts ignore
 * const ns = await enterNetns("tftpkit-bench"); // from here on, inside the namespace
 * ```
 */
export async function enterNetns(prefix: string): Promise<string> {
  const inside = Deno.env.get("TFTPKIT_NETNS");
  if (inside) return inside;
  const ns = `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
  await ip(["netns", "add", ns]);
  let code = 1;
  const forwards: Array<[Deno.Signal, () => void]> = [];
  try {
    await ip(["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    await ip(["netns", "exec", ns, "ip", "addr", "add", "127.0.0.2/8", "dev", "lo"]);
    const script = Deno.mainModule.startsWith("file:")
      ? decodeURIComponent(new URL(Deno.mainModule).pathname)
      : Deno.mainModule;
    const child = new Deno.Command("ip", {
      args: [
        ...["netns", "exec", ns, Deno.execPath(), "run", "--allow-all", "--unstable-net"],
        ...[script, ...Deno.args],
      ],
      env: { TFTPKIT_NETNS: ns },
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      const forward = () => {
        try {
          child.kill(sig);
        } catch { /* already gone */ }
      };
      Deno.addSignalListener(sig, forward);
      forwards.push([sig, forward]);
    }
    const status = await child.status;
    code = status.signal ? 128 + signalNumber(status.signal) : status.code;
  } finally {
    for (const [sig, forward] of forwards) Deno.removeSignalListener(sig, forward);
    await removeNetns(ns);
  }
  Deno.exit(code);
}

/** The number of the signals a child is likely to die of (for the 128 + N exit code). */
function signalNumber(sig: Deno.Signal): number {
  return { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[sig as string] ?? 1;
}
