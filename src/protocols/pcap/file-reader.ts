// CaptureFileReader: a push parser for classic pcap and pcapng files that is fed chunks of any
// size and emits PacketBatch objects, so a file of any size is read with bounded memory.
//
// The format and byte order come from the first 4 bytes (pcap magic, or the pcapng SHB type).
// Classic little-endian pcap already is the batch layout, so records are validated in place and
// each run is cut out of the chunk with one copy (.slice), no object per record; big-endian
// files get the same copy with the four header words swapped in it. pcapng packets are copied
// into a PacketBatchBuilder, one batch per run of interfaces with the same linktype and precision.
//
// A unit (file header, record, block) split across chunks is gathered in `pending`, sized from
// its header only after the header was checked (caplen against snaplen, len and the cap; block
// length against its minimum and the cap). The first error is thrown from push() after the
// batches completed before it were emitted, and every later call throws it again.
// Pure: no I/O, no Bun APIs (read-capture-file.ts binds files).
import { ProtocolError } from "../../packet/protocol-error.ts";
import {
  BATCH_RECORD_HEADER_BYTES,
  PacketBatchBuilder,
  type PacketBatch,
  type TimestampPrecision,
} from "../../packet/packet-batch.ts";
import { classifyPcapMagic, decodePcapGlobalHeader, type PcapGlobalHeader } from "./pcap-codec.ts";
import {
  InterfaceClock,
  batchLinktypeOfInterface,
  checkPcapngBlockLength,
  decodePcapngBlock,
  decodePcapngSectionHeader,
  newPacketBlockFields,
  pcapngBlockLength,
  readPacketBlockFields,
  simplePacketCaplen,
  type TimestampParts,
} from "./pcapng-codec.ts";
import {
  DEFAULT_MAX_BLOCK_BYTES,
  PCAP_GLOBAL_HEADER_BYTES,
  PCAP_RECORD_HEADER_BYTES,
  PCAPNG_BLOCK_PEEK_BYTES,
  PcapngBlockType,
  byteSwap32,
} from "./wire.ts";

export type CaptureFileFormat = "pcap" | "pcapng";

/**
 * Default size at which a batch is cut. Large enough that per-batch costs (one write per
 * consumer) vanish, small enough that a chunk of a huge file never becomes one huge batch.
 */
export const DEFAULT_MAX_BATCH_BYTES = 1024 * 1024;

/**
 * Smallest initial buffer of the pcapng batch builder. The builder is otherwise sized from the
 * bytes left in the chunk (a batch record is always smaller than its EPB), so it rarely grows.
 */
const PCAPNG_BUILDER_MIN_BYTES = 4 * 1024;
/** Room past maxBatchBytes for the record that crosses it (the batch is cut after that record). */
const PCAPNG_BUILDER_SLACK_BYTES = 64 * 1024;

/** Bytes needed to tell the format: the pcap magic or the pcapng SHB block type. */
const FORMAT_DETECT_BYTES = 4;

export interface CaptureFileReaderOptions {
  /**
   * Cap on a classic pcap caplen and on a pcapng block's total length, checked before waiting
   * for or allocating the body. Default DEFAULT_MAX_BLOCK_BYTES (16 MiB).
   */
  maxBlockBytes?: number;
  /** A batch is cut once it holds at least this many bytes. Default DEFAULT_MAX_BATCH_BYTES. */
  maxBatchBytes?: number;
  /**
   * The caller gives each chunk away: it will neither reuse nor modify it. Classic pcap batches
   * may then be views into the chunks (no copy at all), and big-endian headers are swapped in
   * place. Leave false for chunks from a reused buffer.
   */
  adoptChunks?: boolean;
}

/** One interface of a pcapng file (or the single implicit one of a classic pcap file). */
export interface CaptureInterfaceInfo {
  /** Index of the section (0 for the first SHB). */
  section: number;
  /** interface_id within the section, as EPBs name it. */
  interfaceId: number;
  /** Linktype as batches carry it: LINKTYPE_* plus classic FCS bits when if_fcslen says so. */
  linktype: number;
  snaplen: number;
  precision: TimestampPrecision;
  /** Raw if_tsresol byte (6 for classic micro files, 9 for nano). */
  tsresol: number;
  name?: string;
  description?: string;
}

type Phase = "detect" | "pcap-header" | "pcap-records" | "pcapng" | "ended" | "failed";

export class CaptureFileReader {
  private phase: Phase = "detect";
  private failure: unknown;
  private readonly maxBlockBytes: number;
  private readonly maxBatchBytes: number;
  private readonly adoptChunks: boolean;

  /** Bytes pushed before the current chunk: chunk[i] is at file offset streamOffset + i. */
  private streamOffset = 0;
  /** File offset that relative error offsets are measured from while a buffer is parsed. */
  private errorBase = 0;

  /** A unit split across chunks (owned copy), its used length and its file offset. */
  private pending: Uint8Array | undefined;
  private pendingLength = 0;
  private pendingStart = 0;

  // Classic pcap state.
  private header: PcapGlobalHeader | undefined;
  private littleEndian = true;
  private precision: TimestampPrecision = "micro";
  /** min(snaplen or the cap, maxBlockBytes): caplen above it is an error. */
  private caplenLimit = 0;
  /** One completed record (owned) that straddled chunks, to lead the next batch. */
  private carry: Uint8Array | undefined;

  // pcapng state.
  private sectionIndex = -1;
  private readonly allInterfaces: CaptureInterfaceInfo[] = [];
  private sectionInterfaces: CaptureInterfaceInfo[] = [];
  private clocks: InterfaceClock[] = [];
  private builder: PacketBatchBuilder | undefined;
  private readonly fields = newPacketBlockFields();
  private readonly stamp: TimestampParts = { tsSec: 0, tsFrac: 0 };
  /** Bytes left in the buffer being parsed: a bound on the size of the batch it can fill. */
  private builderSizeHint = 0;

  /** Packets emitted so far. */
  packetCount = 0;

  constructor(options: CaptureFileReaderOptions = {}) {
    this.maxBlockBytes = options.maxBlockBytes ?? DEFAULT_MAX_BLOCK_BYTES;
    this.maxBatchBytes = options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
    this.adoptChunks = options.adoptChunks ?? false;
  }

  /** The format, once the first 4 bytes arrived. */
  get format(): CaptureFileFormat | undefined {
    if (this.header) return "pcap";
    if (this.sectionIndex >= 0 || this.phase === "pcapng") return "pcapng";
    if (this.phase === "pcap-header") return "pcap";
    return undefined;
  }

  /** The classic pcap global header, once read. */
  get pcapHeader(): PcapGlobalHeader | undefined {
    return this.header;
  }

  /** Every interface seen so far (a classic file has one, described by its global header). */
  get interfaces(): readonly CaptureInterfaceInfo[] {
    return this.allInterfaces;
  }

  /** The first interface's linktype word (classic: the header's, FCS bits as stored). */
  get linktype(): number | undefined {
    return this.allInterfaces[0]?.linktype;
  }

  get snaplen(): number | undefined {
    return this.allInterfaces[0]?.snaplen;
  }

  get timestampPrecision(): TimestampPrecision | undefined {
    return this.allInterfaces[0]?.precision;
  }

  /** The error that stopped the reader, if any. */
  get error(): unknown {
    return this.failure;
  }

  /**
   * Feeds the next chunk; calls `emit` for each batch it completes, in file order. On a decode
   * error, batches completed before the bad unit are emitted, then ProtocolError (with the file
   * offset) is thrown, and every later call throws it again. The chunk is borrowed unless the
   * reader was made with adoptChunks.
   */
  push(chunk: Uint8Array, emit: (batch: PacketBatch) => void): void {
    this.checkUsable();
    const out: PacketBatch[] = [];
    try {
      this.consume(chunk, out);
    } catch (error) {
      this.fail(error, out);
      this.deliver(out, emit);
      throw this.failure;
    }
    this.streamOffset += chunk.byteLength;
    this.deliver(out, emit);
  }

  /**
   * Declares the end of the file. Throws ProtocolError "truncated" when the file stopped before
   * its header or inside a record or block.
   */
  end(): void {
    this.checkUsable();
    const incomplete =
      this.pendingLength > 0 ||
      this.phase === "detect" ||
      this.phase === "pcap-header" ||
      (this.phase === "pcapng" && this.sectionIndex < 0);
    if (incomplete) {
      const at = this.pendingLength > 0 ? this.pendingStart : this.streamOffset;
      this.failure = new ProtocolError("truncated", `capture file ends inside a ${this.unitName()}`, at);
      this.phase = "failed";
      throw this.failure;
    }
    this.phase = "ended";
  }

  private checkUsable(): void {
    if (this.phase === "failed") throw this.failure;
    if (this.phase === "ended") throw new Error("CaptureFileReader used after end()");
  }

  private deliver(out: PacketBatch[], emit: (batch: PacketBatch) => void): void {
    for (const batch of out) {
      this.packetCount += batch.count;
      emit(batch);
    }
  }

  /** Records the first error with its file offset; keeps packets decoded before it. */
  private fail(error: unknown, out: PacketBatch[]): void {
    this.failure =
      error instanceof ProtocolError ? new ProtocolError(error.code, error.message, error.offset + this.errorBase) : error;
    this.phase = "failed";
    this.flushBuilder(out);
    this.pending = undefined;
    this.carry = undefined;
  }

  private unitName(): string {
    switch (this.phase) {
      case "detect":
        return "file header";
      case "pcap-header":
        return "pcap global header";
      case "pcap-records":
        return "pcap record";
      default:
        return "pcapng block";
    }
  }

  private consume(chunk: Uint8Array, out: PacketBatch[]): void {
    let at = 0;
    if (this.pendingLength > 0) {
      at = this.completePending(chunk, out);
      if (at < 0) return;
    }
    this.errorBase = this.streamOffset;
    at = this.processChunk(chunk, at, out);
    if (this.carry) this.cutPcapBatch(chunk, at, at, 0, out); // a straddling record with nothing after it
    this.flushBuilder(out);
    if (at < chunk.byteLength) {
      // Keep the incomplete tail (always shorter than one unit) as an owned copy.
      const tail = chunk.byteLength - at;
      const headerBytes = this.unitHeaderBytes();
      // When the tail holds its unit's header (already checked by the scan), allocate the whole
      // unit now so the rest is appended without a second copy.
      const unitBytes = tail >= headerBytes ? this.unitSize(chunk, at) : headerBytes;
      this.pending = new Uint8Array(Math.max(tail, unitBytes));
      this.pending.set(chunk.subarray(at));
      this.pendingLength = tail;
      this.pendingStart = this.streamOffset + at;
    }
  }

  /** Header bytes the current phase needs before it can size its next unit. */
  private unitHeaderBytes(): number {
    switch (this.phase) {
      case "detect":
        return FORMAT_DETECT_BYTES;
      case "pcap-header":
        return PCAP_GLOBAL_HEADER_BYTES;
      case "pcap-records":
        return PCAP_RECORD_HEADER_BYTES;
      default:
        return PCAPNG_BLOCK_PEEK_BYTES;
    }
  }

  /** Appends chunk bytes from `at` to `pending` until it holds `target` bytes; returns the new `at`. */
  private fill(chunk: Uint8Array, at: number, target: number): number {
    let pending = this.pending!;
    if (pending.byteLength < target) {
      // target was checked against the caps before we get here.
      const grown = new Uint8Array(target);
      grown.set(pending.subarray(0, this.pendingLength));
      this.pending = pending = grown;
    }
    // pending may already hold more than a header (the tail of the previous chunk).
    const count = Math.min(target - this.pendingLength, chunk.byteLength - at);
    if (count <= 0) return at;
    pending.set(chunk.subarray(at, at + count), this.pendingLength);
    this.pendingLength += count;
    return at + count;
  }

  /** Completes the unit in `pending` from the chunk; returns where the chunk continues, or -1 if it was used up. */
  private completePending(chunk: Uint8Array, out: PacketBatch[]): number {
    let at = 0;
    for (;;) {
      this.errorBase = this.pendingStart;
      const headerBytes = this.unitHeaderBytes();
      at = this.fill(chunk, at, headerBytes);
      if (this.pendingLength < headerBytes) return -1;
      const pending = this.pending!;
      if (this.phase === "detect") {
        this.detect(pending, 0);
        continue; // same bytes, now sized by the detected format's header
      }
      const size = this.unitSize(pending, 0);
      at = this.fill(chunk, at, size);
      if (this.pendingLength < size) return -1;
      const unit = this.pending!.subarray(0, size);
      this.pending = undefined;
      this.pendingLength = 0;
      this.consumeUnit(unit, out);
      return at;
    }
  }

  /** Size of the unit whose header is at `offset` (header checks happen here, before any wait). */
  private unitSize(bytes: Uint8Array, offset: number): number {
    switch (this.phase) {
      case "pcap-header":
        return PCAP_GLOBAL_HEADER_BYTES;
      case "pcap-records": {
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const caplen = dv.getUint32(offset + 8, this.littleEndian);
        const len = dv.getUint32(offset + 12, this.littleEndian);
        if (caplen > this.caplenLimit || caplen > len) this.recordError(caplen, len, offset);
        return PCAP_RECORD_HEADER_BYTES + caplen;
      }
      default:
        return pcapngBlockLength(bytes, offset, this.littleEndian, this.maxBlockBytes);
    }
  }

  /** Handles one complete unit that was gathered in `pending` (an owned buffer of exactly its size). */
  private consumeUnit(unit: Uint8Array, out: PacketBatch[]): void {
    switch (this.phase) {
      case "pcap-header":
        this.readPcapHeader(unit, 0);
        return;
      case "pcap-records":
        this.carry = unit; // leads the next batch; already owned
        return;
      default: {
        const dv = new DataView(unit.buffer, unit.byteOffset, unit.byteLength);
        this.builderSizeHint = unit.byteLength;
        this.pcapngBlock(unit, dv, 0, unit.byteLength, out);
      }
    }
  }

  /** Processes every complete unit of the chunk from `at`; returns the start of the incomplete tail. */
  private processChunk(chunk: Uint8Array, at: number, out: PacketBatch[]): number {
    for (;;) {
      const available = chunk.byteLength - at;
      switch (this.phase) {
        case "detect":
          if (available < FORMAT_DETECT_BYTES) return at;
          this.detect(chunk, at);
          continue;
        case "pcap-header":
          if (available < PCAP_GLOBAL_HEADER_BYTES) return at;
          this.readPcapHeader(chunk, at);
          at += PCAP_GLOBAL_HEADER_BYTES;
          continue;
        case "pcap-records":
          return this.scanPcapRecords(chunk, at, out);
        default:
          return this.scanPcapngBlocks(chunk, at, out);
      }
    }
  }

  private detect(bytes: Uint8Array, offset: number): void {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const magicLe = dv.getUint32(offset, true);
    if (classifyPcapMagic(magicLe)) this.phase = "pcap-header";
    else if (magicLe === PcapngBlockType.SECTION_HEADER) this.phase = "pcapng";
    else throw new ProtocolError("bad-magic", "not a pcap or pcapng file: unknown magic number", offset);
  }

  // ------------------------------------------------------------------------------------------
  // Classic pcap

  private readPcapHeader(bytes: Uint8Array, offset: number): void {
    const header = decodePcapGlobalHeader(bytes, offset);
    this.header = header;
    this.littleEndian = header.littleEndian;
    this.precision = header.precision;
    // snaplen 0 declares no limit (libpcap then uses its own maximum); the cap still applies.
    this.caplenLimit = header.snaplen === 0 ? this.maxBlockBytes : Math.min(header.snaplen, this.maxBlockBytes);
    this.allInterfaces.push({
      section: 0,
      interfaceId: 0,
      linktype: header.linktype,
      snaplen: header.snaplen,
      precision: header.precision,
      tsresol: header.precision === "nano" ? 9 : 6,
    });
    this.phase = "pcap-records";
  }

  private recordError(caplen: number, len: number, offset: number): never {
    const snaplen = this.header!.snaplen;
    if (snaplen !== 0 && caplen > snaplen) {
      throw new ProtocolError("caplen-exceeds-snaplen", `caplen ${caplen} exceeds snaplen ${snaplen}`, offset + 8);
    }
    if (caplen > this.maxBlockBytes) {
      throw new ProtocolError("record-too-large", `caplen ${caplen} exceeds the cap ${this.maxBlockBytes}`, offset + 8);
    }
    throw new ProtocolError("caplen-exceeds-len", `caplen ${caplen} exceeds len ${len}`, offset + 8);
  }

  /**
   * The hot loop for classic pcap: checks each record header in place and cuts runs of complete
   * records out of the chunk. No allocation per record.
   */
  private scanPcapRecords(chunk: Uint8Array, at: number, out: PacketBatch[]): number {
    const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const le = this.littleEndian;
    const limit = this.caplenLimit;
    const end = chunk.byteLength;
    const maxBatchBytes = this.maxBatchBytes;
    let batchStart = at;
    let count = 0;
    let pos = at;
    try {
      while (end - pos >= PCAP_RECORD_HEADER_BYTES) {
        const caplen = dv.getUint32(pos + 8, le);
        const len = dv.getUint32(pos + 12, le);
        if (caplen > limit || caplen > len) this.recordError(caplen, len, pos);
        const next = pos + PCAP_RECORD_HEADER_BYTES + caplen;
        if (next > end) break;
        pos = next;
        count++;
        if (pos - batchStart >= maxBatchBytes) {
          this.cutPcapBatch(chunk, batchStart, pos, count, out);
          batchStart = pos;
          count = 0;
        }
      }
    } finally {
      // Runs before a thrown error too: records checked before the bad one are still emitted.
      if (count > 0 || this.carry) this.cutPcapBatch(chunk, batchStart, pos, count, out);
    }
    return pos;
  }

  /** Emits records [start, end) of the chunk (after the carried record, if any) as one owned batch. */
  private cutPcapBatch(chunk: Uint8Array, start: number, end: number, count: number, out: PacketBatch[]): void {
    let bytes: Uint8Array;
    const carry = this.carry;
    if (carry) {
      bytes = new Uint8Array(carry.byteLength + (end - start));
      bytes.set(carry, 0);
      bytes.set(chunk.subarray(start, end), carry.byteLength);
      count++;
      this.carry = undefined;
    } else if (this.adoptChunks) {
      bytes = chunk.subarray(start, end);
    } else {
      bytes = chunk.slice(start, end);
    }
    if (!this.littleEndian) swapRecordHeaders(bytes, count);
    out.push({ bytes, count, linktype: this.header!.linktype, precision: this.precision });
  }

  // ------------------------------------------------------------------------------------------
  // pcapng

  private scanPcapngBlocks(chunk: Uint8Array, at: number, out: PacketBatch[]): number {
    const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const end = chunk.byteLength;
    let pos = at;
    while (end - pos >= PCAPNG_BLOCK_PEEK_BYTES) {
      // Read the frame straight from the chunk's view: pcapngBlockLength would allocate a reader per block.
      const le = this.littleEndian;
      const type = dv.getUint32(pos, le);
      let size: number;
      if (type === PcapngBlockType.SECTION_HEADER) {
        size = pcapngBlockLength(chunk, pos, le, this.maxBlockBytes);
      } else {
        size = dv.getUint32(pos + 4, le);
        checkPcapngBlockLength(type, size, pos, this.maxBlockBytes);
      }
      if (end - pos < size) break;
      this.builderSizeHint = end - pos;
      this.pcapngBlock(chunk, dv, pos, size, out);
      pos += size;
    }
    return pos;
  }

  /** One complete block at `at` whose length was checked. */
  private pcapngBlock(bytes: Uint8Array, dv: DataView, at: number, size: number, out: PacketBatch[]): void {
    if (dv.getUint32(at, true) === PcapngBlockType.SECTION_HEADER) {
      const shb = decodePcapngSectionHeader(bytes, at, this.maxBlockBytes);
      this.littleEndian = shb.littleEndian;
      this.sectionIndex++;
      this.sectionInterfaces = [];
      this.clocks = [];
      return;
    }
    const le = this.littleEndian;
    const trailer = dv.getUint32(at + size - 4, le);
    if (trailer !== size) {
      throw new ProtocolError("block-length-mismatch", `pcapng block length ${size} disagrees with its trailing copy ${trailer}`, at + size - 4);
    }
    const type = dv.getUint32(at, le);
    switch (type) {
      case PcapngBlockType.ENHANCED_PACKET:
      case PcapngBlockType.OBSOLETE_PACKET: {
        const f = this.fields;
        readPacketBlockFields(dv, at, size, le, type === PcapngBlockType.OBSOLETE_PACKET, f);
        const iface = this.sectionInterfaces[f.interfaceId];
        if (!iface) {
          throw new ProtocolError("unknown-interface", `packet names interface ${f.interfaceId}, not described before it`, at + 8);
        }
        if (iface.snaplen !== 0 && f.caplen > iface.snaplen) {
          throw new ProtocolError("caplen-exceeds-snaplen", `caplen ${f.caplen} exceeds snaplen ${iface.snaplen}`, at + 20);
        }
        if (!this.clocks[f.interfaceId]!.split(f.timestampHigh, f.timestampLow, this.stamp)) {
          throw new ProtocolError("timestamp-out-of-range", "packet timestamp does not fit 32-bit seconds", at + 12);
        }
        this.appendPacket(iface, f.len, bytes.subarray(f.dataOffset, f.dataOffset + f.caplen), out);
        return;
      }
      case PcapngBlockType.SIMPLE_PACKET: {
        // An SPB belongs to interface 0 and has no timestamp.
        const iface = this.sectionInterfaces[0];
        if (!iface) throw new ProtocolError("unknown-interface", "simple packet block before any interface", at);
        const len = dv.getUint32(at + 8, le);
        const caplen = simplePacketCaplen(len, size, iface.snaplen);
        this.stamp.tsSec = 0;
        this.stamp.tsFrac = 0;
        this.appendPacket(iface, len, bytes.subarray(at + 12, at + 12 + caplen), out);
        return;
      }
      case PcapngBlockType.INTERFACE_DESCRIPTION: {
        if (this.sectionIndex < 0) throw new ProtocolError("bad-magic", "pcapng file does not start with a section header", at);
        const idb = decodePcapngBlock(bytes, at, le, { maxBlockBytes: this.maxBlockBytes });
        if (idb.kind !== "interface-description") throw new Error("unreachable: IDB decoded as another block");
        const clock = new InterfaceClock(idb.tsresol, idb.tsoffsetSeconds);
        const info: CaptureInterfaceInfo = {
          section: this.sectionIndex,
          interfaceId: this.sectionInterfaces.length,
          linktype: batchLinktypeOfInterface(idb),
          snaplen: idb.snaplen,
          precision: clock.precision,
          tsresol: idb.tsresol,
          ...(idb.name !== undefined ? { name: idb.name } : {}),
          ...(idb.description !== undefined ? { description: idb.description } : {}),
        };
        this.sectionInterfaces.push(info);
        this.allInterfaces.push(info);
        this.clocks.push(clock);
        return;
      }
      default:
        return; // name resolution, statistics, secrets, custom and unknown blocks: framed and skipped
    }
  }

  /** Copies one packet into the batch of its interface's run (cutting the run when linktype or precision change). */
  private appendPacket(iface: CaptureInterfaceInfo, len: number, data: Uint8Array, out: PacketBatch[]): void {
    let builder = this.builder;
    if (builder && (builder.linktype !== iface.linktype || builder.precision !== iface.precision)) {
      this.flushBuilder(out);
      builder = this.builder = undefined;
    }
    if (!builder) {
      const size = Math.min(this.builderSizeHint, this.maxBatchBytes + PCAPNG_BUILDER_SLACK_BYTES);
      builder = this.builder = new PacketBatchBuilder(iface.linktype, iface.precision, Math.max(size, PCAPNG_BUILDER_MIN_BYTES));
    }
    builder.push(this.stamp.tsSec, this.stamp.tsFrac, len, data);
    if (builder.byteLength >= this.maxBatchBytes) this.flushBuilder(out);
  }

  /** Emits the builder's records; the builder is kept (take() already made its next buffer). */
  private flushBuilder(out: PacketBatch[]): void {
    const batch = this.builder?.take();
    if (batch) out.push(batch);
  }
}

/** Converts the record headers of a big-endian run, copied into `bytes`, to the batch's little-endian layout. */
function swapRecordHeaders(bytes: Uint8Array, count: number): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const caplen = dv.getUint32(at + 8, false);
    dv.setUint32(at, byteSwap32(dv.getUint32(at, true)), true);
    dv.setUint32(at + 4, byteSwap32(dv.getUint32(at + 4, true)), true);
    dv.setUint32(at + 8, caplen, true);
    dv.setUint32(at + 12, byteSwap32(dv.getUint32(at + 12, true)), true);
    at += BATCH_RECORD_HEADER_BYTES + caplen;
  }
}
