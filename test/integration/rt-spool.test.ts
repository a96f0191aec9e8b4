// The reliable fifo: DiskSpool (segments, cursor, recovery with a torn tail, damaged records,
// stream id, full policies) and MemoryFifo, on real files in a temp directory.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { appendFileSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memoryLogger } from "../../src/logging/index.ts";
import { DiskSpool, MemoryFifo, SpoolError, type PacketFifo } from "../../src/outputs/rt/index.ts";
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

  test("a torn tail is cut at the last good record; a damaged record in the middle is skipped, the rest kept", async () => {
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
    // Flip one payload byte of record 6: only record 6 is lost; nothing on disk changes.
    const bytes = readFileSync(seg);
    const recordBytes = goodSize / 10;
    bytes[5 * recordBytes + 60]! ^= 0xff;
    writeFileSync(seg, bytes);
    reopened = open(dir);
    expect(reopened.recovery).toMatchObject({ cutBytes: 0, lostRecords: 1, records: 9, damaged: [{ offset: 5 * recordBytes, bytes: recordBytes, lostRecords: 1 }] });
    expect(drain(reopened.spool).numbers).toEqual([...range(1, 5), ...range(7, 10)]);
    expect(readFileSync(seg).equals(bytes)).toBe(true);
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

/** Every file of `dir` (name -> bytes, or "-> target" for a link), to show recovery changed nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const stats = lstatSync(path);
    out[name] = stats.isSymbolicLink() ? `-> ${readlinkSync(path)}` : stats.isFile() ? createHash("sha256").update(readFileSync(path)).digest("hex") : "other";
  }
  return out;
}

const RECORD_BYTES = 24 + 16 + 100;
const segmentName = (sequence: number) => `seg-${sequence.toString(16).padStart(16, "0")}.rts`;

/** A closed spool of 5,000 numbered records in one segment (the repro), and its segment's path. */
async function spoolOf5000(dir: string): Promise<string> {
  const { spool } = open(dir, { segmentBytes: 16 * 1024 * 1024 });
  for (let i = 0; i < 100; i++) spool.append(numbered(1 + i * 50, 50));
  await spool.close();
  return join(dir, segmentName(1));
}

describe("DiskSpool recovery keeps every intact record (issue 21)", () => {
  const damages: [string, (bytes: Buffer, at: number) => void][] = [
    ["a flipped payload byte", (b, at) => (b[at + 24 + 16 + 50]! ^= 0x01)],
    ["a zeroed checksum", (b, at) => b.writeUInt32LE(0, at + 4)],
    ["a length of 0xffffffff", (b, at) => b.writeUInt32LE(0xffffffff, at + 8)],
    ["a zeroed magic", (b, at) => b.writeUInt32LE(0, at)],
  ];
  for (const [what, damage] of damages) {
    test(`${what} in record 1,000 of 5,000: 4,999 served, the file untouched, the damage reported at its offset`, async () => {
      const dir = newDir();
      const seg = await spoolOf5000(dir);
      const bytes = readFileSync(seg);
      damage(bytes, 999 * RECORD_BYTES);
      writeFileSync(seg, bytes);
      const log = memoryLogger();
      const { spool, recovery } = open(dir, { log, segmentBytes: 16 * 1024 * 1024 });
      expect(recovery).toMatchObject({ records: 4999, lostRecords: 1, cutBytes: 0, bytes: 4999 * RECORD_BYTES, damaged: [{ segment: segmentName(1), offset: 999 * RECORD_BYTES, bytes: RECORD_BYTES, lostRecords: 1 }] });
      expect(drain(spool).numbers).toEqual([...range(1, 999), ...range(1001, 5000)]);
      expect(readFileSync(seg).equals(bytes)).toBe(true);
      expect(log.lines.filter((l) => l.includes("skipped"))).toEqual([`warn: spool ${dir}: ${segmentName(1)}: skipped ${RECORD_BYTES} damaged bytes at byte ${999 * RECORD_BYTES} (1 records lost); the intact records around them are kept`]);
      // New records continue the numbering after the last intact one.
      expect(spool.append(numbered(5001, 1))).toEqual({ kind: "appended", firstSequence: 5001 });
      await spool.close();
    });
  }

  test("damage at several offsets across segments: only the damaged records are lost; a damaged end of a middle segment is not cut", async () => {
    const dir = newDir();
    const { spool: writer } = open(dir, { segmentBytes: 64 * 1024 });
    for (let i = 0; i < 100; i++) writer.append(numbered(1 + i * 50, 50));
    await writer.close();
    const names = readdirSync(dir).filter((n) => n.startsWith("seg-")).sort();
    expect(names.length).toBeGreaterThan(5);
    const before: Record<string, number> = {};
    // Record 1 of the first segment, the middle of the second, the last record of the third.
    const hit = (name: string, recordIndex: number) => {
      const path = join(dir, name);
      const b = readFileSync(path);
      b[recordIndex * RECORD_BYTES + 30]! ^= 0xff;
      writeFileSync(path, b);
    };
    hit(names[0]!, 0);
    hit(names[1]!, 100);
    const third = readFileSync(join(dir, names[2]!));
    hit(names[2]!, third.byteLength / RECORD_BYTES - 1);
    for (const n of names) before[n] = statSync(join(dir, n)).size;
    const { spool, recovery } = open(dir, { segmentBytes: 64 * 1024 });
    expect(recovery.lostRecords).toBe(3);
    expect(recovery.cutBytes).toBe(0);
    const served = drain(spool).numbers;
    expect(served.length).toBe(4997);
    expect(new Set(served).size).toBe(4997);
    for (const n of names) expect(statSync(join(dir, n)).size).toBe(before[n]!);
    await spool.close();
  });

  test("a tail forged with a plausible record header every 24 bytes: resyncing stops within its budget, the intact records are served, nothing is cut", async () => {
    const dir = newDir();
    const { spool: writer } = open(dir, { segmentBytes: 16 * 1024 * 1024 });
    writer.append(numbered(1, 10));
    await writer.close();
    const seg = join(dir, segmentName(1));
    // 2 MiB of headers: magic, a wrong checksum, the largest length, rising sequences. Checked
    // one by one without a budget, that is 87,000 checksums of 256 KiB each.
    const forged = Buffer.alloc(2 * 1024 * 1024);
    for (let at = 0, n = 100; at + 24 <= forged.byteLength; at += 24, n++) {
      forged.writeUInt32LE(0x52545352, at);
      forged.writeUInt32LE(n, at + 4);
      forged.writeUInt32LE(16 + 262144, at + 8);
      forged.writeUInt32LE(n, at + 12);
    }
    appendFileSync(seg, forged);
    const before = readFileSync(seg);
    const log = memoryLogger();
    const { spool, recovery } = open(dir, { log, segmentBytes: 16 * 1024 * 1024 });
    expect(drain(spool).numbers).toEqual(range(1, 10));
    expect(recovery.cutBytes).toBe(0);
    expect(readFileSync(seg).equals(before)).toBe(true);
    expect(log.lines.filter((l) => l.includes("stopped resyncing at byte 1400 (too many record headers that are not intact)")).length).toBe(1);
    await spool.close();
  });

  test("a segment named for other sequences is read by its contents, never cut or deleted; new segments avoid its name", async () => {
    const dir = newDir();
    const seg = await spoolOf5000(dir);
    const misnamed = join(dir, segmentName(0x1389)); // 5001: the name the next segment would take
    renameSync(seg, misnamed);
    const bytes = readFileSync(misnamed);
    const { spool, recovery } = open(dir, { segmentBytes: 64 * 1024 });
    expect(recovery).toMatchObject({ records: 5000, cutBytes: 0, lostRecords: 0 });
    expect(drain(spool).numbers).toEqual(range(1, 5000));
    // Past the segment size: a new segment, which cannot be created over the misnamed one.
    expect(spool.append(numbered(5001, 600))).toEqual({ kind: "appended", firstSequence: 5001 });
    expect(readFileSync(misnamed).equals(bytes)).toBe(true);
    await spool.close();
    const again = open(dir, { segmentBytes: 64 * 1024 });
    expect(drain(again.spool).numbers).toEqual(range(1, 5600));
    await again.spool.close();
  });

  const impossible: [string, object][] = [
    ["ackedThrough 2^53 - 1", { ackedThrough: 9007199254740991 }],
    ["ackedThrough past the last record", { ackedThrough: 5001 }],
    ["ackedThrough not an integer", { ackedThrough: 1.5 }],
    ["ackedThrough negative", { ackedThrough: -1 }],
    ["acknowledging more than was handed out (backwards)", { ackedThrough: 100, nextSequence: 50 }],
  ];
  for (const [what, fields] of impossible) {
    test(`a cursor with ${what} is refused in one line; every file stays as it was`, async () => {
      const dir = newDir();
      await spoolOf5000(dir);
      const cursor = JSON.parse(readFileSync(join(dir, "cursor"), "utf8"));
      writeFileSync(join(dir, "cursor"), JSON.stringify({ ...cursor, ...fields }));
      const before = snapshot(dir);
      let error: unknown;
      try {
        open(dir);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SpoolError);
      expect((error as SpoolError).code).toBe("spool-cursor-impossible");
      expect((error as SpoolError).message).toStartWith(`--spool ${dir}: the cursor is impossible (`);
      expect((error as SpoolError).message).not.toContain("\n");
      expect(snapshot(dir)).toEqual(before);
      // The way out the line names: the cursor moved away, everything is sent under a new stream id.
      renameSync(join(dir, "cursor"), join(dir, "cursor.refused"));
      const { spool, recovery } = open(dir);
      expect(recovery.created).toBe(true);
      expect(drain(spool).numbers).toEqual(range(1, 5000));
      await spool.close();
    });
  }

  test("the recovery counts the unacknowledged records' bytes, not the segment's", async () => {
    const dir = newDir();
    const { spool: writer } = open(dir, { segmentBytes: 16 * 1024 * 1024 });
    writer.append(numbered(1, 300));
    writer.ack(246);
    await writer.close();
    const { spool, recovery } = open(dir);
    expect(recovery).toMatchObject({ records: 54, bytes: 54 * RECORD_BYTES, diskBytes: 300 * RECORD_BYTES });
    await spool.close();
  });
});

describe("DiskSpool never follows a link or opens what it did not write (issue 21)", () => {
  const outside = mkdtempSync(join(tmpdir(), "rt-spool-outside-"));
  afterAll(() => rmSync(outside, { recursive: true, force: true }));
  const targetFile = (name: string) => {
    const path = join(outside, name);
    writeFileSync(path, "root:x:0:0:root:/root:/bin/bash\n".repeat(40)); // 1,320 bytes, like /etc/passwd
    return path;
  };

  test("a symbolic link under a segment's name (the next one's, and an old one's) is left alone, its target untouched", async () => {
    const dir = newDir();
    await spoolOf5000(dir);
    const target = targetFile("passwd-1");
    const targetBytes = readFileSync(target);
    symlinkSync(target, join(dir, segmentName(0x1389)));
    symlinkSync(target, join(dir, segmentName(0x10)));
    const log = memoryLogger();
    const { spool, recovery } = open(dir, { log, segmentBytes: 64 * 1024 });
    expect(recovery.leftAlone).toEqual([`${segmentName(0x10)} is a symbolic link, not a segment probe wrote; left alone`, `${segmentName(0x1389)} is a symbolic link, not a segment probe wrote; left alone`]);
    expect(recovery.cutBytes).toBe(0);
    expect(drain(spool).numbers).toEqual(range(1, 5000));
    expect(spool.append(numbered(5001, 600)).kind).toBe("appended"); // a new segment, beside the link
    spool.ack(5600);
    await spool.close();
    expect(readFileSync(target).equals(targetBytes)).toBe(true);
    expect(lstatSync(join(dir, segmentName(0x1389))).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(dir, segmentName(0x10))).isSymbolicLink()).toBe(true);
  });

  test("a hard link, a directory and a FIFO under segment names are left alone in one line each (no EISDIR, no hang)", async () => {
    const dir = newDir();
    await spoolOf5000(dir);
    const target = targetFile("passwd-2");
    const targetBytes = readFileSync(target);
    linkSync(target, join(dir, segmentName(0x2000)));
    mkdirSync(join(dir, segmentName(0x3000)));
    expect(Bun.spawnSync(["mkfifo", join(dir, segmentName(0x4000))]).exitCode).toBe(0);
    const { spool, recovery } = open(dir);
    expect(recovery.leftAlone).toEqual([
      `${segmentName(0x2000)} is a file with 2 hard links, not a segment probe wrote; left alone`,
      `${segmentName(0x3000)} is a directory, not a segment probe wrote; left alone`,
      `${segmentName(0x4000)} is a FIFO, not a segment probe wrote; left alone`,
    ]);
    expect(drain(spool).numbers).toEqual(range(1, 5000));
    await spool.close();
    expect(readFileSync(target).equals(targetBytes)).toBe(true);
  });

  test("50 planted links: each counted, 10 logged one line each and the rest in one line", async () => {
    const dir = newDir();
    await spoolOf5000(dir);
    const target = targetFile("passwd-6");
    for (let i = 0; i < 50; i++) symlinkSync(target, join(dir, segmentName(0x10000 + i)));
    const log = memoryLogger();
    const { spool, recovery } = open(dir, { log });
    expect(recovery.leftAlone.length).toBe(50);
    expect(log.lines.filter((l) => l.includes("is a symbolic link, not a segment probe wrote; left alone")).length).toBe(10);
    expect(log.lines.filter((l) => l.includes("40 more files under spool names left alone (50 in all)")).length).toBe(1);
    expect(drain(spool).numbers).toEqual(range(1, 5000));
    await spool.close();
  });

  test("a cursor.tmp symbolic link is never written through: the start is refused in one line, the target untouched", async () => {
    const dir = newDir();
    await spoolOf5000(dir);
    const target = targetFile("passwd-3");
    const targetBytes = readFileSync(target);
    symlinkSync(target, join(dir, "cursor.tmp"));
    expect(() => open(dir)).toThrow(`--spool ${dir}: cursor.tmp is a symbolic link, not a file probe wrote; left alone`);
    expect(readFileSync(target).equals(targetBytes)).toBe(true);
    expect(lstatSync(join(dir, "cursor.tmp")).isSymbolicLink()).toBe(true);
  });

  test("a cursor.tmp link made while running: acknowledged segments stay, the target untouched", async () => {
    const dir = newDir();
    const { spool } = open(dir, { segmentBytes: 64 * 1024 });
    for (let i = 0; i < 20; i++) spool.append(numbered(1 + i * 50, 50));
    const target = targetFile("passwd-4");
    const targetBytes = readFileSync(target);
    symlinkSync(target, join(dir, "cursor.tmp"));
    const segments = readdirSync(dir).filter((n) => n.startsWith("seg-")).length;
    spool.ack(900);
    expect(readdirSync(dir).filter((n) => n.startsWith("seg-")).length).toBe(segments);
    await spool.close();
    expect(readFileSync(target).equals(targetBytes)).toBe(true);
  });

  test("a stale regular cursor.tmp (a crash before the rename) is replaced", async () => {
    const dir = newDir();
    await spoolOf5000(dir);
    writeFileSync(join(dir, "cursor.tmp"), "{\"version\":1");
    const { spool } = open(dir);
    spool.ack(10);
    await spool.close();
    expect(JSON.parse(readFileSync(join(dir, "cursor"), "utf8")).ackedThrough).toBe(10);
    expect(readdirSync(dir)).not.toContain("cursor.tmp");
  });

  test("a cursor that is a symbolic link is refused in one line; the target untouched", async () => {
    const dir = newDir();
    await spoolOf5000(dir);
    const target = targetFile("passwd-5");
    const targetBytes = readFileSync(target);
    rmSync(join(dir, "cursor"));
    symlinkSync(target, join(dir, "cursor"));
    expect(() => open(dir)).toThrow(`--spool ${dir}: the cursor is a symbolic link, not a file probe wrote; left alone`);
    expect(readFileSync(target).equals(targetBytes)).toBe(true);
  });
});
