// Hostile and broken hooks: escape attempts find nothing of the host; loops, memory bombs,
// recursion, throws and odd verdicts are contained, counted, and the policy applies.
import { afterAll, describe, expect, test } from "bun:test";
import { COMPILE_ERROR, FAILURE_KIND, HOOK_DISABLE_AFTER_CONSECUTIVE_FAILURES, HookCompileError, HookRunner, PACKET_OUTCOME } from "../../src/hooks/index.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { MEMORY_CHECK_EVERY_BATCHES } from "../../src/hooks/sandbox.ts";
import { batchOf, ipv4Frame, records } from "../support/hooks-helpers.ts";

const runners: HookRunner[] = [];
afterAll(() => runners.forEach((r) => r.dispose()));

async function hook(source: string, settings: Record<string, unknown> = {}) {
  const logger = memoryLogger();
  const runner = await HookRunner.create({ name: "t.js", source, settings, logger });
  runners.push(runner);
  return { runner, logger };
}

const frames = (n: number) =>
  Array.from({ length: n }, (_, i) => ipv4Frame({ protocol: "udp", srcPort: 1000 + i, dstPort: 53, payload: Uint8Array.from([i, i, i]) }));

/** ECMAScript + QuickJS intrinsics that may appear on the VM's global object; nothing else is allowed. */
const ALLOWED_GLOBALS = new Set(
  (
    "Object Function Array Number parseFloat parseInt Infinity NaN undefined Boolean String Symbol Date Promise RegExp Error " +
    "AggregateError EvalError RangeError ReferenceError SyntaxError TypeError URIError InternalError globalThis JSON Math " +
    "Intl ArrayBuffer SharedArrayBuffer Atomics Uint8Array Int8Array Uint16Array Int16Array Uint32Array Int32Array Float16Array " +
    "Float32Array Float64Array Uint8ClampedArray BigInt64Array BigUint64Array BigInt DataView Map Set WeakMap WeakSet WeakRef " +
    "FinalizationRegistry Proxy Reflect decodeURI decodeURIComponent encodeURI encodeURIComponent escape unescape eval isFinite " +
    "isNaN Iterator Generator AsyncGenerator GeneratorFunction AsyncFunction AsyncGeneratorFunction ArrayIterator performance " +
    "queueMicrotask DOMException Error Iterator"
  ).split(" "),
);

describe("escape attempts", () => {
  test("the global object holds only language intrinsics (no console, process, Bun, require, fetch, timers)", async () => {
    const { runner } = await hook(`
      export default function (pkt, ctx) {
        for (const name of Reflect.ownKeys(globalThis)) ctx.tag(String(name).slice(0, 64));
      }`);
    const result = runner.run(batchOf(frames(1)));
    const names = result.tags[0] ?? [];
    expect(names.length).toBeGreaterThan(10);
    const unexpected = names.filter((n) => !ALLOWED_GLOBALS.has(n));
    expect(unexpected).toEqual([]);
    for (const hostName of ["console", "process", "Bun", "require", "fetch", "setTimeout", "setInterval", "std", "os", "print", "scriptArgs", "WebAssembly"]) {
      expect(names).not.toContain(hostName);
    }
  });

  test("Function('return this')(), eval and constructor chains reach only the VM's own global", async () => {
    const { runner } = await hook(`
      export default function (pkt, ctx) {
        const g1 = Function("return this")();
        const g2 = (0, eval)("this");
        const g3 = pkt.constructor.constructor("return this")();
        const g4 = ctx.tag.constructor("return globalThis")();
        const g5 = pkt.bytes.constructor.constructor("return this")();
        const same = g1 === globalThis && g2 === globalThis && g3 === globalThis && g4 === globalThis && g5 === globalThis;
        ctx.tag(same ? "same-global" : "other-global");
        for (const g of [g1, g2, g3, g4, g5]) {
          if (typeof g.process !== "undefined" || typeof g.Bun !== "undefined" || typeof g.require !== "undefined") ctx.tag("host-leak");
        }
        try { Function("return import('fs')")().catch(() => {}); } catch (e) {}
      }`);
    const result = runner.run(batchOf(frames(1)));
    expect(result.tags[0]).toEqual(["same-global"]);
  });

  test("import of any module fails at compile time", async () => {
    for (const source of [`import fs from "fs"; export default function () {}`, `import * as os from "os"; export default function () {}`]) {
      const error = await HookRunner.create({ name: "x.js", source }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HookCompileError);
      expect((error as HookCompileError).message).toContain("could not load module");
    }
  });

  test("compile errors: syntax, no default export, top-level await, throwing top level, looping top level", async () => {
    const cases: [string, string][] = [
      ["export default function (", COMPILE_ERROR.SYNTAX],
      ["export function onPacket() {}", COMPILE_ERROR.NO_DEFAULT_EXPORT],
      ["export default 42", COMPILE_ERROR.NO_DEFAULT_EXPORT],
      ["await 1; export default function () {}", COMPILE_ERROR.TOP_LEVEL_AWAIT],
      ["throw new Error('boom'); export default function () {}", COMPILE_ERROR.EVALUATION],
      ["for (;;) {} export default function () {}", COMPILE_ERROR.TIMEOUT],
    ];
    for (const [source, code] of cases) {
      // A short budget only where the top level loops: a loaded machine may need more than 50 ms to compile.
      const settings = code === COMPILE_ERROR.TIMEOUT ? { hookCompileBudgetMs: 50 } : {};
      const error = await HookRunner.create({ name: "x.js", source, settings }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HookCompileError);
      expect([source, (error as HookCompileError).code]).toEqual([source, code]);
    }
  });

  test("the whole batch buffer is reachable via pkt.bytes.buffer, but record headers written there are ignored", async () => {
    const { runner } = await hook(`
      export default function (pkt, ctx) {
        const all = new Uint8Array(pkt.bytes.buffer);
        all.fill(0xff, 0, 16);          // first record header: caplen 0xffffffff
        all[all.length - 1] = 0x77;      // last byte of the last packet
        pkt.bytes[pkt.caplen + 3] = 9;   // out of range index: ignored by typed array semantics
      }`);
    const input = frames(3);
    const result = runner.run(batchOf(input));
    const out = records(result.batch);
    expect(out.map((r) => r.caplen)).toEqual(input.map((f) => f.length));
    expect(out[0]!.tsSec).toBe(1_700_000_000);
    expect(Array.from(out[0]!.data)).toEqual(Array.from(input[0]!));
    expect(out[2]!.data[out[2]!.data.length - 1]).toBe(0x77);
    expect(result.outcomes[2]).toBe(PACKET_OUTCOME.MODIFIED);
  });
});

describe("containment", () => {
  test("infinite loop: timeout counted, first packet failed, rest skipped, policy pass keeps them, VM rebuilt", async () => {
    const { runner, logger } = await hook(`
      export default function (pkt, ctx) {
        ctx.state.n = (ctx.state.n ?? 0) + 1;
        if (pkt.index === 1) for (;;) {}
        if (ctx.state.n > 1) ctx.tag("state-" + ctx.state.n);
      }`, { hookBatchBudgetMs: 20 });
    const input = frames(4);
    const result = runner.run(batchOf(input));
    expect(Array.from(result.failures)).toEqual([FAILURE_KIND.NONE, FAILURE_KIND.TIMEOUT, FAILURE_KIND.SKIPPED, FAILURE_KIND.SKIPPED]);
    expect(result.batch.count).toBe(4);
    expect(records(result.batch).map((r) => Array.from(r.data))).toEqual(input.map((f) => Array.from(f)));
    const stats = runner.stats;
    expect(stats.failures.timeout).toBe(1);
    expect(stats.skipped).toBe(2);
    expect(stats.recreations).toBe(1);
    expect(logger.lines.some((l) => l.includes("VM rebuilt") && l.includes("ctx.state was lost"))).toBe(true);
    // State was lost: counting restarts from 1 in the new VM.
    const next = runner.run(batchOf([input[0]!]));
    expect(next.tags).toEqual([undefined]);
  });

  test("infinite loop with hookFail=drop drops the failed and skipped packets", async () => {
    const { runner } = await hook(`export default function (pkt) { if (pkt.index === 2) while (true) {} }`, { hookBatchBudgetMs: 20, hookFail: "drop" });
    const result = runner.run(batchOf(frames(4)));
    expect(result.batch.count).toBe(2);
    expect(Array.from(result.outcomes)).toEqual([0, 0, 1, 1]);
    expect(runner.stats.dropped).toBe(2);
  });

  for (const [label, bomb] of [
    ["arrays", "for (;;) keep.push(new Array(100000).fill(pkt.index));"],
    ["typed arrays (not counted by setMemoryLimit in this build)", "for (;;) keep.push(new Uint8Array(1 << 20));"],
    ["strings", "for (;;) keep.push('x'.repeat(1 << 16) + Math.random());"],
  ] as const) {
    test(`memory bomb (${label}): out-of-memory contained, VM rebuilt, heap growth bounded, next batch runs`, async () => {
      const limit = 8 * 1024 * 1024;
      const { runner } = await hook(`
        const keep = [];
        export default function (pkt, ctx) {
          if (pkt.index === 0) { ${bomb} }
          return "pass";
        }`, { hookMemoryLimitBytes: limit, hookBatchBudgetMs: 5000 });
      const heapBefore = process.memoryUsage().rss;
      const result = runner.run(batchOf(frames(3)));
      expect(Array.from(result.failures)).toEqual([FAILURE_KIND.OUT_OF_MEMORY, FAILURE_KIND.SKIPPED, FAILURE_KIND.SKIPPED]);
      expect(result.batch.count).toBe(3);
      expect(runner.stats.failures.outOfMemory).toBe(1);
      expect(runner.stats.recreations).toBe(1);
      // Not a timing assertion: a bound on how far the process grew (the VM heap may keep the space it reached).
      expect(process.memoryUsage().rss - heapBefore).toBeLessThan(256 * 1024 * 1024);
      const again = runner.run(batchOf(frames(3)));
      expect(again.failures[0]).toBe(FAILURE_KIND.OUT_OF_MEMORY);
      expect(runner.stats.recreations).toBe(2);
    });
  }

  test("state that grows slowly across batches past the limit is caught after a batch and the VM rebuilt", async () => {
    const { runner } = await hook(`
      export default function (pkt, ctx) {
        (ctx.state.keep ??= []).push(new Uint8Array(256 * 1024));
      }`, { hookMemoryLimitBytes: 4 * 1024 * 1024 });
    let batches = 0;
    while (runner.stats.recreations === 0 && batches < 100) {
      runner.run(batchOf(frames(2)));
      batches++;
    }
    expect(runner.stats.recreations).toBe(1);
    expect(runner.stats.failures.outOfMemory).toBe(1);
    // 4 MiB / (2 x 256 KiB per batch) = 8 batches, then at most MEMORY_CHECK_EVERY_BATCHES more before the walk.
    expect(batches).toBeLessThanOrEqual(8 + MEMORY_CHECK_EVERY_BATCHES);
  });

  test("memory bomb caught by the hook itself: its verdict stands, memory is released, the stage keeps running", async () => {
    const { runner } = await hook(`
      export default function (pkt) {
        try { const a = []; for (;;) a.push("x".repeat(1 << 16) + Math.random()); } catch (e) { return "drop"; }
      }`, { hookMemoryLimitBytes: 8 * 1024 * 1024, hookBatchBudgetMs: 5000 });
    const result = runner.run(batchOf(frames(2)));
    expect(Array.from(result.outcomes)).toEqual([PACKET_OUTCOME.DROPPED, PACKET_OUTCOME.DROPPED]);
    expect(runner.stats.packets).toBe(2);
    expect(runner.run(batchOf(frames(1))).batch.count).toBe(0);
  });

  test("deep recursion: stack overflow is a throw; policy applies; the runner continues", async () => {
    const { runner } = await hook(`
      function down(n) { return down(n + 1) + 1; }
      export default function (pkt) { if (pkt.index === 0) down(0); return "drop"; }`, { hookBatchBudgetMs: 5000 });
    const result = runner.run(batchOf(frames(3)));
    expect(Array.from(result.failures)).toEqual([FAILURE_KIND.THREW, 0, 0]);
    expect(Array.from(result.outcomes)).toEqual([PACKET_OUTCOME.PASSED, PACKET_OUTCOME.DROPPED, PACKET_OUTCOME.DROPPED]);
    expect(runner.stats.failures.threw).toBe(1);
  });

  test("throwing odd values (strings, null, a Proxy with a throwing getter) is counted as a throw", async () => {
    const { runner, logger } = await hook(`
      export default function (pkt) {
        if (pkt.index === 0) throw "a string";
        if (pkt.index === 1) throw null;
        if (pkt.index === 2) throw new Proxy({}, { get() { throw new Error("nope"); } });
        if (pkt.index === 3) throw new TypeError("plain");
      }`);
    const result = runner.run(batchOf(frames(4)));
    expect(Array.from(result.failures)).toEqual([1, 1, 1, 1]);
    expect(runner.stats.failures.threw).toBe(4);
    expect(logger.lines.some((l) => l.includes("4 packet(s) failed") && l.includes("thrown value: a string"))).toBe(true);
  });

  test("odd verdicts: numbers, objects, null, strings, a promise, a longer Uint8Array, other typed arrays", async () => {
    const { runner } = await hook(`
      export default function (pkt) {
        switch (pkt.index) {
          case 0: return 1;
          case 1: return {};
          case 2: return null;
          case 3: return "maybe";
          case 4: return Promise.resolve(true);
          case 5: return new Uint8Array(pkt.caplen + 1);
          case 6: return new Uint16Array(2);
          case 7: return new Proxy(new Uint8Array(4), {});
          case 8: return "drop";
          default: return true;
        }
      }`);
    const input = frames(10);
    const result = runner.run(batchOf(input));
    expect(Array.from(result.failures)).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 0, 0]);
    expect(result.batch.count).toBe(9); // policy pass keeps the 8 failures unmodified, 8 dropped by its own verdict
    expect(records(result.batch).map((r) => r.caplen)).toEqual(input.filter((_, i) => i !== 8).map((f) => f.length));
    expect(runner.stats.failures.badVerdict).toBe(8);
  });

  test("pkt.caplen larger than captured, negative or fractional throws (counted), smaller truncates", async () => {
    const { runner } = await hook(`
      export default function (pkt) {
        if (pkt.index === 0) pkt.caplen = pkt.caplen + 1;
        if (pkt.index === 1) pkt.caplen = -1;
        if (pkt.index === 2) pkt.caplen = 10.5;
        if (pkt.index === 3) pkt.caplen = 20;
      }`);
    const input = frames(4);
    const result = runner.run(batchOf(input));
    expect(Array.from(result.failures)).toEqual([1, 1, 1, 0]);
    const out = records(result.batch);
    expect(out.map((r) => r.caplen)).toEqual([input[0]!.length, input[1]!.length, input[2]!.length, 20]);
    expect(out[3]!.len).toBe(input[3]!.length); // wire length unchanged
  });

  test("edits made before a throw are discarded: the failed packet leaves as it came", async () => {
    const { runner } = await hook(`export default function (pkt) { pkt.bytes.fill(0); pkt.caplen = 5; throw new Error("late"); }`);
    const input = frames(2);
    const out = records(runner.run(batchOf(input)).batch);
    expect(out.map((r) => Array.from(r.data))).toEqual(input.map((f) => Array.from(f)));
  });

  test(`${HOOK_DISABLE_AFTER_CONSECUTIVE_FAILURES} failures in a row disable the hook with a loud log; policy keeps applying; reload re-enables`, async () => {
    // A generous budget: this is about counting throws, and the budget is now checked every 16
    // calls, so a cold VM on a loaded machine could otherwise turn a throw into a timeout.
    const { runner, logger } = await hook(`export default function () { throw new Error("always"); }`, { hookFail: "drop", hookBatchBudgetMs: 5000 });
    const n = HOOK_DISABLE_AFTER_CONSECUTIVE_FAILURES;
    runner.run(batchOf(frames(n - 1)));
    expect(runner.disabled).toBe(false);
    runner.run(batchOf(frames(1)));
    expect(runner.disabled).toBe(true);
    expect(logger.lines.filter((l) => l.startsWith("error: HOOK DISABLED: t.js")).length).toBe(1);
    const after = runner.run(batchOf(frames(5)));
    expect(after.batch.count).toBe(0);
    expect(Array.from(after.failures)).toEqual(new Array(5).fill(FAILURE_KIND.SKIPPED));
    expect(runner.stats.failures.threw).toBe(n);
    expect(runner.stats.skipped).toBe(5);
    expect(await runner.reload("export default function () {}")).toEqual({ ok: true });
    expect(runner.disabled).toBe(false);
    expect(runner.run(batchOf(frames(2))).batch.count).toBe(2);
  });

  test("a success between failures resets the run of failures", async () => {
    const { runner } = await hook(`export default function (pkt) { if (pkt.index % 50 !== 49) throw 1; }`);
    runner.run(batchOf(frames(400)));
    expect(runner.disabled).toBe(false);
    expect(runner.stats.failures.threw).toBe(392);
  });

  test("a hook replacing intrinsics the driver uses does not break verdicts", async () => {
    const { runner } = await hook(`
      Uint8Array.prototype.set = function () { throw new Error("hijacked"); };
      Object.defineProperty(Uint8Array.prototype, "length", { get() { return 0; } });
      JSON.stringify = () => "garbage";
      Map.prototype.get = () => 99;
      Array.prototype.push = () => { throw new Error("no push"); };
      export default function (pkt, ctx) {
        ctx.tag("t");
        return pkt.index === 0 ? new Uint8Array([1, 2, 3]) : ctx.sample(2) ? "pass" : "drop";
      }`);
    const input = frames(4);
    const result = runner.run(batchOf(input));
    const out = records(result.batch);
    expect(Array.from(out[0]!.data)).toEqual([1, 2, 3]);
    expect(result.tags).toEqual(new Array(result.batch.count).fill(["t"]));
  });
});
