// The filter stage: a tcpdump expression run in userland (libpcap compiles it, our BPF
// interpreter runs it) on every record after the merge, compiled once per link type seen.
import { createBatchFilter, type BatchFilter } from "../../capture/packet-filter.ts";
import { MAXIMUM_SNAPLEN, type PacketBatch } from "../../packet/packet-batch.ts";
import type { PacketStage } from "../stage.ts";

export function createFilterStage(expression: string): PacketStage {
  const byLinktype = new Map<number, BatchFilter>();
  let packetsIn = 0;
  let packetsOut = 0;
  return {
    name: "filter",
    apply(batch: PacketBatch): PacketBatch {
      let filter = byLinktype.get(batch.linktype);
      if (!filter) {
        filter = createBatchFilter(expression, batch.linktype, MAXIMUM_SNAPLEN);
        byLinktype.set(batch.linktype, filter);
      }
      const out = filter(batch);
      packetsIn += batch.count;
      packetsOut += out.count;
      return out;
    },
    counters: () => ({ packets_in: packetsIn, packets_out: packetsOut }),
  };
}
