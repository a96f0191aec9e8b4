// Messages between the main thread and the capture worker. Plain data only (structured clone).
// A live capture's batches do not travel as messages: they go through the BatchChannel whose
// shared memory comes with "open-live". A file replay's batches are transferred buffers.
import type { TimestampPrecision } from "../../packet/packet-batch.ts";
import type { CaptureErrorCode } from "../errors.ts";
import type { BpfInstruction } from "../../packet/bpf/index.ts";
import type { CaptureEngine, HandleInfo, KernelStats, LiveOpenOptions } from "./pcap-handle.ts";
import type { BatchChannelMemory } from "../batch-channel.ts";

export type WorkerFilter = { kind: "expression"; expression: string } | { kind: "program"; instructions: BpfInstruction[] };

export type ToWorker =
  | {
      type: "open-live";
      options: LiveOpenOptions;
      filter?: WorkerFilter;
      batchBytes: number;
      flushIntervalMs: number;
      /** Which engine reads the interface; "ring" falls back to libpcap where it cannot serve. */
      engine: CaptureEngine;
      /** Ring engine only: join this PACKET_FANOUT group (flow hash). */
      fanoutGroup?: number;
      /** Where batches go (shared memory; slots of at least BatchBuilder.stagingBytesFor(batchBytes)). */
      channel: BatchChannelMemory;
    }
  | { type: "open-file"; path: string; precision: TimestampPrecision; filter?: WorkerFilter; batchBytes: number }
  | { type: "set-filter"; id: number; filter: WorkerFilter }
  | { type: "stats"; id: number }
  /** Sent after the consumer has taken a batch: lets a file reader resume (back-pressure). */
  | { type: "credit"; batches: number }
  | { type: "stop" };

export type FromWorker =
  | { type: "opened"; info: HandleInfo }
  | { type: "batch"; buffer: ArrayBuffer; byteLength: number; count: number }
  | { type: "reply"; id: number; stats?: KernelStats; error?: { code: CaptureErrorCode; message: string } }
  | { type: "failed"; code: CaptureErrorCode; message: string }
  | { type: "ended"; reason: "stopped" | "end-of-file"; stats?: KernelStats };
