// FileReplaySource: a pcap or pcapng file as a CaptureSource, read in chunks by the pure
// TypeScript reader (src/protocols/pcap), as fast as the consumer takes it or paced by the
// file's own timestamps (--realtime). Filters run in userland (BPF interpreter).
import { ProtocolError } from "../packet/protocol-error.ts";
import { streamCaptureFile } from "../protocols/pcap/index.ts";
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "./capture-source.ts";
import { CaptureError } from "./errors.ts";
import { createBatchFilter, type BatchFilter } from "./packet-filter.ts";
import { BATCH_RECORD_HEADER_BYTES, selectRecords, type PacketBatch } from "../packet/packet-batch.ts";
import { MAXIMUM_SNAPLEN } from "../packet/packet-batch.ts";

export interface FileReplayOptions {
  path: string;
  filter?: string;
  /** Records longer than this are cut to it (like capturing with -s). */
  snaplen?: number;
  /** Deliver records at the pace of their timestamps. */
  realtime?: boolean;
}

export class FileReplaySource implements CaptureSource {
  readonly description: string;
  private stopped = false;
  private delivered = 0;
  private done: Promise<void> = Promise.resolve();
  private wakeSleeper: (() => void) | null = null;

  constructor(private readonly options: FileReplayOptions) {
    this.description = `file ${options.path}`;
  }

  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    const { path } = this.options;
    if (!(await Bun.file(path).exists())) throw new CaptureError("bad-file", `${path}: no such file`);
    const { reader, batches } = streamCaptureFile(path);
    const iterator = batches[Symbol.asyncIterator]();
    let first: IteratorResult<PacketBatch>;
    try {
      first = await iterator.next();
    } catch (error) {
      throw fileError(path, error);
    }
    const firstInterface = reader.interfaces[0];
    if (!firstInterface) throw new CaptureError("bad-file", `${path}: the file describes no interface`);
    const info: CaptureInfo = {
      linktype: firstInterface.linktype,
      snaplen: Math.min(firstInterface.snaplen || MAXIMUM_SNAPLEN, this.options.snaplen ?? MAXIMUM_SNAPLEN),
      precision: firstInterface.precision,
      description: this.description,
    };
    let filter: BatchFilter | undefined;
    if (this.options.filter) filter = createBatchFilter(this.options.filter, info.linktype, info.snaplen);
    this.done = this.run(first, iterator, handlers, filter);
    return info;
  }

  private async run(
    first: IteratorResult<PacketBatch>,
    iterator: AsyncIterator<PacketBatch>,
    handlers: CaptureHandlers,
    filter: BatchFilter | undefined,
  ): Promise<void> {
    const pace = this.options.realtime ? new Pacer() : undefined;
    try {
      for (let next = first; !next.done && !this.stopped; next = await iterator.next()) {
        let batch = next.value;
        if (this.options.snaplen) batch = truncateRecords(batch, this.options.snaplen);
        if (filter) batch = filter(batch);
        if (batch.count === 0) continue;
        const parts = pace ? pace.split(batch) : [batch];
        for (const part of parts) {
          if (this.stopped) break;
          if (pace) await this.sleep(pace.delayFor(part));
          this.delivered += part.count;
          await handlers.onBatch(part);
        }
      }
      handlers.onEnd(this.stopped ? "stopped" : "end-of-file");
    } catch (error) {
      handlers.onEnd("failed", fileError(this.options.path, error));
    } finally {
      await iterator.return?.();
    }
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeSleeper = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async setFilter(): Promise<void> {
    throw new CaptureError("capture-failed", "a file replay's filter is fixed when it starts");
  }

  async stats(): Promise<CaptureStats> {
    return { delivered: this.delivered };
  }

  async stop(): Promise<CaptureStats> {
    this.stopped = true;
    this.wakeSleeper?.();
    await this.done;
    return { delivered: this.delivered };
  }
}

function fileError(path: string, error: unknown): Error {
  if (error instanceof ProtocolError) {
    return new CaptureError("bad-file", `${path}: corrupt capture file at byte ${error.offset}: ${error.message} (${error.code})`);
  }
  if (error instanceof CaptureError) return error;
  return new CaptureError("bad-file", `${path}: ${(error as Error).message}`);
}

/** Cuts records longer than `snaplen` (new buffer only when something is cut). */
function truncateRecords(batch: PacketBatch, snaplen: number): PacketBatch {
  return selectRecords(batch, () => snaplen);
}

/** Real-time pacing: the first record plays now, each later one at its offset from the first. */
class Pacer {
  private fileStartUs: number | undefined;
  private wallStartMs = 0;
  /** Records closer together than this go out in one piece. */
  private static readonly GRANULARITY_US = 1000;

  /** Splits a batch into runs of records due within GRANULARITY_US of each other. */
  split(batch: PacketBatch): PacketBatch[] {
    const view = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
    const scale = batch.precision === "nano" ? 1000 : 1;
    const parts: PacketBatch[] = [];
    let runStart = 0;
    let runCount = 0;
    let runTime = 0;
    let offset = 0;
    for (let i = 0; i < batch.count; i++) {
      const us = view.getUint32(offset, true) * 1e6 + view.getUint32(offset + 4, true) / scale;
      if (runCount > 0 && us - runTime >= Pacer.GRANULARITY_US) {
        parts.push({ ...batch, bytes: batch.bytes.subarray(runStart, offset), count: runCount });
        runStart = offset;
        runCount = 0;
      }
      if (runCount === 0) runTime = us;
      runCount++;
      offset += BATCH_RECORD_HEADER_BYTES + view.getUint32(offset + 8, true);
    }
    if (runCount > 0) parts.push({ ...batch, bytes: batch.bytes.subarray(runStart, offset), count: runCount });
    return parts;
  }

  /** Milliseconds to wait before delivering `part` (whose first record sets its due time). */
  delayFor(part: PacketBatch): number {
    const view = new DataView(part.bytes.buffer, part.bytes.byteOffset, part.bytes.byteLength);
    const scale = part.precision === "nano" ? 1000 : 1;
    const us = view.getUint32(0, true) * 1e6 + view.getUint32(4, true) / scale;
    if (this.fileStartUs === undefined) {
      this.fileStartUs = us;
      this.wallStartMs = performance.now();
      return 0;
    }
    return this.wallStartMs + (us - this.fileStartUs) / 1000 - performance.now();
  }
}
