// StageChain: the pipeline's stages in spec order, run once per batch. Used by the runner (one
// chain before the fan-out to every output) and by the RPCAP daemon's shared captures (one
// chain per opened interface, before the fan-out to its sessions).
import { ownedBatch, type PacketBatch } from "../packet/packet-batch.ts";
import type { BatchSink } from "./consumer-queue.ts";
import { ProbeError } from "../packet/probe-error.ts";
import type { PacketStage } from "./stage.ts";

export class StageChain {
  constructor(readonly stages: readonly PacketStage[]) {}

  get empty(): boolean {
    return this.stages.length === 0;
  }

  /** Every stage in order; stops early when nothing is left. */
  apply(batch: PacketBatch): PacketBatch {
    let current = batch;
    for (const stage of this.stages) {
      if (current.count === 0) break;
      current = stage.apply(current);
    }
    return current;
  }

  /**
   * Readies every stage for the inputs' link types (PacketStage.prepare). A stage that cannot
   * work on one of them ends the run at start, naming the stage: a ProbeError it throws is
   * passed on as it is, anything else becomes a usage error (the spec asked for it).
   */
  prepare(linktypes: Iterable<number>): void {
    for (const linktype of new Set(linktypes)) {
      for (const stage of this.stages) {
        try {
          stage.prepare?.(linktype);
        } catch (error) {
          if (error instanceof ProbeError) throw error;
          const reason = error instanceof Error ? error.message : String(error);
          throw new ProbeError("bad-stage", "usage", `stage ${stage.name}: unusable for link type ${linktype}: ${reason}`);
        }
      }
    }
  }

  summaryLines(): string[] {
    return this.stages.flatMap((s) => s.summaryLines?.() ?? []);
  }

  /** SIGHUP: every stage that can reread its configuration does. */
  reload(): void {
    for (const stage of this.stages) stage.reload?.();
  }

  close(): void {
    for (const stage of this.stages) stage.close?.();
  }
}

/**
 * Yields to the event loop once. setImmediate (not a microtask) lets pending I/O and the
 * capture worker's messages run first, so batches arriving while a stage works (a slow hook)
 * reach a bounded ConsumerQueue and are queued or dropped there, never waiting unbounded in
 * the worker's port.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The sink of a stage queue: runs `run` on each batch a turn of the event loop later
 * (yieldToEventLoop), never inside the capture's callback. It keeps an owned copy first: a live
 * capture's batch is lent and gone once the call that delivered it has returned.
 */
export function nextTurnSink(run: (batch: PacketBatch) => void | Promise<void>): BatchSink {
  return {
    write: async (batch) => {
      const kept = ownedBatch(batch);
      await yieldToEventLoop();
      await run(kept);
    },
  };
}
