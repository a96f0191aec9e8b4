// CaptureFileWriter: a BatchSink that writes a classic pcap or pcapng file (or standard output
// for `-w -`). Each batch is one write followed by a flush, so a reader on a pipe
// (`probe capture -w - | tshark -r -`) sees packets as they are captured.
import type { FileSink } from "bun";
import type { PacketBatch, TimestampPrecision } from "../../packet/packet-batch.ts";
import type { BatchSink } from "../../pipeline/consumer-queue.ts";
import {
  encodePcapGlobalHeader,
  encodePcapngInterface,
  encodePcapngPacketsFromBatch,
  encodePcapngSectionHeader,
  pcapRecordsFromBatch,
} from "../../protocols/pcap/index.ts";

export type CaptureFileFormat = "pcap" | "pcapng";

export interface CaptureFileOptions {
  /** A path, or "-" for standard output. */
  target: string;
  format: CaptureFileFormat;
  linktype: number;
  snaplen: number;
  /** Timestamp precision written to the file (pcap magic or pcapng if_tsresol). */
  precision: TimestampPrecision;
  /** pcapng only: interface name recorded in the IDB. */
  interfaceName?: string;
  /** pcapng only: per-record comments (hook tags) for a batch, by record index; written after the batch's own meta.comments. */
  comments?: (batch: PacketBatch) => ((index: number) => readonly string[] | undefined) | undefined;
}

/** Identifies the writer in pcapng's shb_userappl. */
const USER_APPLICATION = "probe";

export class CaptureFileWriter implements BatchSink {
  private readonly sink: FileSink;
  private closed = false;
  packetsWritten = 0;
  bytesWritten = 0;

  private constructor(private readonly options: CaptureFileOptions) {
    this.sink = options.target === "-" ? Bun.stdout.writer() : Bun.file(options.target).writer();
    this.writeBytes(this.fileHeader());
  }

  /** Creates the file (truncating it) and writes its header. */
  static async open(options: CaptureFileOptions): Promise<CaptureFileWriter> {
    const writer = new CaptureFileWriter(options);
    await writer.flush();
    return writer;
  }

  write(batch: PacketBatch): void | Promise<void> {
    if (this.closed) return;
    const o = this.options;
    const bytes =
      o.format === "pcap"
        ? pcapRecordsFromBatch(batch, o.precision)
        : encodePcapngPacketsFromBatch(batch, 0, {
            comments: recordComments(batch, o.comments?.(batch)),
            flags: recordFlags(batch),
            precision: o.precision,
          });
    this.packetsWritten += batch.count;
    this.writeBytes(bytes);
    return this.flush();
  }

  /** Flushes and closes; idempotent. Standard output is flushed but left open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sink.flush();
    if (this.options.target !== "-") await this.sink.end();
  }

  private fileHeader(): Uint8Array {
    const o = this.options;
    if (o.format === "pcap") {
      return encodePcapGlobalHeader({ linktype: o.linktype, snaplen: o.snaplen, precision: o.precision, littleEndian: true });
    }
    const shb = encodePcapngSectionHeader({ userApplication: USER_APPLICATION });
    const idb = encodePcapngInterface({
      linktype: o.linktype,
      snaplen: o.snaplen,
      precision: o.precision,
      ...(o.interfaceName ? { name: o.interfaceName } : {}),
    });
    const header = new Uint8Array(shb.byteLength + idb.byteLength);
    header.set(shb, 0);
    header.set(idb, shb.byteLength);
    return header;
  }

  private writeBytes(bytes: Uint8Array): void {
    this.sink.write(bytes);
    this.bytesWritten += bytes.byteLength;
  }

  private flush(): void | Promise<void> {
    const pending = this.sink.flush();
    if (pending instanceof Promise) return pending.then(() => undefined);
  }
}

/** pcapng opt_comment strings per record: the batch's meta.comments (stages' marks), then `extra` (hook tags). */
function recordComments(
  batch: PacketBatch,
  extra: ((index: number) => readonly string[] | undefined) | undefined,
): ((index: number) => readonly string[] | undefined) | undefined {
  const own = batch.meta?.comments;
  if (!own) return extra;
  if (!extra) return (i) => own[i];
  return (i) => {
    const a = own[i];
    const b = extra(i);
    return a && b ? [...a, ...b] : (a ?? b);
  };
}

/** epb_flags per record from the batch's meta.flags (direction bits); 0 writes no option. */
function recordFlags(batch: PacketBatch): ((index: number) => number | undefined) | undefined {
  const flags = batch.meta?.flags;
  if (!flags) return undefined;
  return (i) => (flags[i] ? flags[i] : undefined);
}
