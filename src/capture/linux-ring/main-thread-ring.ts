// MainThreadRingReader: the ring engine without a Worker. The TPACKET_V3 ring is shared memory,
// so whether a block is ready is a load from it, not a system call: a timer on the main thread
// looks every tickMs, reads the ready blocks, and looks again at once (setImmediate) while more
// are ready. Nothing blocks: the only system call per idle tick is poll() with timeout 0, which
// surfaces socket errors (the interface went down or vanished).
//
// The trade-off (docs/capture.md, "Reading the ring on the main thread"): one JavaScript runtime
// instead of two (less memory, no hand-off between threads), but the ring is only read between
// the main thread's other tasks. A slow hook, a big write or a garbage collection on the main
// thread leaves the ring unread; once it is full the kernel drops (and counts) packets.
import { BatchBuilder } from "../batch-builder.ts";
import type { KernelStats } from "../libpcap/pcap-handle.ts";
import type { WorkerFilter } from "../libpcap/worker-protocol.ts";
import { applyRingFilter } from "./open-ring.ts";
import type { RingSocket } from "./ring-socket.ts";

/**
 * Ring blocks read per tick before yielding to the event loop (sockets, timers): 16 blocks is
 * more than the default ring holds (8 of 512 KiB), a few milliseconds of copying.
 */
const BLOCKS_PER_TICK = 16;

export interface MainThreadRingHandlers {
  /** An owned, exactly sized batch (the consumer may keep it). */
  onBatch(bytes: Uint8Array, count: number): void;
  /** The ring failed (interface down or vanished, socket error); it is closed already. */
  onFailure(error: Error): void;
}

export class MainThreadRingReader {
  private ring: RingSocket | null;
  private readonly batch: BatchBuilder;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private immediate: ReturnType<typeof setImmediate> | null = null;
  /** Batches copied out during one tick, delivered after the ring walk (see tick). */
  private readonly finished: { bytes: Uint8Array; count: number }[] = [];

  /**
   * @param tickMs how often the ring is looked at with nothing ready. With the ring's block
   *   retire timeout at most tickMs too, a lone packet waits at most about 2 × tickMs.
   * @param flushIntervalMs a partly filled batch is handed over once its oldest record is this old
   */
  constructor(
    ring: RingSocket,
    private readonly tickMs: number,
    private readonly flushIntervalMs: number,
    private readonly handlers: MainThreadRingHandlers,
  ) {
    this.ring = ring;
    this.batch = ring.newBatchBuilder((staged, count) => {
      this.finished.push({ bytes: staged.slice(), count });
      return true;
    });
  }

  start(): void {
    this.schedule(false);
  }

  setFilter(filter: WorkerFilter): void {
    if (!this.ring) throw new Error("ring capture is not running");
    applyRingFilter(this.ring, filter);
  }

  stats(): KernelStats {
    if (!this.ring) throw new Error("ring capture is not running");
    return this.ring.stats();
  }

  /** Reads what is already in the ring (bounded), hands it over, closes. Returns the final counters. */
  stop(): KernelStats | undefined {
    const ring = this.ring;
    if (!ring) return undefined;
    this.cancel();
    let stats: KernelStats | undefined;
    try {
      ring.readInto(this.batch, BLOCKS_PER_TICK);
      this.batch.flush();
      stats = ring.stats();
    } finally {
      ring.close();
      this.ring = null;
    }
    this.deliverFinished();
    return stats;
  }

  private schedule(now: boolean): void {
    if (now) this.immediate = setImmediate(this.tick);
    else this.timer = setTimeout(this.tick, this.tickMs);
  }

  private cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }

  private readonly tick = (): void => {
    this.timer = null;
    this.immediate = null;
    const ring = this.ring;
    if (!ring) return;
    let blocks: number;
    try {
      blocks = ring.readInto(this.batch, BLOCKS_PER_TICK);
      if (this.batch.count > 0 && this.batch.pendingMs(performance.now()) >= this.flushIntervalMs) this.batch.flush();
      if (blocks === 0) ring.waitReadable(0); // never blocks: surfaces socket errors only
    } catch (error) {
      this.ring = null;
      ring.close();
      this.deliverFinished();
      this.handlers.onFailure(error as Error);
      return;
    }
    // Consumers run after the walk: one may stop the capture, which unmaps the ring.
    this.deliverFinished();
    if (this.ring) this.schedule(blocks >= BLOCKS_PER_TICK);
  };

  private deliverFinished(): void {
    const finished = this.finished.splice(0);
    for (const { bytes, count } of finished) this.handlers.onBatch(bytes, count);
  }
}
