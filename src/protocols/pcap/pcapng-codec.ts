// pcapng codec: encode and decode the Section Header, Interface Description, Enhanced Packet,
// Simple Packet and Obsolete Packet blocks in both byte orders; every other block is framed and skipped.
// Wire map in wire.ts; source draft-ietf-opsawg-pcapng, checked against libpcap sf-pcapng.c and tshark.
// Pure: no I/O, no Bun APIs.
//
//   SHB  0x0A0D0D0A len  magic:u32 major:u16 minor:u16 section_length:i64  options  len
//   IDB  0x00000001 len  linktype:u16 reserved:u16 snaplen:u32              options  len
//   EPB  0x00000006 len  interface_id:u32 ts_high:u32 ts_low:u32 caplen:u32 len:u32 data(pad 4) options len
//   OPB  0x00000002 len  interface_id:u16 drops:u16 ts_high:u32 ts_low:u32 caplen:u32 len:u32 data(pad 4) options len
//   SPB  0x00000003 len  len:u32 data(pad 4)                                         len
//
// Timestamps are 64-bit counts of if_tsresol units since 1970 (plus if_tsoffset seconds).
import { ByteReader } from "../../packet/byte-reader.ts";
import { ByteWriter } from "../../packet/byte-writer.ts";
import { ProtocolError } from "../../packet/protocol-error.ts";
import { BATCH_RECORD_HEADER_BYTES, type PacketBatch, type TimestampPrecision } from "../../packet/packet-batch.ts";
import {
  DEFAULT_MAX_BLOCK_BYTES,
  DEFAULT_TSRESOL,
  EpbOption,
  IdbOption,
  LinktypeField,
  MICROS_PER_SECOND,
  NANO_TSRESOL,
  NANOS_PER_SECOND,
  PCAPNG_ACCEPTED_MINOR_VERSIONS,
  PCAPNG_BLOCK_FRAME_BYTES,
  PCAPNG_BLOCK_PEEK_BYTES,
  PCAPNG_BYTE_ORDER_MAGIC,
  PCAPNG_OPTION_HEADER_BYTES,
  PCAPNG_SECTION_LENGTH_UNKNOWN,
  PCAPNG_VERSION_MAJOR,
  PCAPNG_VERSION_MINOR,
  PcapngBlockType,
  PcapngMinBlockBytes,
  PcapngOption,
  ShbOption,
  TSRESOL_BASE2_FLAG,
  byteSwap32,
  fcsLengthOf,
  linktypeOf,
  linktypeWithFcs,
  pad4,
  pcapngBlockTypeName,
} from "./wire.ts";

const utf8Decoder = new TextDecoder("utf-8", { fatal: false });
const utf8Encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Decoded shapes

export interface PcapngSectionHeader {
  kind: "section-header";
  littleEndian: boolean;
  versionMajor: number;
  versionMinor: number;
  /** Bytes of the section after this block, or -1n when unknown. */
  sectionLength: bigint;
  comments: string[];
  hardware?: string;
  os?: string;
  userApplication?: string;
  totalLength: number;
}

export interface PcapngInterface {
  kind: "interface-description";
  /** LINKTYPE_* (16 bits in pcapng). */
  linktype: number;
  /** 0 means "no limit" in pcapng. */
  snaplen: number;
  name?: string;
  description?: string;
  /** The raw if_tsresol byte (6 when the option is absent). */
  tsresol: number;
  /** if_tsoffset, seconds added to every timestamp (0 when absent). */
  tsoffsetSeconds: number;
  /** if_fcslen: bytes of FCS at the end of each packet, when the option is present. */
  fcsLengthBytes?: number;
  comments: string[];
  totalLength: number;
}

export interface PcapngPacket {
  kind: "enhanced-packet" | "obsolete-packet";
  interfaceId: number;
  timestampHigh: number;
  timestampLow: number;
  caplen: number;
  len: number;
  /** Borrowed view of the packet data inside the input bytes. */
  data: Uint8Array;
  comments: string[];
  /** epb_flags (pack_flags in an OPB), when present. */
  flags?: number;
  /** OPB only: drops_count. */
  dropsCount?: number;
  totalLength: number;
}

export interface PcapngSimplePacket {
  kind: "simple-packet";
  len: number;
  caplen: number;
  /** Borrowed view of the packet data inside the input bytes. */
  data: Uint8Array;
  totalLength: number;
}

export interface PcapngOtherBlock {
  kind: "other";
  blockType: number;
  totalLength: number;
}

export type PcapngBlock = PcapngSectionHeader | PcapngInterface | PcapngPacket | PcapngSimplePacket | PcapngOtherBlock;

// ---------------------------------------------------------------------------------------------
// Block framing

/**
 * Byte order of the section whose SHB starts at `offset`, from its byte-order magic.
 * Throws "truncated" or "bad-magic".
 */
export function pcapngSectionByteOrder(bytes: Uint8Array, offset: number): boolean {
  const magicLe = new ByteReader(bytes, offset + 8).u32(true, "byte-order magic");
  if (magicLe === PCAPNG_BYTE_ORDER_MAGIC) return true;
  if (magicLe === byteSwap32(PCAPNG_BYTE_ORDER_MAGIC)) return false;
  throw new ProtocolError("bad-magic", "pcapng section header has a bad byte-order magic", offset + 8);
}

/**
 * Reads and checks a block's type and total length from its first 12 bytes, so a streaming
 * reader knows how many bytes to wait for before allocating anything. For an SHB the byte order
 * comes from its own magic; otherwise from `littleEndian` (the section's).
 * Checks: multiple of 4, at least the frame (12), at least the type's fixed fields, at most
 * `maxBlockBytes` (CVE-2019-15165 was libpcap trusting this length).
 * Throws "truncated", "bad-magic", "bad-block-length", "block-too-short", "block-too-large".
 */
export function pcapngBlockLength(
  bytes: Uint8Array,
  offset: number,
  littleEndian: boolean,
  maxBlockBytes = DEFAULT_MAX_BLOCK_BYTES,
): number {
  const r = new ByteReader(bytes, offset);
  r.need(PCAPNG_BLOCK_PEEK_BYTES, "pcapng block header");
  const type = r.u32(true, "block_type");
  const le = type === PcapngBlockType.SECTION_HEADER ? pcapngSectionByteOrder(bytes, offset) : littleEndian;
  const blockType = le ? type : byteSwap32(type);
  const totalLength = r.u32(le, "block_total_length");
  checkPcapngBlockLength(blockType, totalLength, offset, maxBlockBytes);
  return totalLength;
}

/** The block type at `offset` in the section's byte order (an SHB reads the same either way). */
export function pcapngBlockType(bytes: Uint8Array, offset: number, littleEndian: boolean): number {
  return new ByteReader(bytes, offset).u32(littleEndian, "block_type");
}

/**
 * The length checks of `pcapngBlockLength` for a block whose type and length were already read
 * (no allocation: readers call it once per block). `offset` is the block's first byte.
 */
export function checkPcapngBlockLength(blockType: number, totalLength: number, offset: number, maxBlockBytes: number): void {
  if (totalLength % 4 !== 0) {
    throw new ProtocolError("bad-block-length", `pcapng block length ${totalLength} is not a multiple of 4`, offset + 4);
  }
  const minimum = minimumBlockBytes(blockType);
  if (totalLength < minimum) {
    throw new ProtocolError(
      "block-too-short",
      `${pcapngBlockTypeName(blockType)} length ${totalLength} is below its minimum ${minimum}`,
      offset + 4,
    );
  }
  if (totalLength > maxBlockBytes) {
    throw new ProtocolError("block-too-large", `pcapng block length ${totalLength} exceeds the cap ${maxBlockBytes}`, offset + 4);
  }
}

function minimumBlockBytes(blockType: number): number {
  switch (blockType) {
    case PcapngBlockType.SECTION_HEADER:
      return PcapngMinBlockBytes.SECTION_HEADER;
    case PcapngBlockType.INTERFACE_DESCRIPTION:
      return PcapngMinBlockBytes.INTERFACE_DESCRIPTION;
    case PcapngBlockType.ENHANCED_PACKET:
      return PcapngMinBlockBytes.ENHANCED_PACKET;
    case PcapngBlockType.OBSOLETE_PACKET:
      return PcapngMinBlockBytes.OBSOLETE_PACKET;
    case PcapngBlockType.SIMPLE_PACKET:
      return PcapngMinBlockBytes.SIMPLE_PACKET;
    default:
      return PCAPNG_BLOCK_FRAME_BYTES;
  }
}

/** Throws "truncated" unless the whole block is present, and "block-length-mismatch" unless the trailing copy agrees. */
export function checkPcapngBlockTrailer(bytes: Uint8Array, offset: number, totalLength: number, littleEndian: boolean): void {
  const r = new ByteReader(bytes, offset);
  r.need(totalLength, "pcapng block");
  r.skip(totalLength - 4);
  const copy = r.u32(littleEndian, "trailing block_total_length");
  if (copy !== totalLength) {
    throw new ProtocolError(
      "block-length-mismatch",
      `pcapng block length ${totalLength} disagrees with its trailing copy ${copy}`,
      offset + totalLength - 4,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Options

/**
 * Calls `visit` for each option in [start, end), stopping at opt_endofopt or the end.
 * `value` is a borrowed view. Throws "bad-option-length" when an option runs past the end.
 */
export function forEachPcapngOption(
  bytes: Uint8Array,
  start: number,
  end: number,
  littleEndian: boolean,
  visit: (code: number, value: Uint8Array, valueOffset: number) => void,
): void {
  const r = new ByteReader(bytes, start, end);
  while (r.remaining >= PCAPNG_OPTION_HEADER_BYTES) {
    const at = r.offset;
    const code = r.u16(littleEndian, "option code");
    const length = r.u16(littleEndian, "option length");
    if (code === PcapngOption.END_OF_OPT) return;
    if (pad4(length) > r.remaining) {
      throw new ProtocolError("bad-option-length", `option ${code} length ${length} runs past its block`, at + 2);
    }
    const valueOffset = r.offset;
    visit(code, r.bytesView(length, "option value"), valueOffset);
    r.skip(pad4(length) - length, "option padding");
  }
}

function optionU8(value: Uint8Array, code: number, offset: number): number {
  if (value.byteLength !== 1) throw new ProtocolError("bad-option-length", `option ${code} must be 1 byte`, offset);
  return value[0]!;
}

function optionU32(value: Uint8Array, code: number, offset: number, le: boolean): number {
  if (value.byteLength !== 4) throw new ProtocolError("bad-option-length", `option ${code} must be 4 bytes`, offset);
  return new DataView(value.buffer, value.byteOffset, 4).getUint32(0, le);
}

function optionI64(value: Uint8Array, code: number, offset: number, le: boolean): number {
  if (value.byteLength !== 8) throw new ProtocolError("bad-option-length", `option ${code} must be 8 bytes`, offset);
  return Number(new DataView(value.buffer, value.byteOffset, 8).getBigInt64(0, le));
}

// ---------------------------------------------------------------------------------------------
// Block decoders: each takes the offset of the block's first byte and checks the frame itself.

/**
 * Decodes any block at `offset` in a section of the given byte order (an SHB brings its own).
 * Throws the framing errors of `pcapngBlockLength` and `checkPcapngBlockTrailer`, plus the
 * per-block ones. `interfaceSnaplen` is interface 0's snaplen, needed only for an SPB.
 */
export function decodePcapngBlock(
  bytes: Uint8Array,
  offset: number,
  littleEndian: boolean,
  options: { maxBlockBytes?: number; interfaceSnaplen?: number } = {},
): PcapngBlock {
  const totalLength = pcapngBlockLength(bytes, offset, littleEndian, options.maxBlockBytes);
  const type = new ByteReader(bytes, offset).u32(true, "block_type");
  if (type === PcapngBlockType.SECTION_HEADER) return decodePcapngSectionHeader(bytes, offset, options.maxBlockBytes);
  checkPcapngBlockTrailer(bytes, offset, totalLength, littleEndian);
  const blockType = littleEndian ? type : byteSwap32(type);
  switch (blockType) {
    case PcapngBlockType.INTERFACE_DESCRIPTION:
      return decodeInterfaceBody(bytes, offset, totalLength, littleEndian);
    case PcapngBlockType.ENHANCED_PACKET:
    case PcapngBlockType.OBSOLETE_PACKET:
      return decodePacketBody(bytes, offset, totalLength, littleEndian, blockType);
    case PcapngBlockType.SIMPLE_PACKET:
      return decodeSimplePacketBody(bytes, offset, totalLength, littleEndian, options.interfaceSnaplen ?? 0);
    default:
      return { kind: "other", blockType, totalLength };
  }
}

/**
 * Decodes an SHB. Throws "bad-magic" (block type or byte-order magic), "unsupported-version"
 * (anything but 1.0 and 1.2), and the framing errors.
 */
export function decodePcapngSectionHeader(bytes: Uint8Array, offset: number, maxBlockBytes = DEFAULT_MAX_BLOCK_BYTES): PcapngSectionHeader {
  const r = new ByteReader(bytes, offset);
  const type = r.u32(true, "block_type");
  if (type !== PcapngBlockType.SECTION_HEADER) throw new ProtocolError("bad-magic", "not a pcapng section header", offset);
  const le = pcapngSectionByteOrder(bytes, offset);
  const totalLength = pcapngBlockLength(bytes, offset, le, maxBlockBytes);
  checkPcapngBlockTrailer(bytes, offset, totalLength, le);
  r.skip(8, "block_total_length and magic");
  const versionMajor = r.u16(le, "major_version");
  const versionMinor = r.u16(le, "minor_version");
  if (versionMajor !== PCAPNG_VERSION_MAJOR || !PCAPNG_ACCEPTED_MINOR_VERSIONS.includes(versionMinor)) {
    throw new ProtocolError("unsupported-version", `unsupported pcapng version ${versionMajor}.${versionMinor}`, offset + 12);
  }
  const lengthAt = r.offset;
  r.skip(8, "section_length");
  const sectionLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigInt64(lengthAt, le);
  const header: PcapngSectionHeader = {
    kind: "section-header",
    littleEndian: le,
    versionMajor,
    versionMinor,
    sectionLength,
    comments: [],
    totalLength,
  };
  forEachPcapngOption(bytes, r.offset, offset + totalLength - 4, le, (code, value) => {
    if (code === PcapngOption.COMMENT) header.comments.push(utf8Decoder.decode(value));
    else if (code === ShbOption.HARDWARE) header.hardware = utf8Decoder.decode(value);
    else if (code === ShbOption.OS) header.os = utf8Decoder.decode(value);
    else if (code === ShbOption.USER_APPLICATION) header.userApplication = utf8Decoder.decode(value);
  });
  return header;
}

function decodeInterfaceBody(bytes: Uint8Array, offset: number, totalLength: number, le: boolean): PcapngInterface {
  const r = new ByteReader(bytes, offset + 8, offset + totalLength - 4);
  const linktype = r.u16(le, "linktype");
  r.skip(2, "reserved");
  const snaplen = r.u32(le, "snaplen");
  const idb: PcapngInterface = {
    kind: "interface-description",
    linktype,
    snaplen,
    tsresol: DEFAULT_TSRESOL,
    tsoffsetSeconds: 0,
    comments: [],
    totalLength,
  };
  forEachPcapngOption(bytes, r.offset, offset + totalLength - 4, le, (code, value, at) => {
    if (code === PcapngOption.COMMENT) idb.comments.push(utf8Decoder.decode(value));
    else if (code === IdbOption.NAME) idb.name = utf8Decoder.decode(value);
    else if (code === IdbOption.DESCRIPTION) idb.description = utf8Decoder.decode(value);
    else if (code === IdbOption.TSRESOL) idb.tsresol = optionU8(value, code, at);
    else if (code === IdbOption.FCSLEN) idb.fcsLengthBytes = optionU8(value, code, at);
    else if (code === IdbOption.TSOFFSET) idb.tsoffsetSeconds = optionI64(value, code, at, le);
  });
  return idb;
}

/** Decodes an IDB at `offset` (framing checked). */
export function decodePcapngInterface(bytes: Uint8Array, offset: number, littleEndian: boolean): PcapngInterface {
  const totalLength = pcapngBlockLength(bytes, offset, littleEndian);
  checkPcapngBlockTrailer(bytes, offset, totalLength, littleEndian);
  expectType(bytes, offset, littleEndian, PcapngBlockType.INTERFACE_DESCRIPTION);
  return decodeInterfaceBody(bytes, offset, totalLength, littleEndian);
}

/**
 * Fixed fields of an EPB or OPB, filled in place so a reader decodes packets without allocating.
 * `dataOffset` is where the packet data starts in the input bytes; `optionsOffset` where options start.
 */
export interface PacketBlockFields {
  interfaceId: number;
  timestampHigh: number;
  timestampLow: number;
  caplen: number;
  len: number;
  dataOffset: number;
  optionsOffset: number;
  dropsCount: number;
}

/** A fresh fields object to reuse across `readPacketBlockFields` calls. */
export function newPacketBlockFields(): PacketBlockFields {
  return { interfaceId: 0, timestampHigh: 0, timestampLow: 0, caplen: 0, len: 0, dataOffset: 0, optionsOffset: 0, dropsCount: 0 };
}

/**
 * Reads the fixed fields of an EPB (or OPB when `obsolete`) whose frame was already checked,
 * and checks caplen against the block ("caplen-exceeds-block") and against len ("caplen-exceeds-len").
 */
export function readPacketBlockFields(
  view: DataView,
  offset: number,
  totalLength: number,
  le: boolean,
  obsolete: boolean,
  out: PacketBlockFields,
): void {
  if (obsolete) {
    out.interfaceId = view.getUint16(offset + 8, le);
    out.dropsCount = view.getUint16(offset + 10, le);
  } else {
    out.interfaceId = view.getUint32(offset + 8, le);
    out.dropsCount = 0;
  }
  out.timestampHigh = view.getUint32(offset + 12, le);
  out.timestampLow = view.getUint32(offset + 16, le);
  const caplen = view.getUint32(offset + 20, le);
  const len = view.getUint32(offset + 24, le);
  const room = totalLength - PcapngMinBlockBytes.ENHANCED_PACKET;
  if (caplen > room) {
    throw new ProtocolError("caplen-exceeds-block", `caplen ${caplen} exceeds the ${room} bytes its block holds`, offset + 20);
  }
  if (caplen > len) {
    throw new ProtocolError("caplen-exceeds-len", `caplen ${caplen} exceeds len ${len}`, offset + 20);
  }
  out.caplen = caplen;
  out.len = len;
  out.dataOffset = offset + 28;
  out.optionsOffset = offset + 28 + pad4(caplen);
}

function decodePacketBody(bytes: Uint8Array, offset: number, totalLength: number, le: boolean, blockType: number): PcapngPacket {
  const obsolete = blockType === PcapngBlockType.OBSOLETE_PACKET;
  const fields = newPacketBlockFields();
  readPacketBlockFields(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset, totalLength, le, obsolete, fields);
  const packet: PcapngPacket = {
    kind: obsolete ? "obsolete-packet" : "enhanced-packet",
    interfaceId: fields.interfaceId,
    timestampHigh: fields.timestampHigh,
    timestampLow: fields.timestampLow,
    caplen: fields.caplen,
    len: fields.len,
    data: bytes.subarray(fields.dataOffset, fields.dataOffset + fields.caplen),
    comments: [],
    totalLength,
  };
  if (obsolete) packet.dropsCount = fields.dropsCount;
  // EPB_FLAGS and OPB's pack_flags share option code 2.
  forEachPcapngOption(bytes, fields.optionsOffset, offset + totalLength - 4, le, (code, value, at) => {
    if (code === PcapngOption.COMMENT) packet.comments.push(utf8Decoder.decode(value));
    else if (code === EpbOption.FLAGS) packet.flags = optionU32(value, code, at, le);
  });
  return packet;
}

/** Decodes an EPB at `offset` (framing checked). */
export function decodePcapngEnhancedPacket(bytes: Uint8Array, offset: number, littleEndian: boolean): PcapngPacket {
  const totalLength = pcapngBlockLength(bytes, offset, littleEndian);
  checkPcapngBlockTrailer(bytes, offset, totalLength, littleEndian);
  expectType(bytes, offset, littleEndian, PcapngBlockType.ENHANCED_PACKET);
  return decodePacketBody(bytes, offset, totalLength, littleEndian, PcapngBlockType.ENHANCED_PACKET);
}

/**
 * caplen of an SPB: the smallest of the original length, what the block holds, and interface
 * 0's snaplen when that is not 0 (draft-ietf-opsawg-pcapng section 4.4).
 */
export function simplePacketCaplen(len: number, totalLength: number, snaplen: number): number {
  let caplen = Math.min(len, totalLength - PcapngMinBlockBytes.SIMPLE_PACKET);
  if (snaplen !== 0) caplen = Math.min(caplen, snaplen);
  return caplen;
}

function decodeSimplePacketBody(bytes: Uint8Array, offset: number, totalLength: number, le: boolean, snaplen: number): PcapngSimplePacket {
  const len = new ByteReader(bytes, offset + 8).u32(le, "original packet length");
  const caplen = simplePacketCaplen(len, totalLength, snaplen);
  return { kind: "simple-packet", len, caplen, data: bytes.subarray(offset + 12, offset + 12 + caplen), totalLength };
}

function expectType(bytes: Uint8Array, offset: number, le: boolean, expected: number): void {
  const type = pcapngBlockType(bytes, offset, le);
  if (type !== expected) {
    throw new ProtocolError("unexpected-block", `expected ${pcapngBlockTypeName(expected)}, found ${pcapngBlockTypeName(type)}`, offset);
  }
}

// ---------------------------------------------------------------------------------------------
// Timestamps

/** Seconds and fraction of one packet, in the interface clock's precision. */
export interface TimestampParts {
  tsSec: number;
  tsFrac: number;
}

/**
 * Turns an interface's 64-bit timestamps into (seconds, fraction) in micro- or nanoseconds.
 * Resolutions of 10^-6 and coarser become microseconds, finer ones nanoseconds (finer than
 * 10^-9 is truncated). Power-of-ten resolutions up to 10^-9 take an exact path without BigInt:
 * a 64-bit timestamp does not fit a double, so it is divided in 16-bit limbs.
 */
export class InterfaceClock {
  readonly precision: TimestampPrecision;
  /** Divisor for the fast path (10^n), or 0 when BigInt arithmetic is needed. */
  private readonly divisor: number;
  private readonly multiplier: number;
  private readonly unitsPerSecond: bigint;
  private readonly targetPerSecond: bigint;

  constructor(
    readonly tsresol: number,
    readonly tsoffsetSeconds = 0,
  ) {
    const base2 = (tsresol & TSRESOL_BASE2_FLAG) !== 0;
    const exponent = tsresol & ~TSRESOL_BASE2_FLAG;
    this.unitsPerSecond = base2 ? 1n << BigInt(exponent) : 10n ** BigInt(exponent);
    this.precision = this.unitsPerSecond <= BigInt(MICROS_PER_SECOND) ? "micro" : "nano";
    this.targetPerSecond = BigInt(this.precision === "micro" ? MICROS_PER_SECOND : NANOS_PER_SECOND);
    if (!base2 && exponent <= 9) {
      this.divisor = 10 ** exponent;
      this.multiplier = 10 ** ((this.precision === "micro" ? 6 : 9) - exponent);
    } else {
      this.divisor = 0;
      this.multiplier = 0;
    }
  }

  /** Fills `out`; returns false when the seconds (after if_tsoffset) do not fit in u32. */
  split(high: number, low: number, out: TimestampParts): boolean {
    let seconds: number;
    let fraction: number;
    const d = this.divisor;
    if (d !== 0) {
      // Long division of the 64-bit value by d < 2^30 in 16-bit limbs: every partial
      // remainder * 65536 stays below 2^46, exact in a double.
      let x = high >>> 16;
      const q3 = Math.floor(x / d);
      x = (x - q3 * d) * 65536 + (high & 0xffff);
      const q2 = Math.floor(x / d);
      x = (x - q2 * d) * 65536 + (low >>> 16);
      const q1 = Math.floor(x / d);
      x = (x - q1 * d) * 65536 + (low & 0xffff);
      const q0 = Math.floor(x / d);
      fraction = (x - q0 * d) * this.multiplier;
      seconds = ((q3 * 65536 + q2) * 65536 + q1) * 65536 + q0;
    } else {
      const units = (BigInt(high) << 32n) | BigInt(low);
      const whole = units / this.unitsPerSecond;
      if (whole > 0xffffffffn + BigInt(Math.abs(this.tsoffsetSeconds))) return false;
      seconds = Number(whole);
      fraction = Number(((units % this.unitsPerSecond) * this.targetPerSecond) / this.unitsPerSecond);
    }
    // Past 2^53 the limb quotient is no longer exact; no u32 second count lives there anyway.
    if (seconds > Number.MAX_SAFE_INTEGER) return false;
    seconds += this.tsoffsetSeconds;
    if (!(seconds >= 0 && seconds <= 0xffffffff)) return false;
    out.tsSec = seconds;
    out.tsFrac = fraction;
    return true;
  }
}

/** 64-bit timestamp units for (sec, frac) at `perSecond` units per second, split exactly without BigInt. */
function timestampUnits(sec: number, frac: number, perSecond: number): { high: number; low: number } {
  // sec < 2^32 and perSecond <= 10^9 < 2^30: sec * perSecond may reach 2^62, past a double's
  // 2^53, so multiply in two 16-bit halves of sec.
  const a = Math.floor(sec / 65536);
  const b = sec % 65536;
  const x = a * perSecond; // < 2^46
  const y = (x % 65536) * 65536 + b * perSecond + frac; // < 2^47
  return { high: Math.floor(x / 65536) + Math.floor(y / 0x100000000), low: y % 0x100000000 };
}

// ---------------------------------------------------------------------------------------------
// Encoders

/** One option to encode: its code and raw value (strings as UTF-8, no terminator). */
interface OptionValue {
  code: number;
  value: Uint8Array;
}

/** Largest option value: its length field is a u16. */
const MAX_OPTION_VALUE_BYTES = 0xffff;

function optionsSize(options: readonly OptionValue[]): number {
  if (options.length === 0) return 0;
  let size = PCAPNG_OPTION_HEADER_BYTES; // opt_endofopt
  for (const o of options) {
    if (o.value.byteLength > MAX_OPTION_VALUE_BYTES) {
      throw new RangeError(`option ${o.code} value of ${o.value.byteLength} bytes exceeds ${MAX_OPTION_VALUE_BYTES}`);
    }
    size += PCAPNG_OPTION_HEADER_BYTES + pad4(o.value.byteLength);
  }
  return size;
}

function writeOptions(w: ByteWriter, options: readonly OptionValue[], le: boolean): void {
  if (options.length === 0) return;
  for (const o of options) {
    w.u16(o.code, le).u16(o.value.byteLength, le).raw(o.value).zeros(pad4(o.value.byteLength) - o.value.byteLength);
  }
  w.u16(PcapngOption.END_OF_OPT, le).u16(0, le);
}

function u32Bytes(value: number, le: boolean): Uint8Array {
  return new ByteWriter(4).u32(value, le).finish();
}

export interface PcapngSectionHeaderOptions {
  /** shb_userappl, e.g. "probe". */
  userApplication?: string;
  /** shb_hardware. */
  hardware?: string;
  /** shb_os. */
  os?: string;
  comments?: readonly string[];
  /** Defaults to true. */
  littleEndian?: boolean;
}

/** Encodes an SHB, version 1.0, section length -1 (unknown, as any streaming writer). */
export function encodePcapngSectionHeader(options: PcapngSectionHeaderOptions = {}): Uint8Array {
  const le = options.littleEndian ?? true;
  const opts: OptionValue[] = [];
  for (const c of options.comments ?? []) opts.push({ code: PcapngOption.COMMENT, value: utf8Encoder.encode(c) });
  if (options.hardware !== undefined) opts.push({ code: ShbOption.HARDWARE, value: utf8Encoder.encode(options.hardware) });
  if (options.os !== undefined) opts.push({ code: ShbOption.OS, value: utf8Encoder.encode(options.os) });
  if (options.userApplication !== undefined) {
    opts.push({ code: ShbOption.USER_APPLICATION, value: utf8Encoder.encode(options.userApplication) });
  }
  const total = PcapngMinBlockBytes.SECTION_HEADER + optionsSize(opts);
  const w = new ByteWriter(total)
    .u32(PcapngBlockType.SECTION_HEADER, le)
    .u32(total, le)
    .u32(PCAPNG_BYTE_ORDER_MAGIC, le)
    .u16(PCAPNG_VERSION_MAJOR, le)
    .u16(PCAPNG_VERSION_MINOR, le)
    // section_length -1 as an i64: both halves all ones, whatever the byte order.
    .i32(PCAPNG_SECTION_LENGTH_UNKNOWN, le)
    .i32(PCAPNG_SECTION_LENGTH_UNKNOWN, le);
  writeOptions(w, opts, le);
  return w.u32(total, le).finish();
}

export interface PcapngInterfaceOptions {
  /**
   * LINKTYPE_*, or a classic pcap linktype word with FCS bits (wire.ts `linktypeWithFcs`):
   * those become if_fcslen, since pcapng's linktype field has 16 bits.
   */
  linktype: number;
  snaplen: number;
  /** Writes if_tsresol 9 for "nano"; "micro" (the default) writes none, 6 being the default. */
  precision?: TimestampPrecision;
  /** if_name. */
  name?: string;
  /** if_description. */
  description?: string;
  comments?: readonly string[];
  /** Defaults to true. */
  littleEndian?: boolean;
}

/** Encodes an IDB. Throws RangeError on reserved linktype bits or a snaplen out of u32. */
export function encodePcapngInterface(options: PcapngInterfaceOptions): Uint8Array {
  const le = options.littleEndian ?? true;
  if ((options.linktype & LinktypeField.RESERVED_MASK) !== 0 || options.linktype < 0 || options.linktype > 0xffffffff) {
    throw new RangeError(`linktype word 0x${options.linktype.toString(16)} has reserved bits set`);
  }
  const opts: OptionValue[] = [];
  for (const c of options.comments ?? []) opts.push({ code: PcapngOption.COMMENT, value: utf8Encoder.encode(c) });
  if (options.name !== undefined) opts.push({ code: IdbOption.NAME, value: utf8Encoder.encode(options.name) });
  if (options.description !== undefined) opts.push({ code: IdbOption.DESCRIPTION, value: utf8Encoder.encode(options.description) });
  if (options.precision === "nano") opts.push({ code: IdbOption.TSRESOL, value: Uint8Array.of(NANO_TSRESOL) });
  const fcsUnits = fcsLengthOf(options.linktype);
  // The classic field counts FCS in 16-bit units; if_fcslen counts bytes.
  if (fcsUnits !== undefined) opts.push({ code: IdbOption.FCSLEN, value: Uint8Array.of(fcsUnits * 2) });
  const total = PcapngMinBlockBytes.INTERFACE_DESCRIPTION + optionsSize(opts);
  const w = new ByteWriter(total)
    .u32(PcapngBlockType.INTERFACE_DESCRIPTION, le)
    .u32(total, le)
    .u16(linktypeOf(options.linktype), le)
    .u16(0, le)
    .u32(options.snaplen, le);
  writeOptions(w, opts, le);
  return w.u32(total, le).finish();
}

/**
 * The batch linktype for an interface: the LINKTYPE with if_fcslen carried as classic pcap FCS
 * bits (in 16-bit units; an odd byte count cannot be expressed there and is dropped).
 */
export function batchLinktypeOfInterface(idb: Pick<PcapngInterface, "linktype" | "fcsLengthBytes">): number {
  if (idb.fcsLengthBytes === undefined || idb.fcsLengthBytes % 2 !== 0 || idb.fcsLengthBytes > 30) return idb.linktype;
  return linktypeWithFcs(idb.linktype, idb.fcsLengthBytes / 2);
}

export interface PcapngPacketOptions {
  interfaceId: number;
  tsSec: number;
  /** In `precision` units. */
  tsFrac: number;
  /** Resolution of the interface the packet belongs to (its IDB's if_tsresol); default "micro". */
  precision?: TimestampPrecision;
  /** Original length; defaults to data.byteLength. */
  len?: number;
  data: Uint8Array;
  comments?: readonly string[];
  /** epb_flags; direction in bits 0-1 (wire.ts EpbDirection). */
  flags?: number;
  /** Defaults to true. */
  littleEndian?: boolean;
}

function packetOptions(comments: readonly string[] | undefined, flags: number | undefined, le: boolean): OptionValue[] {
  const opts: OptionValue[] = [];
  if (comments) for (const c of comments) opts.push({ code: PcapngOption.COMMENT, value: utf8Encoder.encode(c) });
  if (flags !== undefined) opts.push({ code: EpbOption.FLAGS, value: u32Bytes(flags, le) });
  return opts;
}

function writeEnhancedPacket(
  w: ByteWriter,
  total: number,
  interfaceId: number,
  units: { high: number; low: number },
  len: number,
  data: Uint8Array,
  opts: readonly OptionValue[],
  le: boolean,
): void {
  w.u32(PcapngBlockType.ENHANCED_PACKET, le)
    .u32(total, le)
    .u32(interfaceId, le)
    .u32(units.high, le)
    .u32(units.low, le)
    .u32(data.byteLength, le)
    .u32(len, le)
    .raw(data)
    .zeros(pad4(data.byteLength) - data.byteLength);
  writeOptions(w, opts, le);
  w.u32(total, le);
}

/** Encodes one EPB. Throws RangeError when caplen exceeds len or a field overflows. */
export function encodePcapngEnhancedPacket(packet: PcapngPacketOptions): Uint8Array {
  const le = packet.littleEndian ?? true;
  const len = packet.len ?? packet.data.byteLength;
  if (packet.data.byteLength > len) throw new RangeError(`caplen ${packet.data.byteLength} exceeds len ${len}`);
  const opts = packetOptions(packet.comments, packet.flags, le);
  const total = PcapngMinBlockBytes.ENHANCED_PACKET + pad4(packet.data.byteLength) + optionsSize(opts);
  const perSecond = packet.precision === "nano" ? NANOS_PER_SECOND : MICROS_PER_SECOND;
  const w = new ByteWriter(total);
  writeEnhancedPacket(w, total, packet.interfaceId, timestampUnits(packet.tsSec, packet.tsFrac, perSecond), len, packet.data, opts, le);
  return w.finish();
}

/** Encodes one SPB (used by tests and tools; writers use EPBs). */
export function encodePcapngSimplePacket(len: number, data: Uint8Array, littleEndian = true): Uint8Array {
  const total = PcapngMinBlockBytes.SIMPLE_PACKET + pad4(data.byteLength);
  return new ByteWriter(total)
    .u32(PcapngBlockType.SIMPLE_PACKET, littleEndian)
    .u32(total, littleEndian)
    .u32(len, littleEndian)
    .raw(data)
    .zeros(pad4(data.byteLength) - data.byteLength)
    .u32(total, littleEndian)
    .finish();
}

/** Per-packet extras for `encodePcapngPacketsFromBatch`, by record index within the batch. */
export interface BatchPacketOptions {
  /** opt_comment strings for record `index` (each becomes one option; tshark shows frame.comment). */
  comments?: ((index: number) => readonly string[] | undefined) | undefined;
  /** epb_flags for record `index` (direction in bits 0-1: 1 inbound, 2 outbound). */
  flags?: ((index: number) => number | undefined) | undefined;
  /** Resolution of the target interface (its IDB's if_tsresol); defaults to the batch's. */
  precision?: TimestampPrecision | undefined;
  /** Defaults to true. */
  littleEndian?: boolean | undefined;
}

/**
 * Encodes every record of the batch as an EPB on `interfaceId`, into one owned buffer sized
 * up front. Timestamps are converted when the interface precision differs from the batch's
 * (nano to micro truncates). The record loop writes through one DataView with no allocation
 * for packets without options: this runs for every captured packet of a pcapng output.
 */
export function encodePcapngPacketsFromBatch(batch: PacketBatch, interfaceId: number, options: BatchPacketOptions = {}): Uint8Array {
  const le = options.littleEndian ?? true;
  if (!Number.isInteger(interfaceId) || interfaceId < 0 || interfaceId > 0xffffffff) {
    throw new RangeError(`interface id out of range: ${interfaceId}`);
  }
  const target = options.precision ?? batch.precision;
  const perSecond = target === "nano" ? NANOS_PER_SECOND : MICROS_PER_SECOND;
  const fracScale = batch.precision === "micro" && target === "nano" ? 1000 : 1;
  const fracDivisor = batch.precision === "nano" && target === "micro" ? 1000 : 1;
  const bytes = batch.bytes;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const withOptions = options.comments !== undefined || options.flags !== undefined;
  const perPacketOptions: OptionValue[][] = [];

  let total = 0;
  let at = 0;
  for (let i = 0; i < batch.count; i++) {
    const caplen = dv.getUint32(at + 8, true);
    let size = PcapngMinBlockBytes.ENHANCED_PACKET + pad4(caplen);
    if (withOptions) {
      const opts = packetOptions(options.comments?.(i), options.flags?.(i), le);
      perPacketOptions.push(opts);
      size += optionsSize(opts);
    }
    total += size;
    at += BATCH_RECORD_HEADER_BYTES + caplen;
  }

  const out = new Uint8Array(total);
  const ov = new DataView(out.buffer);
  let w = 0;
  at = 0;
  for (let i = 0; i < batch.count; i++) {
    const tsSec = dv.getUint32(at, true);
    const tsFrac = Math.floor((dv.getUint32(at + 4, true) * fracScale) / fracDivisor);
    const caplen = dv.getUint32(at + 8, true);
    const len = dv.getUint32(at + 12, true);
    const opts = withOptions ? perPacketOptions[i]! : undefined;
    const size = PcapngMinBlockBytes.ENHANCED_PACKET + pad4(caplen) + (opts ? optionsSize(opts) : 0);
    // 64-bit units = tsSec * perSecond + tsFrac, exact without BigInt (see timestampUnits).
    const a = Math.floor(tsSec / 65536);
    const x = a * perSecond;
    const y = (x % 65536) * 65536 + (tsSec % 65536) * perSecond + tsFrac;
    const high = Math.floor(x / 65536) + Math.floor(y / 0x100000000);
    if (high > 0xffffffff) throw new RangeError(`timestamp ${tsSec}.${tsFrac} does not fit 64-bit units`);
    ov.setUint32(w, PcapngBlockType.ENHANCED_PACKET, le);
    ov.setUint32(w + 4, size, le);
    ov.setUint32(w + 8, interfaceId, le);
    ov.setUint32(w + 12, high, le);
    ov.setUint32(w + 16, y % 0x100000000, le);
    ov.setUint32(w + 20, caplen, le);
    ov.setUint32(w + 24, len, le);
    out.set(bytes.subarray(at + BATCH_RECORD_HEADER_BYTES, at + BATCH_RECORD_HEADER_BYTES + caplen), w + 28);
    if (opts && opts.length > 0) {
      // Padding bytes stay zero: the buffer starts zeroed.
      let o = w + 28 + pad4(caplen);
      for (const opt of opts) {
        ov.setUint16(o, opt.code, le);
        ov.setUint16(o + 2, opt.value.byteLength, le);
        out.set(opt.value, o + 4);
        o += PCAPNG_OPTION_HEADER_BYTES + pad4(opt.value.byteLength);
      }
      // opt_endofopt: four zero bytes, already there.
    }
    ov.setUint32(w + size - 4, size, le);
    w += size;
    at += BATCH_RECORD_HEADER_BYTES + caplen;
  }
  return out;
}
