// LibpcapFileSource: a capture file read by libpcap itself (pcap_open_offline in the capture
// worker), for `probe capture -r FILE --reader libpcap`: formats or quirks our own reader
// refuses, and a cross-check of it. Filters are applied by libpcap (pcap_setfilter).
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "./capture-source.ts";
import { CaptureWorkerClient, DEFAULT_BATCH_BYTES, toWorkerFilter } from "./live-capture-source.ts";
import type { TimestampPrecision } from "../packet/packet-batch.ts";
import type { ToWorker } from "./libpcap/worker-protocol.ts";

export interface LibpcapFileOptions {
  path: string;
  filter?: string;
  precision?: TimestampPrecision;
}

export class LibpcapFileSource implements CaptureSource {
  readonly description: string;
  private readonly client = new CaptureWorkerClient({ linktype: 0, precision: "micro" });

  constructor(private readonly options: LibpcapFileOptions) {
    this.description = `file ${options.path}`;
  }

  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    const message: ToWorker = {
      type: "open-file",
      path: this.options.path,
      precision: this.options.precision ?? "micro",
      batchBytes: DEFAULT_BATCH_BYTES,
    };
    if (this.options.filter) message.filter = toWorkerFilter(this.options.filter);
    // The worker sends a few batches ahead, then waits for credit: one credit per batch the
    // consumer has finished with, so a slow writer slows the reader instead of piling up memory.
    const opened = await this.client.open(message, {
      onBatch: async (batch) => {
        await handlers.onBatch(batch);
        this.client.send({ type: "credit", batches: 1 });
      },
      onEnd: handlers.onEnd,
    });
    return { ...opened.info, description: this.description };
  }

  async setFilter(): Promise<void> {
    throw new Error("a file replay's filter is fixed when it starts");
  }

  async stats(): Promise<CaptureStats> {
    return { delivered: this.client.delivered };
  }

  async stop(): Promise<CaptureStats> {
    await this.client.stop();
    return { delivered: this.client.delivered };
  }
}
