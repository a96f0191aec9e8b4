// MemoryFifo: the reliable fifo without --spool. Chunks are copies of the appended batches
// (the pipeline's batch is shared and read-only) with their record offsets; acknowledgement
// releases whole chunks or advances within the first one.
import { recordOffsets, type PacketBatch } from "../../../packet/packet-batch.ts";
import type { AppendResult, FifoChunk, FifoCounters, PacketFifo, SpoolFullPolicy } from "./packet-fifo.ts";

/** Bookkeeping counted per record on top of its bytes, so many tiny records still fill the cap. */
const MEMORY_RECORD_OVERHEAD_BYTES = 16;

interface Chunk {
  firstSequence: number;
  batch: PacketBatch;
  offsets: Uint32Array;
  /** Records at the front already released by acknowledgement. */
  released: number;
}

export class MemoryFifo implements PacketFifo {
  readonly streamId: Uint8Array = crypto.getRandomValues(new Uint8Array(8));
  nextSequence = 1;
  ackedThrough = 0;
  readonly counters: FifoCounters;
  private readonly chunks: Chunk[] = [];

  constructor(private readonly options: { maxBytes: number; policy: SpoolFullPolicy }) {
    this.counters = { bytesIn: 0, bytesAcked: 0, usedBytes: 0, capacityBytes: options.maxBytes, recordsHeld: 0, droppedOldestRecords: 0, diskBytesWritten: 0 };
  }

  append(batch: PacketBatch): AppendResult {
    const size = batch.bytes.byteLength + batch.count * MEMORY_RECORD_OVERHEAD_BYTES;
    if (this.counters.usedBytes + size > this.options.maxBytes) {
      if (this.options.policy !== "drop-oldest") return { kind: "full" };
      while (this.chunks.length > 0 && this.counters.usedBytes + size > this.options.maxBytes) {
        const oldest = this.chunks[0]!;
        const last = oldest.firstSequence + oldest.batch.count - 1;
        this.counters.droppedOldestRecords += oldest.batch.count - oldest.released;
        this.releaseThrough(last, false);
      }
    }
    const copy: PacketBatch = { ...batch, bytes: batch.bytes.slice() };
    const firstSequence = this.nextSequence;
    this.chunks.push({ firstSequence, batch: copy, offsets: recordOffsets(copy), released: 0 });
    this.nextSequence += batch.count;
    this.counters.bytesIn += size;
    this.counters.usedBytes += size;
    this.counters.recordsHeld += batch.count;
    return { kind: "appended", firstSequence };
  }

  /** One appended batch (or its unacknowledged tail) at a time: a batch is already the write unit, so `_maxBytes` is not needed. */
  read(fromSequence: number, _maxBytes: number): FifoChunk | undefined {
    for (const chunk of this.chunks) {
      const end = chunk.firstSequence + chunk.batch.count;
      if (end <= fromSequence) continue;
      const start = Math.max(fromSequence, chunk.firstSequence + chunk.released) - chunk.firstSequence;
      const from = chunk.offsets[start]!;
      const count = chunk.batch.count - start;
      const records = chunk.batch.bytes.subarray(from);
      return {
        firstSequence: chunk.firstSequence + start,
        count,
        records,
        linktype: chunk.batch.linktype,
        precision: chunk.batch.precision,
        fifoBytes: records.byteLength + count * MEMORY_RECORD_OVERHEAD_BYTES,
      };
    }
    return undefined;
  }

  ack(sequence: number): void {
    if (sequence <= this.ackedThrough) return;
    this.releaseThrough(Math.min(sequence, this.nextSequence - 1), true);
  }

  private releaseThrough(sequence: number, acknowledged: boolean): void {
    while (this.chunks.length > 0) {
      const chunk = this.chunks[0]!;
      const end = chunk.firstSequence + chunk.batch.count; // exclusive
      const upTo = Math.min(sequence + 1, end) - chunk.firstSequence; // records released after this
      if (upTo <= chunk.released) break;
      const fromOffset = chunk.offsets[chunk.released]!;
      const toOffset = upTo < chunk.batch.count ? chunk.offsets[upTo]! : chunk.batch.bytes.byteLength;
      const bytes = toOffset - fromOffset + (upTo - chunk.released) * MEMORY_RECORD_OVERHEAD_BYTES;
      this.counters.usedBytes -= bytes;
      this.counters.recordsHeld -= upTo - chunk.released;
      if (acknowledged) this.counters.bytesAcked += bytes;
      chunk.released = upTo;
      if (upTo < chunk.batch.count) break;
      this.chunks.shift();
    }
    this.ackedThrough = Math.max(this.ackedThrough, sequence);
  }

  async close(): Promise<void> {
    this.chunks.length = 0;
  }
}
