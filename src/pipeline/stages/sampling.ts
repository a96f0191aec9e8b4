// Sampling: one packet in every n, or the first packet after each interval. The same Sampler
// runs as a pipeline stage (spec `kind: sampling`) and per RPCAP client (SETSAMPLING, which
// libpcap's rpcapd accepts and ignores on Linux).
import { selectRecords, type PacketBatch } from "../../packet/packet-batch.ts";
import type { PacketStage } from "../stage.ts";

export type Sampling = { method: "none" } | { method: "one-every-n"; n: number } | { method: "first-after-ms"; ms: number };

export class Sampler {
  private seen = 0;
  private lastKeptUs = -Infinity;

  constructor(private readonly sampling: Sampling) {}

  /** The records this sampling keeps (a new batch unless it keeps them all). */
  apply(batch: PacketBatch): PacketBatch {
    const s = this.sampling;
    if (s.method === "none" || (s.method === "one-every-n" && s.n <= 1)) return batch;
    const scale = batch.precision === "nano" ? 1000 : 1;
    return selectRecords(batch, (view, offset, caplen) => {
      if (s.method === "one-every-n") {
        // The first packet of each group of n is kept: 1, n+1, 2n+1...
        return this.seen++ % s.n === 0 ? caplen : -1;
      }
      const us = view.getUint32(offset, true) * 1e6 + view.getUint32(offset + 4, true) / scale;
      if (us - this.lastKeptUs < s.ms * 1000) return -1;
      this.lastKeptUs = us;
      return caplen;
    });
  }
}

export function createSamplingStage(method: "one-every-n" | "first-after-ms", value: number): PacketStage {
  const sampler = new Sampler(method === "one-every-n" ? { method, n: value } : { method, ms: value });
  let packetsIn = 0;
  let packetsOut = 0;
  return {
    name: "sampling",
    apply(batch) {
      const out = sampler.apply(batch);
      packetsIn += batch.count;
      packetsOut += out.count;
      return out;
    },
    counters: () => ({ packets_in: packetsIn, packets_out: packetsOut }),
  };
}
