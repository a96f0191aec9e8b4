// CaptureFileWriter: writes a classic pcap or pcapng file (or standard output for `-w -`).
// Each batch is one write followed by a flush, so a reader on a pipe
// (`probe capture -w - | tshark -r -`) sees packets as they are captured. The file is opened
// by openCaptureTarget: never through a planted symbolic link, never truncating a hard link.
//
// The bytes come from CaptureFileEncoder, as the rotating files' do: pcapng keeps one IDB per
// pipeline input (name, link type, snaplen, if_tsresol) and writes each record with its input's
// interface id (meta.inputs), its EPB flags (meta.flags; a word of 0 is left out) and its
// comments (meta.comments: hook tags). Classic pcap has one link type for the whole file.
import type { FileSink } from "bun";
import { closeSync } from "node:fs";
import type { PacketBatch, TimestampPrecision } from "../../packet/packet-batch.ts";
import { CaptureFileEncoder } from "../../protocols/pcap/index.ts";
import { openCaptureTarget } from "./open-capture-target.ts";

export type CaptureFileFormat = "pcap" | "pcapng";

/** One pcapng interface (IDB): a pipeline input. */
export interface CaptureFileInterface {
  linktype: number;
  snaplen: number;
  name?: string;
}

export interface CaptureFileOptions {
  /** A path, or "-" for standard output. */
  target: string;
  format: CaptureFileFormat;
  /** The file's link type (pcap) or the first interface's (pcapng, when `interfaces` is absent). */
  linktype: number;
  snaplen: number;
  /** Timestamp precision written to the file (pcap magic or pcapng if_tsresol). */
  precision: TimestampPrecision;
  /** pcapng only: interface name recorded in the IDB (when `interfaces` is absent). */
  interfaceName?: string;
  /** pcapng only: one IDB per pipeline input, in input order (meta.inputs indexes them). */
  interfaces?: readonly CaptureFileInterface[];
}

export class CaptureFileWriter {
  private readonly sink: FileSink;
  private readonly encoder: CaptureFileEncoder;
  private closed = false;
  packetsWritten = 0;
  bytesWritten = 0;

  /** The descriptor opened for a path (standard output has none of ours). */
  private readonly fd: number | undefined;

  private constructor(private readonly options: CaptureFileOptions) {
    const interfaces = options.interfaces ?? [{ linktype: options.linktype, snaplen: options.snaplen, name: options.interfaceName }];
    this.encoder = new CaptureFileEncoder({
      format: options.format,
      precision: options.precision,
      // pcap: the options' link type and snaplen; pcapng: one IDB per input, named when it has a name.
      interfaces: options.format === "pcap" ? [{ linktype: options.linktype, snaplen: options.snaplen }] : interfaces.map((i) => ({ linktype: i.linktype, snaplen: i.snaplen, name: i.name || undefined })),
      writeZeroFlags: false,
    });
    if (options.target === "-") {
      this.sink = Bun.stdout.writer();
    } else {
      this.fd = openCaptureTarget(options.target).fd;
      this.sink = Bun.file(this.fd).writer();
    }
    this.writeBytes(this.encoder.header);
  }

  /**
   * Creates the file (truncating a regular file the user named, as tcpdump does; a device or
   * FIFO is written as it is) and writes its header. Throws CaptureTargetError (one line) for
   * a target it refuses: a symbolic link others could have planted, a hard-linked file.
   */
  static async open(options: CaptureFileOptions): Promise<CaptureFileWriter> {
    const writer = new CaptureFileWriter(options);
    try {
      await writer.flush();
    } catch (error) {
      await writer.close().catch(() => undefined);
      throw error;
    }
    return writer;
  }

  write(batch: PacketBatch): void | Promise<void> {
    if (this.closed) return;
    this.writeBytes(this.encoder.encode(batch));
    this.packetsWritten += batch.count;
    return this.flush();
  }

  /** Flushes and closes; idempotent. Standard output is flushed but left open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.sink.flush();
      if (this.options.target !== "-") await this.sink.end();
    } finally {
      // A FileSink made from a descriptor leaves it open (Bun 1.4.4).
      if (this.fd !== undefined) closeSync(this.fd);
    }
  }

  private writeBytes(bytes: Uint8Array): void {
    // FileSink.write copies (or writes) the bytes before it returns: verified on Bun 1.4.4 by
    // overwriting a SharedArrayBuffer view right after write(), to a file and to a slow pipe,
    // and finding none of the overwrite in the output. So lent batches need no copy here.
    this.sink.write(bytes);
    this.bytesWritten += bytes.byteLength;
  }

  private flush(): void | Promise<void> {
    const pending = this.sink.flush();
    if (pending instanceof Promise) return pending.then(() => undefined);
  }
}
