// The rotation policy (pure) and the file name template: period slots counted from the UTC
// period start, -G / interval / size / packet cuts, tcpdump's numbering and our matcher.
import { describe, expect, test } from "bun:test";
import {
  FileNameTemplate,
  FileNameTemplateError,
  cutBefore,
  dueWithoutPacket,
  periodSlotOf,
  periodSlotStartSec,
  type RotationTriggers,
} from "../../src/outputs/rotating-file/index.ts";
import { fileNameTimeSec, newFileState } from "../../src/outputs/rotating-file/rotation-policy.ts";
import { filesToDelete, type RetentionLimits } from "../../src/outputs/rotating-file/retention.ts";

const DAY_2026_12_01 = Date.UTC(2026, 11, 1) / 1000;

describe("period slots (WDCap: counted from the UTC period start)", () => {
  test("4 per day: 00:00, 06:00, 12:00, 18:00 UTC", () => {
    const period = { unit: "day", perPeriod: 4 } as const;
    const starts = [0, 1, 2, 3].map((k) => periodSlotStartSec(periodSlotOf(DAY_2026_12_01 + k * 21_600 + 5, period), period));
    expect(starts.map((s) => new Date(s * 1000).toISOString())).toEqual([
      "2026-12-01T00:00:00.000Z",
      "2026-12-01T06:00:00.000Z",
      "2026-12-01T12:00:00.000Z",
      "2026-12-01T18:00:00.000Z",
    ]);
    // The last second of a slot and the first of the next.
    expect(periodSlotOf(DAY_2026_12_01 + 21_599, period)).toBe(periodSlotOf(DAY_2026_12_01, period));
    expect(periodSlotOf(DAY_2026_12_01 + 21_600, period)).toBe(periodSlotOf(DAY_2026_12_01, period) + 1);
    // The next day's first slot follows the previous day's last.
    expect(periodSlotOf(DAY_2026_12_01 + 86_400, period)).toBe(periodSlotOf(DAY_2026_12_01 + 86_399, period) + 1);
  });

  test("7 per day (not a divisor): whole-second boundaries floor(k*86400/7), every second in exactly one slot", () => {
    const period = { unit: "day", perPeriod: 7 } as const;
    const first = periodSlotOf(DAY_2026_12_01, period);
    for (let k = 0; k < 7; k++) {
      const start = DAY_2026_12_01 + Math.floor((k * 86_400) / 7);
      expect(periodSlotStartSec(first + k, period)).toBe(start);
      expect(periodSlotOf(start, period)).toBe(first + k);
      if (k > 0) expect(periodSlotOf(start - 1, period)).toBe(first + k - 1);
    }
  });

  test("hourly with 12 per hour: every 5 minutes from the hour, not from capture start", () => {
    const period = { unit: "hour", perPeriod: 12 } as const;
    const capturedFrom = DAY_2026_12_01 + 3600 * 5 + 123; // 05:02:03
    const state = newFileState({ period }, capturedFrom, 0, 24);
    expect(new Date(fileNameTimeSec({ period }, state, capturedFrom) * 1000).toISOString()).toBe("2026-12-01T05:00:00.000Z");
    state.packets = 1;
    expect(cutBefore({ period }, state, DAY_2026_12_01 + 3600 * 5 + 299, 0)).toBeUndefined();
    expect(cutBefore({ period }, state, DAY_2026_12_01 + 3600 * 5 + 300, 0)).toBe("period");
  });
});

describe("other triggers", () => {
  const opened = (triggers: RotationTriggers, nowSec = 1000) => {
    const s = newFileState(triggers, DAY_2026_12_01, nowSec, 24);
    s.packets = 1;
    return s;
  };

  test("-G: wall clock since the file opened", () => {
    const t = { everySeconds: 10 };
    expect(cutBefore(t, opened(t), DAY_2026_12_01, 1009.9)).toBeUndefined();
    expect(cutBefore(t, opened(t), DAY_2026_12_01, 1010)).toBe("seconds");
    expect(dueWithoutPacket(t, opened(t), 1010)).toBe("seconds");
  });

  test("--rotate-interval: aligned to multiples of the interval on the wall clock", () => {
    const t = { intervalSeconds: 60 };
    const s = opened(t, 1019); // slot 16 = [960, 1020)
    expect(cutBefore(t, s, DAY_2026_12_01, 1019.999)).toBeUndefined();
    expect(cutBefore(t, s, DAY_2026_12_01, 1020)).toBe("interval");
    expect(fileNameTimeSec(t, s, DAY_2026_12_01)).toBe(960);
  });

  test("-C: cut once the file holds more than the limit (tcpdump's check before each packet)", () => {
    const t = { maxBytes: 1000 };
    const s = opened(t);
    s.bytes = 1000;
    expect(cutBefore(t, s, DAY_2026_12_01, 1000)).toBeUndefined();
    s.bytes = 1001;
    expect(cutBefore(t, s, DAY_2026_12_01, 1000)).toBe("size");
  });

  test("--rotate-packets and a file without packets never cut", () => {
    const t = { maxPackets: 2 };
    const s = opened(t);
    expect(cutBefore(t, s, DAY_2026_12_01, 1000)).toBeUndefined();
    s.packets = 2;
    expect(cutBefore(t, s, DAY_2026_12_01, 1000)).toBe("packets");
    s.packets = 0;
    expect(cutBefore({ maxBytes: 1 }, { ...s, bytes: 99 }, DAY_2026_12_01, 1000)).toBeUndefined();
  });
});

describe("file name template", () => {
  const at = Date.UTC(2026, 0, 2, 3, 4, 5) / 1000;

  test("strftime in UTC, %N zero-padded, %I", () => {
    const t = new FileNameTemplate("cap-%Y%m%d-%H%M%S-%N-%I.pcap", "eth0");
    expect(t.format({ timeSec: at, sequence: 7 })).toBe("cap-20260102-030405-0007-eth0.pcap");
    expect(new FileNameTemplate("%F_%T_%j_%6N_%%", "x").format({ timeSec: at, sequence: 3 })).toBe("2026-01-02_03:04:05_002_000003_%");
    const m = t.matcher().exec("cap-20260102-030405-0123-eth0.pcap")!;
    expect(t.sequenceOf(m)).toBe(123);
    expect(t.matcher().test("cap-20260102-030405-0123-eth1.pcap")).toBe(false);
    expect(t.matcher().test("notes.txt")).toBe(false);
  });

  test("plain names number as tcpdump -C does; a ring pads to the digits of N-1", () => {
    const plain = new FileNameTemplate("out", "x");
    expect([0, 1, 12].map((sequence) => plain.format({ timeSec: 0, sequence }))).toEqual(["out", "out1", "out12"]);
    expect(plain.sequenceOf(plain.matcher().exec("out")!)).toBe(0);
    expect(plain.matcher().test("out.txt")).toBe(false);
    expect(new FileNameTemplate("out", "x", 10).format({ timeSec: 0, sequence: 13 })).toBe("out3");
    expect(new FileNameTemplate("out.pcap", "x", 12).format({ timeSec: 0, sequence: 5 })).toBe("out.pcap05");
    expect(new FileNameTemplate("out", "x", 1).format({ timeSec: 0, sequence: 5 })).toBe("out");
  });

  test("a template without %N takes _K before its extension on collision, and still matches", () => {
    const t = new FileNameTemplate("cap-%H.pcap", "x");
    expect(t.format({ timeSec: at, sequence: 0 }, 2)).toBe("cap-03_2.pcap");
    expect(t.matcher().test("cap-03_2.pcap")).toBe(true);
    expect(t.matcher().test("cap-03.pcap")).toBe(true);
  });

  test("bad templates name the conversion", () => {
    expect(() => new FileNameTemplate("x-%Q", "x")).toThrow(FileNameTemplateError);
    expect(() => new FileNameTemplate("x-%Q", "x")).toThrow(/unknown conversion %Q/);
    expect(() => new FileNameTemplate("x-%", "x")).toThrow(/lone '%'/);
    expect(() => new FileNameTemplate("x-%3Y", "x")).toThrow(/only %N takes a width/);
  });
});

describe("retention (pure choice)", () => {
  const files = [1, 2, 3, 4].map((k) => ({ name: `f${k}`, path: `/d/f${k}`, bytes: 100, mtimeMs: k, sequence: k }));
  const doomed = (limits: RetentionLimits, open = { files: 1, bytes: 24 }, free = 1e9) =>
    filesToDelete(files, limits, open, free).map((f) => f.name);

  test("count counts the open file; bytes too; min-free frees the oldest first", () => {
    expect(doomed({ files: 3 })).toEqual(["f1", "f2"]);
    expect(doomed({ bytes: 250 })).toEqual(["f1", "f2"]);
    expect(doomed({ minFreeBytes: 1150 }, undefined, 1000)).toEqual(["f1", "f2"]);
    expect(doomed({ minFreeBytes: 10_000 }, undefined, 1000)).toEqual(["f1", "f2", "f3", "f4"]);
    expect(doomed({ files: 10, bytes: 10_000 })).toEqual([]);
  });
});
