// The reliable fifo: DiskSpool (segments, cursor, recovery with a torn tail, damaged records,
// stream id, full policies) and MemoryFifo, on real files in a temp directory.
import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memoryLogger } from "../../src/logging/index.ts";
import { DiskSpool, MemoryFifo, type PacketFifo } from "../../src/outputs/rt/index.ts";
import type { AppendResult } from "../../src/outputs/rt/fifo/packet-fifo.ts";
import { forEachRecord, PacketBatchBuilder, type PacketBatch } from "../../src/packet/packet-batch.ts";

const root = mkdtempSync(join(tmpdir(), "rt-spool-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const newDir = () => join(root, `s${dirs++}`);

/** A batch of `count` packets whose payload starts with their number (u32le) and has `size` bytes. */
function numbered(first: number, count: number, size = 100): PacketBatch {
  const builder = new PacketBatchBuilder(1, "micro");
  for (let n = first; n < first + count; n++) {
    const data = new Uint8Array(size).fill(n & 0xff);
    new DataView(data.buffer).setUint32(0, n, true);
    builder.push(1_700_000_000, n % 1_000_000, size, data);
  }
  return builder.take()!;
}

/** Every packet number readable from `from` on, in order. */
function drain(fifo: PacketFifo, from = 1): { numbers: number[]; sequences: number[] } {
  const numbers: number[] = [];
  const sequences: number[] = [];
  let next = from;
  for (;;) {
    const chunk = fifo.read(next, 64 * 1024);
    if (!chunk) break;
    forEachRecord({ bytes: chunk.records, count: chunk.count, linktype: chunk.linktype, precision: chunk.precision }, (view, bytes) => {
      numbers.push(new DataView(bytes.buffer, bytes.byteOffset).getUint32(view.dataOffset, true));
    });
    for (let i = 0; i < chunk.count; i++) sequences.push(chunk.firstSequence + i);
    next = chunk.firstSequence + chunk.count;
  }
  return { numbers, sequences };
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const open = (directory: string, extra: Partial<Parameters<typeof DiskSpool.open>[0]> = {}) =>
  DiskSpool.open({ directory, maxBytes: 10 * 1024 * 1024, policy: "block", segmentBytes: 64 * 1024, log: memoryLogger(), ...extra });

describe("DiskSpool", () => {
  test("appends, reads back in order across segments, deletes acknowledged segments after the cursor", async () => {
    const dir = newDir();
    const { spool, recovery } = open(dir);
    expect(recovery.created).toBe(true);
    for (let i = 0; i < 20; i++) spool.append(numbered(1 + i * 50, 50));
    expect(drain(spool).numbers).toEqual(range(1, 1000));
    const segmentsBefore = readdirSync(dir).filter((n) => n.startsWith("seg-")).length;
    expect(segmentsBefore).toBeGreaterThan(2);
    spool.ack(600);
    const cursor = JSON.parse(readFileSync(join(dir, "cursor"), "utf8"));
    expect(cursor.ackedThrough).toBe(600);
    expect(readdirSync(dir).filter((n) => n.startsWith("seg-")).length).toBeLessThan(segmentsBefore);
    expect(drain(spool, 1).numbers).toEqual(range(601, 1000));
    await spool.close();
  });

  test("reopen: same stream id, every unacknowledged record again, numbering continues", async () => {
    const dir = newDir();
    const first = open(dir).spool;
    first.append(numbered(1, 300));
    first.ack(120);
    await first.close();
    const { spool, recovery } = open(dir);
    expect(spool.streamId).toEqual(first.streamId);
    expect(recovery).toMatchObject({ created: false, records: 180, firstSequence: 121, nextSequence: 301, cutBytes: 0 });
    expect(drain(spool).numbers).toEqual(range(121, 300));
    expect(spool.append(numbered(301, 1))).toEqual({ kind: "appended", firstSequence: 301 });
    await spool.close();
  });

  test("without close (as after kill -9) the cursor may lag: records after it come back, none lost", async () => {
    const dir = newDir();
    const crashed = open(dir).spool;
    crashed.append(numbered(1, 100));
    crashed.ack(50); // scheduled, not yet written: a crash now leaves ackedThrough 0 on disk
    const { spool } = open(dir);
    expect(drain(spool).numbers).toEqual(range(1, 100));
    await spool.close();
    await crashed.close();
  });

  test("a torn tail is cut at the last good record; a damaged record ends its segment", async () => {
    const dir = newDir();
    const s = open(dir).spool;
    s.append(numbered(1, 10));
    await s.close();
    const seg = join(dir, readdirSync(dir).find((n) => n.startsWith("seg-"))!);
    const goodSize = statSync(seg).size;
    appendFileSync(seg, Buffer.from("52535452deadbeef", "hex")); // half a header
    let reopened = open(dir);
    expect(reopened.recovery.cutBytes).toBe(8);
    expect(statSync(seg).size).toBe(goodSize);
    expect(drain(reopened.spool).numbers).toEqual(range(1, 10));
    await reopened.spool.close();
    // Flip one payload byte of record 6: records 6.. are cut (their checksum no longer holds).
    const bytes = readFileSync(seg);
    const recordBytes = goodSize / 10;
    bytes[5 * recordBytes + 60]! ^= 0xff;
    writeFileSync(seg, bytes);
    reopened = open(dir);
    expect(reopened.recovery.cutBytes).toBe(5 * recordBytes);
    expect(drain(reopened.spool).numbers).toEqual(range(1, 5));
    await reopened.spool.close();
  });

  test("a record cut mid-payload (crash mid-write) is cut whole", async () => {
    const dir = newDir();
    const s = open(dir).spool;
    s.append(numbered(1, 4));
    await s.close();
    const seg = join(dir, readdirSync(dir).find((n) => n.startsWith("seg-"))!);
    truncateSync(seg, statSync(seg).size - 7);
    const { spool, recovery } = open(dir);
    expect(recovery.records).toBe(3);
    expect(drain(spool).numbers).toEqual([1, 2, 3]);
    await spool.close();
  });

  test("--spool-fsync-ms: the periodic fdatasync runs beside appends and stops at close", async () => {
    const { spool } = open(newDir(), { fsyncMs: 10 });
    for (let i = 0; i < 5; i++) {
      spool.append(numbered(1 + i * 10, 10));
      await Bun.sleep(15);
    }
    await spool.close();
    expect(spool.counters.diskBytesWritten).toBe(spool.counters.bytesIn);
  });

  test("a full disk (a 512 KiB tmpfs): append fails with ENOSPC, keeps nothing of that batch, the spool stays readable", async () => {
    const mountPoint = newDir();
    mkdirSync(mountPoint, { recursive: true });
    const mounted = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=512k", "rt-spool-test", mountPoint]);
    if (mounted.exitCode !== 0) return; // no privilege to mount here: nothing to test
    try {
      const dir = join(mountPoint, "spool");
      const { spool } = open(dir, { maxBytes: 64 * 1024 * 1024, segmentBytes: 16 * 1024 * 1024 });
      let appended = 0;
      let failure: AppendResult | undefined;
      for (let i = 0; i < 200 && !failure; i++) {
        const result = spool.append(numbered(1 + appended, 20, 1000));
        if (result.kind === "appended") appended += 20;
        else failure = result;
      }
      expect(failure).toEqual({ kind: "failed", reason: "ENOSPC" });
      expect(drain(spool).numbers).toEqual(range(1, appended));
      await spool.close();
      // With room again the spool reopens with every record that was appended.
      expect(Bun.spawnSync(["mount", "-o", "remount,size=4m", mountPoint]).exitCode).toBe(0);
      const reopened = open(dir, { maxBytes: 64 * 1024 * 1024 });
      expect(drain(reopened.spool).numbers).toEqual(range(1, appended));
      await reopened.spool.close();
    } finally {
      Bun.spawnSync(["umount", "-l", mountPoint]);
    }
  });

  test("a new directory gets a new stream id", async () => {
    const a = open(newDir()).spool;
    const b = open(newDir()).spool;
    expect(a.streamId).not.toEqual(b.streamId);
    await a.close();
    await b.close();
  });

  test("a damaged cursor is one clear error naming the directory", () => {
    const dir = newDir();
    open(dir).spool.close();
    writeFileSync(join(dir, "cursor"), "{nope");
    expect(() => open(dir)).toThrow(`--spool ${dir}: the cursor file is damaged`);
  });

  test("full: drop-new refuses, drop-oldest releases the oldest segment (cursor first), block refuses", async () => {
    const policies = ["drop-new", "drop-oldest", "block"] as const;
    for (const policy of policies) {
      const dir = newDir();
      const { spool } = open(dir, { maxBytes: 256 * 1024, segmentBytes: 64 * 1024, policy });
      let full = 0;
      for (let i = 0; i < 40; i++) if (spool.append(numbered(1 + i * 50, 50, 200)).kind === "full") full++;
      if (policy === "drop-oldest") {
        expect(full).toBe(0);
        expect(spool.counters.droppedOldestRecords).toBeGreaterThan(0);
        const { numbers } = drain(spool);
        expect(numbers.at(-1)).toBe(2000);
        expect(numbers[0]).toBe(spool.counters.droppedOldestRecords + 1);
        expect(JSON.parse(readFileSync(join(dir, "cursor"), "utf8")).ackedThrough).toBe(spool.counters.droppedOldestRecords);
      } else {
        expect(full).toBeGreaterThan(0);
        expect(spool.counters.usedBytes).toBeLessThanOrEqual(256 * 1024);
      }
      await spool.close();
    }
  });
});

describe("MemoryFifo", () => {
  test("append, partial acks, read from any sequence; drop-oldest and drop-new", async () => {
    const fifo = new MemoryFifo({ maxBytes: 1024 * 1024, policy: "block" });
    fifo.append(numbered(1, 10));
    fifo.append(numbered(11, 10));
    fifo.ack(4);
    expect(drain(fifo).numbers).toEqual(range(5, 20));
    expect(drain(fifo, 15).numbers).toEqual(range(15, 20));
    fifo.ack(20);
    expect(fifo.read(1, 1000)).toBeUndefined();
    expect(fifo.counters.usedBytes).toBe(0);

    const oldest = new MemoryFifo({ maxBytes: 20 * 1024, policy: "drop-oldest" });
    for (let i = 0; i < 10; i++) oldest.append(numbered(1 + i * 10, 10, 200));
    expect(oldest.counters.droppedOldestRecords).toBeGreaterThan(0);
    expect(drain(oldest).numbers.at(-1)).toBe(100);
    const newest = new MemoryFifo({ maxBytes: 20 * 1024, policy: "drop-new" });
    const results = Array.from({ length: 10 }, (_, i) => newest.append(numbered(1 + i * 10, 10, 200)).kind);
    expect(results).toContain("full");
    expect(drain(newest).numbers[0]).toBe(1);
  });
});
