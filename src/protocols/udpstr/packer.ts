// udpstr packer: turns PacketBatches into udpstr datagrams exactly as ExtraHop's rpcapd cuts them,
// so a collector cannot tell probe from the original daemon. Pure: no sockets, timers or Bun APIs.
//
// The algorithm, read from ExtraHop/rpcapd @9b0a405 rpcapd/daemon.c (daemon_udpstr_write and
// daemon_udpstr_flush) and checked byte for byte against test/fixtures/vectors/udpstr-extrahop*.pcap.
// `fill` is the size of the datagram being built, 8-byte header included (ExtraHop's iov_len);
// `T = mtu - 28` is the flush threshold (UDPSTR_FLUSH_THRESHOLD_BYTES). Between records
// fill < T always holds, so a 20-byte record header is never split. For each record:
//
//   1. (single-threaded layout) if 30 or more of the 32 iovec slots are used, flush first;
//   2. if no record header has begun in this datagram yet, firsthdridx = fill;
//   3. append the 20-byte header and the caplen data bytes, then while fill >= T:
//        fill >  mtu: send the first mtu bytes; the rest of the record's data (never the header)
//                     continues after the next datagram's 8-byte header, firsthdridx 0xFFFF;
//        fill <= mtu: send all fill bytes (a datagram of T..mtu bytes, not always full);
//   4. if all 32 iovec slots are used (send-thread layout only), flush.
//
// flush() sends whatever is buffered (nothing when only the header is). ExtraHop's single-threaded
// daemon flushes only when pcap_dispatch() returns 0 (read timeout), its send thread whenever its
// ring is empty; the caller decides when to call flush() (e.g. when no more packets are ready).
import { forEachRecord, type PacketBatch } from "../../packet/packet-batch.ts";
import { writeUdpstrHeader, writeUdpstrPkthdr } from "./codec.ts";
import {
  IovLayout,
  NANOS_PER_MICRO,
  UDPSTR_DEFAULT_MTU_BYTES,
  UDPSTR_FIRSTHDR_NONE,
  UDPSTR_FLUSH_THRESHOLD_BYTES,
  UDPSTR_HEADER_BYTES,
  UDPSTR_IOV_SLOTS,
  UDPSTR_MAX_MTU_BYTES,
  UDPSTR_MIN_MTU_BYTES,
  UDPSTR_PKTHDR_BYTES,
  nextU32,
} from "./wire.ts";

/** How a UdpstrPacker is set up; every field has ExtraHop's default. */
export interface UdpstrPackerOptions {
  /** Largest UDP payload in bytes, header included (ExtraHop `-t`). UDPSTR_MIN_MTU_BYTES..UDPSTR_MAX_MTU_BYTES. */
  mtuBytes?: number;
  /** seqno of the first datagram; ExtraHop starts every capture at 0. */
  firstSeqno?: number;
  /** Which of ExtraHop's two iovec layouts to reproduce (see IovLayout in wire.ts). */
  iovLayout?: IovLayout;
}

/** Where the datagram being built stands; copied for the sizing pass so it runs the same code. */
interface PackCursor {
  /** Bytes in the datagram being built, 8-byte header included (ExtraHop iov_len). */
  fill: number;
  /** iovec slots ExtraHop would be using (iov[0] is the header). */
  iovCount: number;
  /** firsthdridx of the datagram being built (UDPSTR_FIRSTHDR_NONE until a record begins). */
  firsthdr: number;
  /** seqno the datagram being built will carry. */
  seqno: number;
}

/** Where the bytes go during the writing pass; absent during the sizing pass. */
interface PackOutput {
  arena: Uint8Array;
  view: DataView;
  /** Offset in `arena` where the datagram being built begins. */
  start: number;
  datagrams: Uint8Array[];
}

/** What the sizing pass learns: how many bytes the finished datagrams and the leftover take. */
interface PackPlan {
  emittedBytes: number;
  leftoverFill: number;
}

/**
 * Packs records into udpstr datagrams, byte-identical to ExtraHop's rpcapd for the same packets
 * and flush points.
 *
 * Datagrams are returned as views into one buffer allocated per call. They are owned by the
 * caller (the packer never writes to them again) and ready for one sendMany(). The records are
 * copied, so the batch may be released once push() returns.
 */
export class UdpstrPacker {
  /** Largest datagram this packer produces, in bytes. */
  readonly mtuBytes: number;
  readonly iovLayout: IovLayout;
  /** Slots in the iovec array a datagram is gathered from (ExtraHop: 32). */
  private readonly iovSlots: number;
  /** Datagrams produced so far (push and flush). */
  datagramsProduced = 0;
  /** Records accepted so far. */
  recordsPacked = 0;

  private readonly threshold: number;
  private readonly slotsPerRecord: number;
  private readonly cursor: PackCursor;
  /** The datagram being built between calls: only bytes 8..fill are meaningful. */
  private readonly pending: Uint8Array;

  constructor(options: UdpstrPackerOptions = {}) {
    const mtu = options.mtuBytes ?? UDPSTR_DEFAULT_MTU_BYTES;
    if (!Number.isInteger(mtu) || mtu < UDPSTR_MIN_MTU_BYTES || mtu > UDPSTR_MAX_MTU_BYTES) {
      throw new RangeError(`udpstr MTU must be an integer ${UDPSTR_MIN_MTU_BYTES}..${UDPSTR_MAX_MTU_BYTES} bytes, got ${mtu}`);
    }
    const firstSeqno = options.firstSeqno ?? 0;
    if (!Number.isInteger(firstSeqno) || firstSeqno < 0 || firstSeqno > 0xffffffff) {
      throw new RangeError(`udpstr firstSeqno must be a u32, got ${firstSeqno}`);
    }
    this.mtuBytes = mtu;
    this.iovLayout = options.iovLayout ?? IovLayout.SINGLE_THREADED;
    this.threshold = mtu - UDPSTR_FLUSH_THRESHOLD_BYTES;
    // Single-threaded: pkthdr and packet data are separate iovecs; send thread: one contiguous.
    this.slotsPerRecord = this.iovLayout === IovLayout.SINGLE_THREADED ? 2 : 1;
    // Dense: no iovec array to run out of.
    this.iovSlots = this.iovLayout === IovLayout.DENSE ? Number.MAX_SAFE_INTEGER : UDPSTR_IOV_SLOTS;
    this.cursor = { fill: UDPSTR_HEADER_BYTES, iovCount: 1, firsthdr: UDPSTR_FIRSTHDR_NONE, seqno: firstSeqno };
    this.pending = new Uint8Array(mtu);
  }

  /** seqno the next datagram will carry. */
  get nextSeqno(): number {
    return this.cursor.seqno;
  }

  /** Stream bytes buffered in the unfinished datagram (sent by a later push or flush). */
  get pendingBytes(): number {
    return this.cursor.fill - UDPSTR_HEADER_BYTES;
  }

  /**
   * Appends every record of `batch`, numbering them npkt = npktStart, npktStart + 1, ... (u32,
   * wrapping), and returns the datagrams that became complete, in seqno order (often none for
   * small packets, several for a large one). Nanosecond timestamps are truncated to microseconds.
   */
  push(batch: PacketBatch, npktStart: number): Uint8Array[] {
    if (!Number.isInteger(npktStart) || npktStart < 0 || npktStart > 0xffffffff) {
      throw new RangeError(`npktStart must be a u32, got ${npktStart}`);
    }
    if (batch.count === 0) return [];
    // Sizing pass on a copy of the cursor, so the writing pass allocates exactly once.
    const plan: PackPlan = { emittedBytes: 0, leftoverFill: 0 };
    const sizing = { ...this.cursor };
    this.packBatch(batch, npktStart, sizing, null, plan);
    plan.leftoverFill = sizing.fill;

    const arena = new Uint8Array(plan.emittedBytes + plan.leftoverFill);
    const out: PackOutput = { arena, view: new DataView(arena.buffer), start: 0, datagrams: [] };
    arena.set(this.pending.subarray(UDPSTR_HEADER_BYTES, this.cursor.fill), UDPSTR_HEADER_BYTES);
    this.packBatch(batch, npktStart, this.cursor, out, null);
    // Keep the unfinished datagram in our own buffer: the arena now belongs to the caller.
    this.pending.set(arena.subarray(out.start + UDPSTR_HEADER_BYTES, out.start + this.cursor.fill), UDPSTR_HEADER_BYTES);
    this.recordsPacked += batch.count;
    this.datagramsProduced += out.datagrams.length;
    return out.datagrams;
  }

  /** Sends the unfinished datagram, if it holds any stream bytes (daemon_udpstr_flush). */
  flush(): Uint8Array[] {
    const c = this.cursor;
    if (c.iovCount < 2) return [];
    const arena = new Uint8Array(c.fill);
    arena.set(this.pending.subarray(UDPSTR_HEADER_BYTES, c.fill), UDPSTR_HEADER_BYTES);
    const out: PackOutput = { arena, view: new DataView(arena.buffer), start: 0, datagrams: [] };
    this.emit(c, out, null);
    this.datagramsProduced += 1;
    return out.datagrams;
  }

  /** One pass over the batch: sizing when `out` is null, writing otherwise. Same state machine. */
  private packBatch(batch: PacketBatch, npktStart: number, c: PackCursor, out: PackOutput | null, plan: PackPlan | null): void {
    const nano = batch.precision === "nano";
    let npkt = npktStart;
    forEachRecord(batch, (record, bytes) => {
      const tsUsec = nano ? Math.floor(record.tsFrac / NANOS_PER_MICRO) : record.tsFrac;
      // Step 1: single-threaded ExtraHop flushes before a record when the iovec array is nearly full.
      if (this.slotsPerRecord === 2 && c.iovCount >= UDPSTR_IOV_SLOTS - 2) this.flushIfAny(c, out, plan);
      // Step 2: the first header that begins in this datagram.
      if (c.firsthdr === UDPSTR_FIRSTHDR_NONE) c.firsthdr = c.fill;
      // Step 3: the header always fits whole (fill < mtu - 28 here).
      if (out) writeUdpstrPkthdr(out.view, out.start + c.fill, record.tsSec, tsUsec, record.caplen, record.len, npkt);
      c.fill += UDPSTR_PKTHDR_BYTES;
      c.iovCount += this.slotsPerRecord;
      let dataAt = record.dataOffset;
      let remaining = record.caplen;
      for (;;) {
        const total = c.fill + remaining;
        if (total < this.threshold) {
          this.copyData(c, out, bytes, dataAt, remaining);
          break;
        }
        if (total <= this.mtuBytes) {
          this.copyData(c, out, bytes, dataAt, remaining);
          this.emit(c, out, plan);
          break;
        }
        // Cut inside this record's data: fill the datagram to the MTU, carry the rest over.
        const room = this.mtuBytes - c.fill;
        this.copyData(c, out, bytes, dataAt, room);
        dataAt += room;
        remaining -= room;
        this.emit(c, out, plan);
        c.iovCount = 2; // ExtraHop keeps the tail of the data iovec as iov[1]
      }
      // Step 4: only reachable with one slot per record (send-thread layout).
      if (c.iovCount === this.iovSlots) this.flushIfAny(c, out, plan);
      npkt = nextU32(npkt); // npkt is a u32 on the wire and wraps, like ExtraHop's counter
    });
  }

  private copyData(c: PackCursor, out: PackOutput | null, bytes: Uint8Array, from: number, count: number): void {
    if (out) out.arena.set(bytes.subarray(from, from + count), out.start + c.fill);
    c.fill += count;
  }

  private flushIfAny(c: PackCursor, out: PackOutput | null, plan: PackPlan | null): void {
    if (c.iovCount >= 2) this.emit(c, out, plan);
  }

  /** Finishes the datagram being built (`fill` bytes) and starts the next, seqno + 1. */
  private emit(c: PackCursor, out: PackOutput | null, plan: PackPlan | null): void {
    if (out) {
      writeUdpstrHeader(out.view, out.start, c.firsthdr, c.seqno);
      out.datagrams.push(out.arena.subarray(out.start, out.start + c.fill));
      out.start += c.fill;
    }
    if (plan) plan.emittedBytes += c.fill;
    c.seqno = nextU32(c.seqno); // u32 on the wire; wraps like ExtraHop's uint32_t udp_seqno
    c.fill = UDPSTR_HEADER_BYTES;
    c.iovCount = 1;
    c.firsthdr = UDPSTR_FIRSTHDR_NONE;
  }
}
