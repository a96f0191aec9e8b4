// CaptureFileEncoder: the bytes of a pcap or pcapng file, for every output that writes one (the
// -w file and the rotating files). Modelled on gopacket's pcapgo NgWriter: it owns the file's
// header (pcapng: the section header and one interface description per input, whose index is the
// interface id) and turns batches into records for that header: each record with its input's
// interface id (meta.inputs), EPB flags (meta.flags) and comments (meta.comments, or the
// caller's). It does no I/O: the outputs own their files (opening without following links,
// .part files, rotation) and write what this returns.
import { BATCH_RECORD_HEADER_BYTES, sliceRecords, type PacketBatch, type TimestampPrecision } from "../../packet/packet-batch.ts";
import { encodePcapGlobalHeader, pcapRecordsFromBatch } from "./pcap-codec.ts";
import { encodePcapngInterface, encodePcapngPacketsFromBatch, encodePcapngSectionHeader } from "./pcapng-codec.ts";
import { pad4, PCAPNG_OPTION_HEADER_BYTES, PcapngMinBlockBytes } from "./wire.ts";

/** One input of the file: a pcapng interface description (IDB); pcap keeps only the first link type. */
export interface CaptureFileInterface {
  readonly linktype: number;
  readonly snaplen: number;
  /** if_name; written when present (an empty string is written as an empty option). */
  readonly name?: string | undefined;
  /** if_description; written when present. */
  readonly description?: string | undefined;
}

export interface CaptureFileEncoderOptions {
  readonly format: "pcap" | "pcapng";
  /** Timestamp precision written (pcap magic, pcapng if_tsresol); records are converted to it. */
  readonly precision: TimestampPrecision;
  /** The inputs in order (meta.inputs indexes them); at least one. pcap: the first's link type and the largest snaplen. */
  readonly interfaces: readonly CaptureFileInterface[];
  /**
   * pcapng: write an EPB flags word of 0 as an epb_flags option (the rotating files do), or
   * leave it out (the -w file does). Both read the same: 0 says nothing of direction.
   */
  readonly writeZeroFlags: boolean;
}

/** Comments for record `index` of the batch being encoded (undefined: none). */
export type RecordComments = (index: number) => readonly string[] | undefined;

/** Identifies the writer in pcapng's shb_userappl. */
const USER_APPLICATION = "probe";
/** epb_flags is a u32 (draft-ietf-opsawg-pcapng section 4.3.1). */
const EPB_FLAGS_VALUE_BYTES = 4;

export class CaptureFileEncoder {
  /** The file's header, encoded once: the pcap global header, or the SHB and one IDB per input. */
  readonly header: Uint8Array;

  constructor(private readonly options: CaptureFileEncoderOptions) {
    if (options.interfaces.length === 0) throw new RangeError("a capture file needs at least one interface");
    this.header = options.format === "pcap" ? this.pcapHeader() : this.pcapngHeader();
  }

  /**
   * The records of `batch` as file bytes (pcap: the batch's own bytes when the precision already
   * matches, else a converted copy). `comments` replaces meta.comments when given.
   */
  encode(batch: PacketBatch, comments?: RecordComments): Uint8Array {
    const o = this.options;
    if (o.format === "pcap") return pcapRecordsFromBatch(batch, o.precision);
    const inputs = batch.meta?.inputs;
    const commentsOf = comments ?? this.metaComments(batch);
    const flagsOf = this.flagsOf(batch);
    let uniform = true;
    if (inputs) for (let i = 1; i < batch.count && uniform; i++) uniform = inputs[i] === inputs[0];
    if (uniform) return encodePcapngPacketsFromBatch(batch, inputs?.[0] ?? 0, { comments: commentsOf, flags: flagsOf, precision: o.precision });
    // Several inputs: one encode per run of records from one input (its interface id).
    const parts: Uint8Array[] = [];
    const view = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
    let start = 0;
    let startOffset = 0;
    let offset = 0;
    for (let i = 0; i <= batch.count; i++) {
      if (i === batch.count || inputs![i] !== inputs![start]) {
        const base = start;
        parts.push(
          encodePcapngPacketsFromBatch(sliceRecords(batch, start, i, startOffset, offset), inputs![start]!, {
            comments: commentsOf && ((k: number) => commentsOf(base + k)),
            flags: flagsOf && ((k: number) => flagsOf(base + k)),
            precision: o.precision,
          }),
        );
        start = i;
        startOffset = offset;
      }
      if (i < batch.count) offset += BATCH_RECORD_HEADER_BYTES + view.getUint32(offset + 8, true);
    }
    return concat(parts);
  }

  /**
   * Bytes record `index` (of `caplen` captured bytes) takes in the file as encode() lays it out,
   * with these comments: for size limits decided before encoding.
   */
  recordBytes(batch: PacketBatch, index: number, caplen: number, comments: readonly string[] | undefined): number {
    if (this.options.format === "pcap") return BATCH_RECORD_HEADER_BYTES + caplen;
    let size = PcapngMinBlockBytes.ENHANCED_PACKET + pad4(caplen);
    // Read directly, not through flagsOf(): this runs once per record and must not allocate.
    const word = batch.meta?.flags?.[index];
    const flags = word === 0 && !this.options.writeZeroFlags ? undefined : word;
    if (comments || flags !== undefined) {
      let options = 0;
      for (const c of comments ?? []) options += PCAPNG_OPTION_HEADER_BYTES + pad4(Buffer.byteLength(c, "utf8"));
      if (flags !== undefined) options += PCAPNG_OPTION_HEADER_BYTES + EPB_FLAGS_VALUE_BYTES;
      if (options > 0) size += options + PCAPNG_OPTION_HEADER_BYTES; // opt_endofopt
    }
    return size;
  }

  private metaComments(batch: PacketBatch): RecordComments | undefined {
    const comments = batch.meta?.comments;
    return comments ? (index) => comments[index] : undefined;
  }

  private flagsOf(batch: PacketBatch): ((index: number) => number | undefined) | undefined {
    const flags = batch.meta?.flags;
    if (!flags) return undefined;
    return this.options.writeZeroFlags ? (index) => flags[index] : (index) => flags[index] || undefined;
  }

  private pcapHeader(): Uint8Array {
    const { interfaces, precision } = this.options;
    const snaplen = Math.max(...interfaces.map((i) => i.snaplen));
    return encodePcapGlobalHeader({ linktype: interfaces[0]!.linktype, snaplen, precision, littleEndian: true });
  }

  private pcapngHeader(): Uint8Array {
    const { interfaces, precision } = this.options;
    return concat([
      encodePcapngSectionHeader({ userApplication: USER_APPLICATION }),
      ...interfaces.map((i) =>
        encodePcapngInterface({
          linktype: i.linktype,
          snaplen: i.snaplen,
          precision,
          ...(i.name !== undefined ? { name: i.name } : {}),
          ...(i.description !== undefined ? { description: i.description } : {}),
        }),
      ),
    ]);
  }
}

/** The parts as one buffer (the part itself when there is one: no copy). */
function concat(parts: readonly Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
