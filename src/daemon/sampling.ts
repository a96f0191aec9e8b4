// RPCAP SETSAMPLING applied for real (libpcap's rpcapd accepts it and does nothing on Linux):
// method 1 keeps one packet in every `value`; method 2 keeps the first packet after each
// `value` milliseconds. Runs on the session's batches before they are encoded.
import { selectRecords, type PacketBatch } from "../packet/packet-batch.ts";

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
