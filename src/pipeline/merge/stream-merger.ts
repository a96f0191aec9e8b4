// MergedSource: several CaptureSources (typically PCAP-over-IP streams from different hosts)
// merged into one timestamp-ordered stream, itself a CaptureSource so everything downstream
// (hub, outputs, hooks) is unchanged. Nothing known does this (people chain dumpcap -i TCP@...,
// editcap and netcat: docs/spec/pcap-over-ip.md); the ordering rules are MergeWindow's.
//
// Sources and failures: every source is started at once; one that cannot start, or that ends
// or fails later, is logged and the merge goes on with the others. Reconnecting is the source's
// own business (PcapOverIpSource's `reconnect` option): a reconnecting source just goes quiet,
// and the window stops waiting for it after `windowMs`. The merge ends when every source has.
//
// Link types: one output stream has one linktype, so sources that differ are refused at start
// (MergeError "linktype-mismatch") unless `allowMixedLinktypes` is set; then output batches are
// cut wherever the linktype changes, `sourceInfos` gives each source's linktype and every
// MergedBatch carries per-record source indexes, which is what a pcapng writer needs to give
// each source its own interface (IDB).
//
// Precision: the output is nanoseconds if any source is nanoseconds, else microseconds, so no
// timestamp loses digits (override with `precision`).
//
// Back-pressure: per source, not global. A source whose own held bytes pass
// `sourceHighWaterBytes` gets a promise from onBatch that settles once they fall below half of
// it; a source with nothing held is never made to wait, because the others may be waiting for
// it (a global bound could deadlock: everyone waits for the one source that is blocked).
// Sources that never wait (live captures) are bounded by `maxHeldBytes` in the window.
import type { CaptureEndReason, CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "../../capture/capture-source.ts";
import type { BpfInstruction } from "../../packet/bpf/index.ts";
import { ownedBatch, type PacketBatch, type TimestampPrecision } from "../../packet/packet-batch.ts";
import { silentLogger, type Logger } from "../../logging/index.ts";
import { MergeError } from "./merge-error.ts";
import { MAX_MERGE_SOURCES, MergeWindow, type MergeWindowCounters, type MergedBatch } from "./merge-window.ts";

/**
 * Default reordering window. Peers flush on their own schedule: probe every 10 ms, tcpdump -U
 * per packet but only after libpcap's buffer timeout (1000 ms unless --immediate-mode), so one
 * second lets a tcpdump peer catch up without reordering, at the cost of up to 1 s latency when
 * a source is quiet.
 */
export const DEFAULT_MERGE_WINDOW_MS = 1000;
/** Held bytes beyond which the window lets records out regardless of order (bounds memory). */
export const DEFAULT_MERGE_MAX_HELD_BYTES = 64 * 1024 * 1024;
/** Held bytes of one source beyond which its onBatch returns a promise (back-pressure). */
export const DEFAULT_MERGE_SOURCE_HIGH_WATER_BYTES = 8 * 1024 * 1024;
/** Output batches are cut at this size: the same as a live capture's batches. */
export const MERGE_OUTPUT_BATCH_BYTES = 256 * 1024;

export interface MergedSourceOptions {
  /** Default DEFAULT_MERGE_WINDOW_MS. */
  windowMs?: number;
  /** Default DEFAULT_MERGE_MAX_HELD_BYTES. */
  maxHeldBytes?: number;
  /** Default DEFAULT_MERGE_SOURCE_HIGH_WATER_BYTES. */
  sourceHighWaterBytes?: number;
  /** Accept sources of different link types (for pcapng output); default false: refused. */
  allowMixedLinktypes?: boolean;
  /** Output precision; default nano if any source is nano, else micro. */
  precision?: TimestampPrecision;
  /** Where source failures, endings and start problems are reported. */
  log?: Logger;
}

export type MergedSourceState = "starting" | "running" | "ended" | "failed";

/** What the merge knows about one of its sources. */
export interface MergedSourceStatus {
  index: number;
  description: string;
  state: MergedSourceState;
  /** Set once the source started. */
  info?: CaptureInfo;
  /** Why it failed to start or ended with an error. */
  error?: Error;
  /** Packets received from it. */
  received: number;
}

/** Merge counters: the window's, plus what was delivered. */
export interface MergedSourceCounters extends MergeWindowCounters {
  delivered: number;
  heldBytes: number;
}

interface Lane {
  readonly index: number;
  readonly source: CaptureSource;
  state: MergedSourceState;
  info: CaptureInfo | undefined;
  error: Error | undefined;
  received: number;
  /** Batches that arrived before every source had started (the window did not exist yet). */
  early: PacketBatch[];
  /** onBatch promises waiting for this source's held bytes to fall. */
  waiters: (() => void)[];
}

export class MergedSource implements CaptureSource {
  readonly description: string;
  private readonly lanes: Lane[];
  private readonly log: Logger;
  private readonly windowMs: number;
  private readonly highWaterBytes: number;
  private handlers: CaptureHandlers | undefined;
  private info: CaptureInfo | undefined;
  private window: MergeWindow | undefined;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private gateOpen = false;
  private delivering: Promise<void> | undefined;
  /** Something changed while a delivery was in progress: run release again. */
  private dirty = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private delivered = 0;
  private stopping = false;
  private ended = false;
  private endedPromise: Promise<void>;
  private resolveEnded!: () => void;
  private stopped: Promise<CaptureStats> | undefined;
  private consumerError: MergeError | undefined;

  constructor(
    sources: readonly CaptureSource[],
    private readonly options: MergedSourceOptions = {},
  ) {
    if (sources.length === 0 || sources.length > MAX_MERGE_SOURCES) {
      throw new RangeError(`a merge takes 1 to ${MAX_MERGE_SOURCES} sources, not ${sources.length}`);
    }
    this.lanes = sources.map((source, index) => ({
      index,
      source,
      state: "starting",
      info: undefined,
      error: undefined,
      received: 0,
      early: [],
      waiters: [],
    }));
    this.description = `merge of ${sources.map((s) => s.description).join(", ")}`;
    this.log = options.log ?? silentLogger;
    this.windowMs = options.windowMs ?? DEFAULT_MERGE_WINDOW_MS;
    this.highWaterBytes = options.sourceHighWaterBytes ?? DEFAULT_MERGE_SOURCE_HIGH_WATER_BYTES;
    this.endedPromise = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  /**
   * Starts every source and resolves once all have started or failed to. Sources that fail are
   * logged and left out. Rejects with MergeError "no-sources" when none started, and
   * "linktype-mismatch" (after stopping the started ones) when their link types differ and
   * `allowMixedLinktypes` is off. The info's linktype is the sources' (the first started
   * source's when mixed), snaplen the largest, precision as chosen above.
   */
  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    if (this.handlers) throw new Error("MergedSource.start() called twice");
    this.handlers = handlers;
    this.gate = new Promise((resolve) => (this.openGate = resolve));
    const results = await Promise.allSettled(this.lanes.map((lane) => lane.source.start(this.laneHandlers(lane))));
    const failures: string[] = [];
    results.forEach((result, i) => {
      const lane = this.lanes[i]!;
      if (result.status === "fulfilled") {
        lane.info = result.value;
        if (lane.state === "starting") lane.state = "running";
        return;
      }
      const error = result.reason instanceof Error ? result.reason : new Error(String(result.reason));
      lane.state = "failed";
      lane.error = error;
      failures.push(`${lane.source.description}: ${error.message}`);
    });
    const started = this.lanes.filter((l) => l.info !== undefined);
    if (started.length === 0) {
      this.abortStart();
      throw new MergeError("no-sources", `no source could be started: ${failures.join("; ")}`);
    }
    for (const lane of this.lanes) {
      if (lane.state === "failed" && !lane.info) {
        this.log.error(`${lane.source.description}: cannot start (${lane.error!.message}); merging the other sources`);
      }
    }
    const linktypes = new Set(started.map((l) => l.info!.linktype));
    if (linktypes.size > 1 && !this.options.allowMixedLinktypes) {
      const list = started.map((l) => `${l.source.description} linktype ${l.info!.linktype}`).join(", ");
      await this.abortStart(started);
      throw new MergeError(
        "linktype-mismatch",
        `cannot merge sources of different link types (${list}) into one pcap stream; write pcapng with one interface per source instead`,
      );
    }
    const precision =
      this.options.precision ?? (started.some((l) => l.info!.precision === "nano") ? "nano" : "micro");
    const first = started[0]!.info!;
    this.info = {
      linktype: first.linktype,
      snaplen: Math.max(...started.map((l) => l.info!.snaplen)),
      precision,
      description: this.description,
      ...(linktypes.size > 1 ? { warning: "sources have different link types; batches are cut where it changes" } : {}),
    };
    const window = new MergeWindow({
      sourceCount: this.lanes.length,
      precision,
      windowMs: this.windowMs,
      maxHeldBytes: this.options.maxHeldBytes ?? DEFAULT_MERGE_MAX_HELD_BYTES,
      outputBatchBytes: MERGE_OUTPUT_BATCH_BYTES,
    });
    this.window = window;
    for (const lane of this.lanes) {
      for (const batch of lane.early.splice(0)) if (lane.state === "running") this.acceptBatch(window, lane, batch);
      if (lane.state !== "running") window.endSource(lane.index);
    }
    // A macrotask later, so the caller's `await start()` continuation runs before the first batch.
    setImmediate(() => {
      this.gateOpen = true;
      this.openGate!();
      this.schedule();
    });
    return this.info;
  }

  /** Each source's info once started (undefined for one that did not start), by source index. */
  get sourceInfos(): readonly (CaptureInfo | undefined)[] {
    return this.lanes.map((l) => l.info);
  }

  /** State of every source, by index. */
  get sourceStatuses(): MergedSourceStatus[] {
    return this.lanes.map((l) => ({
      index: l.index,
      description: l.source.description,
      state: l.state,
      received: l.received,
      ...(l.info ? { info: l.info } : {}),
      ...(l.error ? { error: l.error } : {}),
    }));
  }

  get counters(): MergedSourceCounters {
    const window = this.window?.counters ?? { released: 0, outOfOrder: 0, releasedByTimeout: 0, releasedBySize: 0 };
    return { ...window, delivered: this.delivered, heldBytes: this.window?.heldBytes ?? 0 };
  }

  /** Sets the filter of every running source. */
  async setFilter(filter: string | readonly BpfInstruction[]): Promise<void> {
    await Promise.all(this.lanes.filter((l) => l.state === "running").map((l) => l.source.setFilter(filter)));
  }

  async stats(): Promise<CaptureStats> {
    return { delivered: this.delivered };
  }

  /** Stops every source, lets out everything held, ends; idempotent. */
  stop(): Promise<CaptureStats> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.wakeAllWaiters();
      await Promise.allSettled(this.lanes.filter((l) => l.info || l.state === "starting").map((l) => l.source.stop()));
      if (this.window) {
        for (const lane of this.lanes) this.endLane(lane, lane.state === "failed" ? "failed" : "ended");
        this.schedule();
        await this.endedPromise;
      }
      return { delivered: this.delivered };
    })();
    return this.stopped;
  }

  // ------------------------------------------------------------------------------------------

  private laneHandlers(lane: Lane): CaptureHandlers {
    return {
      onBatch: (batch) => this.onSourceBatch(lane, batch),
      onEnd: (reason, error) => this.onSourceEnd(lane, reason, error),
    };
  }

  private onSourceBatch(lane: Lane, lent: PacketBatch): void | Promise<void> {
    if (this.ended || (lane.state !== "running" && lane.state !== "starting")) return;
    // The merge holds records across calls (its window): it keeps owned copies of lent batches.
    const batch = ownedBatch(lent);
    lane.received += batch.count;
    const window = this.window;
    if (!window) {
      // Another source is still starting: keep this, and hold the source until the merge runs.
      lane.early.push(batch);
      return this.gate;
    }
    if (!this.acceptBatch(window, lane, batch)) return;
    this.schedule();
    if (!this.stopping && window.heldBytesOf(lane.index) > this.highWaterBytes) {
      return new Promise((resolve) => lane.waiters.push(resolve));
    }
  }

  /** Adds a batch to the window, unless its linktype is not the merge's (then the source is dropped). */
  private acceptBatch(window: MergeWindow, lane: Lane, batch: PacketBatch): boolean {
    if (!this.options.allowMixedLinktypes && batch.linktype !== this.info!.linktype) {
      const error = new MergeError(
        "linktype-mismatch",
        `${lane.source.description}: delivered linktype ${batch.linktype}, the merge carries ${this.info!.linktype}`,
      );
      this.log.error(`${error.message}; leaving this source out`);
      lane.error = error;
      this.endLane(lane, "failed");
      void lane.source.stop();
      this.schedule();
      return false;
    }
    window.add(lane.index, batch, performance.now());
    return true;
  }

  private onSourceEnd(lane: Lane, reason: CaptureEndReason, error?: Error): void {
    if (lane.state === "ended" || lane.state === "failed") return;
    const others = this.lanes.filter((l) => l !== lane && l.state === "running").length;
    if (error) {
      lane.error = error;
      this.log.error(`${lane.source.description} failed: ${error.message}; ${others} other source(s) still merged`);
    } else if (!this.stopping) {
      this.log.info(`${lane.source.description} ended (${reason}); ${others} other source(s) still merged`);
    }
    this.endLane(lane, error ? "failed" : "ended");
    this.schedule();
  }

  private endLane(lane: Lane, state: "ended" | "failed"): void {
    if (lane.state === "ended" || lane.state === "failed") {
      this.window?.endSource(lane.index);
      return;
    }
    lane.state = state;
    this.window?.endSource(lane.index);
    for (const wake of lane.waiters.splice(0)) wake();
  }

  /** Runs a release (now, or after the delivery in progress). */
  private schedule(): void {
    if (!this.gateOpen || this.ended) return;
    this.dirty = true;
    if (this.delivering) return;
    // deliverLoop may finish synchronously, before `delivering` is even assigned: whatever was
    // scheduled meanwhile left `dirty` set, so look again once it has settled.
    this.delivering = this.deliverLoop().finally(() => {
      this.delivering = undefined;
      if (this.dirty) this.schedule();
    });
  }

  private async deliverLoop(): Promise<void> {
    const window = this.window!;
    do {
      this.dirty = false;
      clearTimeout(this.timer);
      this.timer = undefined;
      const allEnded = this.lanes.every((l) => l.state === "ended" || l.state === "failed");
      const out: MergedBatch[] = [];
      const deadline = window.release(performance.now(), (batch) => out.push(batch), allEnded || this.stopping);
      this.wakeWaiters(window);
      for (const batch of out) {
        if (this.consumerError) break;
        this.delivered += batch.count;
        try {
          const pending = this.handlers!.onBatch(batch);
          if (pending) await pending;
        } catch (error) {
          this.consumerError = new MergeError("consumer-failed", `merge consumer failed: ${(error as Error).message}`, { cause: error });
        }
      }
      if (this.consumerError) {
        this.finish("failed", this.consumerError);
        this.stopAllSources();
        return;
      }
      if (allEnded && window.drained) {
        this.finish();
        return;
      }
      if (deadline !== undefined && !this.dirty) {
        this.timer = setTimeout(() => this.schedule(), Math.max(0, deadline - performance.now()));
      }
    } while (this.dirty);
  }

  /** Lets sources whose held bytes fell below half the high-water mark send again. */
  private wakeWaiters(window: MergeWindow): void {
    for (const lane of this.lanes) {
      if (lane.waiters.length > 0 && window.heldBytesOf(lane.index) <= this.highWaterBytes / 2) {
        for (const wake of lane.waiters.splice(0)) wake();
      }
    }
  }

  private wakeAllWaiters(): void {
    this.openGate?.();
    for (const lane of this.lanes) for (const wake of lane.waiters.splice(0)) wake();
  }

  private stopAllSources(): void {
    this.wakeAllWaiters();
    for (const lane of this.lanes) if (lane.info && lane.state === "running") void lane.source.stop();
  }

  /** Start failed: stop what started, drop what was buffered, and never call onEnd. */
  private async abortStart(started: readonly Lane[] = []): Promise<void> {
    this.ended = true;
    this.resolveEnded();
    this.openGate?.();
    for (const lane of this.lanes) lane.early = [];
    await Promise.allSettled(started.map((l) => l.source.stop()));
  }

  private finish(reason?: CaptureEndReason, error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    if (!reason) {
      if (this.stopping) reason = "stopped";
      else if (this.lanes.some((l) => l.state === "ended")) reason = "end-of-file";
      else {
        reason = "failed";
        const list = this.lanes.map((l) => `${l.source.description}: ${l.error?.message ?? "failed"}`).join("; ");
        error = new MergeError("all-sources-failed", `every merged source failed: ${list}`);
      }
    }
    this.handlers?.onEnd(reason, error);
    this.resolveEnded();
  }
}
