// PacketStage: one processing step of the pipeline (snaplen, filter, sampling, hooks,
// anonymization, header truncation, checksums, direction tagging). The runner calls every stage
// of the spec in order ONCE per batch, before the batch fans out to the outputs, so every output
// and every consumer sees the same packets and a stage's counters count each packet once.

import type { PacketBatch } from "../packet/packet-batch.ts";

export interface PacketStage {
  /** Stable name for logs, summaries and metrics: "anonymize", "truncate-headers", "hooks", ... */
  readonly name: string;
  /**
   * Processes one batch synchronously and returns what goes on: `batch` itself when nothing
   * changed, else a new owned batch (input batches are shared and read-only). Never throws for
   * anything in the packets: a malformed packet passes unchanged and is counted.
   */
  apply(batch: PacketBatch): PacketBatch;
  /** Flat counters for the summary and metrics (packets_in, packets_out, cache_hits, ...). */
  counters(): Readonly<Record<string, number>>;
  /** Lines for the end-of-run summary on standard error. */
  summaryLines?(): string[];
  /**
   * Called once per link type of the pipeline's inputs when the stream starts, before any batch
   * (a direction filter compiles for it): throws what makes the stage unusable for that link type.
   */
  prepare?(linktype: number): void;
  /** SIGHUP: reread what the stage was built from (hook files); the runner calls it. */
  reload?(): void;
  /** Releases what the stage holds (a hook's VM, a key); idempotent. */
  close?(): void;
}
