// DiskSpool: the reliable fifo on disk (--spool DIR). What it promises: a record appended
// (write(2) returned) survives kill -9 of probe, because the kernel owns the page cache; with
// --spool-fsync-ms N it also survives power loss, up to the last N milliseconds.
//
// Layout of DIR:
//   cursor                 {"version":1,"streamId":HEX16,"ackedThrough":N,"nextSequence":M}
//                          written as cursor.tmp (O_CREAT|O_EXCL|O_NOFOLLOW), fsync, rename,
//                          fsync of DIR: the one durable statement "everything <= N was
//                          acknowledged (or dropped by policy) and may be deleted; sequences
//                          below M were handed out". It is written before any segment is
//                          deleted, so a crash between the two leaves a segment the next start
//                          deletes, never a hole. (nextSequence is absent in older cursors.)
//   seg-<16 hex>.rts       append-only records, back to back. The name is the first sequence
//                          the segment was created for; recovery goes by the records' own
//                          sequence numbers, so a name that disagrees changes nothing.
//     0 magic u32le 0x52545352   4 crc32 u32le of bytes [8, end)   8 length u32le (payload)
//     12 sequence u32le low   16 sequence u32le high   20 linktype u16le   22 precision u8
//     (0 micro, 1 nano)   23 reserved u8   24 payload: one PacketBatch record (16-byte pcap
//     record header + data)
//
// probe runs as root and an adversary may write to DIR, so: every file here is opened with
// O_NOFOLLOW (and O_NONBLOCK, so a FIFO swapped in cannot hang the open), checked with fstat to be
// the regular file lstat saw, with one link; anything else under a segment's or the cursor's name
// (symbolic link, directory, FIFO, hard link) is left alone and reported in one line.
//
// Start-up (recovery), in this order, changing nothing until the cursor is accepted:
//   1. the cursor is read (a damaged or foreign one refuses the start: one line, exit 1);
//   2. each segment is scanned: a record is intact when its magic, length, checksum and a
//      sequence above the previous record's hold. After a damaged stretch the scan resyncs on
//      the next intact record (the checksum decides, so packet bytes that happen to hold the
//      magic are not taken for a record); the stretch is counted and logged with its offset and
//      the records it cost, and every intact record before and after it is kept;
//   3. an impossible cursor (ackedThrough past the last record held, not below
//      MAX_SPOOL_SEQUENCE, or acknowledging more than it says was handed out) refuses the start
//      with one line and leaves every file as it is (resending under the same stream id could
//      hand out a sequence the receiver already has; moving the cursor away starts a new stream
//      id over the same records, which the receiver then takes whole);
//   4. only then: a damaged tail of the LAST segment (the torn end of a crash mid-write) is cut,
//      segments wholly <= ackedThrough are deleted (their deletion was interrupted), and an empty
//      file is removed. Nothing else is ever truncated or deleted.
// Every record after ackedThrough is sent again; the receiver drops what it already has by
// (stream id, sequence). A new DIR (no cursor) gets a new random stream id, so a receiver never
// mistakes a recreated spool's sequence 1 for a duplicate.
import {
  closeSync,
  constants,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../../logging/index.ts";
import { BATCH_RECORD_HEADER_BYTES, MAXIMUM_SNAPLEN, type PacketBatch } from "../../../packet/packet-batch.ts";
import { ProbeError } from "../../../packet/probe-error.ts";
import type { AppendResult, FifoChunk, FifoCounters, PacketFifo, SpoolFullPolicy } from "./packet-fifo.ts";
import { createExclusive } from "../../../sys/exclusive-file.ts";

export const SPOOL_RECORD_HEADER_BYTES = 24;
const SPOOL_RECORD_MAGIC = 0x52545352;
/** The magic as it lies on disk (little-endian), for resyncing after damage. */
const SPOOL_RECORD_MAGIC_BYTES = Buffer.from([0x52, 0x53, 0x54, 0x52]);
/** Largest payload a record may declare: one batch record of MAXIMUM_SNAPLEN; more is damage. */
const MAX_SPOOL_PAYLOAD_BYTES = BATCH_RECORD_HEADER_BYTES + MAXIMUM_SNAPLEN;
/**
 * Sequences (and a cursor's numbers) stay below 2^52: every sequence plus any batch count is
 * then an exact JS integer (they are exact to 2^53). At ten million records a second the
 * limit is 14 years away, so a cursor at or above it is damage or forgery, not history.
 */
export const MAX_SPOOL_SEQUENCE = 2 ** 52;
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
/** A cursor is ~100 bytes of JSON; anything much bigger is not probe's (and is not read whole). */
const MAX_CURSOR_FILE_BYTES = 4096;
/**
 * Damaged stretches (and files left alone) logged one line each at recovery; the rest are
 * counted in one line, so a spool full of damage or planted names cannot flood the log.
 */
const MAX_DAMAGE_LINES = 10;
/**
 * Resyncing after damage may checksum candidate records worth at most this many times the
 * segment's size. Real damage in packet data meets the magic about once per 4 GiB, so this is
 * never reached by it; a file forged with a plausible header every few bytes stops here instead
 * of costing a checksum of up to 256 KiB per candidate (terabytes for one 16 MiB segment).
 */
const RESYNC_CHECKSUM_BUDGET_FACTOR = 8;
/**
 * Names tried for a new segment when its natural name is taken by something that is not ours
 * (a symbolic link, a file left alone): recovery goes by contents, so any free name works.
 */
const MAX_SEGMENT_NAME_TRIES = 64;
const CURSOR_FILE = "cursor";
const CURSOR_TEMP_FILE = "cursor.tmp";
const SEGMENT_PATTERN = /^seg-([0-9a-f]{16})\.rts$/;
/** Opening for reading or appending: never through a symbolic link, never blocking on a FIFO. */
const OPEN_EXISTING_FLAGS = constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** Creating: the name must be free (a symbolic link, even a dangling one, makes this fail). */
const CREATE_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

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

/** A damaged stretch skipped at recovery. */
export interface SpoolDamage {
  /** Segment file name. */
  segment: string;
  /** Byte offset where the damage starts, and its length. */
  offset: number;
  bytes: number;
  /** Sequences missing between the intact records around it (0 when it was not a record). */
  lostRecords: number;
}

export interface SpoolRecovery {
  segments: number;
  /** Unacknowledged records held (and sent again). */
  records: number;
  /** Bytes those records take in the spool (24-byte headers included). */
  bytes: number;
  /** Bytes of every segment file held (acknowledged records in the active segment included). */
  diskBytes: number;
  /** Bytes cut from the torn tail of the last segment. */
  cutBytes: number;
  /** Damaged stretches skipped inside segments (their intact neighbours are kept). */
  damaged: SpoolDamage[];
  /** Records lost to those stretches (sequence numbers missing between intact records). */
  lostRecords: number;
  /** One line each: files under a spool name that are not probe's, left untouched. */
  leftAlone: string[];
  firstSequence: number;
  nextSequence: number;
  durationMs: number;
  /** The spool did not exist (or had no cursor) and was created with a new stream id. */
  created: boolean;
  linktypes: number[];
}

interface Segment {
  name: string;
  path: string;
  fd: number;
  /** Identity of the file we opened: deletion checks the name still points at it. */
  dev: number;
  ino: number;
  /** Sequence of the first intact record. */
  firstSequence: number;
  /** One past the last record's sequence. */
  nextSequence: number;
  bytes: number;
  /** Byte ranges [start, end) that hold no intact record; read() jumps over them. */
  damaged: { start: number; end: number }[];
  /** Sequence ranges [from, to) missing between this segment's intact records. */
  gaps: { from: number; to: number }[];
}

interface ReadPosition {
  segment: Segment;
  offset: number;
  /** Every record before `offset` has a sequence below this. */
  sequence: number;
}

interface IntactRecord {
  length: number;
  sequence: number;
  linktype: number;
}

/** Stable codes of SpoolError: a spool that cannot be opened, or a file in it that is not probe's. */
export type SpoolErrorCode = "spool-directory" | "spool-cursor" | "spool-cursor-impossible" | "spool-not-regular" | "spool-io" | "spool-damaged";

/** A spool problem, one line, exit 1: the directory, what is wrong, what to do. */
export class SpoolError extends ProbeError {
  override readonly name = "SpoolError";
  declare readonly code: SpoolErrorCode;
  constructor(code: SpoolErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, "runtime", message, options);
  }
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
      throw new SpoolError("spool-directory", `--spool ${dir}: cannot create the directory (${errorCode(error)})`);
    }
    let dirStats: Stats;
    try {
      dirStats = statSync(dir);
    } catch (error) {
      throw new SpoolError("spool-directory", `--spool ${dir}: cannot read the directory (${errorCode(error)})`);
    }
    if (!dirStats.isDirectory()) throw new SpoolError("spool-directory", `--spool ${dir}: is ${kindOf(dirStats)}, not a directory`);
    const cursor = readCursor(dir);
    const spool = new DiskSpool(options, cursor?.streamId ?? crypto.getRandomValues(new Uint8Array(8)));
    let recovery: SpoolRecovery;
    try {
      recovery = spool.recover(cursor);
    } catch (error) {
      spool.closeFiles();
      if (error instanceof SpoolError) throw error;
      throw new SpoolError("spool-io", `--spool ${dir}: recovery failed (${errorCode(error)})`, { cause: error });
    }
    recovery.durationMs = performance.now() - started;
    try {
      spool.writeCursorFile();
    } catch (error) {
      spool.closeFiles();
      if (error instanceof SpoolError) throw error;
      throw new SpoolError("spool-io", `--spool ${dir}: cannot write the cursor file (${errorCode(error)})`);
    }
    if (options.fsyncMs && options.fsyncMs > 0) {
      spool.fsyncTimer = setInterval(() => spool.syncActive(), options.fsyncMs);
      spool.fsyncTimer.unref?.();
    }
    return { spool, recovery };
  }

  private recover(cursor: SpoolCursor | undefined): SpoolRecovery {
    const dir = this.options.directory;
    const log = this.options.log;
    const leftAlone: string[] = [];
    // One line each, up to MAX_DAMAGE_LINES (a directory full of planted names cannot flood the log).
    const leaveAlone = (line: string) => {
      leftAlone.push(line);
      if (leftAlone.length <= MAX_DAMAGE_LINES) log.warn(`spool ${dir}: ${line}`);
    };
    const linktypes = new Set<number>();
    // 1-2: scan every segment without changing anything.
    const scanned: ScannedSegment[] = [];
    // Files without an intact record: closed at once (deleting one needs only its identity).
    const unreadable: { name: string; stats: Stats; fileBytes: number }[] = [];
    for (const name of readdirSync(dir).filter((n) => SEGMENT_PATTERN.test(n)).sort()) {
      const opened = openOwnFile(join(dir, name));
      if (opened.kind === "absent") continue;
      if (opened.kind === "foreign") {
        leaveAlone(`${name} is ${opened.what}, not a segment probe wrote; left alone`);
        continue;
      }
      const scan = scanSegment(opened.fd, opened.stats.size, this.readBuffer, linktypes, cursor?.ackedThrough ?? 0);
      if (scan.records === 0) {
        closeSync(opened.fd);
        unreadable.push({ name, stats: opened.stats, fileBytes: opened.stats.size });
        continue;
      }
      scanned.push({ name, fd: opened.fd, stats: opened.stats, ...scan });
    }
    scanned.sort((a, b) => a.firstSequence - b.firstSequence);
    // Two files claiming the same sequences: the first (lowest) is served, the other left alone.
    const held: ScannedSegment[] = [];
    for (const segment of scanned) {
      const previous = held.at(-1);
      if (previous && segment.firstSequence < previous.nextSequence) {
        closeSync(segment.fd);
        leaveAlone(`${segment.name} holds sequences ${segment.firstSequence}..${segment.nextSequence - 1}, which ${previous.name} holds too; left alone`);
        continue;
      }
      const named = parseInt(SEGMENT_PATTERN.exec(segment.name)![1]!, 16);
      if (named !== segment.firstSequence) log.warn(`spool ${dir}: ${segment.name} holds sequences ${segment.firstSequence}..${segment.nextSequence - 1}; read by its contents, not its name`);
      held.push(segment);
    }
    const firstHeld = held[0]?.firstSequence;
    const lastHeld = held.length > 0 ? held.at(-1)!.nextSequence - 1 : undefined;

    // 3: the cursor against what is held.
    let ackedThrough: number;
    if (cursor) {
      const refuse = (why: string) => {
        for (const s of held) closeSync(s.fd);
        throw new SpoolError(
          "spool-cursor-impossible",
          `--spool ${dir}: the cursor is impossible (${why}); nothing was changed. Move ${join(dir, CURSOR_FILE)} away to send every record held again under a new stream id`,
        );
      };
      if (lastHeld !== undefined && cursor.ackedThrough > lastHeld) refuse(`ackedThrough ${cursor.ackedThrough} is past the last record held, ${lastHeld}`);
      if (cursor.nextSequence !== undefined && cursor.nextSequence < cursor.ackedThrough + 1) refuse(`ackedThrough ${cursor.ackedThrough} is past nextSequence ${cursor.nextSequence}`);
      ackedThrough = cursor.ackedThrough;
      const leading = held[0]?.damaged[0];
      if (firstHeld !== undefined && leading?.start === 0) leading.lostRecords = Math.max(0, firstHeld - ackedThrough - 1);
      else if (firstHeld !== undefined && firstHeld > ackedThrough + 1) {
        log.warn(`spool ${dir}: sequences ${ackedThrough + 1}..${firstHeld - 1} are neither held nor acknowledged (removed or damaged); a receiver sees a gap there`);
      }
    } else {
      if (held.length > 0) log.warn(`spool ${dir}: segments without a cursor file; sending them as a new stream`);
      ackedThrough = firstHeld !== undefined ? firstHeld - 1 : 0;
    }
    this.ackedThrough = ackedThrough;

    // 4: the only changes recovery makes.
    let cutBytes = 0;
    const last = held.at(-1);
    if (last?.tailDamage !== undefined) {
      const cut = last.fileBytes - last.tailDamage;
      ftruncateSync(last.fd, last.tailDamage);
      cutBytes += cut;
      log.warn(`spool ${dir}: cut ${cut} bytes of a torn tail from ${last.name} at byte ${last.tailDamage} (the last segment; a crash mid-write)`);
      last.fileBytes = last.tailDamage;
    }
    for (const [i, scan] of held.entries()) {
      // Records lost between two segments are charged to the damage that cost them: the
      // earlier one's damaged tail, or the later one's damaged start.
      const next = held[i + 1];
      const lostBetween = next ? next.firstSequence - scan.nextSequence : 0;
      if (scan !== last && scan.tailDamage !== undefined) scan.damaged.push({ start: scan.tailDamage, end: scan.fileBytes, lostRecords: lostBetween });
      else if (next && lostBetween > 0 && next.damaged[0]?.start === 0) next.damaged[0].lostRecords = lostBetween;
    }
    const lastSequenceHandedOut = Math.max(lastHeld ?? 0, (cursor?.nextSequence ?? 0) - 1, ackedThrough);
    for (const file of unreadable) {
      const named = parseInt(SEGMENT_PATTERN.exec(file.name)![1]!, 16);
      // Empty, or less than one record at the name the next segment would get: a crash between
      // creating the last segment and its first whole record. Nothing intact is in it.
      const tornStart = named === lastSequenceHandedOut + 1 && file.fileBytes < SPOOL_RECORD_HEADER_BYTES + MAX_SPOOL_PAYLOAD_BYTES;
      if (file.fileBytes === 0 || tornStart) {
        if (file.fileBytes > 0) {
          cutBytes += file.fileBytes;
          log.warn(`spool ${dir}: removed ${file.name}: ${file.fileBytes} bytes of a torn first record (a crash mid-write)`);
        }
        unlinkIfSame(join(dir, file.name), file.stats);
        continue;
      }
      leaveAlone(`${file.name} holds no intact record (${file.fileBytes} bytes); left alone`);
    }
    let records = 0;
    let bytes = 0;
    const damaged: SpoolDamage[] = [];
    for (const scan of held) {
      const path = join(dir, scan.name);
      if (scan.unscanned !== undefined) {
        log.warn(`spool ${dir}: ${scan.name}: stopped resyncing at byte ${scan.unscanned} (too many record headers that are not intact); the ${scan.fileBytes - scan.unscanned} bytes after it are kept on disk, not served`);
      }
      for (const d of scan.damaged) damaged.push({ segment: scan.name, offset: d.start, bytes: d.end - d.start, lostRecords: d.lostRecords });
      if (scan.nextSequence - 1 <= ackedThrough && scan !== last) {
        // Wholly acknowledged: the cursor was written, the unlink did not happen.
        closeSync(scan.fd);
        unlinkIfSame(path, scan.stats);
        continue;
      }
      const segment: Segment = {
        name: scan.name,
        path,
        fd: scan.fd,
        dev: scan.stats.dev,
        ino: scan.stats.ino,
        firstSequence: scan.firstSequence,
        nextSequence: scan.nextSequence,
        bytes: scan.fileBytes,
        damaged: scan.damaged.map(({ start, end }) => ({ start, end })),
        gaps: scan.gaps,
      };
      this.segments.push(segment);
      this.counters.usedBytes += segment.bytes;
      records += heldIn(segment, ackedThrough);
      if (scan.nextSequence - 1 > ackedThrough) bytes += scan.bytesAbove;
    }
    let lostRecords = 0;
    for (const [i, d] of damaged.entries()) {
      lostRecords += d.lostRecords;
      if (i < MAX_DAMAGE_LINES) log.warn(`spool ${dir}: ${d.segment}: skipped ${d.bytes} damaged bytes at byte ${d.offset} (${d.lostRecords} records lost); the intact records around them are kept`);
    }
    if (leftAlone.length > MAX_DAMAGE_LINES) log.warn(`spool ${dir}: ${leftAlone.length - MAX_DAMAGE_LINES} more files under spool names left alone (${leftAlone.length} in all)`);
    if (damaged.length > MAX_DAMAGE_LINES) log.warn(`spool ${dir}: ${damaged.length - MAX_DAMAGE_LINES} more damaged stretches skipped (${lostRecords} records lost in all)`);
    this.nextSequence = lastSequenceHandedOut + 1;
    this.counters.recordsHeld = records;
    return {
      segments: this.segments.length,
      records,
      bytes,
      diskBytes: this.counters.usedBytes,
      cutBytes,
      damaged,
      lostRecords,
      leftAlone,
      firstSequence: ackedThrough + 1,
      nextSequence: this.nextSequence,
      durationMs: 0,
      created: cursor === undefined,
      linktypes: [...linktypes],
    };
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
        return { kind: "failed", reason: errorCode(error) };
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
      return { kind: "failed", reason: errorCode(error) };
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
      const dropped = heldIn(oldest, this.ackedThrough);
      const previous = this.ackedThrough;
      this.ackedThrough = Math.max(this.ackedThrough, oldest.nextSequence - 1);
      if (!this.writeCursor()) {
        this.ackedThrough = previous;
        return false;
      }
      this.counters.droppedOldestRecords += dropped;
      this.counters.recordsHeld -= dropped;
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

  /**
   * Creates the segment for `firstSequence` with O_EXCL|O_NOFOLLOW: never through a symbolic
   * link, never over a file. A name taken by something that is not ours moves to the next one.
   */
  private newSegment(firstSequence: number): Segment {
    for (let attempt = 0; ; attempt++) {
      const name = `seg-${(firstSequence + attempt).toString(16).padStart(16, "0")}.rts`;
      const path = join(this.options.directory, name);
      let fd: number;
      try {
        fd = openSync(path, CREATE_FLAGS, 0o600);
      } catch (error) {
        if (errorCode(error) === "EEXIST" && attempt + 1 < MAX_SEGMENT_NAME_TRIES) continue;
        throw error;
      }
      if (attempt > 0) this.options.log.warn(`spool ${this.options.directory}: seg-${firstSequence.toString(16).padStart(16, "0")}.rts is taken by a file probe did not write; new records go to ${name}`);
      const stats = fstatSync(fd);
      const segment: Segment = { name, path, fd, dev: stats.dev, ino: stats.ino, firstSequence, nextSequence: firstSequence, bytes: 0, damaged: [], gaps: [] };
      this.segments.push(segment);
      return segment;
    }
  }

  read(fromSequence: number, maxBytes: number): FifoChunk | undefined {
    const from = Math.max(fromSequence, this.ackedThrough + 1);
    const segment = this.segments.find((s) => s.nextSequence > from);
    if (!segment) return undefined;
    let position = this.position;
    if (!position || position.segment !== segment || position.sequence > from) {
      position = { segment, offset: 0, sequence: 0 };
    }
    const out: Uint8Array[] = [];
    let outBytes = 0;
    let firstSequence = -1;
    let linktype = -1;
    let precision: 0 | 1 = 0;
    let fifoBytes = 0;
    let stop = false;
    while (!stop && position.offset < segment.bytes && outBytes < maxBytes) {
      const skip = segment.damaged.find((d) => d.start <= position.offset && position.offset < d.end);
      if (skip) {
        position.offset = skip.end;
        continue;
      }
      // Read up to the next damaged stretch, so only intact records are in the buffer.
      const nextDamage = segment.damaged.reduce((min, d) => (d.start > position.offset && d.start < min ? d.start : min), segment.bytes);
      const got = readSync(segment.fd, this.readBuffer, 0, Math.min(this.readBuffer.byteLength, nextDamage - position.offset), position.offset);
      if (got <= 0) break;
      const view = new DataView(this.readBuffer.buffer, 0, got);
      let at = 0;
      while (got - at >= SPOOL_RECORD_HEADER_BYTES) {
        if (view.getUint32(at, true) !== SPOOL_RECORD_MAGIC) throw new SpoolError("spool-damaged", `spool ${segment.path}: damaged record at byte ${position.offset}`);
        const length = view.getUint32(at + 8, true);
        const end = at + SPOOL_RECORD_HEADER_BYTES + length;
        if (end > got) break;
        const sequence = view.getUint32(at + 12, true) + view.getUint32(at + 16, true) * 2 ** 32;
        if (sequence >= from) {
          const recordLinktype = view.getUint16(at + 20, true);
          const recordPrecision = view.getUint8(at + 22) as 0 | 1;
          if (firstSequence < 0) {
            firstSequence = sequence;
            linktype = recordLinktype;
            precision = recordPrecision;
          } else if (recordLinktype !== linktype || recordPrecision !== precision || outBytes >= maxBytes || sequence !== firstSequence + out.length) {
            // A chunk is one link type and consecutive sequences: a gap left by damage ends it.
            stop = true;
            break;
          }
          out.push(this.readBuffer.slice(at + SPOOL_RECORD_HEADER_BYTES, end));
          outBytes += length;
          fifoBytes += SPOOL_RECORD_HEADER_BYTES + length;
        }
        at = end;
        position.sequence = sequence + 1;
        position.offset += SPOOL_RECORD_HEADER_BYTES + length;
      }
      // A whole record always fits the buffer, so no progress means the file changed under us.
      if (at === 0 && !stop) throw new SpoolError("spool-damaged", `spool ${segment.path}: damaged record at byte ${position.offset}`);
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
    for (const s of this.segments) held += heldIn(s, this.ackedThrough);
    this.counters.recordsHeld = held;
  }

  private deleteSegment(segment: Segment, acknowledged: boolean): void {
    closeSync(segment.fd);
    if (!unlinkIfSame(segment.path, segment)) {
      this.options.log.warn(`spool ${this.options.directory}: ${segment.name} was replaced by a file probe did not write; left alone`);
    }
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
      if (!this.cursorFailed) {
        const why = error instanceof SpoolError ? error.message : `--spool ${this.options.directory}: cannot write the cursor (${errorCode(error)})`;
        this.options.log.error(`${why}; keeping acknowledged segments until it can`);
      }
      this.cursorFailed = true;
      return false;
    }
  }

  private cursorFailed = false;

  /**
   * cursor.tmp (O_CREAT|O_EXCL|O_NOFOLLOW) + fsync + rename + fsync(dir): the cursor is either
   * the old one or the new one. A regular cursor.tmp left by a crash is removed first; anything
   * else under that name is left alone and the cursor is not written.
   */
  private writeCursorFile(): void {
    const dir = this.options.directory;
    const temp = join(dir, CURSOR_TEMP_FILE);
    const text = JSON.stringify({ version: 1, streamId: Buffer.from(this.streamId).toString("hex"), ackedThrough: this.ackedThrough, nextSequence: this.nextSequence });
    // A regular cursor.tmp is a stale one from a crash between create and rename.
    const { fd, refused } = createExclusive(temp, 0o600, (stats) => stats.isFile() && stats.nlink <= 1);
    if (refused) {
      throw new SpoolError("spool-not-regular", `--spool ${dir}: ${CURSOR_TEMP_FILE} is ${kindOf(refused)}, not a file probe wrote; left alone, and the cursor is not written until it is moved away`);
    }
    try {
      const bytes = Buffer.from(text);
      let written = 0;
      while (written < bytes.byteLength) written += writeSync(fd, bytes, written, bytes.byteLength - written, written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, join(dir, CURSOR_FILE));
    const dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
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

  private closeFiles(): void {
    this.closed = true;
    for (const segment of this.segments) closeSync(segment.fd);
    this.segments = [];
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

/** Records of `segment` above `ackedThrough`: its sequence range less the gaps damage left. */
function heldIn(segment: Pick<Segment, "firstSequence" | "nextSequence" | "gaps">, ackedThrough: number): number {
  const from = Math.max(segment.firstSequence, ackedThrough + 1);
  let held = Math.max(0, segment.nextSequence - from);
  for (const gap of segment.gaps) held -= Math.max(0, gap.to - Math.max(gap.from, from));
  return held;
}

interface SegmentScan {
  records: number;
  firstSequence: number;
  nextSequence: number;
  fileBytes: number;
  /** Where the damage that runs to the end of the file starts (no intact record after it). */
  tailDamage?: number;
  /** Where resyncing gave up (RESYNC_CHECKSUM_BUDGET_FACTOR); the rest is kept, not served. */
  unscanned?: number;
  damaged: { start: number; end: number; lostRecords: number }[];
  gaps: { from: number; to: number }[];
  /** Bytes (headers included) of the intact records above the cursor's ackedThrough. */
  bytesAbove: number;
}

interface ScannedSegment extends SegmentScan {
  name: string;
  fd: number;
  stats: Stats;
}

/** Windowed pread over one file: views of [offset, offset + length) valid until the next call. */
class FileWindow {
  private start = 0;
  private end = 0;
  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly buffer: Uint8Array,
  ) {}

  /** A view from `offset` to the window's end, refilled at `offset` when fewer than `minimum` bytes remain. */
  from(offset: number, minimum: number): Uint8Array | undefined {
    if (offset < this.start || offset + minimum > this.end) return this.bytes(offset, Math.min(this.buffer.byteLength, this.size - offset));
    return this.buffer.subarray(offset - this.start, this.end - this.start);
  }

  bytes(offset: number, length: number): Uint8Array | undefined {
    if (length > this.buffer.byteLength || offset + length > this.size) return undefined;
    if (offset < this.start || offset + length > this.end) {
      const got = readSync(this.fd, this.buffer, 0, Math.min(this.buffer.byteLength, this.size - offset), offset);
      this.start = offset;
      this.end = offset + got;
      if (offset + length > this.end) return undefined;
    }
    return this.buffer.subarray(offset - this.start, offset - this.start + length);
  }
}

/** The record at `offset` when it is whole and intact (magic, length, checksum, sequence above `after`). */
function intactRecordAt(window: FileWindow, offset: number, after: number, budget?: { bytes: number }): IntactRecord | undefined {
  const header = window.bytes(offset, SPOOL_RECORD_HEADER_BYTES);
  if (!header) return undefined;
  const view = new DataView(header.buffer, header.byteOffset, SPOOL_RECORD_HEADER_BYTES);
  if (view.getUint32(0, true) !== SPOOL_RECORD_MAGIC) return undefined;
  const length = view.getUint32(8, true);
  if (length < BATCH_RECORD_HEADER_BYTES || length > MAX_SPOOL_PAYLOAD_BYTES) return undefined;
  const sequence = view.getUint32(12, true) + view.getUint32(16, true) * 2 ** 32;
  if (sequence <= after || sequence >= MAX_SPOOL_SEQUENCE) return undefined;
  const linktype = view.getUint16(20, true);
  const precision = view.getUint8(22);
  const checksum = view.getUint32(4, true);
  if (precision > 1) return undefined;
  if (offset + SPOOL_RECORD_HEADER_BYTES + length > window.size) return undefined;
  if (budget) {
    // Resync: every candidate that gets this far costs its length in checksum work.
    budget.bytes -= length;
    if (budget.bytes < 0) return undefined;
  }
  const whole = window.bytes(offset, SPOOL_RECORD_HEADER_BYTES + length);
  if (!whole) return undefined;
  // The payload's own caplen must account for it exactly (the sender slices records by it).
  const caplen = new DataView(whole.buffer, whole.byteOffset + SPOOL_RECORD_HEADER_BYTES, BATCH_RECORD_HEADER_BYTES).getUint32(8, true);
  if (BATCH_RECORD_HEADER_BYTES + caplen !== length) return undefined;
  if (Bun.hash.crc32(whole.subarray(8)) !== checksum) return undefined;
  return { length, sequence, linktype };
}

/**
 * The next offset >= `from` holding an intact record (the magic found, then the checksum judged),
 * or "exhausted" when the candidates' checksum work passed `budget` (a file forged with a
 * plausible header every few bytes would otherwise cost a checksum of up to 256 KiB each).
 */
function nextIntactRecord(window: FileWindow, from: number, after: number, budget: { bytes: number }): { offset: number; record: IntactRecord } | "exhausted" | undefined {
  let at = from;
  while (at + SPOOL_RECORD_HEADER_BYTES <= window.size) {
    const span = window.from(at, SPOOL_RECORD_HEADER_BYTES)!;
    const found = Buffer.from(span.buffer, span.byteOffset, span.byteLength).indexOf(SPOOL_RECORD_MAGIC_BYTES);
    if (found < 0) {
      // The magic may straddle the window's end: look again from its last three bytes.
      at += Math.max(1, span.byteLength - (SPOOL_RECORD_MAGIC_BYTES.byteLength - 1));
      continue;
    }
    const record = intactRecordAt(window, at + found, after, budget);
    if (record) return { offset: at + found, record };
    if (budget.bytes < 0) return "exhausted";
    at += found + 1;
  }
  return undefined;
}

/**
 * Reads a segment through, keeping every intact record and skipping damaged stretches between
 * them. `countAbove`: the cursor's ackedThrough, for the bytes of the records sent again.
 */
function scanSegment(fd: number, fileBytes: number, buffer: Uint8Array, linktypes: Set<number>, countAbove: number): SegmentScan {
  const window = new FileWindow(fd, fileBytes, buffer);
  const damaged: SegmentScan["damaged"] = [];
  const gaps: SegmentScan["gaps"] = [];
  let offset = 0;
  let records = 0;
  let firstSequence = 0;
  let previous = 0;
  let bytesAbove = 0;
  let tailDamage: number | undefined;
  let unscanned: number | undefined;
  const budget = { bytes: RESYNC_CHECKSUM_BUDGET_FACTOR * fileBytes + MAX_SPOOL_PAYLOAD_BYTES };
  while (offset < fileBytes) {
    let record = intactRecordAt(window, offset, previous);
    let start = offset;
    if (!record) {
      const next = nextIntactRecord(window, offset + 1, previous, budget);
      if (next === "exhausted") {
        unscanned = offset;
        break;
      }
      if (!next) {
        tailDamage = offset;
        break;
      }
      damaged.push({ start: offset, end: next.offset, lostRecords: records > 0 ? next.record.sequence - previous - 1 : 0 });
      start = next.offset;
      record = next.record;
    }
    if (records === 0) firstSequence = record.sequence;
    else if (record.sequence !== previous + 1) gaps.push({ from: previous + 1, to: record.sequence });
    linktypes.add(record.linktype);
    records++;
    previous = record.sequence;
    if (record.sequence > countAbove) bytesAbove += SPOOL_RECORD_HEADER_BYTES + record.length;
    offset = start + SPOOL_RECORD_HEADER_BYTES + record.length;
  }
  // A rest not scanned may hold intact records: skipped and kept, never cut (not a torn tail).
  if (unscanned !== undefined) damaged.push({ start: unscanned, end: fileBytes, lostRecords: 0 });
  return { records, firstSequence, nextSequence: previous + 1, fileBytes, ...(tailDamage !== undefined ? { tailDamage } : {}), damaged, gaps, bytesAbove, ...(unscanned !== undefined ? { unscanned } : {}) };
}

interface SpoolCursor {
  streamId: Uint8Array;
  ackedThrough: number;
  /** Absent in cursors written before it was added. */
  nextSequence?: number;
}

/** Reads the cursor (O_NOFOLLOW, a regular file of one link, at most MAX_CURSOR_FILE_BYTES); undefined when there is none. */
function readCursor(dir: string): SpoolCursor | undefined {
  const path = join(dir, CURSOR_FILE);
  const opened = openOwnFile(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  if (opened.kind === "absent") return undefined;
  if (opened.kind === "foreign") {
    throw new SpoolError("spool-not-regular", `--spool ${dir}: the cursor is ${opened.what}, not a file probe wrote; left alone. Move it away to send every record held again under a new stream id`);
  }
  let text: string;
  try {
    if (opened.stats.size > MAX_CURSOR_FILE_BYTES) throw new SpoolError("spool-cursor", `--spool ${dir}: the cursor file is ${opened.stats.size} bytes, not probe's; move it away to send every record held again under a new stream id`);
    const buffer = Buffer.alloc(opened.stats.size);
    const got = readSync(opened.fd, buffer, 0, buffer.byteLength, 0);
    text = buffer.subarray(0, got).toString("utf8");
  } finally {
    closeSync(opened.fd);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SpoolError("spool-cursor", `--spool ${dir}: the cursor file is damaged; move it away to send every record held again under a new stream id`);
  }
  const cursor = (parsed ?? {}) as { version?: unknown; streamId?: unknown; ackedThrough?: unknown; nextSequence?: unknown };
  if (cursor.version !== 1 || typeof cursor.streamId !== "string" || !/^[0-9a-f]{16}$/.test(cursor.streamId)) {
    throw new SpoolError("spool-cursor", `--spool ${dir}: the cursor file is not probe's; move it away to send every record held again under a new stream id`);
  }
  const sequenceOk = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) < MAX_SPOOL_SEQUENCE;
  if (!sequenceOk(cursor.ackedThrough) || (cursor.nextSequence !== undefined && !sequenceOk(cursor.nextSequence))) {
    const what = !sequenceOk(cursor.ackedThrough) ? `ackedThrough ${JSON.stringify(cursor.ackedThrough)?.slice(0, 40)}` : `nextSequence ${JSON.stringify(cursor.nextSequence)?.slice(0, 40)}`;
    throw new SpoolError(
      "spool-cursor-impossible",
      `--spool ${dir}: the cursor is impossible (${what} is not a sequence below 2^52); nothing was changed. Move ${path} away to send every record held again under a new stream id`,
    );
  }
  return {
    streamId: new Uint8Array(Buffer.from(cursor.streamId, "hex")),
    ackedThrough: cursor.ackedThrough as number,
    ...(cursor.nextSequence !== undefined ? { nextSequence: cursor.nextSequence as number } : {}),
  };
}

type OwnFile = { kind: "absent" } | { kind: "foreign"; what: string } | { kind: "own"; fd: number; stats: Stats };

/**
 * Opens `path` only if it is a regular file with one link, without following a symbolic link
 * and without blocking on a FIFO; fstat confirms the file opened is the one lstat saw (nothing
 * swapped in between). Anything else is "foreign", described for the one line that reports it.
 */
function openOwnFile(path: string, flags = OPEN_EXISTING_FLAGS): OwnFile {
  let seen: Stats;
  try {
    seen = lstatSync(path);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return { kind: "absent" };
    return { kind: "foreign", what: `unreadable (${errorCode(error)})` };
  }
  if (!seen.isFile()) return { kind: "foreign", what: kindOf(seen) };
  if (seen.nlink > 1) return { kind: "foreign", what: `a file with ${seen.nlink} hard links` };
  let fd: number;
  try {
    fd = openSync(path, flags);
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT") return { kind: "absent" };
    return { kind: "foreign", what: code === "ELOOP" ? "a symbolic link" : `unreadable (${code})` };
  }
  const stats = fstatSync(fd);
  if (!stats.isFile() || stats.ino !== seen.ino || stats.dev !== seen.dev || stats.nlink > 1) {
    closeSync(fd);
    return { kind: "foreign", what: stats.isFile() ? "a file that changed while it was opened" : kindOf(stats) };
  }
  return { kind: "own", fd, stats };
}

/** Unlinks `path` only while it still names the file (dev, ino) probe opened; false when it does not. */
function unlinkIfSame(path: string, file: { dev: number; ino: number }): boolean {
  try {
    const now = lstatSync(path);
    if (!now.isFile() || now.dev !== file.dev || now.ino !== file.ino) return false;
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/** What a non-regular file is, for the one line that reports it. */
function kindOf(stats: Stats): string {
  if (stats.isSymbolicLink()) return "a symbolic link";
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isSocket()) return "a socket";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  return stats.isFile() ? "a regular file" : "not a regular file";
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message ?? "error";
}
