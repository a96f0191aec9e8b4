// Classic pcap codec: the 24-byte global header and the 16-byte record header, both byte orders,
// and the writer helpers that turn a PacketBatch (already little-endian pcap records) into file bytes.
// Wire map and sources: see wire.ts (draft-ietf-opsawg-pcap; libpcap pcap/pcap.h, sf-pcap.c).
// Pure: no I/O, no Bun APIs.
import { ByteReader } from "../../packet/byte-reader.ts";
import { ByteWriter } from "../../packet/byte-writer.ts";
import { ProtocolError } from "../../packet/protocol-error.ts";
import { BATCH_RECORD_HEADER_BYTES, type PacketBatch, type TimestampPrecision } from "../../packet/packet-batch.ts";
import {
  PCAP_GLOBAL_HEADER_BYTES,
  PCAP_RECORD_HEADER_BYTES,
  PCAP_VERSION_MAJOR,
  PCAP_VERSION_MINOR,
  PcapMagic,
  byteSwap32,
} from "./wire.ts";

/** A decoded classic pcap global header. */
export interface PcapGlobalHeader {
  littleEndian: boolean;
  precision: TimestampPrecision;
  versionMajor: number;
  versionMinor: number;
  /** GMT to local correction; always 0 in practice. */
  thiszone: number;
  /** Timestamp accuracy; always 0 in practice. */
  sigfigs: number;
  snaplen: number;
  /**
   * The whole 32-bit linktype word as stored, FCS bits included (see wire.ts `linktypeOf`,
   * `fcsLengthOf`), so a file read and written back keeps them.
   */
  linktype: number;
}

/** What a writer chooses for a new classic pcap file. */
export interface PcapGlobalHeaderOptions {
  /** The linktype word: a LINKTYPE_* value, optionally with FCS bits (wire.ts `linktypeWithFcs`). */
  linktype: number;
  snaplen: number;
  precision: TimestampPrecision;
  littleEndian: boolean;
}

/** One decoded record header. */
export interface PcapRecordHeader {
  tsSec: number;
  /** Microseconds or nanoseconds, as the file's magic says. */
  tsFrac: number;
  caplen: number;
  len: number;
}

/** The magics as a little-endian read sees them in a big-endian file. */
const MICRO_MAGIC_SWAPPED = byteSwap32(PcapMagic.MICRO);
const NANO_MAGIC_SWAPPED = byteSwap32(PcapMagic.NANO);

/** Byte order and precision told by a classic pcap magic read as little-endian, or undefined. */
export function classifyPcapMagic(magicLe: number): { littleEndian: boolean; precision: TimestampPrecision } | undefined {
  switch (magicLe) {
    case PcapMagic.MICRO:
      return { littleEndian: true, precision: "micro" };
    case PcapMagic.NANO:
      return { littleEndian: true, precision: "nano" };
    case MICRO_MAGIC_SWAPPED:
      return { littleEndian: false, precision: "micro" };
    case NANO_MAGIC_SWAPPED:
      return { littleEndian: false, precision: "nano" };
    default:
      return undefined;
  }
}

/**
 * Decodes the global header at `offset`.
 * Throws ProtocolError "truncated", "bad-magic" or "unsupported-version" (major other than 2;
 * libpcap refuses those too).
 */
export function decodePcapGlobalHeader(bytes: Uint8Array, offset = 0): PcapGlobalHeader {
  const r = new ByteReader(bytes, offset);
  r.need(PCAP_GLOBAL_HEADER_BYTES, "pcap global header");
  const kind = classifyPcapMagic(r.u32(true, "magic"));
  if (!kind) throw new ProtocolError("bad-magic", "not a pcap file: unknown magic number", offset);
  const le = kind.littleEndian;
  const versionMajor = r.u16(le, "version_major");
  const versionMinor = r.u16(le, "version_minor");
  if (versionMajor !== PCAP_VERSION_MAJOR) {
    throw new ProtocolError("unsupported-version", `unsupported pcap version ${versionMajor}.${versionMinor}`, offset + 4);
  }
  return {
    littleEndian: le,
    precision: kind.precision,
    versionMajor,
    versionMinor,
    thiszone: r.i32(le, "thiszone"),
    sigfigs: r.u32(le, "sigfigs"),
    snaplen: r.u32(le, "snaplen"),
    linktype: r.u32(le, "linktype"),
  };
}

/** Encodes a version 2.4 global header (thiszone and sigfigs 0, as every writer since 1998). */
export function encodePcapGlobalHeader(options: PcapGlobalHeaderOptions): Uint8Array {
  const le = options.littleEndian;
  const magic = options.precision === "nano" ? PcapMagic.NANO : PcapMagic.MICRO;
  return new ByteWriter(PCAP_GLOBAL_HEADER_BYTES)
    .u32(magic, le)
    .u16(PCAP_VERSION_MAJOR, le)
    .u16(PCAP_VERSION_MINOR, le)
    .i32(0, le)
    .u32(0, le)
    .u32(options.snaplen, le)
    .u32(options.linktype, le)
    .finish();
}

/** Decodes a record header at `offset` (no checks against snaplen here: the reader does those). */
export function decodePcapRecordHeader(bytes: Uint8Array, offset: number, littleEndian: boolean): PcapRecordHeader {
  const r = new ByteReader(bytes, offset);
  r.need(PCAP_RECORD_HEADER_BYTES, "pcap record header");
  return {
    tsSec: r.u32(littleEndian, "ts_sec"),
    tsFrac: r.u32(littleEndian, "ts_frac"),
    caplen: r.u32(littleEndian, "caplen"),
    len: r.u32(littleEndian, "len"),
  };
}

/** Encodes a record header (16 bytes, no data). */
export function encodePcapRecordHeader(header: PcapRecordHeader, littleEndian: boolean): Uint8Array {
  return new ByteWriter(PCAP_RECORD_HEADER_BYTES)
    .u32(header.tsSec, littleEndian)
    .u32(header.tsFrac, littleEndian)
    .u32(header.caplen, littleEndian)
    .u32(header.len, littleEndian)
    .finish();
}

/**
 * The batch as classic pcap records for a file of `targetPrecision` and byte order.
 * A batch already is little-endian pcap records, so when the precision matches and the file is
 * little-endian this returns `batch.bytes` itself (borrowed: do not modify). Otherwise it returns
 * an owned copy with ts_frac converted (micro to nano multiplies by 1000, nano to micro truncates)
 * and, for a big-endian file, the four header words swapped.
 */
export function pcapRecordsFromBatch(batch: PacketBatch, targetPrecision: TimestampPrecision, littleEndian = true): Uint8Array {
  if (batch.precision === targetPrecision && littleEndian) return batch.bytes;
  const out = batch.bytes.slice();
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const toNano = batch.precision === "micro" && targetPrecision === "nano";
  const toMicro = batch.precision === "nano" && targetPrecision === "micro";
  let at = 0;
  for (let i = 0; i < batch.count; i++) {
    let frac = dv.getUint32(at + 4, true);
    if (toNano) {
      frac *= 1000;
      // A well-formed micro ts_frac is < 10^6, so only a corrupt batch can overflow here.
      if (frac > 0xffffffff) throw new RangeError(`ts_frac ${frac / 1000} us does not fit in nanoseconds`);
    } else if (toMicro) {
      frac = Math.floor(frac / 1000);
    }
    const caplen = dv.getUint32(at + 8, true);
    if (littleEndian) {
      dv.setUint32(at + 4, frac, true);
    } else {
      dv.setUint32(at, dv.getUint32(at, true), false);
      dv.setUint32(at + 4, frac, false);
      dv.setUint32(at + 8, caplen, false);
      dv.setUint32(at + 12, dv.getUint32(at + 12, true), false);
    }
    at += BATCH_RECORD_HEADER_BYTES + caplen;
  }
  return out;
}
