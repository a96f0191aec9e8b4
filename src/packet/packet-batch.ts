// A PacketBatch is how packets travel through probe: one buffer holding a run of records
// laid out exactly like classic pcap records in little-endian order, so a batch can be
// written to a pcap file or a PCAP-over-IP socket with a single write and no per-packet work.
//
//   record: ts_sec:u32le  ts_frac:u32le  caplen:u32le  len:u32le  data[caplen]
//
// ts_frac is microseconds or nanoseconds, as `precision` says, for every record of the batch.
// Records are packed back to back with no padding (pcap has none).

/**
 * The largest snapshot length probe captures or accepts: libpcap's MAXIMUM_SNAPLEN (pcap-int.h),
 * what tcpdump uses by default. Snaplen options, codecs' caplen checks and buffers use this one.
 */
export const MAXIMUM_SNAPLEN = 262144;

/** Size of the per-record header inside a batch (same as a classic pcap record header). */
export const BATCH_RECORD_HEADER_BYTES = 16;

export type TimestampPrecision = "micro" | "nano";

/**
 * Packet records, owned or lent (see isLentBatch). Consumers must treat `bytes` as read-only:
 * one batch is handed to many consumers.
 *
 * Lent batches: a live capture hands its batches over in the shared memory the capture worker
 * wrote them to (src/capture/batch-channel.ts), without a copy; that memory is reused for a later
 * batch as soon as the call that received the batch returns. So a batch (or any view of its
 * bytes) is valid beyond the call that received it only if it is owned: whoever keeps one past
 * that call (a queue, a merge, a write that did not finish, a timer) keeps `ownedBatch(batch)`.
 * Measured (docs/capture.md): copying every batch out of the shared memory cost the main thread
 * ~60 % of its CPU per packet in a live capture (the copy, page faults on fresh buffers, garbage
 * collection) and ~18 MiB of peak memory.
 */
export interface PacketBatch {
  /** The records, back to back; `bytes.byteLength` is the end of the last record. */
  readonly bytes: Uint8Array;
  /** Number of records in `bytes`. */
  readonly count: number;
  /** LINKTYPE_* of every record. */
  readonly linktype: number;
  readonly precision: TimestampPrecision;
  /** Per-record metadata added by inputs and stages; absent when no record has any. */
  readonly meta?: RecordMeta;
}

/**
 * Per-record metadata that travels beside the records (the record bytes stay classic pcap, so a
 * batch is still one write to a pcap file or socket). Every array is indexed by record number and
 * has `count` entries. Stages that drop or cut records keep it aligned (selectRecords does).
 */
export interface RecordMeta {
  /** Index of the pipeline input each record came from: the pcapng interface id. */
  readonly inputs?: Uint16Array;
  /** pcapng EPB flags word per record (bits 0-1 direction: 1 inbound, 2 outbound; see EPB_FLAG_*). */
  readonly flags?: Uint32Array;
  /** Comments per record: hook tags, checksum verdicts, rotation reasons (pcapng opt_comment). */
  readonly comments?: readonly (readonly string[] | undefined)[];
}

/**
 * True when the batch's bytes are lent (they live in a SharedArrayBuffer, which only the live
 * capture's batch channel uses): valid during the call that received them, then reused. Views of
 * a lent batch (subarray, selectRecords' in-place cuts) are lent too; a copy is owned.
 */
export function isLentBatch(batch: PacketBatch): boolean {
  return isLentBytes(batch.bytes);
}

/** True when `bytes` is a view of lent memory (see isLentBatch). */
export function isLentBytes(bytes: Uint8Array): boolean {
  return bytes.buffer instanceof SharedArrayBuffer;
}

/** The batch itself when owned; an owned copy of its bytes (same metadata) when lent. */
export function ownedBatch(batch: PacketBatch): PacketBatch {
  const bytes = ownedBytes(batch.bytes);
  return bytes === batch.bytes ? batch : { ...batch, bytes };
}

/** `bytes` itself when owned; an owned copy when it is a view of lent memory. */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  return isLentBytes(bytes) ? bytes.slice() : bytes;
}

/** EPB flags direction bits (pcapng spec, epb_flags bits 0-1), as tshark's frame.packet_flags_direction. */
export const EPB_FLAG_INBOUND = 1;
export const EPB_FLAG_OUTBOUND = 2;
export const EPB_FLAG_DIRECTION_MASK = 3;

/** The metadata of the records at `indices` (in order), or undefined when `meta` is. */
export function pickMeta(meta: RecordMeta | undefined, indices: ArrayLike<number>): RecordMeta | undefined {
  if (!meta) return undefined;
  const n = indices.length;
  const pick = <T extends Uint16Array | Uint32Array>(from: T | undefined, make: (n: number) => T): T | undefined => {
    if (!from) return undefined;
    const out = make(n);
    for (let i = 0; i < n; i++) out[i] = from[indices[i]!]!;
    return out;
  };
  const inputs = pick(meta.inputs, (k) => new Uint16Array(k));
  const flags = pick(meta.flags, (k) => new Uint32Array(k));
  const comments = meta.comments ? Array.from({ length: n }, (_, i) => meta.comments![indices[i]!]) : undefined;
  return { ...(inputs ? { inputs } : {}), ...(flags ? { flags } : {}), ...(comments ? { comments } : {}) };
}

/**
 * Records [from, to) of a batch, which start at byte `fromOffset` and end before `toOffset`, as
 * a view: bytes and meta arrays are subarrays of the batch's (no copy, no work per record), so
 * the view is lent when the batch is lent and must not be written through. The batch itself
 * when the range is all of it. The one record slicer: pcapng runs per input, hook chunks and
 * rotated files all cut batches through it.
 */
export function sliceRecords(batch: PacketBatch, from: number, to: number, fromOffset: number, toOffset: number): PacketBatch {
  if (from === 0 && to === batch.count) return batch;
  const meta = batch.meta;
  const sliced: RecordMeta | undefined = meta && {
    ...(meta.inputs ? { inputs: meta.inputs.subarray(from, to) } : {}),
    ...(meta.flags ? { flags: meta.flags.subarray(from, to) } : {}),
    ...(meta.comments ? { comments: meta.comments.slice(from, to) } : {}),
  };
  return { bytes: batch.bytes.subarray(fromOffset, toOffset), count: to - from, linktype: batch.linktype, precision: batch.precision, ...(sliced ? { meta: sliced } : {}) };
}

/** One record as decoded fields; `data` is a view into the batch (borrowed, valid while the batch is). */
export interface PacketRecordView {
  tsSec: number;
  tsFrac: number;
  caplen: number;
  len: number;
  /** Offset of the packet data inside the batch bytes. */
  dataOffset: number;
}

/** Calls `visit` for each record; the view object is reused between calls (no allocation per packet). */
export function forEachRecord(batch: PacketBatch, visit: (view: PacketRecordView, bytes: Uint8Array) => void): void {
  const bytes = batch.bytes;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const view: PacketRecordView = { tsSec: 0, tsFrac: 0, caplen: 0, len: 0, dataOffset: 0 };
  let offset = 0;
  for (let i = 0; i < batch.count; i++) {
    view.tsSec = dv.getUint32(offset, true);
    view.tsFrac = dv.getUint32(offset + 4, true);
    view.caplen = dv.getUint32(offset + 8, true);
    view.len = dv.getUint32(offset + 12, true);
    view.dataOffset = offset + BATCH_RECORD_HEADER_BYTES;
    visit(view, bytes);
    offset = view.dataOffset + view.caplen;
  }
}

/** Byte offsets of every record header in the batch, for consumers that index records. */
export function recordOffsets(batch: PacketBatch): Uint32Array {
  const offsets = new Uint32Array(batch.count);
  const dv = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
  let offset = 0;
  for (let i = 0; i < batch.count; i++) {
    offsets[i] = offset;
    offset += BATCH_RECORD_HEADER_BYTES + dv.getUint32(offset + 8, true);
  }
  return offsets;
}

/**
 * Accumulates records into a growing buffer and cuts it into PacketBatch objects.
 * Each `take()` hands out an owned buffer; the builder starts a fresh one.
 */
export class PacketBatchBuilder {
  private buffer: Uint8Array;
  private view: DataView;
  private used = 0;
  private records = 0;

  constructor(
    readonly linktype: number,
    readonly precision: TimestampPrecision,
    private readonly initialBytes = 256 * 1024,
  ) {
    this.buffer = new Uint8Array(initialBytes);
    this.view = new DataView(this.buffer.buffer);
  }

  get count(): number {
    return this.records;
  }

  get byteLength(): number {
    return this.used;
  }

  /** Appends one record; `data` is copied (it may be a borrowed view). */
  push(tsSec: number, tsFrac: number, len: number, data: Uint8Array): void {
    const need = this.used + BATCH_RECORD_HEADER_BYTES + data.byteLength;
    if (need > this.buffer.byteLength) this.grow(need);
    const at = this.used;
    this.view.setUint32(at, tsSec >>> 0, true);
    this.view.setUint32(at + 4, tsFrac >>> 0, true);
    this.view.setUint32(at + 8, data.byteLength, true);
    this.view.setUint32(at + 12, len >>> 0, true);
    this.buffer.set(data, at + BATCH_RECORD_HEADER_BYTES);
    this.used = need;
    this.records++;
  }

  /** Hands out the records gathered so far as an owned batch, or null when empty. */
  take(): PacketBatch | null {
    if (this.records === 0) return null;
    const batch: PacketBatch = {
      bytes: this.buffer.subarray(0, this.used),
      count: this.records,
      linktype: this.linktype,
      precision: this.precision,
    };
    this.buffer = new Uint8Array(Math.max(this.initialBytes, 0));
    this.view = new DataView(this.buffer.buffer);
    this.used = 0;
    this.records = 0;
    return batch;
  }

  private grow(need: number): void {
    const next = new Uint8Array(Math.max(need, this.buffer.byteLength * 2));
    next.set(this.buffer.subarray(0, this.used));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }
}

/** The first `count` records of a batch, as a view sharing its bytes (no copy). */
export function takeRecords(batch: PacketBatch, count: number): PacketBatch {
  if (count >= batch.count) return batch;
  const dv = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
  let offset = 0;
  for (let i = 0; i < count; i++) offset += BATCH_RECORD_HEADER_BYTES + dv.getUint32(offset + 8, true);
  const meta = batch.meta ? pickMeta(batch.meta, Array.from({ length: count }, (_, i) => i)) : undefined;
  return { ...batch, bytes: batch.bytes.subarray(0, offset), count, ...(meta ? { meta } : {}) };
}

/**
 * Decides, per record, how many captured bytes to keep: `keep(view, recordOffset, caplen)`
 * returns a negative number to drop the record, or the bytes to keep (clamped to caplen, so a
 * BPF snap length or a smaller snaplen shortens it; a caplen-0 record can be kept). Returns `batch` itself when every record is
 * kept whole, else a new owned batch. The one place filters, sampling and truncation copy.
 */
export function selectRecords(
  batch: PacketBatch,
  keep: (view: DataView, recordOffset: number, caplen: number) => number,
): PacketBatch {
  const bytes = batch.bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // First pass: decide; remember (offset, kept caplen, record index) triples.
  const kept: number[] = [];
  let keptBytes = 0;
  let unchanged = true;
  let offset = 0;
  for (let i = 0; i < batch.count; i++) {
    const caplen = view.getUint32(offset + 8, true);
    const wanted = keep(view, offset, caplen);
    if (wanted >= 0) {
      const size = Math.min(caplen, wanted);
      if (size !== caplen) unchanged = false;
      kept.push(offset, size, i);
      keptBytes += BATCH_RECORD_HEADER_BYTES + size;
    } else unchanged = false;
    offset += BATCH_RECORD_HEADER_BYTES + caplen;
  }
  if (unchanged) return batch;
  const out = new Uint8Array(keptBytes);
  const outView = new DataView(out.buffer);
  let at = 0;
  for (let i = 0; i < kept.length; i += 3) {
    const from = kept[i]!;
    const size = kept[i + 1]!;
    out.set(bytes.subarray(from, from + BATCH_RECORD_HEADER_BYTES + size), at);
    outView.setUint32(at + 8, size, true);
    at += BATCH_RECORD_HEADER_BYTES + size;
  }
  const meta = batch.meta ? pickMeta(batch.meta, kept.filter((_, i) => i % 3 === 2)) : undefined;
  return { ...batch, bytes: out, count: kept.length / 3, ...(meta ? { meta } : {}) };
}
