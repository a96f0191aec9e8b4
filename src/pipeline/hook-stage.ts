// HookStage: puts a HookChain (src/hooks) between a capture source and one consumer. It runs
// the chain once per batch, remembers the tags of every batch it hands on (for pcapng comments),
// and wraps a BatchSink so that, inside a ConsumerQueue, a slow hook makes that queue drop
// (counted) instead of stalling capture or the other consumers.
//
// Ownership: the input batch is only read (HookRunner works on its own copy), so one batch can
// go to several consumers with different stages. The result batch is the input batch itself
// when no hook changed anything, or a new owned batch.
import type { PacketBatch } from "../packet/packet-batch.ts";
// Types only: importing the hooks' runtime here would load QuickJS into every command that
// uses the pipeline, hooks or not.
import type { HookChain, HookCountersSnapshot, HookStageResult } from "../hooks/index.ts";
import type { BatchSink } from "./consumer-queue.ts";

/** Tags per record of one batch: one entry per record, undefined for a record without tags. */
export type RecordTags = readonly (readonly string[] | undefined)[];

export interface HookStageOptions {
  /** What hooks see as `pkt.interfaceName` (the capture's interface or file name). */
  interfaceName?: string;
}

/** What went through the stage (the hooks' own counters are in `stats()`). */
export interface HookStageCounters {
  batches: number;
  /** Packets handed to the chain. */
  packetsIn: number;
  /** Packets that survived every hook (packetsIn - packetsOut were dropped by a hook or by the failure policy). */
  packetsOut: number;
}

/**
 * Yields to the event loop once. setImmediate (not a microtask) lets pending I/O and the
 * capture worker's messages run first, so batches arriving while a hook works reach the
 * ConsumerQueue and are queued or dropped there, and never wait unbounded in the worker's port.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class HookStage {
  /** Tags of the batches this stage produced; weak, so a written batch and its tags go together. */
  private readonly tagsByBatch = new WeakMap<PacketBatch, RecordTags>();
  private disposed = false;
  readonly counters: HookStageCounters = { batches: 0, packetsIn: 0, packetsOut: 0 };

  /** The stage takes ownership of `chain`: dispose() disposes it. */
  constructor(
    readonly chain: HookChain,
    private readonly options: HookStageOptions = {},
  ) {}

  /**
   * Runs every hook over `batch`, synchronously (a hook's CPU time is bounded per batch by
   * hookBatchBudgetMs). Never throws for anything a hook does. After dispose() every record is
   * dropped: passing them unhooked would leak what a redaction hook exists to remove.
   */
  apply(batch: PacketBatch): HookStageResult {
    if (this.disposed) return { batch: { bytes: new Uint8Array(0), count: 0, linktype: batch.linktype, precision: batch.precision }, tags: [] };
    if (batch.count === 0) return { batch, tags: [] };
    const result = this.chain.run(batch, this.options.interfaceName ?? "");
    this.counters.batches++;
    this.counters.packetsIn += batch.count;
    this.counters.packetsOut += result.batch.count;
    if (result.tags.some((tags) => tags !== undefined)) this.tagsByBatch.set(result.batch, result.tags);
    else this.tagsByBatch.delete(result.batch);
    return result;
  }

  /** Tags per record of a batch that apply() returned; undefined when it had none. */
  tagsOf(batch: PacketBatch): RecordTags | undefined {
    return this.tagsByBatch.get(batch);
  }

  /**
   * For CaptureFileWriter's `comments` option: each tag of a record becomes one pcapng
   * opt_comment on its EPB (tshark `-e frame.comment`). Bound, so it can be passed as is.
   */
  readonly comments = (batch: PacketBatch): ((index: number) => readonly string[] | undefined) | undefined => {
    const tags = this.tagsByBatch.get(batch);
    return tags === undefined ? undefined : (index) => tags[index];
  };

  /**
   * A sink that runs the stage, then writes what survives to `next` (an empty result is not
   * written). Meant to be a ConsumerQueue's sink: it first yields to the event loop, so the
   * hooks never run inside the capture callback that offered the batch, and while they run
   * new batches pile up in (and overflow from) the queue's bounded buffer.
   */
  sinkInto(next: BatchSink): BatchSink {
    return {
      write: async (batch: PacketBatch): Promise<void> => {
        await yieldToEventLoop();
        const result = this.apply(batch);
        if (result.batch.count > 0) await next.write(result.batch);
      },
    };
  }

  /** Counters of every hook, in chain order. */
  stats(): HookCountersSnapshot[] {
    return this.chain.stats();
  }

  /** Releases every hook's sandbox. Idempotent; apply() drops every record afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.chain.dispose();
  }
}
