// Userland packet filtering for sources the kernel does not filter (files, remote streams,
// per-consumer filters): a tcpdump expression compiled by libpcap, run by our BPF interpreter.
import { compileBpfRecordMatcher, type BpfProgram } from "../packet/bpf/index.ts";
import { compileFilter } from "./libpcap/compile-filter.ts";
import { BATCH_RECORD_HEADER_BYTES, selectRecords, type PacketBatch } from "../packet/packet-batch.ts";

export type BatchFilter = (batch: PacketBatch) => PacketBatch;

/**
 * Compiles `filter` (a tcpdump expression for `linktype`, or a BPF program, which is validated)
 * and returns a function that keeps only matching records (BPF return value > 0), truncated to
 * the returned length like the kernel does. Output batches are new buffers (owned); a batch
 * whose records all match whole is returned as is.
 */
export function createBatchFilter(filter: string | BpfProgram, linktype: number, snaplen: number): BatchFilter {
  const program = typeof filter === "string" ? compileFilter(filter, linktype, snaplen) : filter;
  const match = compileBpfRecordMatcher(program); // validates first
  return (batch) =>
    selectRecords(batch, (view, offset, caplen) => {
      // bpf_filter semantics: 0 rejects, anything else accepts and is the snap length.
      const verdict = match(batch.bytes, offset + BATCH_RECORD_HEADER_BYTES, caplen, view.getUint32(offset + 12, true));
      return verdict > 0 ? verdict : -1;
    });
}
