// CaptureSource: what every producer of packets looks like to the rest of probe — a live
// interface, a replayed file, a synthetic generator, or (later) a remote stream. Outputs and
// the pipeline depend only on this interface, so files stand in for interfaces in tests.
import type { PacketBatch, TimestampPrecision } from "../packet/packet-batch.ts";
import type { BpfInstruction } from "../packet/bpf/index.ts";
import type { CaptureEngine, KernelStats } from "./libpcap/pcap-handle.ts";

export interface CaptureInfo {
  linktype: number;
  snaplen: number;
  precision: TimestampPrecision;
  /** Human-readable description for logs ("lo", "file big.pcap", ...). */
  description: string;
  warning?: string;
  /** Live captures: the engine reading the interface, and why it differs from the one asked for. */
  engine?: CaptureEngine;
  engineNote?: string;
}

export interface CaptureStats {
  /** Packets handed to consumers by this source. */
  delivered: number;
  /** Kernel counters where the source has them (live captures). */
  kernel?: KernelStats;
}

export type CaptureEndReason = "stopped" | "end-of-file" | "failed";

export interface CaptureHandlers {
  /**
   * Called on the main thread with batches in capture order. A live capture's batches are
   * lent (isLentBatch): valid during this call only; keep `ownedBatch(batch)` to hold one
   * longer. File and synthetic sources wait for a returned promise before reading on
   * (back-pressure, nothing lost); live sources never wait: the kernel would drop meanwhile,
   * so consumers queue (owned copies) or drop.
   */
  onBatch(batch: PacketBatch): void | Promise<void>;
  /** Called once when the source ends for any reason; `error` is set when it failed. */
  onEnd(reason: CaptureEndReason, error?: Error): void;
}

export interface CaptureSource {
  readonly description: string;
  /** Starts delivering; resolves once the source is open (so errors like a bad filter surface here). */
  start(handlers: CaptureHandlers): Promise<CaptureInfo>;
  /** Replaces the filter of a running capture (string expression or compiled program). */
  setFilter(filter: string | readonly BpfInstruction[]): Promise<void>;
  stats(): Promise<CaptureStats>;
  /** Stops and releases everything; idempotent; resolves with final stats. */
  stop(): Promise<CaptureStats>;
}
