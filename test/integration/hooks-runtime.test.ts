// HookRunner behaviour: verdicts and their counters, pkt fields, ctx helpers, log rate limits,
// big batches cut into chunks, hot reload (broken file keeps the old hook), file watch, SIGHUP,
// and the dry run used by `probe hook test`.
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { HOOK_CHUNK_MAX_BYTES, HOOK_LOG_LINES_PER_SECOND, HookRunner, installHookReload, PACKET_OUTCOME, runHookDryRun, type ReloadResult } from "../../src/hooks/index.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { batchOf, EXAMPLES, ipv4Frame, pcapImage, readPcap, records, tempPath, tsharkFields, VECTORS } from "../support/hooks-helpers.ts";

const runners: HookRunner[] = [];
afterAll(() => runners.forEach((r) => r.dispose()));

async function hook(source: string, settings: Record<string, unknown> = {}) {
  const logger = memoryLogger();
  const runner = await HookRunner.create({ name: "t.js", source, settings, logger });
  runners.push(runner);
  return { runner, logger };
}

const udp = (i: number, size = 3) => ipv4Frame({ protocol: "udp", srcPort: 1000 + i, dstPort: 53, payload: new Uint8Array(size).fill(i) });

describe("verdicts", () => {
  test("pass / drop / truncate / replace / in-place edit, with counters adding up", async () => {
    const { runner } = await hook(`
      export default function (pkt) {
        switch (pkt.index) {
          case 0: return;
          case 1: return true;
          case 2: return "pass";
          case 3: return false;
          case 4: return "drop";
          case 5: pkt.caplen = 14; return;
          case 6: return new Uint8Array([0xde, 0xad]);
          case 7: pkt.bytes[0] = 0xff; return;
          case 8: pkt.bytes[0] = 0xee; pkt.caplen = 20; return pkt.bytes;
          case 9: return pkt.bytes.subarray(2, 8);
        }
      }`);
    const input = Array.from({ length: 10 }, (_, i) => udp(i));
    const result = runner.run(batchOf(input));
    expect(Array.from(result.outcomes)).toEqual([0, 0, 0, 1, 1, 2, 2, 2, 2, 2]);
    const out = records(result.batch);
    expect(out.map((r) => r.caplen)).toEqual([45, 45, 45, 14, 2, 45, 20, 6]);
    expect(out.map((r) => r.len)).toEqual([45, 45, 45, 45, 45, 45, 45, 45]);
    expect(Array.from(out[4]!.data)).toEqual([0xde, 0xad]);
    expect(out[5]!.data[0]).toBe(0xff);
    expect(Array.from(out[5]!.data.subarray(1))).toEqual(Array.from(input[7]!.subarray(1)));
    expect(Array.from(out[6]!.data)).toEqual([0xee, ...input[8]!.subarray(1, 20)]);
    expect(Array.from(out[7]!.data)).toEqual(Array.from(input[9]!.subarray(2, 8)));
    expect(out.map((r) => r.tsSec)).toEqual([0, 1, 2, 5, 6, 7, 8, 9].map((i) => 1_700_000_000 + i));
    const s = runner.stats;
    expect([s.passed, s.dropped, s.modified, s.packets]).toEqual([3, 2, 5, 10]);
  });

  test("pkt fields: offsets, ports, addresses, times, interface, link type, flow hash", async () => {
    const { runner, logger } = await hook(`
      export default function (pkt, ctx) {
        ctx.log([pkt.caplen, pkt.len, pkt.tsSec, pkt.tsNsec, pkt.timestampMs, pkt.interfaceName, pkt.linkType, pkt.etherType,
          pkt.vlanCount, pkt.vlanId, pkt.l3Offset, pkt.ipVersion, pkt.protocol, pkt.l4Offset, pkt.payloadOffset,
          pkt.payloadLength, pkt.srcPort, pkt.dstPort, pkt.tcpFlags, pkt.isFragment].join(" "));
        ctx.log(pkt.srcAddr + ">" + pkt.dstAddr + " " + (typeof pkt.flowHash));
      }`);
    const frame = ipv4Frame({ protocol: "udp", srcPort: 5353, dstPort: 53, payload: Uint8Array.from([1, 2]), padTo: 60, vlans: [{ tpid: 0x8100, vid: 7 }] });
    const result = runner.run(batchOf([frame], 1, [64]), "eth1");
    expect(result.failures[0]).toBe(0);
    expect(logger.lines).toEqual([
      // tcpFlags is undefined for UDP, so join() leaves an empty field.
      'info: hook t.js: "60 64 1700000000 250000000 1700000000250 eth1 1 2048 1 7 18 4 17 38 46 2 5353 53  false"',
      'info: hook t.js: "10.1.2.3>192.168.7.9 number"',
    ]);
  });

  test("ctx.state persists across batches; ctx.log goes to the logger, rate-limited and counted", async () => {
    const { runner, logger } = await hook(`
      export default function (pkt, ctx) {
        ctx.state.n = (ctx.state.n ?? 0) + 1;
        ctx.log("packet", ctx.state.n, { toString() { return "obj"; } });
      }`);
    runner.run(batchOf([udp(0), udp(1)]));
    runner.run(batchOf([udp(2)]));
    expect(logger.lines.slice(0, 3)).toEqual(['info: hook t.js: "packet 1 obj"', 'info: hook t.js: "packet 2 obj"', 'info: hook t.js: "packet 3 obj"']);
    runner.run(batchOf(Array.from({ length: 200 }, (_, i) => udp(i))));
    const s = runner.stats;
    expect(s.logLines).toBeLessThanOrEqual(HOOK_LOG_LINES_PER_SECOND + 1);
    expect(s.logLines + s.logLinesSuppressed).toBe(203);
  });

  test("ctx.tag validates its argument and keeps at most 16 distinct tags per packet", async () => {
    const { runner } = await hook(`
      export default function (pkt, ctx) {
        if (pkt.index === 0) for (let i = 0; i < 40; i++) ctx.tag("t" + (i % 20));
        if (pkt.index === 1) ctx.tag(42);
        if (pkt.index === 2) ctx.tag("x".repeat(65));
      }`);
    const result = runner.run(batchOf([udp(0), udp(1), udp(2)]));
    expect(result.tags[0]).toEqual(Array.from({ length: 16 }, (_, i) => "t" + i));
    expect(Array.from(result.failures)).toEqual([0, 1, 1]);
  });

  test("ctx.sample(n, key) with explicit keys; n must be a positive integer", async () => {
    const { runner } = await hook(`
      export default function (pkt, ctx) {
        if (pkt.index === 9) return ctx.sample(0);
        return ctx.sample(3, pkt.index % 2 ? "odd" : "even");
      }`);
    const result = runner.run(batchOf(Array.from({ length: 10 }, (_, i) => udp(i))));
    // even: 0 2 4 6 8 -> keep 0, 6; odd: 1 3 5 7 -> keep 1, 7; index 9 throws (policy pass keeps it).
    expect(Array.from(result.outcomes)).toEqual([0, 0, 1, 1, 1, 1, 0, 0, 1, 0]);
    expect(result.failures[9]).toBe(1);
  });

  test(`batches over ${HOOK_CHUNK_MAX_BYTES} bytes are cut into chunks and joined back in order`, async () => {
    const { runner } = await hook(`export default function (pkt, ctx) { ctx.tag("i" + pkt.index); if (pkt.bytes[42] % 3 === 0) return false; }`);
    const input = Array.from({ length: 300 }, (_, i) => udp(i, 9000));
    const batch = batchOf(input);
    expect(batch.bytes.byteLength).toBeGreaterThan(2 * HOOK_CHUNK_MAX_BYTES);
    const result = runner.run(batch);
    const kept = input.map((_, i) => i).filter((i) => (i & 0xff) % 3 !== 0);
    expect(records(result.batch).map((r) => r.data[42])).toEqual(kept.map((i) => i & 0xff));
    expect(result.outcomes.length).toBe(300);
    // pkt.index counts within a chunk; tags still line up with the output records.
    expect(result.tags.length).toBe(kept.length);
    expect(runner.stats.dropped).toBe(300 - kept.length);
  });
});

describe("reload", () => {
  test("a good reload replaces the hook and resets state; a broken one keeps the old hook running", async () => {
    const { runner, logger } = await hook(`export default function (pkt, ctx) { ctx.tag("v1"); }`);
    expect(runner.run(batchOf([udp(0)])).tags).toEqual([["v1"]]);
    const bad = await runner.reload(`export default function (pkt, ctx) { ctx.tag("v2" }`);
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error.code).toBe("syntax");
    expect(runner.run(batchOf([udp(0)])).tags).toEqual([["v1"]]);
    expect(logger.lines.some((l) => l.startsWith("warn: hook t.js: reload failed (syntax"))).toBe(true);
    expect(await runner.reload(`export default function (pkt, ctx) { ctx.tag("v2"); }`)).toEqual({ ok: true });
    expect(runner.run(batchOf([udp(0)])).tags).toEqual([["v2"]]);
    expect([runner.stats.reloads, runner.stats.reloadFailures]).toEqual([1, 1]);
  });

  test("file watcher and SIGHUP reload from the file; a broken save keeps the old version", async () => {
    const path = tempPath("hook.js");
    writeFileSync(path, `export default function (pkt, ctx) { ctx.tag("a"); }`);
    const logger = memoryLogger();
    const runner = await HookRunner.create({ name: "hook.js", source: await Bun.file(path).text(), logger });
    runners.push(runner);
    const results: ReloadResult[] = [];
    // Resolves on the first reload whose result matches; fs.watch may deliver extra, late events,
    // so waiting for "the next reload" would be racy.
    let waiter: { match: (r: ReloadResult) => boolean; resolve: () => void } | undefined;
    const onReload = (_t: unknown, r: ReloadResult) => {
      results.push(r);
      if (waiter?.match(r)) waiter.resolve();
    };
    const reloadWhere = (match: (r: ReloadResult) => boolean) => new Promise<void>((resolve) => (waiter = { match, resolve }));
    const tagsNow = () => runner.run(batchOf([udp(0)])).tags;
    const handle = installHookReload({ targets: [{ runner, path }], logger, onReload });
    try {
      let waiting = reloadWhere((r) => r.ok);
      writeFileSync(path, `export default function (pkt, ctx) { ctx.tag("b"); }`);
      await waiting;
      expect(tagsNow()).toEqual([["b"]]);

      waiting = reloadWhere((r) => !r.ok);
      writeFileSync(path, `export default function (pkt, ctx) { ctx.tag( }`);
      await waiting;
      expect(tagsNow()).toEqual([["b"]]);

      handle.close(); // stop the watcher; SIGHUP only from here on
      const again = installHookReload({ targets: [{ runner, path }], logger, watchFiles: false, onReload });
      try {
        writeFileSync(path, `export default function (pkt, ctx) { ctx.tag("c"); }`);
        waiting = reloadWhere((r) => r.ok);
        process.kill(process.pid, "SIGHUP");
        await waiting;
        expect(tagsNow()).toEqual([["c"]]);
      } finally {
        again.close();
      }
    } finally {
      handle.close();
    }
    expect(process.listenerCount("SIGHUP")).toBe(0);
  });
});

describe("dry run", () => {
  test("tag.js over a vector: one line per packet, counts, output writable as pcap", async () => {
    const { batches, linktype } = readPcap(join(VECTORS, "rpcap-passive-udp.pcap"), 20);
    const log = memoryLogger();
    const result = await runHookDryRun({ hookPath: join(EXAMPLES, "tag.js"), batches, verbose: true, log });
    expect(result.counts).toEqual({ packets: 73, passed: 73, dropped: 0, modified: 0, failed: 0 });
    expect(result.lines.length).toBe(73);
    expect(result.lines[0]).toMatch(/^#1 pass tags=rpcap \| len=74 caplen=74 IPv4 TCP 127\.0\.0\.1:\d+ > 127\.0\.0\.1:2002 l3=14 l4=34 payload=/);
    const path = tempPath("dry.pcap");
    writeFileSync(path, pcapImage(result.output, linktype));
    expect(tsharkFields(path, ["frame.number"]).length).toBe(73);
  });

  test("redact + failures: lines say modified, dropped and failed with the policy", async () => {
    const path = tempPath("mixed.js");
    writeFileSync(path, `export default function (pkt) { if (pkt.index === 0) return "drop"; if (pkt.index === 1) throw new Error("x"); pkt.caplen = 20; }`);
    const result = await runHookDryRun({ hookPath: path, batches: [batchOf([udp(0), udp(1), udp(2)])], log: memoryLogger() });
    expect(result.lines).toEqual(["#1 drop", "#2 pass (threw; hookFail=pass)", "#3 modified caplen 45->20"]);
    expect(result.counts).toEqual({ packets: 3, passed: 1, dropped: 1, modified: 1, failed: 1 });
    expect(PACKET_OUTCOME.MODIFIED).toBe(2);
  });
});
