// HookStage: runs a HookChain (src/hooks) over a batch, once, and counts what went through.
// The tags hooks give a record become that record's meta.comments (pcapng opt_comment, tshark
// `-e frame.comment`), so they travel with the batch to every output (as data: control
// characters kept, NUL replaced; see tagComments).
//
// Ownership: the input batch is only read (HookRunner works on its own copy), so one batch can
// go on to several outputs. The result is the input batch itself when no hook changed
// anything, or a new owned batch.
import type { PacketBatch } from "../packet/packet-batch.ts";
// Types only: importing the hooks' runtime here would load QuickJS into every command that
// uses the pipeline, hooks or not.
import type { HookChain, HookCountersSnapshot, HookStageResult } from "../hooks/index.ts";
// Directly, not through hooks/index.ts (QuickJS), as above: the text rules are plain functions.
import { tagComments } from "../hooks/hook-text.ts";

/** What went through the stage (the hooks' own counters are in `stats()`). */
export interface HookStageCounters {
  batches: number;
  /** Packets handed to the chain. */
  packetsIn: number;
  /** Packets that survived every hook (packetsIn - packetsOut were dropped by a hook or by the failure policy). */
  packetsOut: number;
}

export class HookStage {
  private disposed = false;
  readonly counters: HookStageCounters = { batches: 0, packetsIn: 0, packetsOut: 0 };

  /** The stage takes ownership of `chain`: dispose() disposes it. */
  constructor(readonly chain: HookChain) {}

  /**
   * Runs every hook over `batch` (all of one input, named `interfaceName`: what hooks see as
   * pkt.interfaceName), synchronously: a hook's CPU time is bounded per batch by
   * hookBatchBudgetMs. Never throws for anything a hook does. The result's records carry their
   * tags as meta.comments. After dispose() every record is dropped: passing them unhooked would
   * leak what a redaction hook exists to remove.
   */
  apply(batch: PacketBatch, interfaceName = ""): HookStageResult {
    if (this.disposed) return { batch: { bytes: new Uint8Array(0), count: 0, linktype: batch.linktype, precision: batch.precision }, tags: [] };
    if (batch.count === 0) return { batch, tags: [] };
    const result = this.chain.run(batch, interfaceName);
    this.counters.batches++;
    this.counters.packetsIn += batch.count;
    this.counters.packetsOut += result.batch.count;
    if (!result.tags.some((tags) => tags !== undefined)) return result;
    const comments = result.tags.map((tags, i) => {
      const earlier = result.batch.meta?.comments?.[i];
      const own = tags && tagComments(tags);
      return earlier && own ? [...earlier, ...own] : (own ?? earlier);
    });
    return { batch: { ...result.batch, meta: { ...result.batch.meta, comments } }, tags: result.tags };
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
