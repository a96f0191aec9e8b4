// LiveCaptureSource: a capture of one interface, by Linux's TPACKET_V3 ring read directly
// (src/capture/linux-ring) or through libpcap. Whatever blocks runs off the main thread (which
// serves sockets): the ring in a native capture thread (the default) or a Worker, libpcap in a
// Worker. Batches arrive through a BatchChannel (shared memory, no message per batch) and are
// lent to the consumers in that shared memory (valid during the onBatch call: see isLentBatch in
// src/packet/packet-batch.ts).
import { CaptureError, type CaptureErrorCode } from "./errors.ts";
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "./capture-source.ts";
import type { PacketBatch } from "../packet/packet-batch.ts";
import type { BpfInstruction } from "../packet/bpf/index.ts";
import type { CaptureDirection, CaptureEngine, KernelStats, LiveOpenOptions } from "./libpcap/pcap-handle.ts";
import type { FromWorker, ToWorker, WorkerFilter } from "./libpcap/worker-protocol.ts";
import { startCaptureWorker } from "./libpcap/worker-entry.ts";
import { MAXIMUM_SNAPLEN } from "../packet/packet-batch.ts";
import { BatchChannelReader, createBatchChannelMemory } from "./batch-channel.ts";
import { BatchBuilder } from "./batch-builder.ts";
import { openRingCapture } from "./linux-ring/open-ring.ts";
import { RingUnsupported, type RingSocket } from "./linux-ring/ring-socket.ts";
import { MainThreadRingReader } from "./linux-ring/main-thread-ring.ts";
import { RingCaptureThread, ringThreadUnavailable } from "./linux-ring/ring-thread.ts";
import { RING_WALKER_ENV, requestedRingWalker } from "./linux-ring/block-walker.ts";

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
   * and walks it with the native capture thread; it falls back to libpcap, saying so in CaptureInfo.engineNote,
   * for the `any` device, non-Ethernet links and immediate mode. "libpcap" always uses libpcap.
   */
  engine?: CaptureEngine;
  /** Ring engine: join this PACKET_FANOUT group so several sources share one interface by flow hash. */
  fanoutGroup?: number;
  /**
   * Ring engine: where the ring is read. "native" (default): a native thread (ring-thread.c)
   * that keeps reading while the main thread is busy, with no second JavaScript runtime; falls
   * back to "worker" where it cannot run (not x86-64, no native code), saying so in engineNote.
   * "worker": a capture Worker. "main": on the main thread from a timer (loses packets once the
   * ring fills while the main thread is busy: docs/capture.md). Each falls back to the worker
   * (which opens libpcap) where the ring cannot serve.
   */
  thread?: CaptureThread;
}

export type CaptureThread = "native" | "worker" | "main";

/**
 * The thread used when LiveCaptureOptions.thread is absent: "native", or PROBE_CAPTURE_THREAD
 * ("worker" / "main") so benchmarks and operators can compare the readers without a flag.
 */
export function defaultCaptureThread(): CaptureThread {
  const asked = process.env.PROBE_CAPTURE_THREAD;
  return asked === "worker" || asked === "main" ? asked : "native";
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
/**
 * The flush interval for a capture nobody watches live (every output a file), in the spirit of
 * tcpdump -w's 1000 ms buffer timeout. The ring retires blocks after half of it, so its 16
 * blocks cover ~4 s of a stopped or starved process at low rates (at 10 ms: 80 ms), and a file
 * gets its packets within half a second. At high rates blocks fill long before that.
 */
export const BUFFERED_FLUSH_INTERVAL_MS = 500;
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
  /** A live capture's batches (absent for file replay, whose batches come as messages). */
  private channel: BatchChannelReader | null = null;
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
    if (message.type === "open-live") {
      this.channel = new BatchChannelReader(message.channel);
      void this.receiveBatches(this.channel);
    }
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

  /** Takes the channel's batches as the worker publishes them, until the capture ends. */
  private async receiveBatches(channel: BatchChannelReader): Promise<void> {
    const deliver = (bytes: Uint8Array, count: number) => this.deliver(bytes, count);
    while (!channel.isClosed) {
      channel.drain(deliver);
      await channel.waitForBatch();
    }
  }

  private deliver(bytes: Uint8Array, count: number): void {
    const batch: PacketBatch = { bytes, count, linktype: this.linkinfo.linktype, precision: this.linkinfo.precision };
    this.delivered += count;
    this.handlers?.onBatch(batch);
  }

  private receive(message: FromWorker): void {
    switch (message.type) {
      case "opened":
        this.linkinfo.linktype = message.info.linktype;
        this.linkinfo.precision = message.info.precision;
        this.opened?.resolve(message);
        this.opened = null;
        break;
      case "batch":
        this.deliver(new Uint8Array(message.buffer, 0, message.byteLength), message.count);
        break;
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
    // Batches the worker published before it ended come first (it publishes before "ended").
    if (this.channel) this.channel.drain((bytes, count) => this.deliver(bytes, count));
    this.channel?.close();
    this.channel = null;
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

/**
 * A ring read in this process without a Worker: by the native capture thread (RingCaptureThread)
 * or by the main thread itself (MainThreadRingReader).
 */
interface InProcessRing {
  setFilter(filter: WorkerFilter): void;
  /** The kernel's counters now, or the last ones once the capture ended. */
  stats(): KernelStats | undefined;
  /** Hands over what the ring holds, ends the capture (handlers.onEnd runs) and gives the last counters. */
  stop(): Promise<KernelStats | undefined>;
}

export class LiveCaptureSource implements CaptureSource {
  readonly description: string;
  private readonly client = new CaptureWorkerClient({ linktype: 0, precision: "micro" });
  /** Set when the ring is read in this process (thread "native" or "main"); the worker client is unused then. */
  private inProcess: InProcessRing | null = null;
  private inProcessDelivered = 0;
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
    const batchBytes = o.batchBytes ?? DEFAULT_BATCH_BYTES;
    const message: Extract<ToWorker, { type: "open-live" }> = {
      type: "open-live",
      options: open,
      channel: createBatchChannelMemory(BatchBuilder.stagingBytesFor(batchBytes)),
      batchBytes,
      flushIntervalMs: o.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
      engine: o.engine ?? DEFAULT_CAPTURE_ENGINE,
      ...(o.fanoutGroup !== undefined ? { fanoutGroup: o.fanoutGroup } : {}),
    };
    if (o.filter !== undefined && o.filter !== "") message.filter = toWorkerFilter(o.filter);
    let workerNote: string | undefined;
    if (message.engine === "ring") {
      const thread = o.thread ?? defaultCaptureThread();
      // The capture thread walks blocks in C only: asking for the JavaScript walker asks for a Worker.
      const unavailable =
        thread !== "native" ? undefined : requestedRingWalker() === "js" ? `${RING_WALKER_ENV}=js asks for the JavaScript walker` : ringThreadUnavailable();
      if (unavailable) workerNote = `${unavailable}; ring read by a capture Worker`;
      else if (thread !== "worker") {
        const info = this.startInProcess(thread, message, handlers);
        if (info) return info;
      }
    }
    const opened = await this.client.open(message, handlers);
    const info: CaptureInfo = { ...opened.info, description: o.interface };
    if (workerNote && info.engine === "ring" && !info.engineNote) info.engineNote = workerNote;
    return info;
  }

  /**
   * The ring read in this process, by the native capture thread or on the main thread; undefined
   * when the ring cannot serve this capture, so the worker opens libpcap instead and says why.
   */
  private startInProcess(thread: "native" | "main", message: Extract<ToWorker, { type: "open-live" }>, handlers: CaptureHandlers): CaptureInfo | undefined {
    // The kernel retires a block after half a flush interval. Its timer counts whole ticks
    // (msecs_to_jiffies rounds up: at HZ=250, 10 ms is 12 ms, 5 ms is 8 ms), so a full interval
    // let a lone packet wait up to ~13 ms (measured); half keeps the capture thread, which is
    // woken by the retired block at once, within the interval (docs/capture.md, "The capture
    // thread"). The main-thread reader looks at the ring once per flush interval (a tick every
    // half interval cost 1.0% of a core idle in serve mode; this, about half): a lone packet is
    // handed over within about 1.5 flush intervals there.
    const retireBlockMs = Math.max(1, message.flushIntervalMs / 2);
    let ring: RingSocket;
    try {
      ring = openRingCapture({
        options: message.options,
        batchBytes: message.batchBytes,
        retireBlockMs,
        ...(message.filter ? { filter: message.filter } : {}),
        ...(message.fanoutGroup !== undefined ? { fanoutGroup: message.fanoutGroup } : {}),
      });
    } catch (error) {
      if (!(error instanceof RingUnsupported)) throw error;
      return undefined; // the worker takes over
    }
    const linktype = ring.info.linktype;
    const precision = ring.info.precision;
    const onBatch = (bytes: Uint8Array, count: number) => {
      this.inProcessDelivered += count;
      handlers.onBatch({ bytes, count, linktype, precision });
    };
    try {
      this.inProcess =
        thread === "native"
          ? new RingCaptureThread(ring, message.channel, message.batchBytes, message.flushIntervalMs, {
              onBatch,
              onEnd: (error) => (error ? handlers.onEnd("failed", error) : handlers.onEnd("stopped")),
            })
          : this.startMainThreadReader(ring, message, onBatch, handlers);
    } catch (error) {
      ring.close();
      throw error;
    }
    const note = ring.walkerNote;
    return { ...ring.info, engine: "ring", ...(note ? { engineNote: note } : {}), description: this.options.interface };
  }

  private startMainThreadReader(
    ring: RingSocket,
    message: Extract<ToWorker, { type: "open-live" }>,
    onBatch: (bytes: Uint8Array, count: number) => void,
    handlers: CaptureHandlers,
  ): InProcessRing {
    let running = true;
    let final: KernelStats | undefined;
    // The timer is what empties the ring here, so it keeps the default pace whatever the flush
    // interval: a 500 ms tick (a file-only pipeline's interval) let a 2 MiB ring overflow at
    // high rates. Batches still wait up to the flush interval.
    const reader = new MainThreadRingReader(ring, Math.min(message.flushIntervalMs, DEFAULT_FLUSH_INTERVAL_MS), message.flushIntervalMs, {
      onBatch,
      onFailure: (error) => {
        running = false;
        handlers.onEnd("failed", error);
      },
    });
    reader.start();
    return {
      setFilter: (filter) => {
        if (!running) throw new CaptureError("capture-failed", "capture is not running");
        reader.setFilter(filter);
      },
      stats: () => (running ? reader.stats() : final),
      stop: async () => {
        if (running) {
          running = false;
          final = reader.stop();
          handlers.onEnd("stopped");
        }
        return final;
      },
    };
  }

  async setFilter(filter: string | readonly BpfInstruction[]): Promise<void> {
    if (this.inProcess) return this.inProcess.setFilter(toWorkerFilter(filter));
    await this.client.request({ type: "set-filter", filter: toWorkerFilter(filter) });
  }

  async stats(): Promise<CaptureStats> {
    const kernel = this.inProcess ? this.inProcess.stats() : await this.client.request({ type: "stats" });
    const delivered = this.inProcess ? this.inProcessDelivered : this.client.delivered;
    return kernel ? { delivered, kernel } : { delivered };
  }

  async stop(): Promise<CaptureStats> {
    const kernel = this.inProcess ? await this.inProcess.stop() : await this.client.stop();
    const delivered = this.inProcess ? this.inProcessDelivered : this.client.delivered;
    return kernel ? { delivered, kernel } : { delivered };
  }
}
