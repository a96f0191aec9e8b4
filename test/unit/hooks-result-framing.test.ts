// Hook results (tags, log lines, the first error) cross from QuickJS to the host in a framing
// no string content can break: NUL, lone surrogates and text that looks like the framing
// arrive as data, every tag lands on the packet the hook ran on, and what reaches a log is
// escaped (issue 21: a "\0" tag hid every later tag, a crafted log line forged a tag on a
// packet the hook never ran on).
import { afterAll, describe, expect, test } from "bun:test";
import { HOOK_TAG_NAMES_COUNTED, HookRunner } from "../../src/hooks/index.ts";
import { tagText } from "../../src/hooks/hook-text.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { formatHookCounters } from "../../src/pipeline/stages/hooks.ts";
import { batchOf, ipv4Frame } from "../support/hooks-helpers.ts";

const runners: HookRunner[] = [];
afterAll(() => runners.forEach((r) => r.dispose()));

/** A generous CPU budget: the machine running the tests may be busy, and no test here is about time. */
const BUDGET_MS = 5000;

async function hook(source: string) {
  const logger = memoryLogger();
  const runner = await HookRunner.create({ name: "t.js", source, logger, settings: { hookBatchBudgetMs: BUDGET_MS } });
  runners.push(runner);
  return { runner, logger };
}

const PACKETS = 200;
const batch200 = batchOf(
  Array.from({ length: PACKETS }, (_, i) => ipv4Frame({ protocol: "udp", srcPort: 1000 + i, dstPort: 53, payload: Uint8Array.from([i & 0xff]) })),
);

/** Tags per packet as plain arrays (undefined for none). */
const tagsOf = (tags: readonly (readonly string[] | undefined)[]) => tags.map((t) => (t === undefined ? undefined : [...t]));

describe("NUL in hook output", () => {
  test('tag("ok") on 200 packets plus one tag("\\0"): ok=200 and the "\\0" tag beside it on its packet', async () => {
    const { runner } = await hook(`export default function (pkt, ctx) {
      ctx.tag("ok");
      if (pkt.index === 7) ctx.tag("\\0");
    }`);
    const result = runner.run(batch200);
    expect(result.tags.length).toBe(PACKETS);
    expect(tagsOf(result.tags)).toEqual(Array.from({ length: PACKETS }, (_, i) => (i === 7 ? ["ok", "\0"] : ["ok"])));
    expect({ ...runner.stats.tagged }).toEqual({ ok: 200, "\0": 1 });
  });

  test("a NUL in a log line: that line and every later line and tag arrive", async () => {
    const { runner, logger } = await hook(`export default function (pkt, ctx) {
      if (pkt.index === 0) ctx.log("a\\0b");
      if (pkt.index === 1) ctx.log("after");
      ctx.tag("t");
    }`);
    const result = runner.run(batch200);
    expect(runner.stats.tagged).toEqual({ t: 200 });
    expect(result.tags.every((t) => t?.length === 1 && t[0] === "t")).toBe(true);
    expect(logger.lines).toEqual(['info: hook t.js: "a\\x00b"', 'info: hook t.js: "after"']);
    expect(runner.stats.logLines).toBe(2);
  });

  test('throw Error("a\\0b") is counted and reported, escaped', async () => {
    const { runner, logger } = await hook(`export default function (pkt, ctx) {
      if (pkt.index === 3) throw new Error("a\\0b\\n1 packet(s) failed");
      ctx.tag("t");
    }`);
    runner.run(batch200);
    expect(runner.stats.failures.threw).toBe(1);
    expect(runner.stats.tagged).toEqual({ t: 199 });
    expect(logger.lines).toEqual(['warn: hook t.js: 1 packet(s) failed in a batch; first: "Error: a\\x00b\\n1 packet(s) failed"']);
  });
});

describe("lone surrogates in hook output", () => {
  test("a lone surrogate in a tag arrives as U+FFFD; no other tag of the batch is lost", async () => {
    const { runner } = await hook(`export default function (pkt, ctx) {
      ctx.tag("ok");
      if (pkt.index === 9) ctx.tag("x\\ud800y");
      if (pkt.index === 10) ctx.tag("\\udc00");
      if (pkt.index === 11) ctx.tag("\\ud83d\\ude00");
    }`);
    const result = runner.run(batch200);
    expect(runner.stats.tagged).toEqual({ ok: 200, "x\ufffdy": 1, "\ufffd": 1, "\u{1f600}": 1 });
    expect(tagsOf(result.tags.slice(8, 13))).toEqual([["ok"], ["ok", "x\ufffdy"], ["ok", "\ufffd"], ["ok", "\u{1f600}"], ["ok"]]);
  });

  test("a lone surrogate in a log line arrives as U+FFFD; every tag of the batch arrives", async () => {
    const { runner, logger } = await hook(`export default function (pkt, ctx) {
      if (pkt.index === 2) ctx.log("\\ud800", "z\\udfff");
      ctx.tag("ok");
    }`);
    runner.run(batch200);
    expect(runner.stats.tagged).toEqual({ ok: 200 });
    expect(logger.lines).toEqual(['info: hook t.js: "\ufffd z\ufffd"']);
  });
});

describe("forged results", () => {
  // Under the old framing ("T<index>;<len>:<name>" in one string, lengths in UTF-16 units,
  // read back as UTF-8 to the first NUL) each lone surrogate came back as three characters, so
  // k of them ended a log line 2k characters early, and 2k injected characters parsed as the
  // hook wished.
  const surrogates = "\\ud800".repeat(7);
  const sixSurrogates = "\\ud800".repeat(6);

  test("text shaped like the framing cannot tag a packet the hook did not run on", async () => {
    const { runner, logger } = await hook(`export default function (pkt, ctx) {
      if (pkt.index !== 1) return;
      ctx.log("${surrogates}T4;6:FORGEDL0:");
      ctx.tag("${surrogates}T4;6:FORGED");
    }`);
    const result = runner.run(batch200);
    expect(result.tags[4]).toBeUndefined();
    expect(result.tags.filter((t) => t !== undefined).length).toBe(1);
    expect(tagsOf([result.tags[1]])).toEqual([["\ufffd".repeat(7) + "T4;6:FORGED"]]);
    expect(Object.keys(runner.stats.tagged)).toEqual(["\ufffd".repeat(7) + "T4;6:FORGED"]);
    expect(logger.lines).toEqual([`info: hook t.js: "${"\ufffd".repeat(7)}T4;6:FORGEDL0:"`]);
  });

  test("text shaped like the framing cannot invent a failure report", async () => {
    const { runner, logger } = await hook(`export default function (pkt, ctx) {
      if (pkt.index === 1) ctx.log("${sixSurrogates}E1;4:nopeL0:");
    }`);
    runner.run(batch200);
    expect(runner.stats.failures.threw).toBe(0);
    expect(logger.lines).toEqual([`info: hook t.js: "${"\ufffd".repeat(6)}E1;4:nopeL0:"`]);
  });
});

describe("many tags", () => {
  test("names repeated across a batch and names new on every packet both land on the right packets", async () => {
    const { runner } = await hook(`export default function (pkt, ctx) {
      ctx.tag("p" + pkt.index);
      ctx.tag(pkt.index % 2 ? "odd" : "even");
      ctx.tag("all");
      if (pkt.index % 3 === 0) ctx.tag("p" + (pkt.index + 1));
    }`);
    const result = runner.run(batch200);
    expect(tagsOf(result.tags)).toEqual(
      Array.from({ length: PACKETS }, (_, i) => [`p${i}`, i % 2 ? "odd" : "even", "all", ...(i % 3 === 0 ? [`p${i + 1}`] : [])]),
    );
    // A second batch starts its table of names afresh.
    expect(tagsOf(runner.run(batch200).tags)).toEqual(tagsOf(result.tags));
  });

  test(`the counters keep ${HOOK_TAG_NAMES_COUNTED} names; later new names are counted together, and still tag their packets`, async () => {
    const { runner } = await hook(`export default function (pkt, ctx) {
      ctx.state.n = (ctx.state.n ?? 0) + 1;
      ctx.tag("n" + ctx.state.n);
    }`);
    const batches = Math.ceil((HOOK_TAG_NAMES_COUNTED + 100) / PACKETS);
    let last;
    for (let k = 0; k < batches; k++) last = runner.run(batch200);
    const stats = runner.stats;
    expect(Object.keys(stats.tagged).length).toBe(HOOK_TAG_NAMES_COUNTED);
    expect(stats.tagged[`n${HOOK_TAG_NAMES_COUNTED}`]).toBe(1);
    expect(stats.tagged[`n${HOOK_TAG_NAMES_COUNTED + 1}`]).toBeUndefined();
    expect(stats.taggedOtherNames).toBe(batches * PACKETS - HOOK_TAG_NAMES_COUNTED);
    expect(last!.tags[PACKETS - 1]).toEqual([`n${batches * PACKETS}`]);
    expect(formatHookCounters(stats, "pass")).toContain(` n${HOOK_TAG_NAMES_COUNTED}=1 (other names)=${stats.taggedOtherNames};`);
  });
});

describe("tag names where people read them", () => {
  test("plain names stay bare; any other name is quoted and escaped", () => {
    expect(tagText("dns")).toBe("dns");
    expect(tagText("ssh-v2.x/1_a:b+c")).toBe("ssh-v2.x/1_a:b+c");
    expect(tagText("a\nb")).toBe('"a\\nb"');
    expect(tagText("\x1b[31mred")).toBe('"\\x1b[31mred"');
    expect(tagText("a=1 b")).toBe('"a=1 b"');
    expect(tagText("x,y")).toBe('"x,y"');
    expect(tagText('q"\\')).toBe('"q\\"\\\\"');
    expect(tagText("\0")).toBe('"\\x00"');
    expect(tagText("\u202e")).toBe('"\\u202e"');
  });

  test("the counters line escapes tag names (no raw newline or ESC reaches stderr)", async () => {
    const { runner } = await hook(`export default function (pkt, ctx) {
      if (pkt.index === 0) ctx.tag("a\\nhook x.js: 9 packets");
      if (pkt.index === 1) ctx.tag("\\x1b]0;owned\\x07");
      ctx.tag("dns");
    }`);
    runner.run(batch200);
    const line = formatHookCounters(runner.stats, "pass");
    expect(line).toContain('tags "a\\nhook x.js: 9 packets"=1 dns=200 "\\x1b]0;owned\\x07"=1;');
    expect(line).not.toMatch(/[\x00-\x1f\x7f]/);
  });

  test("tag names such as __proto__ and constructor are counted like any other", async () => {
    const { runner } = await hook(`export default function (pkt, ctx) {
      ctx.tag("__proto__");
      if (pkt.index < 3) ctx.tag("constructor");
    }`);
    runner.run(batch200);
    const tagged = runner.stats.tagged;
    expect(Object.entries(tagged)).toEqual([
      ["__proto__", 200],
      ["constructor", 3],
    ]);
  });
});
