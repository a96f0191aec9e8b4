// CaptureHub: one capture, many consumers. Consumers asking for the same interface, filter,
// snaplen and options share one libpcap handle; each has its own bounded ConsumerQueue, so a
// stalled consumer drops (counted for it alone) and never delays capture or the others.
//
// With shared stages (the pipeline's hooks, sampling...: `createStages`), a shared capture runs
// them once per captured batch before the fan-out, and consumers share the handle whatever
// their filter and snaplen: those become per-consumer, in userland, after the stages (so a
// stateful hook sees every packet once, and every consumer gets the same packets from it).
import type { CaptureInfo, CaptureSource, CaptureStats } from "../capture/capture-source.ts";
import { DEFAULT_CAPTURE_ENGINE, DEFAULT_FLUSH_INTERVAL_MS, LiveCaptureSource, type LiveCaptureOptions } from "../capture/live-capture-source.ts";
import { BATCH_RECORD_HEADER_BYTES, type PacketBatch } from "../packet/packet-batch.ts";
import type { BpfProgram } from "../packet/bpf/index.ts";
import { createBatchFilter, type BatchFilter } from "../capture/packet-filter.ts";
import { ConsumerQueue, type BatchSink, type ConsumerCounters } from "./consumer-queue.ts";
import { MAXIMUM_SNAPLEN, selectRecords } from "../packet/packet-batch.ts";
import { nextTurnSink, StageChain } from "./stage-chain.ts";
import type { PacketStage } from "./stage.ts";

export interface SubscribeOptions {
  /**
   * A filter for this consumer alone, run in userland on what the shared capture delivers
   * (so consumers with different interests can still share one handle).
   */
  filter?: string | BpfProgram;
  /** Bytes kept of each packet for this consumer alone (userland), after the filter. */
  snaplen?: number;
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

/** What sessions need of shared captures: CaptureHub, or the pipeline's provider that joins its stream. */
export interface SharedCaptures {
  subscribe(capture: LiveCaptureOptions, sink: BatchSink, options?: SubscribeOptions): Promise<Subscription>;
}

type Consumer = { queue: ConsumerQueue; options: SubscribeOptions; filter?: BatchFilter };

class SharedCapture {
  readonly consumers = new Set<Consumer>();
  info!: CaptureInfo;
  opening!: Promise<CaptureInfo>;
  ended = false;
  packets = 0;
  bytes = 0;
  /** Batches waiting for the shared stages (bounded: a slow hook drops here, counted). */
  private stageQueue: ConsumerQueue | undefined;

  constructor(
    readonly key: string,
    readonly source: CaptureSource,
    private readonly onEmpty: () => void,
    readonly stages?: StageChain,
  ) {}

  open(): Promise<CaptureInfo> {
    const stages = this.stages;
    if (stages && !stages.empty) {
      this.stageQueue = new ConsumerQueue(nextTurnSink((batch) => this.fanOut(stages.apply(batch))));
    }
    this.opening = this.source.start({
      onBatch: (batch: PacketBatch) => {
        // A live capture's batch is lent: each consumer's ConsumerQueue copies what it must hold,
        // and the sinks (RPCAP data channels) encode it into a message buffer before returning.
        this.packets += batch.count;
        this.bytes += batch.bytes.byteLength - batch.count * BATCH_RECORD_HEADER_BYTES; // captured bytes
        if (this.stageQueue) this.stageQueue.offer(batch);
        else this.fanOut(batch);
      },
      onEnd: (_reason, error) => {
        this.ended = true;
        for (const consumer of this.consumers) consumer.options.onEnd?.(error);
        this.close();
        this.onEmpty();
      },
    });
    return this.opening.then((info) => (this.info = info));
  }

  /** Packets the shared stages could not keep up with. */
  get stageDrops(): number {
    return this.stageQueue?.counters.droppedPackets ?? 0;
  }

  private fanOut(batch: PacketBatch): void {
    if (batch.count === 0) return;
    for (const consumer of this.consumers) {
      const mine = consumer.filter ? consumer.filter(batch) : batch;
      if (mine.count > 0) consumer.queue.offer(mine);
    }
  }

  /** Releases the stages (hooks' sandboxes), reporting their counters first; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.stages && !this.stages.empty && this.report) {
      const drops = this.stageDrops;
      const lines = [...(drops > 0 ? [`${drops} packets dropped by probe (stages too slow)`] : []), ...this.stages.summaryLines()];
      for (const line of lines) this.report(`${this.source.description}: ${line}`);
    }
    this.stageQueue?.close();
    this.stages?.close();
  }

  private closed = false;
  /** Where the stages' summary goes when this capture ends (the daemon's log). */
  report: ((line: string) => void) | undefined;
}

export type SourceFactory = (options: LiveCaptureOptions) => CaptureSource;
/** Builds the shared stages of one capture (the pipeline's stage specs, fresh instances). */
export type StagesFactory = (device: string) => Promise<PacketStage[]>;

export class CaptureHub implements SharedCaptures {
  private readonly captures = new Map<string, SharedCapture>();
  /** Consumers that have left, summed per label; every consumer now, by label. */
  private readonly departed = new Map<string, { deliveredPackets: number; droppedPackets: number }>();
  private readonly present = new Map<ConsumerQueue, string>();

  constructor(
    private readonly createSource: SourceFactory = (options) => new LiveCaptureSource(options),
    private readonly createStages?: StagesFactory,
    /** Receives each shared capture's stage summary when it ends. */
    private readonly report?: (line: string) => void,
  ) {}

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
    if (this.createStages) {
      // Shared stages: one handle per interface and capture settings; this consumer's filter
      // and snaplen run after the stages, in userland.
      const { filter, snaplen, ...shared } = capture;
      capture = { ...shared, snaplen: MAXIMUM_SNAPLEN };
      options = {
        ...options,
        ...(filter !== undefined && options.filter === undefined ? { filter } : {}),
        ...(snaplen !== undefined && snaplen < MAXIMUM_SNAPLEN ? { snaplen } : {}),
      };
    }
    const key = captureKey(capture);
    let shared = this.captures.get(key);
    if (!shared) {
      let stages: StageChain | undefined;
      if (this.createStages) stages = new StageChain(await this.createStages(capture.interface));
      const created: SharedCapture = new SharedCapture(key, this.createSource(capture), () => {
        if (this.captures.get(key) === created) this.captures.delete(key);
      }, stages);
      created.report = this.report;
      shared = created;
      this.captures.set(key, created);
      try {
        await created.open();
      } catch (error) {
        if (this.captures.get(key) === created) this.captures.delete(key);
        created.close();
        throw error;
      }
    } else {
      await shared.opening;
    }
    const consumer: Consumer = { queue: new ConsumerQueue(sink, options.maxQueueBytes, options.onSinkError), options };
    const filter = options.filter !== undefined && options.filter !== ""
      ? createBatchFilter(options.filter, shared.info.linktype, shared.info.snaplen)
      : undefined;
    const snaplen = options.snaplen;
    if (filter && snaplen !== undefined) consumer.filter = (batch) => truncate(filter(batch), snaplen);
    else if (filter) consumer.filter = filter;
    else if (snaplen !== undefined) consumer.filter = (batch) => truncate(batch, snaplen);
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
          owner.close();
        }
      },
    };
  }

  /** SIGHUP: the shared stages of every open capture reread their configuration. */
  reload(): void {
    for (const shared of this.captures.values()) shared.stages?.reload();
  }

  /** Stops every capture. */
  async close(): Promise<void> {
    const all = [...this.captures.values()];
    this.captures.clear();
    await Promise.all(all.map((shared) => shared.source.stop()));
    for (const shared of all) shared.close();
  }
}

function truncate(batch: PacketBatch, snaplen: number): PacketBatch {
  return selectRecords(batch, () => snaplen);
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
    o.engine ?? DEFAULT_CAPTURE_ENGINE,
    o.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
  ]);
}
