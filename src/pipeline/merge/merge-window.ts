// MergeWindow: the pure part of merging several packet streams into one timestamp-ordered
// stream. No sockets, timers or clocks: the caller passes "now" in, so tests drive time.
//
// Algorithm (a k-way merge with a bounded reordering window):
//   - Each source ("lane") keeps a FIFO of the batches it delivered and a watermark: the latest
//     timestamp it has delivered so far. Sources are assumed to be in timestamp order each
//     (a capture is), so a source can never again deliver anything earlier than its watermark.
//   - release() repeatedly looks at the earliest record T among the heads of all lanes and
//     lets it out when
//       (1) it is safe: every other live lane either holds a record (whose head is >= T, since
//           T is the minimum) or has a watermark >= T — no lane can still produce something
//           earlier; ended lanes do not count; or
//       (2) the oldest record held, by wall time of arrival, has waited `windowMs`: a quiet,
//           stalled or reconnecting source delays the others by at most the window; or
//       (3) more than `maxHeldBytes` are held (a live source that never waits floods us).
//   - A record that arrives after later records were already let out (a source more than the
//     window behind) still goes out, at once, and is counted in `outOfOrder`; nothing is dropped.
//   - Equal timestamps: the source given LATER goes first, as Debian's mergecap 4.0 does
//     (wiretap/merge.c picks the earliest head with `is_earlier()`, which is "earlier or
//     equal", scanning inputs in order, so the last tied input wins; checked with crafted
//     files: A=[1,2,2] B=[1,2] C=[2,2] come out C2 C2 B2 A2 A2 at t=2). Records of one source
//     keep their order. So that a tie cannot be decided before a later source has shown its
//     hand, a later source that is quiet and has delivered exactly T still holds T back (rule 1
//     wants its watermark strictly beyond T); an earlier source at T loses the tie anyway.
//
// Timestamps are compared as (seconds, nanoseconds) pairs: seconds * 1e9 does not fit a double
// exactly. Output precision is chosen by the caller; records of the other precision are
// converted on the way out (micro to nano multiplies by 1000; nano to micro truncates, as
// libpcap does when it reads a nano file for a micro consumer).
import { BATCH_RECORD_HEADER_BYTES, PacketBatchBuilder, type PacketBatch, type TimestampPrecision } from "../../packet/packet-batch.ts";
import { NANOS_PER_MICRO } from "../../packet/timestamps.ts";

/** A batch of merged records that says which source each record came from. */
export interface MergedBatch extends PacketBatch {
  /** For record i of the batch, the index of its source (in the order sources were given). */
  readonly sourceIndexes: Uint16Array;
}

/** True when a batch came out of a merge (has per-record source indexes). */
export function isMergedBatch(batch: PacketBatch): batch is MergedBatch {
  return (batch as Partial<MergedBatch>).sourceIndexes instanceof Uint16Array;
}

/** Most sources a merge takes: source indexes are u16 in MergedBatch. */
export const MAX_MERGE_SOURCES = 0xffff;

export interface MergeWindowOptions {
  sourceCount: number;
  precision: TimestampPrecision;
  /** Longest a record waits for a slower source, in wall-clock ms. */
  windowMs: number;
  /** Held bytes above which records are let out regardless of order. */
  maxHeldBytes: number;
  /** An output batch is cut once it holds this many bytes. */
  outputBatchBytes: number;
}

export interface MergeWindowCounters {
  /** Records let out. */
  released: number;
  /** Records let out with a timestamp earlier than one already let out. */
  outOfOrder: number;
  /** Records let out because the window elapsed before every source caught up. */
  releasedByTimeout: number;
  /** Records let out because too many bytes were held. */
  releasedBySize: number;
}

interface QueuedBatch {
  readonly batch: PacketBatch;
  readonly view: DataView;
  readonly arrivedMs: number;
  /** 1000 for micro batches (to nanoseconds), 1 for nano. */
  readonly toNanos: number;
}

interface Lane {
  readonly queue: QueuedBatch[];
  /** Record index and byte offset of the next record of queue[0]. */
  cursorIndex: number;
  cursorOffset: number;
  heldBytes: number;
  /** Latest timestamp delivered; seconds -1 until the first record. */
  watermarkSec: number;
  watermarkNs: number;
  ended: boolean;
}


export class MergeWindow {
  private readonly lanes: Lane[];
  private held = 0;
  private lastSec = -1;
  private lastNs = 0;
  readonly counters: MergeWindowCounters = { released: 0, outOfOrder: 0, releasedByTimeout: 0, releasedBySize: 0 };

  constructor(private readonly options: MergeWindowOptions) {
    if (options.sourceCount < 1 || options.sourceCount > MAX_MERGE_SOURCES) {
      throw new RangeError(`a merge takes 1 to ${MAX_MERGE_SOURCES} sources, not ${options.sourceCount}`);
    }
    this.lanes = Array.from({ length: options.sourceCount }, () => ({
      queue: [],
      cursorIndex: 0,
      cursorOffset: 0,
      heldBytes: 0,
      watermarkSec: -1,
      watermarkNs: 0,
      ended: false,
    }));
  }

  /** Bytes held for all sources. */
  get heldBytes(): number {
    return this.held;
  }

  /** Bytes held for one source (for per-source back-pressure). */
  heldBytesOf(source: number): number {
    return this.lane(source).heldBytes;
  }

  /** Queues a source's batch (kept by reference: batches are owned and read-only). */
  add(source: number, batch: PacketBatch, nowMs: number): void {
    const lane = this.lane(source);
    if (lane.ended) throw new Error(`source ${source} has ended`);
    if (batch.count === 0) return;
    const view = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
    const toNanos = batch.precision === "micro" ? NANOS_PER_MICRO : 1;
    let offset = 0;
    for (let i = 0; i < batch.count; i++) {
      const sec = view.getUint32(offset, true);
      const ns = view.getUint32(offset + 4, true) * toNanos;
      if (sec > lane.watermarkSec || (sec === lane.watermarkSec && ns > lane.watermarkNs)) {
        lane.watermarkSec = sec;
        lane.watermarkNs = ns;
      }
      offset += BATCH_RECORD_HEADER_BYTES + view.getUint32(offset + 8, true);
    }
    lane.queue.push({ batch, view, arrivedMs: nowMs, toNanos });
    lane.heldBytes += batch.bytes.byteLength;
    this.held += batch.bytes.byteLength;
  }

  /** Marks a source as ended: the others no longer wait for it. Its held records still go out. */
  endSource(source: number): void {
    this.lane(source).ended = true;
  }

  /** True when every source has ended and nothing is held. */
  get drained(): boolean {
    return this.held === 0 && this.lanes.every((l) => l.ended);
  }

  /**
   * Lets out every record the rules allow, in timestamp order, as batches of at most
   * `outputBatchBytes` (cut early where the linktype changes). With `flushAll`, everything held
   * goes out (end of the merge). Returns the wall time (ms) at which the window will force the
   * next release, or undefined when nothing is held.
   */
  release(nowMs: number, emit: (batch: MergedBatch) => void, flushAll = false): number | undefined {
    const lanes = this.lanes;
    let builder: PacketBatchBuilder | undefined;
    let sources: number[] = [];
    const flush = () => {
      const batch = builder?.take();
      if (batch) emit({ ...batch, sourceIndexes: Uint16Array.from(sources) });
      sources = [];
    };
    for (;;) {
      // The earliest head record, and the oldest arrival among held records.
      let best = -1;
      let bestSec = 0;
      let bestNs = 0;
      let oldestArrivalMs = Number.POSITIVE_INFINITY;
      for (let i = 0; i < lanes.length; i++) {
        const lane = lanes[i]!;
        const head = lane.queue[0];
        if (!head) continue;
        if (head.arrivedMs < oldestArrivalMs) oldestArrivalMs = head.arrivedMs;
        const sec = head.view.getUint32(lane.cursorOffset, true);
        const ns = head.view.getUint32(lane.cursorOffset + 4, true) * head.toNanos;
        // `<=`: of tied heads the last source wins (mergecap's order, above).
        if (best < 0 || sec < bestSec || (sec === bestSec && ns <= bestNs)) {
          best = i;
          bestSec = sec;
          bestNs = ns;
        }
      }
      if (best < 0) {
        flush();
        return undefined;
      }
      if (!flushAll && !this.isSafe(best, bestSec, bestNs)) {
        if (oldestArrivalMs + this.options.windowMs <= nowMs) this.counters.releasedByTimeout++;
        else if (this.held > this.options.maxHeldBytes) this.counters.releasedBySize++;
        else {
          flush();
          return oldestArrivalMs + this.options.windowMs;
        }
      }
      const lane = lanes[best]!;
      const head = lane.queue[0]!;
      if (builder && (builder.linktype !== head.batch.linktype || builder.byteLength >= this.options.outputBatchBytes)) flush();
      if (!builder || builder.linktype !== head.batch.linktype) {
        // Sized to what can come out at most, so a one-packet release does not allocate a full batch.
        const size = Math.min(this.options.outputBatchBytes, this.held) + BATCH_RECORD_HEADER_BYTES;
        builder = new PacketBatchBuilder(head.batch.linktype, this.options.precision, size);
      }
      this.emitRecord(lane, head, best, bestSec, bestNs, builder, sources);
    }
  }

  /**
   * No live source other than `source` can still deliver something that goes before (sec, ns):
   * anything earlier, or (for a source given later, which wins ties) anything equal.
   */
  private isSafe(source: number, sec: number, ns: number): boolean {
    for (let i = 0; i < this.lanes.length; i++) {
      if (i === source) continue;
      const lane = this.lanes[i]!;
      if (lane.ended || lane.queue.length > 0) continue;
      if (lane.watermarkSec < sec || (lane.watermarkSec === sec && lane.watermarkNs < ns)) return false;
      if (i > source && lane.watermarkSec === sec && lane.watermarkNs === ns) return false;
    }
    return true;
  }

  /** Copies the head record of `lane` into the output and advances the lane. */
  private emitRecord(
    lane: Lane,
    head: QueuedBatch,
    source: number,
    sec: number,
    ns: number,
    builder: PacketBatchBuilder,
    sources: number[],
  ): void {
    const at = lane.cursorOffset;
    const caplen = head.view.getUint32(at + 8, true);
    const len = head.view.getUint32(at + 12, true);
    const frac = this.options.precision === "nano" ? ns : Math.floor(ns / NANOS_PER_MICRO);
    const dataStart = at + BATCH_RECORD_HEADER_BYTES;
    builder.push(sec, frac, len, head.batch.bytes.subarray(dataStart, dataStart + caplen));
    sources.push(source);
    this.counters.released++;
    if (sec < this.lastSec || (sec === this.lastSec && ns < this.lastNs)) this.counters.outOfOrder++;
    else {
      this.lastSec = sec;
      this.lastNs = ns;
    }
    const recordBytes = BATCH_RECORD_HEADER_BYTES + caplen;
    lane.heldBytes -= recordBytes;
    this.held -= recordBytes;
    lane.cursorOffset = dataStart + caplen;
    lane.cursorIndex++;
    if (lane.cursorIndex >= head.batch.count) {
      lane.queue.shift();
      lane.cursorIndex = 0;
      lane.cursorOffset = 0;
    }
  }

  private lane(source: number): Lane {
    const lane = this.lanes[source];
    if (!lane) throw new RangeError(`no source ${source}`);
    return lane;
  }
}
