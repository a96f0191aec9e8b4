// MergedSource with scripted in-memory sources: start failures, link type refusal, endings,
// per-source back-pressure, consumer failure, stop. (Real sockets: test/integration/stream-merger-streams.test.ts.)
import { describe, expect, test } from "bun:test";
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "../../src/capture/capture-source.ts";
import { PacketBatchBuilder, forEachRecord, type PacketBatch, type TimestampPrecision } from "../../src/packet/packet-batch.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { MergeError, MergedSource, isMergedBatch, type MergedBatch } from "../../src/pipeline/merge/index.ts";

/** A source driven by the test: push() hands a batch to the merge and returns what onBatch returned. */
class ScriptedSource implements CaptureSource {
  handlers: CaptureHandlers | undefined;
  stopCalls = 0;
  filters: unknown[] = [];
  constructor(
    readonly description: string,
    private readonly startWith: CaptureInfo | Error,
  ) {}
  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    if (this.startWith instanceof Error) throw this.startWith;
    this.handlers = handlers;
    return this.startWith;
  }
  push(batch: PacketBatch): void | Promise<void> {
    return this.handlers!.onBatch(batch);
  }
  end(reason: "end-of-file" | "failed" | "stopped", error?: Error): void {
    this.handlers!.onEnd(reason, error);
  }
  async setFilter(filter: unknown): Promise<void> {
    this.filters.push(filter);
  }
  async stats(): Promise<CaptureStats> {
    return { delivered: 0 };
  }
  async stop(): Promise<CaptureStats> {
    this.stopCalls++;
    if (this.stopCalls === 1 && this.handlers) this.handlers.onEnd("stopped");
    return { delivered: 0 };
  }
}

const ETHERNET = 1;
const RAW = 101;
const info = (linktype = ETHERNET, precision: TimestampPrecision = "micro", snaplen = 65535): CaptureInfo => ({
  linktype,
  precision,
  snaplen,
  description: "scripted",
});

function batchOf(times: readonly number[], tag: string, linktype = ETHERNET, precision: TimestampPrecision = "micro", size = 4): PacketBatch {
  const builder = new PacketBatchBuilder(linktype, precision, 64);
  times.forEach((t, i) => {
    const data = new Uint8Array(size);
    data.set(new TextEncoder().encode(`${tag}${i}`.slice(0, size)));
    builder.push(t, 0, size, data);
  });
  return builder.take()!;
}

/** Collects the merged output; `ended` settles on onEnd. */
function collector() {
  const batches: MergedBatch[] = [];
  let endReason: string | undefined;
  let endError: Error | undefined;
  let resolveEnded!: () => void;
  const ended = new Promise<void>((r) => (resolveEnded = r));
  const handlers: CaptureHandlers = {
    onBatch: (batch) => {
      expect(isMergedBatch(batch)).toBe(true);
      batches.push(batch as MergedBatch);
    },
    onEnd: (reason, error) => {
      endReason = reason;
      endError = error;
      resolveEnded();
    },
  };
  const seconds = () => {
    const out: number[] = [];
    for (const b of batches) forEachRecord(b, (v) => out.push(v.tsSec));
    return out;
  };
  const sourcesOf = () => batches.flatMap((b) => [...b.sourceIndexes]);
  return { handlers, batches, ended, seconds, sourcesOf, end: () => ({ reason: endReason, error: endError }) };
}

/** Waits (bounded) until `predicate` holds. */
async function until(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

describe("MergedSource", () => {
  test("merges in timestamp order and ends end-of-file when every source has ended", async () => {
    const a = new ScriptedSource("a", info());
    const b = new ScriptedSource("b", info());
    const merged = new MergedSource([a, b], { windowMs: 60_000 });
    const out = collector();
    const started = await merged.start(out.handlers);
    expect(started).toEqual({ linktype: ETHERNET, snaplen: 65535, precision: "micro", description: "merge of a, b" });
    a.push(batchOf([1, 3, 5], "a"));
    b.push(batchOf([2, 4], "b"));
    await until(() => out.seconds().length === 4, "four safe records");
    expect(out.seconds()).toEqual([1, 2, 3, 4]); // 5 waits for b
    a.end("end-of-file");
    b.push(batchOf([6], "b"));
    b.end("end-of-file");
    await out.ended;
    expect(out.seconds()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(out.sourcesOf()).toEqual([0, 1, 0, 1, 0, 1]);
    expect(out.end()).toEqual({ reason: "end-of-file", error: undefined });
    expect(await merged.stats()).toEqual({ delivered: 6 });
    expect(merged.sourceStatuses.map((s) => [s.state, s.received])).toEqual([["ended", 3], ["ended", 3]]);
  });

  test("a source that cannot start is logged and left out; the others are merged", async () => {
    const log = memoryLogger();
    const bad = new ScriptedSource("tcp://bad:1", new Error("connection refused"));
    const good = new ScriptedSource("good", info());
    const merged = new MergedSource([bad, good], { log, windowMs: 60_000 });
    const out = collector();
    await merged.start(out.handlers);
    good.push(batchOf([1, 2], "g"));
    await until(() => out.seconds().length === 2, "records of the good source");
    expect(out.sourcesOf()).toEqual([1, 1]);
    expect(log.lines.join("\n")).toContain("tcp://bad:1: cannot start (connection refused); merging the other sources");
    expect(merged.sourceStatuses[0]).toMatchObject({ state: "failed", error: { message: "connection refused" } });
    expect(merged.sourceInfos).toEqual([undefined, info()]);
    await merged.stop();
  });

  test("no source starts: MergeError no-sources listing every failure", async () => {
    const merged = new MergedSource([new ScriptedSource("x", new Error("refused")), new ScriptedSource("y", new Error("timeout"))]);
    const error = await merged.start(collector().handlers).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MergeError);
    expect((error as MergeError).code).toBe("no-sources");
    expect((error as MergeError).message).toBe("no source could be started: x: refused; y: timeout");
  });

  test("different link types are refused at start, and the started sources are stopped", async () => {
    const a = new ScriptedSource("tcp://a:1", info(ETHERNET));
    const b = new ScriptedSource("tcp://b:2", info(RAW));
    const out = collector();
    const error = await new MergedSource([a, b]).start(out.handlers).catch((e: unknown) => e);
    expect((error as MergeError).code).toBe("linktype-mismatch");
    expect((error as MergeError).message).toContain("tcp://a:1 linktype 1, tcp://b:2 linktype 101");
    expect([a.stopCalls, b.stopCalls]).toEqual([1, 1]);
    expect(out.end().reason).toBeUndefined(); // onEnd is not called for a start that failed
  });

  test("allowMixedLinktypes: per-source link types are exposed and batches are cut where the linktype changes", async () => {
    const a = new ScriptedSource("a", info(ETHERNET));
    const b = new ScriptedSource("b", info(RAW, "micro", 1500));
    const merged = new MergedSource([a, b], { allowMixedLinktypes: true, windowMs: 60_000 });
    const out = collector();
    const started = await merged.start(out.handlers);
    expect(started.snaplen).toBe(65535);
    expect(started.warning).toContain("different link types");
    expect(merged.sourceInfos.map((i) => i?.linktype)).toEqual([ETHERNET, RAW]);
    a.push(batchOf([1, 3], "a", ETHERNET));
    b.push(batchOf([2], "b", RAW));
    a.end("end-of-file");
    b.end("end-of-file");
    await out.ended;
    expect(out.batches.map((x) => [x.linktype, [...x.sourceIndexes]])).toEqual([
      [ETHERNET, [0]],
      [RAW, [1]],
      [ETHERNET, [0]],
    ]);
  });

  test("a batch of another linktype later drops that source, the merge goes on", async () => {
    const log = memoryLogger();
    const a = new ScriptedSource("a", info(ETHERNET));
    const b = new ScriptedSource("b", info(ETHERNET));
    const merged = new MergedSource([a, b], { log, windowMs: 60_000 });
    const out = collector();
    await merged.start(out.handlers);
    b.push(batchOf([1], "b", RAW));
    a.push(batchOf([2], "a"));
    a.end("end-of-file");
    await out.ended;
    expect(out.seconds()).toEqual([2]);
    expect(b.stopCalls).toBe(1);
    expect(merged.sourceStatuses[1]!.state).toBe("failed");
    expect(log.lines.join("\n")).toContain("b: delivered linktype 101, the merge carries 1; leaving this source out");
    expect(out.end().reason).toBe("end-of-file");
  });

  test("micro and nano sources: output is nano", async () => {
    const a = new ScriptedSource("a", info(ETHERNET, "micro"));
    const b = new ScriptedSource("b", info(ETHERNET, "nano"));
    const merged = new MergedSource([a, b]);
    const out = collector();
    expect((await merged.start(out.handlers)).precision).toBe("nano");
    a.end("end-of-file");
    b.end("end-of-file");
    await out.ended;
  });

  test("a failing source is logged; when every source failed the merge fails with all-sources-failed", async () => {
    const log = memoryLogger();
    const a = new ScriptedSource("a", info());
    const b = new ScriptedSource("b", info());
    const merged = new MergedSource([a, b], { log, windowMs: 60_000 });
    const out = collector();
    await merged.start(out.handlers);
    a.push(batchOf([1], "a"));
    a.end("failed", new Error("caplen 9999 exceeds snaplen 100"));
    b.push(batchOf([2], "b")); // what a delivered before failing still goes out, in order
    await until(() => out.seconds().length === 2, "a's record, safe once b passed it, then b's");
    expect(out.sourcesOf()).toEqual([0, 1]);
    expect(log.lines).toContain("error: a failed: caplen 9999 exceeds snaplen 100; 1 other source(s) still merged");
    b.end("failed", new Error("reset"));
    await out.ended;
    expect(out.end().reason).toBe("failed");
    expect((out.end().error as MergeError).code).toBe("all-sources-failed");
    expect(out.end().error!.message).toBe("every merged source failed: a: caplen 9999 exceeds snaplen 100; b: reset");
  });

  test("per-source back-pressure: a source past the high-water mark waits, one with nothing held does not", async () => {
    const a = new ScriptedSource("a", info());
    const b = new ScriptedSource("b", info());
    const merged = new MergedSource([a, b], { windowMs: 60_000, sourceHighWaterBytes: 100 });
    const out = collector();
    await merged.start(out.handlers);
    await Bun.sleep(1); // the gate opens a macrotask after start
    // 10 records of 20 bytes = 200 bytes held for a (b has said nothing, so nothing is safe).
    const pending = a.push(batchOf([10, 11, 12, 13, 14, 15, 16, 17, 18, 19], "a"));
    expect(pending).toBeInstanceOf(Promise);
    let settled = false;
    void (pending as Promise<void>).then(() => (settled = true));
    expect(b.push(batchOf([1], "b"))).toBeUndefined(); // b's record is safe at once: not held, no wait
    await Bun.sleep(5);
    expect(settled).toBe(false);
    b.push(batchOf([15], "b")); // releases a's 10..15 and b's 15: a's held bytes drop to 80 > 50
    await Bun.sleep(5);
    expect(settled).toBe(false);
    b.push(batchOf([30], "b")); // everything of a is safe now
    await until(() => settled, "a's back-pressure promise");
    expect(out.seconds()).toEqual([1, 10, 11, 12, 13, 14, 15, 15, 16, 17, 18, 19]);
    await merged.stop();
  });

  test("the consumer throwing ends the merge failed and stops the sources", async () => {
    const a = new ScriptedSource("a", info());
    const merged = new MergedSource([a]);
    let ended: [string, Error | undefined] | undefined;
    await merged.start({
      onBatch: () => {
        throw new Error("disk full");
      },
      onEnd: (reason, error) => (ended = [reason, error]),
    });
    a.push(batchOf([1], "a"));
    await until(() => ended !== undefined, "onEnd");
    expect(ended![0]).toBe("failed");
    expect((ended![1] as MergeError).code).toBe("consumer-failed");
    expect(ended![1]!.message).toBe("merge consumer failed: disk full");
    expect(a.stopCalls).toBe(1);
  });

  test("stop() stops every source, lets out what is held, ends stopped; it is idempotent", async () => {
    const a = new ScriptedSource("a", info());
    const b = new ScriptedSource("b", info());
    const merged = new MergedSource([a, b], { windowMs: 60_000 });
    const out = collector();
    await merged.start(out.handlers);
    a.push(batchOf([5, 6], "a")); // held: b is silent
    await Bun.sleep(2);
    expect(out.seconds()).toEqual([]);
    const [first, second] = await Promise.all([merged.stop(), merged.stop()]);
    expect(first).toEqual({ delivered: 2 });
    expect(second).toBe(first);
    expect(out.seconds()).toEqual([5, 6]);
    expect(out.end()).toEqual({ reason: "stopped", error: undefined });
    expect([a.stopCalls, b.stopCalls]).toEqual([1, 1]);
  });

  test("setFilter reaches every running source", async () => {
    const a = new ScriptedSource("a", info());
    const b = new ScriptedSource("b", new Error("down"));
    const c = new ScriptedSource("c", info());
    const merged = new MergedSource([a, b, c]);
    await merged.start(collector().handlers);
    await merged.setFilter("udp");
    expect([a.filters, b.filters, c.filters]).toEqual([["udp"], [], ["udp"]]);
    await merged.stop();
  });

  test("the window lets a quiet source's partner out after windowMs", async () => {
    const a = new ScriptedSource("a", info());
    const b = new ScriptedSource("b", info());
    const merged = new MergedSource([a, b], { windowMs: 30 });
    const out = collector();
    await merged.start(out.handlers);
    a.push(batchOf([1, 2], "a"));
    await until(() => out.seconds().length === 2, "release by the window timer");
    expect(merged.counters.releasedByTimeout).toBe(2);
    await merged.stop();
  });
});
