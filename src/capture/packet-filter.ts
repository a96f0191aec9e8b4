// Userland packet filtering for sources the kernel does not filter (files, remote streams,
// per-consumer filters): a tcpdump expression compiled by libpcap, run by our BPF interpreter.
import { compileBpfRecordMatcher, type BpfProgram } from "./bpf/index.ts";
import { compileFilter } from "./libpcap/compile-filter.ts";
import { BATCH_RECORD_HEADER_BYTES, type PacketBatch } from "./packet-batch.ts";

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
  return (batch) => {
    const bytes = batch.bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // First pass: decide, remember kept (offset, keptCaplen) pairs.
    const kept: number[] = [];
    let keptBytes = 0;
    let offset = 0;
    let allKeptWhole = true;
    for (let i = 0; i < batch.count; i++) {
      const caplen = view.getUint32(offset + 8, true);
      const len = view.getUint32(offset + 12, true);
      const verdict = match(bytes, offset + BATCH_RECORD_HEADER_BYTES, caplen, len);
      if (verdict > 0) {
        const keep = Math.min(caplen, verdict);
        if (keep !== caplen) allKeptWhole = false;
        kept.push(offset, keep);
        keptBytes += BATCH_RECORD_HEADER_BYTES + keep;
      } else allKeptWhole = false;
      offset += BATCH_RECORD_HEADER_BYTES + caplen;
    }
    if (allKeptWhole) return batch;
    const out = new Uint8Array(keptBytes);
    const outView = new DataView(out.buffer);
    let at = 0;
    for (let i = 0; i < kept.length; i += 2) {
      const from = kept[i]!;
      const keep = kept[i + 1]!;
      out.set(bytes.subarray(from, from + BATCH_RECORD_HEADER_BYTES + keep), at);
      outView.setUint32(at + 8, keep, true);
      at += BATCH_RECORD_HEADER_BYTES + keep;
    }
    return { ...batch, bytes: out, count: kept.length / 2 };
  };
}
