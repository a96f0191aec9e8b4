// CaptureHub: one capture, many consumers. Consumers asking for the same interface, filter,
// snaplen and options share one libpcap handle; each has its own bounded ConsumerQueue, so a
// stalled consumer drops (counted for it alone) and never delays capture or the others.
import type { CaptureInfo, CaptureSource, CaptureStats } from "../capture/capture-source.ts";
import { LiveCaptureSource, type LiveCaptureOptions } from "../capture/live-capture-source.ts";
import { BATCH_RECORD_HEADER_BYTES, type PacketBatch } from "../packet/packet-batch.ts";
import type { BpfProgram } from "../packet/bpf/index.ts";
import { createBatchFilter, type BatchFilter } from "../capture/packet-filter.ts";
import { ConsumerQueue, type BatchSink, type ConsumerCounters } from "./consumer-queue.ts";

export interface SubscribeOptions {
  /**
   * A filter for this consumer alone, run in userland on what the shared capture delivers
   * (so consumers with different interests can still share one handle).
   */
  filter?: string | BpfProgram;
  /** Per-consumer queue bound in bytes. */
  maxQueueBytes?: number;
  /** Called when the shared capture ends (interface gone, error, hub closed). */
  onEnd?: (error?: Error) => void;
  onSinkError?: (error: Error) => void;
  /** What this consumer is, for metrics ("rpcap", "pcap-over-ip"); a fixed word, not a peer. */
  label?: string;
}

/** One shared capture's counts, read by --metrics at scrape time. */
export interface HubCaptureSnapshot {
  interface: string;
  /** Packets and bytes (captured lengths) the capture delivered to the hub. */
  packets: number;
  bytes: number;
  consumers: number;
  stats(): Promise<CaptureStats>;
}

/** Consumer totals per label, including consumers that have left (so counters never go back). */
export interface HubConsumerTotals {
  deliveredPackets: number;
  droppedPackets: number;
  queuedBytes: number;
  consumers: number;
}

export interface Subscription {
  readonly info: CaptureInfo;
  readonly counters: ConsumerCounters;
  /** Kernel and delivery stats of the shared capture this consumer is on. */
  captureStats(): Promise<CaptureStats>;
  /** Resolves once everything queued for this consumer has been written. */
  drained(): Promise<void>;
  /** Leaves the shared capture; the last consumer to leave stops it. Idempotent. */
  unsubscribe(): Promise<void>;
}

type Consumer = { queue: ConsumerQueue; options: SubscribeOptions; filter?: BatchFilter };

class SharedCapture {
  readonly consumers = new Set<Consumer>();
  info!: CaptureInfo;
  opening!: Promise<CaptureInfo>;
  ended = false;
  packets = 0;
  bytes = 0;

  constructor(readonly key: string, readonly source: CaptureSource, private readonly onEmpty: () => void) {}

  open(): Promise<CaptureInfo> {
    this.opening = this.source.start({
      onBatch: (batch: PacketBatch) => {
        this.packets += batch.count;
        this.bytes += batch.bytes.byteLength - batch.count * BATCH_RECORD_HEADER_BYTES; // captured bytes
        for (const consumer of this.consumers) {
          const mine = consumer.filter ? consumer.filter(batch) : batch;
          if (mine.count > 0) consumer.queue.offer(mine);
        }
      },
      onEnd: (_reason, error) => {
        this.ended = true;
        for (const consumer of this.consumers) consumer.options.onEnd?.(error);
        this.onEmpty();
      },
    });
    return this.opening.then((info) => (this.info = info));
  }
}

export type SourceFactory = (options: LiveCaptureOptions) => CaptureSource;

export class CaptureHub {
  private readonly captures = new Map<string, SharedCapture>();
  /** Consumers that have left, summed per label; every consumer now, by label. */
  private readonly departed = new Map<string, { deliveredPackets: number; droppedPackets: number }>();
  private readonly present = new Map<ConsumerQueue, string>();

  constructor(private readonly createSource: SourceFactory = (options) => new LiveCaptureSource(options)) {}

  /** Every capture open now, for metrics. */
  captureSnapshots(): HubCaptureSnapshot[] {
    return [...this.captures.values()].map((c) => ({
      interface: c.source.description,
      packets: c.packets,
      bytes: c.bytes,
      consumers: c.consumers.size,
      stats: () => c.source.stats(),
    }));
  }

  /** Consumer counts per label since the hub started (departed consumers included). */
  consumerTotals(): Map<string, HubConsumerTotals> {
    const out = new Map<string, HubConsumerTotals>();
    for (const [label, gone] of this.departed) out.set(label, { ...gone, queuedBytes: 0, consumers: 0 });
    for (const [queue, label] of this.present) {
      const t = out.get(label) ?? { deliveredPackets: 0, droppedPackets: 0, queuedBytes: 0, consumers: 0 };
      t.deliveredPackets += queue.counters.deliveredPackets;
      t.droppedPackets += queue.counters.droppedPackets;
      t.queuedBytes += queue.counters.queuedBytes;
      t.consumers++;
      out.set(label, t);
    }
    return out;
  }

  /** Number of distinct native captures open now (for tests and status output). */
  get captureCount(): number {
    return this.captures.size;
  }

  async subscribe(capture: LiveCaptureOptions, sink: BatchSink, options: SubscribeOptions = {}): Promise<Subscription> {
    const key = captureKey(capture);
    let shared = this.captures.get(key);
    if (!shared) {
      const created: SharedCapture = new SharedCapture(key, this.createSource(capture), () => {
        if (this.captures.get(key) === created) this.captures.delete(key);
      });
      shared = created;
      this.captures.set(key, created);
      try {
        await created.open();
      } catch (error) {
        if (this.captures.get(key) === created) this.captures.delete(key);
        throw error;
      }
    } else {
      await shared.opening;
    }
    const consumer: Consumer = { queue: new ConsumerQueue(sink, options.maxQueueBytes, options.onSinkError), options };
    if (options.filter !== undefined && options.filter !== "") {
      consumer.filter = createBatchFilter(options.filter, shared.info.linktype, shared.info.snaplen);
    }
    shared.consumers.add(consumer);
    const label = options.label ?? "other";
    this.present.set(consumer.queue, label);
    const owner = shared;
    let left = false;
    return {
      info: owner.info,
      counters: consumer.queue.counters,
      captureStats: () => owner.source.stats(),
      drained: () => consumer.queue.drained(),
      unsubscribe: async () => {
        if (left) return;
        left = true;
        consumer.queue.close();
        this.present.delete(consumer.queue);
        const gone = this.departed.get(label) ?? { deliveredPackets: 0, droppedPackets: 0 };
        gone.deliveredPackets += consumer.queue.counters.deliveredPackets;
        gone.droppedPackets += consumer.queue.counters.droppedPackets;
        this.departed.set(label, gone);
        owner.consumers.delete(consumer);
        if (owner.consumers.size === 0 && !owner.ended) {
          if (this.captures.get(owner.key) === owner) this.captures.delete(owner.key);
          await owner.source.stop();
        }
      },
    };
  }

  /** Stops every capture. */
  async close(): Promise<void> {
    const all = [...this.captures.values()];
    this.captures.clear();
    await Promise.all(all.map((shared) => shared.source.stop()));
  }
}

/** Two requests share a handle exactly when everything that shapes the capture is equal. */
function captureKey(o: LiveCaptureOptions): string {
  return JSON.stringify([
    o.interface,
    o.filter ?? "",
    o.snaplen ?? 0,
    o.promiscuous ?? true,
    o.bufferBytes ?? 0,
    o.immediate ?? false,
    o.precision ?? "micro",
    o.direction ?? "inout",
  ]);
}
