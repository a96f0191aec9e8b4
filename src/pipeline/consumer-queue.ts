// ConsumerQueue: one consumer's bounded queue of batches. Capture never waits for a consumer:
// offer() either queues the batch or drops it and counts the drop for this consumer alone.
import { ownedBatch, type PacketBatch } from "../packet/packet-batch.ts";

/**
 * Where a queue delivers; a returned promise means "not ready for the next batch until it
 * settles". write() may get a lent batch (isLentBatch): a sink that uses it after returning
 * (after an await, in a pending write) keeps ownedBatch(batch) / ownedBytes(...) instead.
 */
export interface BatchSink {
  write(batch: PacketBatch): void | Promise<void>;
}

export interface ConsumerCounters {
  /** Packets handed to the sink. */
  deliveredPackets: number;
  /** Packets dropped because the queue was over its byte bound. */
  droppedPackets: number;
  droppedBatches: number;
  /** Bytes held now: queued plus the batch the sink is writing. */
  queuedBytes: number;
  /** Packets held now, likewise; delivered + dropped + queued = offered. */
  queuedPackets: number;
}

/** Default per-consumer bound: ~2 s of 100 Mbit/s, enough to ride out a GC pause or a slow link. */
export const DEFAULT_CONSUMER_QUEUE_BYTES = 32 * 1024 * 1024;

export class ConsumerQueue {
  private readonly queue: PacketBatch[] = [];
  private pumping = false;
  private closed = false;
  /** One promise per busy period: callers that ask again and again while it pumps share it. */
  private idle: { promise: Promise<void>; resolve: () => void } | undefined;
  readonly counters: ConsumerCounters = {
    deliveredPackets: 0,
    droppedPackets: 0,
    droppedBatches: 0,
    queuedBytes: 0,
    queuedPackets: 0,
  };

  constructor(
    private readonly sink: BatchSink,
    private readonly maxQueueBytes = DEFAULT_CONSUMER_QUEUE_BYTES,
    private readonly onSinkError: (error: Error) => void = () => {},
  ) {}

  /** Queues the batch, or drops it (counted) when the queue is full. Never blocks. */
  offer(batch: PacketBatch): boolean {
    if (this.closed) return false;
    const size = batch.bytes.byteLength;
    // A consumer holding nothing always takes one batch, so a batch larger than the bound is
    // not dropped forever; the bound is therefore max(maxQueueBytes, one batch).
    if (this.counters.queuedBytes > 0 && this.counters.queuedBytes + size > this.maxQueueBytes) {
      this.counters.droppedPackets += batch.count;
      this.counters.droppedBatches++;
      return false;
    }
    // An idle queue hands the batch to its sink before offer() returns; one that must hold it
    // (a write is in progress) holds an owned copy, since a lent batch is reused after the call.
    this.queue.push(this.pumping ? ownedBatch(batch) : batch);
    this.counters.queuedBytes += size;
    this.counters.queuedPackets += batch.count;
    if (!this.pumping) void this.pump();
    return true;
  }

  /** Resolves when everything queued so far has been written (for an orderly end of file). */
  drained(): Promise<void> {
    if (this.queue.length === 0 && !this.pumping) return Promise.resolve();
    this.idle ??= Promise.withResolvers<void>();
    return this.idle.promise;
  }

  /** Stops delivering; what is still queued is discarded and counted as dropped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const batch of this.queue) {
      this.counters.droppedPackets += batch.count;
      this.counters.queuedPackets -= batch.count;
      this.counters.queuedBytes -= batch.bytes.byteLength;
    }
    this.queue.length = 0;
    this.wakeIdle();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (!this.closed) {
        const batch = this.queue.shift();
        if (!batch) break;
        const pending = this.sink.write(batch);
        if (pending) await pending;
        this.counters.queuedBytes -= batch.bytes.byteLength;
        this.counters.queuedPackets -= batch.count;
        this.counters.deliveredPackets += batch.count;
      }
    } catch (error) {
      this.close();
      this.onSinkError(error as Error);
    } finally {
      this.pumping = false;
      this.wakeIdle();
    }
  }

  private wakeIdle(): void {
    if (this.pumping || this.queue.length > 0) return;
    const idle = this.idle;
    this.idle = undefined;
    idle?.resolve();
  }
}
