// Issue 9: a hook that recurses and catches "stack overflow" pays a whole-stack backtrace per
// call, and QuickJS looks at the clock only once per 10,000 calls/loops: such a hook ran 7-13 s
// under a 50 ms budget. And the host must not depend on the sandbox's own globals: a hook that
// poisons JSON or Array.prototype must not silently lose its tags or log lines.
import { afterAll, describe, expect, test } from "bun:test";
import { FAILURE_KIND, HookRunner } from "../../src/hooks/index.ts";
import { decodeDriverResult, RESULT_ENTRY } from "../../src/hooks/vm-driver.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { batchOf, ipv4Frame } from "../support/hooks-helpers.ts";

const runners: HookRunner[] = [];
afterAll(() => runners.forEach((r) => r.dispose()));

async function hook(source: string, settings: Record<string, unknown> = {}) {
  const logger = memoryLogger();
  const runner = await HookRunner.create({ name: "t.js", source, settings, logger });
  runners.push(runner);
  return { runner, logger };
}

const frames = (n: number) => Array.from({ length: n }, (_, i) => ipv4Frame({ protocol: "udp", srcPort: 1000 + i, dstPort: 53, payload: Uint8Array.of(i) }));

describe("the CPU budget holds for recursion that catches stack overflow", () => {
  // 200 caught overflows cost about 5 ms each (a backtrace of ~2,500 frames at the default
  // 512 KiB stack), so the hook needs about a second, twenty times its 50 ms budget, yet it makes
  // about 3,000 calls: QuickJS alone (a look at the clock per 10,000) would let it finish "drop".
  const RECURSING = `
    let caught = 0;
    function down(n) {
      try { return down(n + 1); }
      catch (e) { caught++; return caught < 200 ? down(n + 1) : n; }
    }
    export default function (pkt) { caught = 0; down(0); return "drop"; }`;

  test("the batch is stopped as a timeout, not run to its end", async () => {
    const { runner, logger } = await hook(RECURSING, { hookBatchBudgetMs: 50, hookFail: "pass" });
    const result = runner.run(batchOf(frames(2)));
    expect(Array.from(result.failures)).toEqual([FAILURE_KIND.TIMEOUT, FAILURE_KIND.SKIPPED]);
    expect(result.batch.count).toBe(2); // policy pass keeps both
    expect(runner.stats.failures.timeout).toBe(1);
    expect(logger.lines.some((l) => l.includes("interrupted"))).toBe(true);
  });

  test("a plain hook still runs every packet (the tighter clock checks do not fire early)", async () => {
    const { runner } = await hook(`
      export default function (pkt) { let s = 0; for (let i = 0; i < 2000; i++) s += i; return s > 0 ? "drop" : "pass"; }`,
      { hookBatchBudgetMs: 5000 });
    const result = runner.run(batchOf(frames(50)));
    expect(result.batch.count).toBe(0);
    expect(runner.stats.failures.timeout).toBe(0);
  });
});

describe("tags and logs do not depend on the sandbox's globals", () => {
  const poisons: [string, string][] = [
    ["JSON.stringify replaced", `JSON.stringify = () => "{}";`],
    ["JSON replaced", `globalThis.JSON = { stringify() { return "null"; } };`],
    ["Array.prototype.toJSON", `Array.prototype.toJSON = function () { return []; };`],
    ["Object.prototype.toJSON", `Object.prototype.toJSON = function () { return {}; };`],
    ["index setters on Array.prototype", `for (let i = 0; i < 4; i++) Object.defineProperty(Array.prototype, i, { set() {}, get() { return undefined; } });`],
    ["String.prototype.slice replaced", `String.prototype.slice = function () { return ""; };`],
    ["String.prototype.charCodeAt replaced", `String.prototype.charCodeAt = function () { return 0; };`],
    ["ArrayBuffer replaced", `globalThis.ArrayBuffer = function () { return new Uint8Array(1).buffer; };`],
  ];
  for (const [what, poison] of poisons) {
    test(`${what}: every tag and log line arrives`, async () => {
      const { runner, logger } = await hook(`
        ${poison}
        export default function (pkt, ctx) { ctx.tag("seen"); ctx.tag("n" + pkt.index); if (pkt.index === 0) ctx.log("hello", 1); }`,
        // Not a budget test: a loaded machine must not time the first batch out.
        { hookBatchBudgetMs: 5000 });
      const result = runner.run(batchOf(frames(3)));
      expect(result.tags).toEqual([["seen", "n0"], ["seen", "n1"], ["seen", "n2"]]);
      expect(logger.lines).toContain('info: hook t.js: "hello 1"');
    });
  }

  test("the result decoder takes any text, by byte length, and stops at garbage", () => {
    const entry = (kind: number, text: string | Uint8Array) => {
      const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
      return [kind, bytes.length & 255, bytes.length >> 8, ...bytes];
    };
    const name = 'a:b;T9;"\n\0';
    const bytes = Uint8Array.from([
      ...entry(RESULT_ENTRY.TAG, name),
      ...entry(RESULT_ENTRY.LOG, "hi \u00e9\u{1f600}"),
      ...entry(RESULT_ENTRY.TAG, Uint8Array.from([0x61, 0xed, 0xa0, 0x80, 0xff])), // not UTF-8: U+FFFD each
      RESULT_ENTRY.TAG_AGAIN, 1, 0, // the second TAG entry's name again
      RESULT_ENTRY.TAG_AGAIN, 0, 0,
      ...entry(RESULT_ENTRY.ERROR, "boom"),
      ...entry(RESULT_ENTRY.ERROR, "second"),
      ...entry(9, "unknown kind"),
      ...entry(RESULT_ENTRY.TAG, "after garbage"),
    ]);
    expect(decodeDriverResult(bytes)).toEqual({
      tagNames: [name, "a\ufffd\ufffd\ufffd\ufffd", "a\ufffd\ufffd\ufffd\ufffd", name],
      logs: ["hi \u00e9\u{1f600}"],
      firstError: "boom",
    });
    // An entry that overruns the bytes, or a tag longer than a tag can be, ends the read.
    expect(decodeDriverResult(Uint8Array.from([...entry(RESULT_ENTRY.LOG, "ok"), RESULT_ENTRY.TAG, 10, 0, 0x61]))).toEqual({ tagNames: [], logs: ["ok"], firstError: undefined });
    expect(decodeDriverResult(Uint8Array.from(entry(RESULT_ENTRY.TAG, "x".repeat(193))))).toEqual({ tagNames: [], logs: [], firstError: undefined });
    // TAG_AGAIN naming a TAG entry that does not exist (yet) ends it too.
    expect(decodeDriverResult(Uint8Array.from([...entry(RESULT_ENTRY.TAG, "a"), RESULT_ENTRY.TAG_AGAIN, 1, 0, ...entry(RESULT_ENTRY.TAG, "b")]))).toEqual({ tagNames: ["a"], logs: [], firstError: undefined });
  });
});
