// SyntheticSource: generated Ethernet/IPv4/UDP packets with a known payload pattern, for
// tests and benchmarks that need a packet source without a network or a file.
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "./capture-source.ts";
import { PacketBatchBuilder } from "../packet/packet-batch.ts";
import { LINKTYPE_ETHERNET } from "./libpcap/constants.ts";
import { MAXIMUM_SNAPLEN } from "../packet/packet-batch.ts";

export interface SyntheticOptions {
  /** Total packets to produce. */
  count: number;
  /** Frame size in bytes (>= 42: Ethernet + IPv4 + UDP headers), or a function of the index. */
  frameBytes: number | ((index: number) => number);
  /** Packets per batch. */
  packetsPerBatch?: number;
  /** Seconds of the first timestamp; each packet is 1 µs after the previous. */
  startSec?: number;
}

const HEADERS_BYTES = 14 + 20 + 8;

/** Builds one frame: zero MACs (like lo), IPv4 127.0.0.1 -> 127.0.0.1, UDP 9998 -> 9999, payload (seq + k) & 0xff. */
export function syntheticFrame(index: number, frameBytes: number): Uint8Array {
  const size = Math.max(HEADERS_BYTES, frameBytes);
  const frame = new Uint8Array(size);
  const view = new DataView(frame.buffer);
  view.setUint16(12, 0x0800);
  const ip = 14;
  frame[ip] = 0x45;
  view.setUint16(ip + 2, size - 14);
  frame[ip + 8] = 64;
  frame[ip + 9] = 17;
  frame.set([127, 0, 0, 1], ip + 12);
  frame.set([127, 0, 0, 1], ip + 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += view.getUint16(ip + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  view.setUint16(ip + 10, ~sum & 0xffff);
  const udp = ip + 20;
  view.setUint16(udp, 9998);
  view.setUint16(udp + 2, 9999);
  view.setUint16(udp + 4, size - 14 - 20);
  for (let k = 0; k < size - HEADERS_BYTES; k++) frame[HEADERS_BYTES + k] = (index + k) & 0xff;
  return frame;
}

export class SyntheticSource implements CaptureSource {
  readonly description = "synthetic";
  private delivered = 0;
  private stopped = false;
  private done: Promise<void> = Promise.resolve();

  constructor(private readonly options: SyntheticOptions) {}

  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    this.done = this.run(handlers);
    return { linktype: LINKTYPE_ETHERNET, snaplen: MAXIMUM_SNAPLEN, precision: "micro", description: this.description };
  }

  private async run(handlers: CaptureHandlers): Promise<void> {
    await Promise.resolve(); // let start() resolve before the first batch
    const { count, frameBytes, packetsPerBatch = 1024, startSec = 1_700_000_000 } = this.options;
    const sizeOf = typeof frameBytes === "number" ? () => frameBytes : frameBytes;
    const builder = new PacketBatchBuilder(LINKTYPE_ETHERNET, "micro");
    for (let i = 0; i < count && !this.stopped; i++) {
      const frame = syntheticFrame(i, sizeOf(i));
      builder.push(startSec + Math.floor(i / 1e6), i % 1e6, frame.byteLength, frame);
      if (builder.count >= packetsPerBatch || i === count - 1) {
        const batch = builder.take();
        if (batch) {
          this.delivered += batch.count;
          await handlers.onBatch(batch);
        }
      }
    }
    handlers.onEnd(this.stopped ? "stopped" : "end-of-file");
  }

  async setFilter(): Promise<void> {
    throw new Error("synthetic source has no filter");
  }

  async stats(): Promise<CaptureStats> {
    return { delivered: this.delivered };
  }

  async stop(): Promise<CaptureStats> {
    this.stopped = true;
    await this.done;
    return { delivered: this.delivered };
  }
}
