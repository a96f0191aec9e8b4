// MergeWindow: the pure k-way merge with a bounded reordering window (time is passed in).
import { describe, expect, test } from "bun:test";
import { PacketBatchBuilder, forEachRecord, type PacketBatch, type TimestampPrecision } from "../../src/packet/packet-batch.ts";
import { MergeWindow, isMergedBatch, type MergedBatch, type MergeWindowOptions } from "../../src/pipeline/merge/index.ts";

interface Rec {
  sec: number;
  frac: number;
  /** Payload: identifies the record in assertions. */
  tag: string;
}

function batchOf(records: readonly Rec[], precision: TimestampPrecision = "micro", linktype = 1): PacketBatch {
  const builder = new PacketBatchBuilder(linktype, precision, 64);
  for (const r of records) {
    const data = new TextEncoder().encode(r.tag);
    builder.push(r.sec, r.frac, data.byteLength + 10, data);
  }
  return builder.take()!;
}

interface OutRec extends Rec {
  source: number;
  linktype: number;
  len: number;
}

function flatten(batches: readonly MergedBatch[]): OutRec[] {
  const out: OutRec[] = [];
  for (const batch of batches) {
    let i = 0;
    forEachRecord(batch, (view, bytes) => {
      out.push({
        sec: view.tsSec,
        frac: view.tsFrac,
        tag: new TextDecoder().decode(bytes.subarray(view.dataOffset, view.dataOffset + view.caplen)),
        source: batch.sourceIndexes[i++]!,
        linktype: batch.linktype,
        len: view.len,
      });
    });
    expect(i).toBe(batch.count);
  }
  return out;
}

function makeWindow(overrides: Partial<MergeWindowOptions> = {}): { window: MergeWindow; out: MergedBatch[]; release(now: number, flushAll?: boolean): number | undefined } {
  const window = new MergeWindow({ sourceCount: 2, precision: "micro", windowMs: 100, maxHeldBytes: 1 << 30, outputBatchBytes: 1 << 20, ...overrides });
  const out: MergedBatch[] = [];
  return { window, out, release: (now, flushAll) => window.release(now, (b) => out.push(b), flushAll) };
}

const tags = (records: readonly OutRec[]) => records.map((r) => r.tag);

describe("MergeWindow ordering", () => {
  test("holds a record until every live source has delivered something at or after it", () => {
    const { window, out, release } = makeWindow();
    window.add(0, batchOf([{ sec: 10, frac: 0, tag: "a0" }, { sec: 10, frac: 5, tag: "a5" }]), 0);
    expect(release(0)).toBe(100); // source 1 has said nothing: wait, at most until arrival + window
    expect(out).toHaveLength(0);
    window.add(1, batchOf([{ sec: 10, frac: 3, tag: "b3" }]), 1);
    release(1);
    // a0 and b3 are safe (b3 is at or before source 0's watermark); a5 waits for source 1 to pass 10.000005.
    expect(tags(flatten(out))).toEqual(["a0", "b3"]);
    window.add(1, batchOf([{ sec: 10, frac: 9, tag: "b9" }]), 2);
    release(2);
    expect(tags(flatten(out))).toEqual(["a0", "b3", "a5"]);
    expect(window.heldBytes).toBeGreaterThan(0); // b9 waits for source 0
    window.endSource(0);
    release(3);
    expect(tags(flatten(out))).toEqual(["a0", "b3", "a5", "b9"]);
    expect(window.heldBytes).toBe(0);
    expect(window.counters).toEqual({ released: 4, outOfOrder: 0, releasedByTimeout: 0, releasedBySize: 0 });
  });

  test("the window elapsing lets records out although a source is quiet", () => {
    const { window, out, release } = makeWindow({ windowMs: 50 });
    window.add(0, batchOf([{ sec: 1, frac: 1, tag: "x" }, { sec: 1, frac: 2, tag: "y" }]), 1000);
    expect(release(1049)).toBe(1050);
    expect(out).toHaveLength(0);
    expect(release(1050)).toBeUndefined();
    expect(tags(flatten(out))).toEqual(["x", "y"]);
    expect(window.counters.releasedByTimeout).toBe(2);
  });

  test("a late record (source more than the window behind) still goes out, counted as out of order", () => {
    const { window, out, release } = makeWindow({ windowMs: 10 });
    window.add(0, batchOf([{ sec: 5, frac: 0, tag: "late-peer-not-yet" }]), 0);
    release(10); // timeout: out it goes
    window.add(1, batchOf([{ sec: 4, frac: 0, tag: "late" }]), 11);
    release(21);
    expect(tags(flatten(out))).toEqual(["late-peer-not-yet", "late"]);
    expect(window.counters.outOfOrder).toBe(1);
  });

  test("an ended source does not hold the others back", () => {
    const { window, out, release } = makeWindow();
    window.endSource(1);
    window.add(0, batchOf([{ sec: 1, frac: 0, tag: "only" }]), 0);
    expect(release(0)).toBeUndefined();
    expect(tags(flatten(out))).toEqual(["only"]);
  });

  test("flushAll lets everything out in order", () => {
    const { window, out, release } = makeWindow();
    window.add(0, batchOf([{ sec: 2, frac: 0, tag: "a2" }, { sec: 4, frac: 0, tag: "a4" }]), 0);
    window.add(1, batchOf([{ sec: 3, frac: 0, tag: "b3" }, { sec: 5, frac: 0, tag: "b5" }]), 0);
    release(0);
    expect(tags(flatten(out))).toEqual(["a2", "b3", "a4"]);
    release(0, true);
    expect(tags(flatten(out))).toEqual(["a2", "b3", "a4", "b5"]);
    expect(window.drained).toBe(false); // sources not ended
    window.endSource(0);
    window.endSource(1);
    expect(window.drained).toBe(true);
  });

  test("more than maxHeldBytes held: the earliest records go out regardless", () => {
    const { window, out, release } = makeWindow({ maxHeldBytes: 40 });
    // Each record is 16 + 2 bytes; three are 54 > 40.
    window.add(0, batchOf([{ sec: 1, frac: 0, tag: "r1" }, { sec: 1, frac: 1, tag: "r2" }, { sec: 1, frac: 2, tag: "r3" }]), 0);
    release(0);
    expect(tags(flatten(out))).toEqual(["r1"]);
    expect(window.heldBytes).toBe(36);
    expect(window.counters.releasedBySize).toBe(1);
  });

  test("equal timestamps: the later source index goes first (mergecap 4.0's order); timestamps compare by seconds then fraction", () => {
    const { window, out, release } = makeWindow({ sourceCount: 3 });
    window.add(2, batchOf([{ sec: 7, frac: 1, tag: "c" }, { sec: 0xffffffff, frac: 0, tag: "c-max" }]), 0);
    window.add(1, batchOf([{ sec: 7, frac: 1, tag: "b" }, { sec: 8, frac: 0, tag: "b8" }]), 0);
    window.add(0, batchOf([{ sec: 6, frac: 999999, tag: "a" }]), 0);
    release(0, true);
    expect(tags(flatten(out))).toEqual(["a", "c", "b", "b8", "c-max"]);
    expect(flatten(out).map((r) => r.source)).toEqual([0, 2, 1, 1, 2]);
  });

  test("ties within one source keep its order, and all of the later source's tied records go first", () => {
    // mergecap 4.0 on A=[1,2,2] B=[1,2] C=[2,2] (seconds) gives B1 A1 C2 C2 B2 A2 A2.
    const { window, out, release } = makeWindow({ sourceCount: 3 });
    window.add(0, batchOf([{ sec: 1, frac: 0, tag: "A0" }, { sec: 2, frac: 0, tag: "A1" }, { sec: 2, frac: 0, tag: "A2" }]), 0);
    window.add(1, batchOf([{ sec: 1, frac: 0, tag: "B0" }, { sec: 2, frac: 0, tag: "B1" }]), 0);
    window.add(2, batchOf([{ sec: 2, frac: 0, tag: "C0" }, { sec: 2, frac: 0, tag: "C1" }]), 0);
    release(0, true);
    expect(tags(flatten(out))).toEqual(["B0", "A0", "C0", "C1", "B1", "A1", "A2"]);
  });

  test("a quiet later source that has delivered exactly T holds a tie at T back; an earlier one does not", () => {
    const { window, out, release } = makeWindow({ sourceCount: 2 });
    window.add(1, batchOf([{ sec: 5, frac: 0, tag: "B0" }]), 0);
    window.add(0, batchOf([{ sec: 5, frac: 0, tag: "A0" }]), 0);
    release(0);
    // B0 wins the tie and goes; A0 must wait: source 1 may still deliver another record at 5.
    expect(tags(flatten(out))).toEqual(["B0"]);
    window.add(1, batchOf([{ sec: 5, frac: 0, tag: "B1" }]), 0);
    release(0);
    expect(tags(flatten(out))).toEqual(["B0", "B1"]);
    window.add(1, batchOf([{ sec: 6, frac: 0, tag: "B2" }]), 0);
    release(0);
    expect(tags(flatten(out))).toEqual(["B0", "B1", "A0"]);
    // B2 at 6 waits for source 0 (quiet at 5) until it ends.
    window.endSource(0);
    release(0);
    expect(tags(flatten(out))).toEqual(["B0", "B1", "A0", "B2"]);
    expect(window.counters.releasedByTimeout).toBe(0);
  });
});

describe("MergeWindow output", () => {
  test("micro and nano sources merged into nano: micro fractions are multiplied, order uses nanoseconds", () => {
    const { window, out, release } = makeWindow({ precision: "nano" });
    window.add(0, batchOf([{ sec: 1, frac: 500_000, tag: "micro-500ms" }], "micro"), 0);
    window.add(1, batchOf([{ sec: 1, frac: 499_999_999, tag: "nano-just-before" }, { sec: 1, frac: 500_000_001, tag: "nano-just-after" }], "nano"), 0);
    release(0, true);
    expect(out.every((b) => b.precision === "nano")).toBe(true);
    expect(flatten(out).map((r) => [r.tag, r.frac])).toEqual([
      ["nano-just-before", 499_999_999],
      ["micro-500ms", 500_000_000],
      ["nano-just-after", 500_000_001],
    ]);
  });

  test("output in micro truncates nano fractions", () => {
    const { window, out, release } = makeWindow({ precision: "micro" });
    window.add(0, batchOf([{ sec: 3, frac: 123_456_789, tag: "n" }], "nano"), 0);
    window.endSource(1);
    release(0);
    expect(flatten(out).map((r) => r.frac)).toEqual([123_456]);
    expect(out[0]!.precision).toBe("micro");
  });

  test("mixed link types: batches are cut where the linktype changes; len and data are kept", () => {
    const { window, out, release } = makeWindow();
    window.add(0, batchOf([{ sec: 1, frac: 0, tag: "e1" }, { sec: 3, frac: 0, tag: "e3" }], "micro", 1), 0);
    window.add(1, batchOf([{ sec: 2, frac: 0, tag: "r2" }], "micro", 101), 0);
    release(0, true);
    expect(out.map((b) => [b.linktype, b.count])).toEqual([[1, 1], [101, 1], [1, 1]]);
    expect(flatten(out).map((r) => [r.tag, r.source, r.len])).toEqual([["e1", 0, 12], ["r2", 1, 12], ["e3", 0, 12]]);
    expect(out.every(isMergedBatch)).toBe(true);
  });

  test("output batches are cut at outputBatchBytes", () => {
    const { window, out, release } = makeWindow({ outputBatchBytes: 50 });
    const records = Array.from({ length: 10 }, (_, i) => ({ sec: 1, frac: i, tag: `p${i}` })); // 18 bytes each
    window.add(0, batchOf(records), 0);
    window.endSource(1);
    release(0);
    expect(out.map((b) => b.count)).toEqual([3, 3, 3, 1]);
    expect(tags(flatten(out))).toEqual(records.map((r) => r.tag));
  });

  test("refuses source indexes out of range and adding to an ended source", () => {
    const { window } = makeWindow();
    expect(() => window.add(2, batchOf([{ sec: 1, frac: 0, tag: "x" }]), 0)).toThrow(/no source 2/);
    window.endSource(0);
    expect(() => window.add(0, batchOf([{ sec: 1, frac: 0, tag: "x" }]), 0)).toThrow(/has ended/);
    expect(() => new MergeWindow({ sourceCount: 0, precision: "micro", windowMs: 1, maxHeldBytes: 1, outputBatchBytes: 1 })).toThrow(RangeError);
  });
});

describe("MergeWindow with bounded random input", () => {
  // Deterministic PRNG (mulberry32) so a failure can be replayed.
  function prng(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    test(`seed ${seed}: sorted sources fed in random slices come out complete in mergecap's order, without timeouts`, () => {
      const random = prng(seed);
      const sourceCount = 1 + Math.floor(random() * 5);
      const { window, out, release } = makeWindow({ sourceCount, precision: "nano", outputBatchBytes: 1 + Math.floor(random() * 300) });
      // Each source: up to 60 records with non-decreasing timestamps, micro or nano.
      const streams = Array.from({ length: sourceCount }, (_, s) => {
        const precision: TimestampPrecision = random() < 0.5 ? "micro" : "nano";
        let sec = 100 + Math.floor(random() * 3);
        let frac = 0;
        const limit = precision === "micro" ? 1_000_000 : 1_000_000_000;
        // Steps of whole tenths of a second (a third of them 0) make ties within and across
        // sources common, micro against nano included.
        const records = Array.from({ length: Math.floor(random() * 60) }, (_, i) => {
          frac += Math.floor(random() * 3) * (limit / 10);
          if (frac >= limit) {
            sec += 1;
            frac -= limit;
          }
          return { sec, frac, tag: `${s}:${i}` };
        });
        return { precision, records, next: 0 };
      });
      const expected = streams
        .flatMap((st, s) => st.records.map((r) => ({ ...r, source: s, ns: r.sec * 1e9 + r.frac * (st.precision === "micro" ? 1000 : 1) })))
        // mergecap's order: by time, ties to the later source, a source's own ties in its order
        // (Array.prototype.sort is stable).
        .sort((a, b) => a.ns - b.ns || b.source - a.source);
      let steps = 0;
      while (streams.some((st) => st.next < st.records.length) && steps++ < 10_000) {
        const s = Math.floor(random() * sourceCount);
        const st = streams[s]!;
        if (st.next >= st.records.length) {
          window.endSource(s);
          st.next = Number.POSITIVE_INFINITY;
          release(0);
          continue;
        }
        const take = 1 + Math.floor(random() * 8);
        window.add(s, batchOf(st.records.slice(st.next, st.next + take), st.precision), 0);
        st.next += take;
        release(0); // time never advances: only the safety rule lets records out
      }
      for (let s = 0; s < sourceCount; s++) if (Number.isFinite(streams[s]!.next)) window.endSource(s);
      release(0);
      const got = flatten(out);
      expect(window.drained).toBe(true);
      expect(window.counters.outOfOrder).toBe(0);
      expect(window.counters.releasedByTimeout).toBe(0);
      // Exactly mergecap's order, ties included.
      expect(got.map((r) => r.tag)).toEqual(expected.map((r) => r.tag));
    });
  }
});
