// The snaplen stage: keeps at most `bytes` of each packet (like tcpdump -s, after the merge).
import { selectRecords, type PacketBatch } from "../../packet/packet-batch.ts";
import type { PacketStage } from "../stage.ts";

export function createSnaplenStage(bytes: number): PacketStage {
  let packets = 0;
  let truncated = 0;
  return {
    name: "snaplen",
    apply(batch: PacketBatch): PacketBatch {
      packets += batch.count;
      return selectRecords(batch, (_view, _offset, caplen) => {
        if (caplen > bytes) truncated++;
        return bytes;
      });
    },
    counters: () => ({ packets_in: packets, packets_truncated: truncated }),
  };
}
