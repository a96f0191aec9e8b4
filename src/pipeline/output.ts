// PipelineOutput: where the pipeline's one stream of batches goes after the stages (a capture
// file, rotating files, a PCAP-over-IP server, the RPCAP daemon's sessions, udpstr, RT). The
// runner hands every output the same batches; an output never stalls the pipeline or another
// output: each bounds its own queue and drops (counted) or disconnects by its policy.

import type { PacketBatch, TimestampPrecision } from "../packet/packet-batch.ts";

/** One input of the pipeline as outputs see it (a pcapng IDB per input). */
export interface StreamInput {
  /** The input's name: what hooks see as pkt.interfaceName and pcapng IDBs carry. */
  readonly name: string;
  readonly linktype: number;
  readonly snaplen: number;
  /** Human-readable ("eth0", "file a.pcap", "rpcap://host/eth0"). */
  readonly description: string;
}

/** What the stream carries; record meta.inputs index into `inputs` (absent means input 0). */
export interface StreamDescription {
  readonly inputs: readonly StreamInput[];
  readonly precision: TimestampPrecision;
}

/**
 * Something that happened to the stream that outputs may act on: a rotating file cuts a new
 * file on loss; a reliable sender records the gap.
 */
export type PipelineEvent =
  | { readonly kind: "kernel-drop"; readonly input: number; readonly packets: number }
  | { readonly kind: "queue-drop"; readonly output: string; readonly packets: number }
  | { readonly kind: "input-reconnect"; readonly input: number }
  | { readonly kind: "merge-gap"; readonly packets: number };

export interface PipelineOutput {
  /** Stable name for logs, summaries and metrics ("file", "pcap-over-ip", "rpcapd", "rt"). */
  readonly name: string;
  /** Opens files, binds sockets; rejects (one clear line) when it cannot. Called once. */
  start(stream: StreamDescription): Promise<void>;
  /**
   * Takes one batch (shared, read-only; copy to keep it beyond the call). Live inputs never wait
   * on the result; for file inputs the runner awaits a returned promise, so replay goes at the
   * pace of the slowest such output and loses nothing.
   */
  write(batch: PacketBatch): void | Promise<void>;
  /**
   * True when write() may be given a lent batch (isLentBatch: a live capture's shared memory,
   * reused once write() returns) because everything the output keeps past the call it keeps
   * as an owned copy (ConsumerQueue copies what it queues, SocketWriter what the kernel did not
   * take, Bun's FileSink copies on write). Other outputs get an owned copy, made once per batch.
   */
  readonly takesLentBatches?: boolean;
  /** Something happened upstream (loss, reconnect). */
  event?(event: PipelineEvent): void;
  /** Writes out what is queued, closes; idempotent. */
  stop(): Promise<void>;
  /**
   * True when the run should go on after the inputs end (a replayed file) until a signal, so
   * clients still connected can drain what the output holds (the RT server's reliable fifo).
   */
  readonly keepsRunAfterInputsEnd?: boolean;
  /** Flat counters for the summary and metrics (packets_sent, packets_dropped, clients, ...). */
  counters(): Readonly<Record<string, number>>;
  summaryLines?(): string[];
}
