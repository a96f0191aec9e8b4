// StageChain: the pipeline's stages in spec order, run once per batch. Used by the runner (one
// chain before the fan-out to every output) and by the RPCAP daemon's shared captures (one
// chain per opened interface, before the fan-out to its sessions).
import type { PacketBatch } from "../packet/packet-batch.ts";
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
