// The capture file output: a pcap or pcapng file, or standard output, behind its own bounded
// queue (a slow disk or pipe drops, counted, instead of stalling a live capture; a replayed
// file waits instead, and loses nothing).
import { ProbeError } from "../../packet/probe-error.ts";
import type { PacketBatch } from "../../packet/packet-batch.ts";
import { ConsumerQueue } from "../../pipeline/consumer-queue.ts";
import type { OutputContext } from "../../pipeline/output-context.ts";
import type { PipelineOutput, StreamDescription } from "../../pipeline/output.ts";
import { CaptureFileWriter, type CaptureFileFormat } from "./capture-file-writer.ts";

export class CaptureFileOutput implements PipelineOutput {
  readonly name = "file";
  /** Its queue copies what it holds and Bun's FileSink copies on write (capture-file-writer.ts). */
  readonly takesLentBatches = true;
  private writer: CaptureFileWriter | undefined;
  private queue: ConsumerQueue | undefined;

  constructor(
    private readonly path: string,
    private readonly format: CaptureFileFormat,
    private readonly context: OutputContext,
  ) {}

  async start(stream: StreamDescription): Promise<void> {
    const first = stream.inputs[0];
    if (!first) throw new ProbeError("no-inputs", "usage", `-w ${this.path}: a file output needs an input`);
    const linktypes = new Set(stream.inputs.map((i) => i.linktype));
    if (this.format === "pcap" && linktypes.size > 1) {
      const list = stream.inputs.map((i) => `${i.name} linktype ${i.linktype}`).join(", ");
      throw new ProbeError("linktype-mismatch", "usage", `-w ${this.path}: a pcap file has one link type, the inputs have several (${list}); write pcapng (-F pcapng) instead`);
    }
    try {
      this.writer = await CaptureFileWriter.open({
        target: this.path,
        format: this.format,
        linktype: first.linktype,
        snaplen: Math.max(...stream.inputs.map((i) => i.snaplen)),
        precision: stream.precision,
        interfaces: stream.inputs.map((i) => ({ linktype: i.linktype, snaplen: i.snaplen, name: i.name })),
      });
    } catch (error) {
      throw new ProbeError("file-open-failed", "runtime", `-w ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    const writer = this.writer;
    this.queue = new ConsumerQueue({ write: (batch) => writer.write(batch) }, undefined, (error) =>
      this.context.fail(new ProbeError("file-write-failed", "runtime", `-w ${this.path}: ${error.message}`, { cause: error })),
    );
  }

  write(batch: PacketBatch): Promise<void> {
    this.queue!.offer(batch);
    return this.queue!.drained();
  }

  async stop(): Promise<void> {
    await this.queue?.drained();
    await this.writer?.close();
  }

  counters() {
    return {
      packets_written: this.writer?.packetsWritten ?? 0,
      bytes_written: this.writer?.bytesWritten ?? 0,
      packets_dropped: this.queue?.counters.droppedPackets ?? 0,
    };
  }

  summaryLines(): string[] {
    const dropped = this.queue?.counters.droppedPackets ?? 0;
    return dropped > 0 ? [`${dropped} packets dropped by probe (output too slow)`] : [];
  }
}
