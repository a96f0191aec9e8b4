// The large capture file the file-replay and rotation benchmarks read: synthetic Ethernet frames
// whose sizes cycle through small and large ones like mixed traffic.
import { SyntheticSource } from "../../../src/capture/synthetic-source.ts";
import { CaptureFileWriter } from "../../../src/outputs/capture-file/capture-file-writer.ts";

const FRAME_SIZES = [60, 60, 120, 590, 1514, 60, 350, 1514];

/** Writes `packets` frames to a classic pcap file at `path`. */
export async function makeBigFile(path: string, packets: number): Promise<void> {
  const writer = await CaptureFileWriter.open({ target: path, format: "pcap", linktype: 1, snaplen: 262144, precision: "micro" });
  const source = new SyntheticSource({ count: packets, frameBytes: (i) => FRAME_SIZES[i % FRAME_SIZES.length]!, packetsPerBatch: 4096 });
  const done = Promise.withResolvers<void>();
  await source.start({ onBatch: (b) => writer.write(b), onEnd: () => done.resolve() });
  await done.promise;
  await writer.close();
}
