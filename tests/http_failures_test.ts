/**
 * Serving from an HTTP origin end to end when the origin fails: error statuses, redirect loops,
 * an unreachable or slow origin, and bodies that stall or break mid-transfer reach real clients
 * (tftp-hpa, curl) and our own as TFTP errors, in time.
 */

import { equal, match, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { download, get, PeerError } from "../src/mod.ts";
import { curl, HOST, hpa, readOrEmpty, tree, withRig } from "./support/http_fixture.ts";
import { testBytes } from "./support/http_origin.ts";
import { RawPeer, request } from "./support/raw.ts";

Deno.test("origin failures reach the client as TFTP errors before any OACK", async (t) => {
  const closed = Deno.listen({ hostname: HOST, port: 0 });
  const deadPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  await withRig((origin) => {
    origin.route("/pxe/forbidden", () => new Response("no", { status: 403 }));
    origin.route("/pxe/broken", () => new Response("oops", { status: 500 }));
    origin.route("/pxe/loop", () => Response.redirect(`${origin.base}/pxe/loop`));
    origin.route("/pxe/dead", () => Response.redirect(`http://${HOST}:${deadPort}/x`));
    return tree(origin);
  }, async ({ origin, target, dir, records }) => {
    const cases: Array<[string, number, RegExp]> = [
      ["missing", 1, /file not found/],
      ["forbidden", 2, /access denied/],
      ["broken", 0, /^origin returned HTTP 500$/],
      ["loop", 0, /redirected more than 5 times/],
      ["dead", 0, /^origin unreachable/],
      ["../etc/passwd", 2, /'\.\.'/],
    ];
    for (const [name, code, message] of cases) {
      await t.step(`${name}: ERROR ${code} as the first reply, even with options`, async () => {
        const peer = new RawPeer();
        try {
          await peer.send(
            request("RRQ", name, "octet", { blksize: "1428", tsize: "0" }),
            target.port,
          );
          const { packet } = await peer.expect(10_000);
          equal(packet.op, "ERROR");
          if (packet.op === "ERROR") {
            equal(packet.code, code);
            match(packet.message, message);
          }
          equal((await peer.drain(300)).length, 0, "nothing follows the ERROR");
        } finally {
          peer.close();
        }
      });
      await t.step(`${name}: our client reports PeerError ${code}`, async () => {
        await rejects(get(target, name), (e: unknown) => {
          ok(e instanceof PeerError, String(e));
          equal(e.code, code);
          match(e.peerMessage, message);
          return true;
        });
      });
    }
    await t.step("tftp-hpa shows the origin's refusal", async () => {
      const out = join(dir, "x");
      const r = await hpa(target.port, "forbidden", out);
      match(r.stdout + r.stderr, /Error code 2: access denied \(origin returned HTTP 403\)/);
      equal((await readOrEmpty(out)).length, 0);
    });
    equal(origin.count("/etc/passwd") + origin.count("/pxe/../etc/passwd"), 0);
    ok(
      records.every((r) => r.outcome === "refused"),
      JSON.stringify(records.map((r) => r.outcome)),
    );
  });
});

Deno.test("at default timeouts a slow origin is reported before the client gives up", async () => {
  await withRig((origin) => {
    origin.route("/pxe/slow", async () => {
      await origin.delay(20_000);
      return new Response("late");
    });
    return tree(origin);
  }, async ({ target }) => {
    const started = performance.now();
    // Our client at its defaults (1 s timeout, 5 retries) would give up after about 6 s.
    await rejects(get(target, "slow"), (e: unknown) => {
      ok(e instanceof PeerError, String(e));
      equal(e.code, 0);
      match(e.peerMessage, /^origin unreachable: no response within 4 s$/);
      return true;
    });
    const took = performance.now() - started;
    ok(took > 3500 && took < 5900, `took ${took} ms`);
  });
});

Deno.test("an origin that stalls or breaks mid-body ends the transfer with ERROR 0", async (t) => {
  const head = testBytes(300_000, 24);
  await withRig((origin) => {
    origin.route(
      "/pxe/stall",
      () =>
        new Response(origin.stream({ start: (c) => c.enqueue(head) }), {
          headers: { "content-length": "1000000" },
        }),
    );
    origin.route("/pxe/cut", () =>
      new Response(
        origin.stream({
          start(c) {
            c.enqueue(head);
            setTimeout(() => c.error(new Error("cut")), 100);
          },
        }),
        { headers: { "content-length": "1000000" } },
      ));
    return tree(origin);
  }, async ({ target, dir, records }) => {
    await t.step(
      "a stall: 'origin stalled' at the default 4 s, before our client gives up",
      async () => {
        let received = 0;
        const started = performance.now();
        await rejects(
          download(target, "stall", {
            write: (d) => void (received += d.length),
            finish: () => Promise.resolve(),
          }),
          (e: unknown) => {
            ok(e instanceof PeerError, String(e));
            equal(e.code, 0);
            match(e.peerMessage, /^origin stalled: no data for 4 s$/);
            return true;
          },
        );
        const took = performance.now() - started;
        ok(took > 3500 && took < 5900, `took ${took} ms`);
        ok(received <= head.length, `received ${received}`);
      },
    );
    await t.step("a truncated body: 'origin connection broken'; curl fails", async () => {
      await rejects(get(target, "cut"), (e: unknown) => {
        ok(e instanceof PeerError, String(e));
        equal(e.code, 0);
        match(e.peerMessage, /^origin connection broken/);
        return true;
      });
      const r = await curl(target.port, "cut", join(dir, "cut"));
      ok(r.code !== 0, "curl must fail");
    });
    await t.step("the server records the failures", () => {
      ok(records.some((r) => r.file === "stall" && r.outcome !== "ok" && /stalled/.test(r.error!)));
      ok(records.some((r) => r.file === "cut" && r.outcome !== "ok" && /broken/.test(r.error!)));
    });
  });
});
