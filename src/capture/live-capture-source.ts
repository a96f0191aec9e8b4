// LiveCaptureSource: a capture of one interface, by Linux's TPACKET_V3 ring read directly
// (src/capture/linux-ring) or through libpcap, running in a Worker so the main thread (which
// serves sockets) never blocks. Batches arrive transferred, not copied.
import { CaptureError, type CaptureErrorCode } from "./errors.ts";
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "./capture-source.ts";
import type { PacketBatch } from "../packet/packet-batch.ts";
import type { BpfInstruction } from "../packet/bpf/index.ts";
import type { CaptureDirection, CaptureEngine, KernelStats, LiveOpenOptions } from "./libpcap/pcap-handle.ts";
import type { FromWorker, ToWorker, WorkerFilter } from "./libpcap/worker-protocol.ts";
import { startCaptureWorker } from "./libpcap/worker-entry.ts";
import { MAXIMUM_SNAPLEN } from "../packet/packet-batch.ts";

export interface LiveCaptureOptions {
  interface: string;
  filter?: string | readonly BpfInstruction[];
  /** Bytes captured per packet (tcpdump -s); 262144 like tcpdump when 0 or absent. */
  snaplen?: number;
  promiscuous?: boolean;
  /** Kernel buffer (tcpdump -B), bytes; 0 = libpcap default. */
  bufferBytes?: number;
  /** libpcap immediate mode. Off by default: TPACKET_V3 packs small packets densely so a burst
   *  fits the ring (immediate mode uses one 64 KiB slot per packet on lo and drops bursts);
   *  latency stays bounded by READ_TIMEOUT_MS because the kernel retires a block after it. */
  immediate?: boolean;
  precision?: "micro" | "nano";
  direction?: CaptureDirection;
  /** A batch is handed over once it holds this many bytes... */
  batchBytes?: number;
  /** ...or once its first packet has waited this long under a steady trickle. */
  flushIntervalMs?: number;
  /**
   * Who reads the interface (--capture-engine): "ring" (default) maps Linux's TPACKET_V3 ring
   * and walks it from JavaScript; it falls back to libpcap, saying so in CaptureInfo.engineNote,
   * for the `any` device, non-Ethernet links and immediate mode. "libpcap" always uses libpcap.
   */
  engine?: CaptureEngine;
  /** Ring engine: join this PACKET_FANOUT group so several sources share one interface by flow hash. */
  fanoutGroup?: number;
}

/** The engine used when LiveCaptureOptions.engine is absent. */
export const DEFAULT_CAPTURE_ENGINE: CaptureEngine = "ring";

/** tcpdump's default snapshot length (MAXIMUM_SNAPLEN in libpcap). */
export const DEFAULT_SNAPLEN = MAXIMUM_SNAPLEN;
/** Batches are cut at 256 KiB: large enough to amortise per-batch costs, small enough for latency. */
export const DEFAULT_BATCH_BYTES = 256 * 1024;
/**
 * Upper bound on how long a packet waits before it is handed to consumers: a partly filled batch
 * is flushed once its first packet is this old, and the ring engine asks the kernel to retire a
 * ring block after the same time (tp_retire_blk_tov), flushing at once after such a block. So on
 * the ring engine a lone packet reaches consumers within about this interval (plus scheduling);
 * on the libpcap engine within READ_TIMEOUT_MS plus this interval.
 */
export const DEFAULT_FLUSH_INTERVAL_MS = 10;
/** libpcap read timeout when immediate mode is off: the longest a packet waits in a kernel
 *  block before it is handed over (tcpdump uses 1000 ms; a live forwarder wants less). */
const READ_TIMEOUT_MS = 20;

export function toWorkerFilter(filter: string | readonly BpfInstruction[]): WorkerFilter {
  return typeof filter === "string"
    ? { kind: "expression", expression: filter }
    : { kind: "program", instructions: filter.map((i) => ({ ...i })) };
}

/**
 * How long stop() waits for the worker's "ended" before ending it from here. A worker answers
 * within one read timeout (READ_TIMEOUT_MS) and a batch flush; one that has not after this
 * long is stuck or gone, and a run's shutdown must not wait behind it (its last partial
 * batch and kernel counters are lost, nothing else).
 */
const WORKER_STOP_DEADLINE_MS = 10_000;

/** Shared main-thread side of a capture worker: request/reply, batches, end. */
export class CaptureWorkerClient {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: KernelStats | undefined): void; reject(e: Error): void }>();
  private handlers: CaptureHandlers | null = null;
  private opened: { resolve(info: FromWorker & { type: "opened" }): void; reject(e: Error): void } | null = null;
  private ended: Promise<KernelStats | undefined>;
  private resolveEnded!: (stats: KernelStats | undefined) => void;
  delivered = 0;
  lastKernelStats: KernelStats | undefined;

  constructor(private readonly linkinfo: { linktype: number; precision: "micro" | "nano" }) {
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  open(message: ToWorker, handlers: CaptureHandlers): Promise<FromWorker & { type: "opened" }> {
    this.handlers = handlers;
    const worker = startCaptureWorker();
    this.worker = worker;
    worker.onmessage = (event: MessageEvent<FromWorker>) => this.receive(event.data);
    worker.onerror = (event) => this.finish("failed", new CaptureError("capture-failed", `capture worker: ${event.message}`));
    return new Promise((resolve, reject) => {
      this.opened = { resolve, reject };
      worker.postMessage(message);
    });
  }

  request(message: { type: "set-filter"; filter: WorkerFilter } | { type: "stats" }): Promise<KernelStats | undefined> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new CaptureError("capture-failed", "capture is not running"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...message, id } satisfies ToWorker);
    });
  }

  send(message: ToWorker): void {
    this.worker?.postMessage(message);
  }

  /** Ends the capture; resolves once the worker has ended (at once if none was started). */
  async stop(): Promise<KernelStats | undefined> {
    const worker = this.worker;
    // Never started, or already ended: nothing will say "ended" again.
    if (!worker) {
      this.resolveEnded(this.lastKernelStats);
      return this.ended;
    }
    worker.postMessage({ type: "stop" } satisfies ToWorker);
    const deadline = setTimeout(() => this.finish("stopped"), WORKER_STOP_DEADLINE_MS);
    try {
      return await this.ended;
    } finally {
      clearTimeout(deadline);
    }
  }

  private receive(message: FromWorker): void {
    switch (message.type) {
      case "opened":
        this.linkinfo.linktype = message.info.linktype;
        this.linkinfo.precision = message.info.precision;
        this.opened?.resolve(message);
        this.opened = null;
        break;
      case "batch": {
        const batch: PacketBatch = {
          bytes: new Uint8Array(message.buffer, 0, message.byteLength),
          count: message.count,
          linktype: this.linkinfo.linktype,
          precision: this.linkinfo.precision,
        };
        this.delivered += message.count;
        this.handlers?.onBatch(batch);
        break;
      }
      case "reply": {
        const waiter = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error) waiter?.reject(new CaptureError(message.error.code, message.error.message));
        else waiter?.resolve(message.stats);
        break;
      }
      case "failed":
        this.finish("failed", new CaptureError(message.code as CaptureErrorCode, message.message));
        break;
      case "ended":
        this.lastKernelStats = message.stats;
        this.finish(message.reason);
        break;
    }
  }

  private finish(reason: "stopped" | "end-of-file" | "failed", error?: Error): void {
    const worker = this.worker;
    if (!worker) return;
    this.worker = null;
    worker.terminate();
    if (this.opened) {
      this.opened.reject(error ?? new CaptureError("capture-failed", "capture ended before it opened"));
      this.opened = null;
    } else {
      this.handlers?.onEnd(reason, error);
    }
    for (const waiter of this.pending.values()) waiter.reject(new CaptureError("capture-failed", "capture ended"));
    this.pending.clear();
    this.resolveEnded(this.lastKernelStats);
  }
}

export class LiveCaptureSource implements CaptureSource {
  readonly description: string;
  private readonly client = new CaptureWorkerClient({ linktype: 0, precision: "micro" });
  private started = false;

  constructor(private readonly options: LiveCaptureOptions) {
    this.description = options.interface;
  }

  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    if (this.started) throw new Error("LiveCaptureSource.start() called twice");
    this.started = true;
    const o = this.options;
    const open: LiveOpenOptions = {
      interface: o.interface,
      snaplen: o.snaplen || DEFAULT_SNAPLEN,
      promiscuous: o.promiscuous ?? true,
      timeoutMs: READ_TIMEOUT_MS,
      bufferBytes: o.bufferBytes ?? 0,
      immediate: o.immediate ?? false,
      precision: o.precision ?? "micro",
      direction: o.direction ?? "inout",
    };
    const message: Extract<ToWorker, { type: "open-live" }> = {
      type: "open-live",
      options: open,
      batchBytes: o.batchBytes ?? DEFAULT_BATCH_BYTES,
      flushIntervalMs: o.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
      engine: o.engine ?? DEFAULT_CAPTURE_ENGINE,
      ...(o.fanoutGroup !== undefined ? { fanoutGroup: o.fanoutGroup } : {}),
    };
    if (o.filter !== undefined && o.filter !== "") message.filter = toWorkerFilter(o.filter);
    const opened = await this.client.open(message, handlers);
    const info: CaptureInfo = { ...opened.info, description: o.interface };
    return info;
  }

  async setFilter(filter: string | readonly BpfInstruction[]): Promise<void> {
    await this.client.request({ type: "set-filter", filter: toWorkerFilter(filter) });
  }

  async stats(): Promise<CaptureStats> {
    const kernel = await this.client.request({ type: "stats" });
    return kernel ? { delivered: this.client.delivered, kernel } : { delivered: this.client.delivered };
  }

  async stop(): Promise<CaptureStats> {
    const kernel = await this.client.stop();
    return kernel ? { delivered: this.client.delivered, kernel } : { delivered: this.client.delivered };
  }
}
