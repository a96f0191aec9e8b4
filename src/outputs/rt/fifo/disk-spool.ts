// DiskSpool: the reliable fifo on disk (--spool DIR). What it promises: a record appended
// (write(2) returned) survives kill -9 of probe, because the kernel owns the page cache; with
// --spool-fsync-ms N it also survives power loss, up to the last N milliseconds.
//
// Layout of DIR:
//   cursor                 {"version":1,"streamId":HEX16,"ackedThrough":N} written as a temp file,
//                          fsync, rename, fsync of DIR: the one durable statement "everything <= N
//                          was acknowledged (or dropped by policy) and may be deleted". It is
//                          written before any segment is deleted, so a crash between the two
//                          leaves a segment the next start deletes, never a hole.
//   seg-<first seq, 16 hex>.rts   append-only records, back to back:
//     0 magic u32le 0x52545352   4 crc32 u32le of bytes [8, end)   8 length u32le (payload)
//     12 sequence u32le low   16 sequence u32le high   20 linktype u16le   22 precision u8
//     (0 micro, 1 nano)   23 reserved u8   24 payload: one PacketBatch record (16-byte pcap
//     record header + data)
//
// Start-up (recovery): each segment is read through; the first record whose magic, length,
// sequence or checksum is wrong ends that segment, which is cut there (a torn tail from a
// crash mid-write). Segments wholly <= ackedThrough are deleted. Every record after
// ackedThrough is sent again; the receiver drops what it already has by (stream id, sequence).
// A new DIR (no cursor) gets a new random stream id, so a receiver never mistakes a recreated
// spool's sequence 1 for a duplicate.
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fsyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../../logging/index.ts";
import { BATCH_RECORD_HEADER_BYTES, MAXIMUM_SNAPLEN, type PacketBatch } from "../../../packet/packet-batch.ts";
import type { AppendResult, FifoChunk, FifoCounters, PacketFifo, SpoolFullPolicy } from "./packet-fifo.ts";

export const SPOOL_RECORD_HEADER_BYTES = 24;
const SPOOL_RECORD_MAGIC = 0x52545352;
/** Largest payload a record may declare: one batch record of MAXIMUM_SNAPLEN; more is damage. */
const MAX_SPOOL_PAYLOAD_BYTES = BATCH_RECORD_HEADER_BYTES + MAXIMUM_SNAPLEN;
/**
 * Segment size: big enough that creating and deleting files is rare (one per 16 MiB of
 * traffic), small enough that acknowledged data leaves the disk soon and drop-oldest frees
 * room in modest steps. Capped at a quarter of --spool-max-bytes for small spools.
 */
export const DEFAULT_SPOOL_SEGMENT_BYTES = 16 * 1024 * 1024;
/** One read(2) when sending or recovering; holds the largest record (24 + 16 + 262144 bytes) several times. */
const READ_CHUNK_BYTES = 1024 * 1024;
/**
 * How long an acknowledgement may wait before the cursor records it. A crash loses at most this
 * much acknowledgement progress: those records are sent again and dropped by the receiver as
 * duplicates, so this trades a few re-sent records for not renaming a file per ACK.
 */
export const CURSOR_WRITE_INTERVAL_MS = 200;
const CURSOR_FILE = "cursor";
const SEGMENT_PATTERN = /^seg-([0-9a-f]{16})\.rts$/;

export interface DiskSpoolOptions {
  directory: string;
  maxBytes: number;
  policy: SpoolFullPolicy;
  /** Default min(DEFAULT_SPOOL_SEGMENT_BYTES, maxBytes / 4). */
  segmentBytes?: number;
  /** fdatasync the active segment this often (0: never, OS-buffered). */
  fsyncMs?: number;
  log: Logger;
}

export interface SpoolRecovery {
  segments: number;
  records: number;
  bytes: number;
  /** Bytes cut from torn or damaged tails. */
  cutBytes: number;
  firstSequence: number;
  nextSequence: number;
  durationMs: number;
  /** The spool did not exist (or had no cursor) and was created with a new stream id. */
  created: boolean;
  linktypes: number[];
}

interface Segment {
  path: string;
  fd: number;
  firstSequence: number;
  /** One past the last record's sequence. */
  nextSequence: number;
  bytes: number;
}

interface ReadPosition {
  segment: Segment;
  offset: number;
  sequence: number;
}

export class SpoolError extends Error {
  override readonly name = "SpoolError";
}

export class DiskSpool implements PacketFifo {
  readonly counters: FifoCounters;
  nextSequence = 1;
  ackedThrough = 0;
  private segments: Segment[] = [];
  private readonly segmentBytes: number;
  private position: ReadPosition | undefined;
  private cursorTimer: ReturnType<typeof setTimeout> | undefined;
  private fsyncTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  private readonly readBuffer = new Uint8Array(READ_CHUNK_BYTES);

  private constructor(
    private readonly options: DiskSpoolOptions,
    public streamId: Uint8Array,
  ) {
    this.segmentBytes = options.segmentBytes ?? Math.max(64 * 1024, Math.min(DEFAULT_SPOOL_SEGMENT_BYTES, Math.floor(options.maxBytes / 4)));
    this.counters = { bytesIn: 0, bytesAcked: 0, usedBytes: 0, capacityBytes: options.maxBytes, recordsHeld: 0, droppedOldestRecords: 0, diskBytesWritten: 0 };
  }

  /** Opens (creating if needed) and recovers the spool in `directory`. Throws SpoolError with one line. */
  static open(options: DiskSpoolOptions): { spool: DiskSpool; recovery: SpoolRecovery } {
    const started = performance.now();
    const dir = options.directory;
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw new SpoolError(`--spool ${dir}: cannot create the directory (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    }
    const cursor = readCursor(dir);
    const spool = new DiskSpool(options, cursor?.streamId ?? crypto.getRandomValues(new Uint8Array(8)));
    spool.ackedThrough = cursor?.ackedThrough ?? 0;
    const recovery = spool.recover(cursor === undefined);
    recovery.durationMs = performance.now() - started;
    try {
      spool.writeCursorFile();
    } catch (error) {
      throw new SpoolError(`--spool ${dir}: cannot write the cursor file (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    }
    if (options.fsyncMs && options.fsyncMs > 0) {
      spool.fsyncTimer = setInterval(() => spool.syncActive(), options.fsyncMs);
      spool.fsyncTimer.unref?.();
    }
    return { spool, recovery };
  }

  private recover(created: boolean): SpoolRecovery {
    const dir = this.options.directory;
    const names = readdirSync(dir).filter((n) => SEGMENT_PATTERN.test(n)).sort();
    const linktypes = new Set<number>();
    let cutBytes = 0;
    let records = 0;
    if (created && names.length > 0) {
      this.options.log.warn(`spool ${dir}: segments without a cursor file; treating them as a new stream`);
      this.ackedThrough = parseInt(SEGMENT_PATTERN.exec(names[0]!)![1]!, 16) - 1;
    }
    for (const name of names) {
      const path = join(dir, name);
      const firstSequence = parseInt(SEGMENT_PATTERN.exec(name)![1]!, 16);
      const fd = openSync(path, "r+");
      const scan = this.scanSegment(fd, firstSequence, linktypes);
      if (scan.cutAt !== undefined) {
        ftruncateSync(fd, scan.cutAt);
        cutBytes += scan.fileBytes - scan.cutAt;
        this.options.log.warn(`spool ${dir}: cut ${scan.fileBytes - scan.cutAt} bytes of a torn or damaged tail from ${name} at byte ${scan.cutAt}`);
      }
      const segment: Segment = { path, fd, firstSequence, nextSequence: firstSequence + scan.records, bytes: scan.cutAt ?? scan.fileBytes };
      if (scan.records === 0 || segment.nextSequence - 1 <= this.ackedThrough) {
        // Wholly acknowledged (the cursor was written, the unlink did not happen) or empty.
        closeSync(fd);
        unlinkSync(path);
        continue;
      }
      records += segment.nextSequence - Math.max(firstSequence, this.ackedThrough + 1);
      this.segments.push(segment);
      this.counters.usedBytes += segment.bytes;
    }
    const last = this.segments.at(-1);
    this.nextSequence = Math.max(this.ackedThrough + 1, last?.nextSequence ?? 0);
    this.counters.recordsHeld = records;
    return {
      segments: this.segments.length,
      records,
      bytes: this.counters.usedBytes,
      cutBytes,
      firstSequence: this.ackedThrough + 1,
      nextSequence: this.nextSequence,
      durationMs: 0,
      created,
      linktypes: [...linktypes],
    };
  }

  /** Reads a segment through, validating each record; `cutAt` is where the first bad one starts. */
  private scanSegment(fd: number, firstSequence: number, linktypes: Set<number>): { records: number; fileBytes: number; cutAt?: number } {
    const fileBytes = fstatSync(fd).size;
    const buffer = this.readBuffer;
    let offset = 0;
    let records = 0;
    let expected = firstSequence;
    while (offset < fileBytes) {
      const got = readSync(fd, buffer, 0, buffer.byteLength, offset);
      const view = new DataView(buffer.buffer, 0, got);
      let at = 0;
      while (got - at >= SPOOL_RECORD_HEADER_BYTES) {
        const length = view.getUint32(at + 8, true);
        const sequence = view.getUint32(at + 12, true) + view.getUint32(at + 16, true) * 2 ** 32;
        const bad = view.getUint32(at, true) !== SPOOL_RECORD_MAGIC || length > MAX_SPOOL_PAYLOAD_BYTES || length < BATCH_RECORD_HEADER_BYTES || sequence !== expected;
        if (bad) return { records, fileBytes, cutAt: offset + at };
        const end = at + SPOOL_RECORD_HEADER_BYTES + length;
        if (end > got) break;
        if (Bun.hash.crc32(buffer.subarray(at + 8, end)) !== view.getUint32(at + 4, true)) return { records, fileBytes, cutAt: offset + at };
        linktypes.add(view.getUint16(at + 20, true));
        records++;
        expected++;
        at = end;
      }
      // No whole record in a full read buffer cannot happen (a record fits several times), so
      // an incomplete record here is the file's end: a torn tail.
      if (at === 0) return { records, fileBytes, cutAt: offset };
      offset += at;
    }
    return { records, fileBytes };
  }

  append(batch: PacketBatch): AppendResult {
    if (this.closed) return { kind: "full" };
    const size = batch.bytes.byteLength + batch.count * SPOOL_RECORD_HEADER_BYTES;
    if (this.counters.usedBytes + size > this.options.maxBytes) {
      if (this.options.policy !== "drop-oldest" || !this.dropOldestFor(size)) return { kind: "full" };
    }
    const encoded = this.encode(batch, this.nextSequence);
    let active = this.segments.at(-1);
    if (!active || (active.bytes > 0 && active.bytes + size > this.segmentBytes) || active.nextSequence !== this.nextSequence) {
      try {
        active = this.newSegment(this.nextSequence);
      } catch (error) {
        return { kind: "failed", reason: (error as NodeJS.ErrnoException).code ?? (error as Error).message };
      }
    }
    let written = 0;
    try {
      while (written < encoded.byteLength) {
        written += writeSync(active.fd, encoded, written, encoded.byteLength - written, active.bytes + written);
      }
    } catch (error) {
      // Disk full or failing: cut what part of the batch did land, so the segment ends on a
      // whole record (recovery would cut it anyway), and keep nothing of this batch.
      try {
        ftruncateSync(active.fd, active.bytes);
      } catch {
        // recovery cuts the torn tail at the next start
      }
      return { kind: "failed", reason: (error as NodeJS.ErrnoException).code ?? (error as Error).message };
    }
    const firstSequence = this.nextSequence;
    active.bytes += encoded.byteLength;
    active.nextSequence += batch.count;
    this.nextSequence += batch.count;
    this.counters.bytesIn += encoded.byteLength;
    this.counters.diskBytesWritten += encoded.byteLength;
    this.counters.usedBytes += encoded.byteLength;
    this.counters.recordsHeld += batch.count;
    return { kind: "appended", firstSequence };
  }

  /** drop-oldest: releases whole segments from the front until `size` fits; false when it cannot. */
  private dropOldestFor(size: number): boolean {
    while (this.counters.usedBytes + size > this.options.maxBytes && this.segments.length > 0) {
      const oldest = this.segments[0]!;
      const dropped = oldest.nextSequence - Math.max(oldest.firstSequence, this.ackedThrough + 1);
      const previous = this.ackedThrough;
      this.ackedThrough = Math.max(this.ackedThrough, oldest.nextSequence - 1);
      if (!this.writeCursor()) {
        this.ackedThrough = previous;
        return false;
      }
      this.counters.droppedOldestRecords += Math.max(0, dropped);
      this.counters.recordsHeld -= Math.max(0, dropped);
      this.deleteSegment(oldest, false);
    }
    return this.counters.usedBytes + size <= this.options.maxBytes;
  }

  private encode(batch: PacketBatch, firstSequence: number): Uint8Array {
    const out = new Uint8Array(batch.bytes.byteLength + batch.count * SPOOL_RECORD_HEADER_BYTES);
    const dst = new DataView(out.buffer);
    const src = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
    const precision = batch.precision === "nano" ? 1 : 0;
    let from = 0;
    let at = 0;
    for (let i = 0; i < batch.count; i++) {
      const length = BATCH_RECORD_HEADER_BYTES + src.getUint32(from + 8, true);
      const sequence = firstSequence + i;
      dst.setUint32(at, SPOOL_RECORD_MAGIC, true);
      dst.setUint32(at + 8, length, true);
      dst.setUint32(at + 12, sequence % 2 ** 32, true);
      dst.setUint32(at + 16, Math.floor(sequence / 2 ** 32), true);
      dst.setUint16(at + 20, batch.linktype, true);
      dst.setUint8(at + 22, precision);
      out.set(batch.bytes.subarray(from, from + length), at + SPOOL_RECORD_HEADER_BYTES);
      const end = at + SPOOL_RECORD_HEADER_BYTES + length;
      dst.setUint32(at + 4, Bun.hash.crc32(out.subarray(at + 8, end)), true);
      at = end;
      from += length;
    }
    return out;
  }

  private newSegment(firstSequence: number): Segment {
    const path = join(this.options.directory, `seg-${firstSequence.toString(16).padStart(16, "0")}.rts`);
    const fd = openSync(path, "w+");
    const segment: Segment = { path, fd, firstSequence, nextSequence: firstSequence, bytes: 0 };
    this.segments.push(segment);
    return segment;
  }

  read(fromSequence: number, maxBytes: number): FifoChunk | undefined {
    const from = Math.max(fromSequence, this.ackedThrough + 1);
    const segment = this.segments.find((s) => s.nextSequence > from);
    if (!segment) return undefined;
    let position = this.position;
    if (!position || position.segment !== segment || position.sequence > from) {
      position = { segment, offset: 0, sequence: segment.firstSequence };
    }
    const want = Math.max(from, position.sequence);
    const out: Uint8Array[] = [];
    let outBytes = 0;
    let firstSequence = -1;
    let linktype = -1;
    let precision: 0 | 1 = 0;
    let fifoBytes = 0;
    while (position.offset < segment.bytes && outBytes < maxBytes) {
      const got = readSync(segment.fd, this.readBuffer, 0, Math.min(this.readBuffer.byteLength, segment.bytes - position.offset), position.offset);
      if (got <= 0) break;
      const view = new DataView(this.readBuffer.buffer, 0, got);
      let at = 0;
      let stop = false;
      while (got - at >= SPOOL_RECORD_HEADER_BYTES) {
        if (view.getUint32(at, true) !== SPOOL_RECORD_MAGIC) throw new SpoolError(`spool ${segment.path}: damaged record at byte ${position.offset + at}`);
        const length = view.getUint32(at + 8, true);
        const end = at + SPOOL_RECORD_HEADER_BYTES + length;
        if (end > got) break;
        if (position.sequence >= want) {
          const recordLinktype = view.getUint16(at + 20, true);
          const recordPrecision = view.getUint8(at + 22) as 0 | 1;
          if (firstSequence < 0) {
            firstSequence = position.sequence;
            linktype = recordLinktype;
            precision = recordPrecision;
          } else if (recordLinktype !== linktype || recordPrecision !== precision || outBytes >= maxBytes) {
            stop = true;
            break;
          }
          out.push(this.readBuffer.slice(at + SPOOL_RECORD_HEADER_BYTES, end));
          outBytes += length;
          fifoBytes += SPOOL_RECORD_HEADER_BYTES + length;
        }
        at = end;
        position.sequence++;
        position.offset += SPOOL_RECORD_HEADER_BYTES + length;
      }
      if (stop) break;
    }
    this.position = position;
    if (firstSequence < 0) return undefined;
    const records = new Uint8Array(outBytes);
    let at = 0;
    for (const part of out) {
      records.set(part, at);
      at += part.byteLength;
    }
    return { firstSequence, count: out.length, records, linktype, precision: precision === 1 ? "nano" : "micro", fifoBytes };
  }

  ack(sequence: number): void {
    const through = Math.min(sequence, this.nextSequence - 1);
    if (through <= this.ackedThrough) return;
    this.ackedThrough = through;
    // Whole segments behind the acknowledgement leave the disk; the active one stays until it
    // is full (deleting and re-creating a file per ACK would cost more than it frees).
    const done = this.segments.filter((s, i) => i < this.segments.length - 1 && s.nextSequence - 1 <= through);
    if (done.length > 0) {
      if (this.writeCursor()) for (const segment of done) this.deleteSegment(segment, true);
    } else {
      this.scheduleCursor();
    }
    this.recountHeld();
  }

  private recountHeld(): void {
    let held = 0;
    for (const s of this.segments) held += Math.max(0, s.nextSequence - Math.max(s.firstSequence, this.ackedThrough + 1));
    this.counters.recordsHeld = held;
  }

  private deleteSegment(segment: Segment, acknowledged: boolean): void {
    closeSync(segment.fd);
    unlinkSync(segment.path);
    this.segments = this.segments.filter((s) => s !== segment);
    this.counters.usedBytes -= segment.bytes;
    if (acknowledged) this.counters.bytesAcked += segment.bytes;
    if (this.position?.segment === segment) this.position = undefined;
  }

  private scheduleCursor(): void {
    if (this.cursorTimer || this.closed) return;
    this.cursorTimer = setTimeout(() => {
      this.cursorTimer = undefined;
      if (!this.closed) this.writeCursor();
    }, CURSOR_WRITE_INTERVAL_MS);
    this.cursorTimer.unref?.();
  }

  /**
   * Writes the cursor; false (logged once until it works again) when the disk refuses, and
   * then the caller deletes nothing: acknowledged segments stay until the cursor says so.
   */
  private writeCursor(): boolean {
    try {
      this.writeCursorFile();
      this.cursorFailed = false;
      return true;
    } catch (error) {
      if (!this.cursorFailed) this.options.log.error(`spool ${this.options.directory}: cannot write the cursor (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); keeping acknowledged segments until it can`);
      this.cursorFailed = true;
      return false;
    }
  }

  private cursorFailed = false;

  /** temp + fsync + rename + fsync(dir): the cursor is either the old one or the new one. */
  private writeCursorFile(): void {
    const dir = this.options.directory;
    const temp = join(dir, `${CURSOR_FILE}.tmp`);
    const text = JSON.stringify({ version: 1, streamId: Buffer.from(this.streamId).toString("hex"), ackedThrough: this.ackedThrough });
    writeFileSync(temp, text);
    const fd = openSync(temp, "r");
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temp, join(dir, CURSOR_FILE));
    const dirFd = openSync(dir, "r");
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }

  private syncActive(): void {
    const active = this.segments.at(-1);
    if (active && !this.closed) fdatasyncSync(active.fd);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.cursorTimer) clearTimeout(this.cursorTimer);
    if (this.fsyncTimer) clearInterval(this.fsyncTimer);
    this.writeCursor();
    this.closed = true;
    for (const segment of this.segments) {
      if (this.options.fsyncMs) fdatasyncSync(segment.fd);
      closeSync(segment.fd);
    }
    this.segments = [];
  }
}

function readCursor(dir: string): { streamId: Uint8Array; ackedThrough: number } | undefined {
  const path = join(dir, CURSOR_FILE);
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new SpoolError(`--spool ${dir}: the cursor file is damaged; move the directory away to start a new spool`);
  }
  const cursor = parsed as { version?: unknown; streamId?: unknown; ackedThrough?: unknown };
  if (cursor.version !== 1 || typeof cursor.streamId !== "string" || !/^[0-9a-f]{16}$/.test(cursor.streamId) || !Number.isSafeInteger(cursor.ackedThrough) || (cursor.ackedThrough as number) < 0) {
    throw new SpoolError(`--spool ${dir}: the cursor file is not probe's; move the directory away to start a new spool`);
  }
  return { streamId: new Uint8Array(Buffer.from(cursor.streamId, "hex")), ackedThrough: cursor.ackedThrough as number };
}
