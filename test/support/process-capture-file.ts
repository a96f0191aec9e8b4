// Stand-in for the pipeline runner while it is being built: reads a capture file with the
// project's reader, applies processing stages in order, and writes pcap or pcapng with the
// project's CaptureFileWriter (pcapng carries meta.flags and meta.comments as EPB options).
import type { PacketBatch } from "../../src/packet/packet-batch.ts";
import type { PacketStage } from "../../src/pipeline/stage.ts";
import { streamCaptureFile } from "../../src/protocols/pcap/read-capture-file.ts";
import { CaptureFileWriter } from "../../src/outputs/capture-file/capture-file-writer.ts";

export async function processCaptureFile(input: string, output: string, format: "pcap" | "pcapng", stages: readonly PacketStage[]): Promise<PacketBatch[]> {
  const { reader, batches } = streamCaptureFile(input);
  let writer: CaptureFileWriter | undefined;
  const written: PacketBatch[] = [];
  for await (let batch of batches) {
    for (const stage of stages) batch = stage.apply(batch);
    writer ??= await CaptureFileWriter.open({
      target: output,
      format,
      linktype: batch.linktype,
      snaplen: reader.interfaces[0]?.snaplen ?? 262144,
      precision: batch.precision,
    });
    await writer.write(batch);
    written.push(batch);
  }
  await writer?.close();
  return written;
}
