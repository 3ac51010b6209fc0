/**
 * Test support: a minimal lock-step TFTP download, run as its own process (for example inside a
 * network namespace with `ip netns exec`). Prints one JSON line: every address DATA came from
 * and the file as base64. Exits 1 on an ERROR or a timeout.
 *
 * Usage: `deno run --allow-net tests/support/netns_client.ts HOST PORT NAME [LOCAL]` — LOCAL is the
 * address to send from (default 127.0.0.1).
 *
 * @module
 */

const [host, portText, name, local = "127.0.0.1"] = Deno.args;
const conn = Deno.listenDatagram({ transport: "udp", hostname: local, port: 0 });
const enc = new TextEncoder();
const nameBytes = enc.encode(name);
const rrq = new Uint8Array(2 + nameBytes.length + 1 + 6);
rrq[1] = 1;
rrq.set(nameBytes, 2);
rrq.set(enc.encode("octet"), 3 + nameBytes.length);
await conn.send(rrq, { transport: "udp", hostname: host, port: Number(portText) });

function fail(message: string): never {
  console.log(JSON.stringify({ error: message }));
  Deno.exit(1);
}

const buf = new Uint8Array(65536);
const froms = new Set<string>();
const parts: number[] = [];
let expected = 1;
for (;;) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const got = await Promise.race([
    conn.receive(buf),
    new Promise<null>((r) => (timer = setTimeout(() => r(null), 10_000))),
  ]);
  clearTimeout(timer);
  if (!got) fail(`no DATA ${expected} within 10 s`);
  const [data, addr] = got as [Uint8Array, Deno.NetAddr];
  const op = (data[0] << 8) | data[1];
  if (op === 5) fail(`ERROR ${(data[2] << 8) | data[3]}`);
  if (op !== 3) fail(`unexpected opcode ${op}`);
  const block = (data[2] << 8) | data[3];
  froms.add(`${addr.hostname}:${addr.port}`);
  if (block === expected) {
    parts.push(...data.subarray(4));
    expected++;
  }
  await conn.send(new Uint8Array([0, 4, data[2], data[3]]), addr);
  if (block === expected - 1 && data.length - 4 < 512) break;
}
let binary = "";
for (const b of parts) binary += String.fromCharCode(b);
console.log(JSON.stringify({ froms: [...froms], data: btoa(binary) }));
Deno.exit(0);
