// PacketFifo: what a reliable RT server keeps until its client acknowledges it. Every record
// gets a sequence number (1, 2, 3, ... as a JS number, exact to 2^53; the wire carries it mod
// 2^32). Two implementations: MemoryFifo (lost with the process) and DiskSpool (append-only
// segment files that survive kill -9 of the process, and power loss with --spool-fsync-ms).
//
// A full fifo applies the operator's policy:
//   block        refuse the batch; the server holds it (bounded) and file inputs wait
//   drop-oldest  release the oldest unacknowledged records to make room (a gap the receiver sees)
//   drop-new     refuse the batch, counted
import type { PacketBatch, TimestampPrecision } from "../../../packet/packet-batch.ts";

export type SpoolFullPolicy = "block" | "drop-oldest" | "drop-new";
export const SPOOL_FULL_POLICIES = ["block", "drop-oldest", "drop-new"] as const;

/** Records read back from the fifo: PacketBatch layout, consecutive in sequence, one link type. */
export interface FifoChunk {
  firstSequence: number;
  count: number;
  records: Uint8Array;
  linktype: number;
  precision: TimestampPrecision;
  /** Bytes these records take in the fifo (for STATUS's out/ack counters). */
  fifoBytes: number;
}

export type AppendResult =
  | { readonly kind: "appended"; readonly firstSequence: number }
  | { readonly kind: "full" }
  /** The disk refused the write (ENOSPC, EIO): nothing of the batch was kept. */
  | { readonly kind: "failed"; readonly reason: string };

export interface FifoCounters {
  /** Bytes ever appended / sent / acknowledged (STATUS in, out, ack). */
  bytesIn: number;
  bytesAcked: number;
  /** Bytes held now and the cap. */
  usedBytes: number;
  capacityBytes: number;
  recordsHeld: number;
  /** Records released by drop-oldest without an acknowledgement. */
  droppedOldestRecords: number;
  /** Bytes ever written to disk (write amplification = this / packet bytes). */
  diskBytesWritten: number;
}

export interface PacketFifo {
  /** Identifies this fifo's sequence space; a new one is made when the fifo is (re)created. */
  readonly streamId: Uint8Array;
  /** Sequence the next appended record gets. */
  readonly nextSequence: number;
  /** Every sequence <= this is acknowledged (or dropped) and may be released. */
  readonly ackedThrough: number;
  readonly counters: FifoCounters;
  /** Appends the batch's records whole, or reports "full" (drop-oldest makes room first). */
  append(batch: PacketBatch): AppendResult;
  /** Records from the first held sequence >= `fromSequence`, up to about `maxBytes`. */
  read(fromSequence: number, maxBytes: number): FifoChunk | undefined;
  /** Cumulative acknowledgement: releases everything <= `sequence`. */
  ack(sequence: number): void;
  /** Flushes and releases files; idempotent. */
  close(): Promise<void>;
}

/** Room one batch would take in the fifo: its record bytes plus `perRecordBytes` of framing each. */
export function fifoBytesFor(batch: PacketBatch, perRecordBytes: number): number {
  return batch.bytes.byteLength + batch.count * perRecordBytes;
}
