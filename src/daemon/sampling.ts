// RPCAP SETSAMPLING applied for real (libpcap's rpcapd accepts it and does nothing on Linux):
// method 1 keeps one packet in every `value`; method 2 keeps the first packet after each
// `value` milliseconds. Runs on the session's batches before they are encoded.
import { BATCH_RECORD_HEADER_BYTES, type PacketBatch } from "../capture/packet-batch.ts";

export type Sampling = { method: "none" } | { method: "one-every-n"; n: number } | { method: "first-after-ms"; ms: number };

export class Sampler {
  private seen = 0;
  private lastKeptUs = -Infinity;

  constructor(private readonly sampling: Sampling) {}

  /** The records this sampling keeps (a new batch unless it keeps them all). */
  apply(batch: PacketBatch): PacketBatch {
    const s = this.sampling;
    if (s.method === "none" || (s.method === "one-every-n" && s.n <= 1)) return batch;
    const view = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
    const scale = batch.precision === "nano" ? 1000 : 1;
    const keep: number[] = [];
    let keptBytes = 0;
    let offset = 0;
    for (let i = 0; i < batch.count; i++) {
      const size = BATCH_RECORD_HEADER_BYTES + view.getUint32(offset + 8, true);
      let take: boolean;
      if (s.method === "one-every-n") {
        // The first packet of each group of n is kept: 1, n+1, 2n+1...
        take = this.seen % s.n === 0;
        this.seen++;
      } else {
        const us = view.getUint32(offset, true) * 1e6 + view.getUint32(offset + 4, true) / scale;
        take = us - this.lastKeptUs >= s.ms * 1000;
        if (take) this.lastKeptUs = us;
      }
      if (take) {
        keep.push(offset, size);
        keptBytes += size;
      }
      offset += size;
    }
    if (keep.length / 2 === batch.count) return batch;
    const out = new Uint8Array(keptBytes);
    let at = 0;
    for (let i = 0; i < keep.length; i += 2) {
      out.set(batch.bytes.subarray(keep[i]!, keep[i]! + keep[i + 1]!), at);
      at += keep[i + 1]!;
    }
    return { ...batch, bytes: out, count: keep.length / 2 };
  }
}
