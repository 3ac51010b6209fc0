/**
 * Unit tests for the pure helpers of `deno task bench` (scripts/bench/): option checks, best-C
 * choice, targets, tables, row selection and pinning.
 */
import assert from "node:assert/strict";
import { checkOack, pickBestC, ratioOf, spread, targetStatus } from "../scripts/bench/judge.ts";
import { parseOnly, parseWorkersList, rowDefs, targetDefs } from "../scripts/bench/defs.ts";
import { memoryTable, speedTable, targetsTable } from "../scripts/bench/tables.ts";
import type { RowResult, ServerOutcome } from "../scripts/bench/report.ts";
import { pinned, pinPrefix } from "../scripts/bench/servers.ts";
import { type ClientRowResult, tftpkitTaskFlags } from "../scripts/bench/client_row.ts";

function outcome(name: string, medianMBps: number | null, extra: Partial<ServerOutcome> = {}) {
  return {
    name,
    ok: medianMBps !== null,
    runsMs: [],
    runsMBps: medianMBps === null ? [] : [medianMBps],
    medianMBps,
    ...extra,
  } satisfies ServerOutcome;
}

function row(id: string, ours: number | null, c: ServerOutcome[], key = id): RowResult {
  return {
    id,
    title: `row ${id}`,
    fileBytes: 1,
    options: {},
    pin: "off",
    ours: [{ key, args: [], outcome: outcome("tftpkit", ours) }],
    c,
  };
}

Deno.test("checkOack: all options answered as asked is supported", () => {
  const r = checkOack([["blksize", 1468], ["windowsize", 16]], { blksize: 1468, windowsize: 16 });
  assert.deepEqual(r, { supported: true, problems: [] });
});

Deno.test("checkOack: a left-out option is not supported", () => {
  const r = checkOack([["blksize", 1468], ["windowsize", 16]], { blksize: 1468 });
  assert.equal(r.supported, false);
  assert.deepEqual(r.problems, ["windowsize left out"]);
});

Deno.test("checkOack: lowered blksize (dnsmasq's 2263 cap) is not supported", () => {
  const r = checkOack([["blksize", 8192]], { blksize: 2263 });
  assert.equal(r.supported, false);
  assert.match(r.problems[0], /blksize lowered to 2263/);
});

Deno.test("checkOack: lowered windowsize only where tftpkit's window fit is allowed", () => {
  const asked: [string, number][] = [["blksize", 8192], ["windowsize", 64]];
  const oack = { blksize: 8192, windowsize: 8 };
  assert.equal(checkOack(asked, oack).supported, false);
  assert.equal(checkOack(asked, oack, { mayLowerWindow: true }).supported, true);
});

Deno.test("checkOack: no OACK to options, OACK without options, tsize size", () => {
  assert.equal(checkOack([["blksize", 1468]], null).supported, false);
  assert.equal(checkOack([], null).supported, true);
  assert.equal(checkOack([], { blksize: 512 }).supported, false);
  const asked: [string, number][] = [["blksize", 1468], ["tsize", 0]];
  assert.equal(
    checkOack(asked, { blksize: 1468, tsize: 100 }, { tsizeBytes: 100 }).supported,
    true,
  );
  assert.equal(
    checkOack(asked, { blksize: 1468, tsize: 99 }, { tsizeBytes: 100 }).supported,
    false,
  );
  assert.equal(checkOack(asked, { blksize: 1468 }, { tsizeBytes: 100 }).supported, false);
});

Deno.test("pickBestC ignores servers that were not timed", () => {
  const best = pickBestC([
    { name: "tftpd-hpa", medianMBps: 10 },
    { name: "atftpd", medianMBps: null },
    { name: "dnsmasq", medianMBps: 12 },
  ]);
  assert.equal(best?.name, "dnsmasq");
  assert.equal(pickBestC([{ name: "atftpd", medianMBps: null }]), null);
});

Deno.test("ratioOf, targetStatus, spread", () => {
  assert.equal(ratioOf(3, 2), 1.5);
  assert.equal(ratioOf(null, 2), null);
  assert.equal(ratioOf(3, 0), null);
  assert.equal(targetStatus(1.5, 1.5), "PASS");
  assert.equal(targetStatus(0.99, 1), "below");
  assert.equal(targetStatus(null, 1), "N/A");
  assert.equal(spread([10, 30, 20]), 2);
  assert.ok(Number.isNaN(spread([1])));
});

Deno.test("speedTable: cells, best C and ratio per tftpkit variant", () => {
  const r = row("2a", 120, [
    outcome("tftpd-hpa", null, { supported: false, reason: "not supported: windowsize" }),
    outcome("atftpd", 150),
    outcome("dnsmasq", null, { reason: "not available: --no-netns" }),
  ]);
  const t = speedTable([r]);
  assert.deepEqual(t.header.slice(2), [
    "tftpkit",
    "tftpd-hpa",
    "atftpd",
    "dnsmasq",
    "best C",
    "tftpkit / best C",
  ]);
  assert.deepEqual(t.rows[0].slice(2), [
    "120.0 MB/s",
    "not supported",
    "150.0 MB/s",
    "not available",
    "atftpd",
    "0.80",
  ]);
});

Deno.test("targetsTable: ratio against the named server, best C beside it", () => {
  const rows = [
    row("1", 10, [outcome("tftpd-hpa", 8), outcome("atftpd", 12), outcome("dnsmasq", 9)]),
    row("3", 30, [outcome("tftpd-hpa", 20), outcome("atftpd", 25), outcome("dnsmasq", 40)], "3/w2"),
  ];
  const client: ClientRowResult = {
    id: "8",
    title: "get",
    fileBytes: 1,
    pin: "cross",
    ratio: 0.5,
    ours: { name: "tftpkit get", ok: true, runsMs: [], medianMs: 2, oneByteMs: [], versionMs: [] },
    atftp: { name: "atftp", ok: true, runsMs: [], medianMs: 1, oneByteMs: [], versionMs: [] },
  };
  const t = targetsTable(rows, client, targetDefs("3/w2"));
  const byWhat = Object.fromEntries(t.rows.map((r) => [r[0], r.slice(1)]));
  assert.deepEqual(byWhat["50 concurrent >= 1.5x tftpd-hpa"], [
    "3/w2",
    "1.50",
    "PASS",
    "dnsmasq",
    "0.75",
  ]);
  assert.deepEqual(byWhat["lock-step 512 B >= 1.0x tftpd-hpa"], [
    "1",
    "1.25",
    "PASS",
    "atftpd",
    "0.83",
  ]);
  assert.equal(byWhat["windowed 16@1468 >= 1.0x atftpd"][2], "not run");
  const get = t.rows.find((r) => r[1] === "8")!;
  assert.deepEqual(get.slice(2, 4), ["0.50", "below"]);
});

Deno.test("memoryTable: 4/wN rows and RSS per worker from idle RSS", () => {
  const mem = (idle: number, peak: number) => ({
    pid: 1,
    idleRssMiB: idle,
    maxSampledRssMiB: peak,
    vmHwmMiB: peak,
    peakMiB: peak,
    samples: 10,
    threads: 5,
    childProcesses: 0,
  });
  const r: RowResult = {
    ...row("3", 10, []),
    ours: [1, 2, 4].map((n) => ({
      key: `3/w${n}`,
      args: ["--workers", String(n)],
      outcome: outcome("tftpkit", 10, { memory: mem(50 + 15 * (n - 1), n === 4 ? 160 : 100) }),
    })),
  };
  const t = memoryTable([r]);
  assert.deepEqual(t.rows.map((x) => x[0]), ["4/w1", "4/w2", "4/w4", "idle"]);
  assert.equal(t.rows[0][7], "PASS");
  assert.equal(t.rows[2][7], "below");
  assert.equal(t.rows[3][2], "15.0 MiB");
});

Deno.test("parseOnly and parseWorkersList", () => {
  assert.deepEqual([...parseOnly("1,2,4")], ["1", "2a", "2b", "2c", "3"]);
  assert.deepEqual([...parseOnly("7, 8")], ["7a", "7b", "8"]);
  assert.throws(() => parseOnly("9"), /unknown row/);
  assert.deepEqual(parseWorkersList("1,2,4,2"), [1, 2, 4]);
  assert.throws(() => parseWorkersList("0"));
});

Deno.test("rowDefs: row 3 has one tftpkit per worker count, rows 3 and 6 are not pinned", () => {
  const defs = rowDefs(true, [1, 3]);
  const r3 = defs.find((d) => d.id === "3")!;
  assert.deepEqual(r3.ours.map((v) => v.key), ["3/w1", "3/w3"]);
  assert.equal(r3.pinned, false);
  assert.equal(defs.find((d) => d.id === "6")!.pinned, false);
  assert.deepEqual(defs.find((d) => d.id === "6")!.ours[0].args, []);
  assert.ok(defs.filter((d) => d.pinned).every((d) => /^(1|2|7)/.test(d.id)));
});

Deno.test("pinPrefix and pinned", () => {
  assert.deepEqual(pinPrefix("cross", "server", "taskset"), ["taskset", "-c", "0"]);
  assert.deepEqual(pinPrefix("cross", "client", "taskset"), ["taskset", "-c", "1"]);
  assert.deepEqual(pinPrefix("same", "client", "taskset"), ["taskset", "-c", "0"]);
  assert.equal(pinPrefix("off", "server", "taskset"), null);
  const spec = pinned({ name: "x", cmd: "/bin/srv", args: ["-a"] }, ["taskset", "-c", "0"]);
  assert.deepEqual([spec.cmd, ...spec.args], ["taskset", "-c", "0", "/bin/srv", "-a"]);
});

Deno.test("tftpkitTaskFlags reads the flags of deno task tftpkit", () => {
  const json = JSON.stringify({
    tasks: { tftpkit: "deno run --v8-flags=--x=4 --allow-net --allow-read main.ts" },
  });
  assert.deepEqual(tftpkitTaskFlags(json), ["--v8-flags=--x=4", "--allow-net", "--allow-read"]);
});
