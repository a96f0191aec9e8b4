// src/logging: peer text escaped and quoted, repeated lines rate limited (with a bounded
// table of kinds), syslog lines in RFC 3164 form, and createLogger's level, JSON and file.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createLogger,
  escapeControlCharacters,
  formatSyslogLine,
  LogRateLimiter,
  MAX_LOG_KINDS_PER_INTERVAL,
  MAX_PEER_TEXT_CHARS,
  peerText,
} from "../../src/logging/index.ts";

const dir = mkdtempSync(join(tmpdir(), "probe-logging-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("peerText", () => {
  test.each([
    ["lo", '"lo"'],
    ["a\nb", '"a\\nb"'],
    ["a\r\tb", '"a\\r\\tb"'],
    ['say "hi" \\', '"say \\"hi\\" \\\\"'],
    ["\x1b[31mred", '"\\x1b[31mred"'],
    ["\x7f\x85", '"\\x7f\\x85"'],
    ["x\u2028y\u202ez", '"x\\u2028y\\u202ez"'],
    ["é ünïcode", '"é ünïcode"'],
  ])("%j -> %s", (input, expected) => {
    expect(peerText(input)).toBe(expected);
  });

  test("long text is cut and says how much was left out", () => {
    const text = peerText("x".repeat(MAX_PEER_TEXT_CHARS + 50));
    expect(text).toBe(`"${"x".repeat(MAX_PEER_TEXT_CHARS)}"...(+50 chars)`);
  });

  test("escapeControlCharacters leaves no line break in any message", () => {
    const all = Array.from({ length: 0x2030 }, (_, i) => String.fromCharCode(i)).join("");
    expect(escapeControlCharacters(all)).not.toMatch(/[\n\r\u0085\u2028\u2029]/);
  });
});

describe("LogRateLimiter", () => {
  test("N lines per kind, then one summary with the count when the interval ends", () => {
    const summaries: string[] = [];
    const limiter = new LogRateLimiter({ linesPerInterval: 3, totalLinesPerInterval: 100, intervalMs: 60_000 }, (level, m) => summaries.push(`${level}: ${m}`));
    const admitted = Array.from({ length: 10 }, (_, i) => limiter.admit("warn", `session ${i}: refused OPEN of "x${i}"`)).filter(Boolean);
    expect(admitted).toHaveLength(3);
    expect(limiter.admit("info", "something else")).toBe(true);
    limiter.flush();
    expect(summaries).toEqual(['warn: suppressed 7 similar lines in 60000 ms, like: session 0: refused OPEN of "x0"']);
    expect(limiter.admit("warn", 'session 99: refused OPEN of "y"')).toBe(true); // a new interval
    limiter.flush();
  });

  test("a flood of distinct kinds shares one bucket once the table is full", () => {
    const summaries: string[] = [];
    const limiter = new LogRateLimiter({ linesPerInterval: 1, totalLinesPerInterval: 100_000, intervalMs: 60_000 }, (_l, m) => summaries.push(m));
    let admitted = 0;
    // Letters only: digits would be blanked into one kind.
    const letters = (n: number) => [...n.toString(26)].map((c) => String.fromCharCode(97 + parseInt(c, 26))).join("");
    for (let i = 0; i < MAX_LOG_KINDS_PER_INTERVAL + 500; i++) if (limiter.admit("warn", `kind ${letters(i)}`)) admitted++;
    expect(admitted).toBeLessThanOrEqual(MAX_LOG_KINDS_PER_INTERVAL + 1);
    limiter.flush();
    expect(summaries.some((m) => m.startsWith("suppressed") && m.includes("lines of other kinds"))).toBe(true);
  });
});

test("LogRateLimiter: many kinds together stop at the total, counted apart", () => {
  const summaries: string[] = [];
  const limiter = new LogRateLimiter({ linesPerInterval: 5, totalLinesPerInterval: 10, intervalMs: 60_000 }, (_l, m) => summaries.push(m));
  const kinds = ["alpha", "beta", "gamma", "delta"];
  let admitted = 0;
  for (let round = 0; round < 5; round++) for (const k of kinds) if (limiter.admit("warn", `kind ${k}`)) admitted++;
  expect(admitted).toBe(10);
  limiter.flush();
  expect(summaries).toContain("suppressed 10 lines over the limit of 10 in all in 60000 ms, like: kind gamma");
});

describe("formatSyslogLine", () => {
  test("RFC 3164: <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG, facility daemon", () => {
    const at = new Date(2026, 0, 5, 3, 4, 5);
    expect(formatSyslogLine(4, "probe-rpcapd", 42, "hello", at)).toBe("<28>Jan  5 03:04:05 probe-rpcapd[42]: hello");
    expect(formatSyslogLine(3, "probe", 1, "x", new Date(2026, 11, 25, 23, 59, 59))).toBe("<27>Dec 25 23:59:59 probe[1]: x");
  });
});

describe("createLogger", () => {
  test("JSON lines to a file, level filter, control characters escaped", () => {
    const path = join(dir, "a.log");
    const log = createLogger({ name: "probe-test", level: "info", format: "json", destination: { kind: "file", path }, rateLimit: null });
    log.debug("not shown");
    log.info("first");
    log.warn("two\nlines");
    log.close();
    log.error("after close");
    const records = readFileSync(path, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(records.map((r) => [r.level, r.name, r.message])).toEqual([
      ["info", "probe-test", "first"],
      ["warn", "probe-test", "two\\nlines"],
    ]);
  });

  test("an unwritable --log-file is an error naming it", () => {
    expect(() => createLogger({ name: "p", level: "info", format: "text", destination: { kind: "file", path: join(dir, "no/such/dir.log") }, rateLimit: null })).toThrow(
      /--log-file .*no\/such\/dir\.log: ENOENT/,
    );
  });
});
