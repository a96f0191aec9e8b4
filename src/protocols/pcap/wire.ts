// Wire vocabulary of the two capture file formats: classic pcap (libpcap's savefile) and pcapng.
// Sources: draft-ietf-opsawg-pcap (classic pcap), draft-ietf-opsawg-pcapng (pcapng), and
// libpcap's pcap/pcap.h, sf-pcap.c and sf-pcapng.c for what real readers accept.
//
// Classic pcap file (every field in the writer's byte order, told apart by the magic):
//
//   global header, 24 bytes:
//     magic:u32  version_major:u16  version_minor:u16  thiszone:i32  sigfigs:u32  snaplen:u32  linktype:u32
//   record header, 16 bytes, then caplen bytes of packet data, no padding:
//     ts_sec:u32  ts_frac:u32  caplen:u32  len:u32
//
//   The linktype word keeps extra bits above the LINKTYPE_* value (pcap/pcap.h LT_* macros):
//     bits 0-15 LINKTYPE, bits 16-25 reserved, bit 26 "FCS length present", bits 28-31 FCS length.
//
// pcapng file: a sequence of blocks, each
//
//     block_type:u32  block_total_length:u32  body...  block_total_length:u32 (copy)
//
//   with the body padded to 32 bits. A Section Header Block (SHB) starts each section; its
//   byte-order magic 0x1A2B3C4D tells the byte order of every block in the section. Options are
//   code:u16 length:u16 value (padded to 32 bits), ended by opt_endofopt (code 0).

/** Classic pcap magic numbers, as read in the writer's own byte order. */
export const PcapMagic = {
  /** ts_frac in microseconds. */
  MICRO: 0xa1b2c3d4,
  /** ts_frac in nanoseconds (libpcap 1.5+, "NSEC_TCPDUMP_MAGIC"). */
  NANO: 0xa1b23c4d,
} as const;

/** pcap format version written and accepted (only major 2 exists since 1998; minor is 4). */
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;

export const PCAP_GLOBAL_HEADER_BYTES = 24;
export const PCAP_RECORD_HEADER_BYTES = 16;

/** Masks for the classic pcap linktype word (pcap/pcap.h LT_LINKTYPE, LT_RESERVED1, LT_FCS_*). */
export const LinktypeField = {
  LINKTYPE_MASK: 0x0000ffff,
  RESERVED_MASK: 0x03ff0000,
  FCS_LENGTH_PRESENT: 0x04000000,
  /** FCS length in 16-bit units, bits 28-31. */
  FCS_LENGTH_SHIFT: 28,
} as const;

/** The LINKTYPE_* value (low 16 bits) of a classic pcap linktype word. */
export function linktypeOf(linktypeField: number): number {
  return linktypeField & LinktypeField.LINKTYPE_MASK;
}

/** FCS length in 16-bit units carried in a linktype word, or undefined when the field has none. */
export function fcsLengthOf(linktypeField: number): number | undefined {
  if ((linktypeField & LinktypeField.FCS_LENGTH_PRESENT) === 0) return undefined;
  return linktypeField >>> LinktypeField.FCS_LENGTH_SHIFT;
}

/** A linktype word carrying `linktype` and an FCS length (in 16-bit units, 0..15). */
export function linktypeWithFcs(linktype: number, fcsLength: number): number {
  return ((((fcsLength & 0xf) << LinktypeField.FCS_LENGTH_SHIFT) | LinktypeField.FCS_LENGTH_PRESENT | linktype) >>> 0);
}

/** pcapng block types (draft-ietf-opsawg-pcapng section 10.1). */
export const PcapngBlockType = {
  SECTION_HEADER: 0x0a0d0d0a,
  INTERFACE_DESCRIPTION: 0x00000001,
  /** Obsolete Packet Block: still found in files written by old Wireshark releases. */
  OBSOLETE_PACKET: 0x00000002,
  SIMPLE_PACKET: 0x00000003,
  NAME_RESOLUTION: 0x00000004,
  INTERFACE_STATISTICS: 0x00000005,
  ENHANCED_PACKET: 0x00000006,
  DECRYPTION_SECRETS: 0x0000000a,
  CUSTOM: 0x00000bad,
  CUSTOM_NO_COPY: 0x40000bad,
} as const;

const blockTypeNames = new Map<number, string>(Object.entries(PcapngBlockType).map(([k, v]) => [v, k]));
/** Block type name for logs ("ENHANCED_PACKET", or "block 0x00000bad"). */
export function pcapngBlockTypeName(type: number): string {
  return blockTypeNames.get(type) ?? `block 0x${type.toString(16).padStart(8, "0")}`;
}

/** The SHB byte-order magic; read in the wrong order it appears as 0x4d3c2b1a. */
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
export const PCAPNG_VERSION_MAJOR = 1;
export const PCAPNG_VERSION_MINOR = 0;
/**
 * Minor versions accepted on read: 1.0, and 1.2 which some old writers put in the SHB
 * (libpcap sf-pcapng.c accepts the same two).
 */
export const PCAPNG_ACCEPTED_MINOR_VERSIONS: readonly number[] = [0, 2];
/** section_length when the writer does not know it (always the case for a stream). */
export const PCAPNG_SECTION_LENGTH_UNKNOWN = -1;

/** type + total length at the front, total length copy at the end. */
export const PCAPNG_BLOCK_FRAME_BYTES = 12;
/** Bytes a streaming reader needs to size any block: type, total length, and the SHB magic. */
export const PCAPNG_BLOCK_PEEK_BYTES = 12;
/** Smallest legal total length of each block we decode (fixed fields, no options). */
export const PcapngMinBlockBytes = {
  /** frame + magic:u32 + major:u16 + minor:u16 + section_length:i64 */
  SECTION_HEADER: 28,
  /** frame + linktype:u16 + reserved:u16 + snaplen:u32 */
  INTERFACE_DESCRIPTION: 20,
  /** frame + interface_id:u32 + ts_high:u32 + ts_low:u32 + caplen:u32 + len:u32 */
  ENHANCED_PACKET: 32,
  /** frame + interface_id:u16 + drops_count:u16 + ts_high:u32 + ts_low:u32 + caplen:u32 + len:u32 */
  OBSOLETE_PACKET: 32,
  /** frame + len:u32 */
  SIMPLE_PACKET: 16,
} as const;

/**
 * Default cap on a pcapng block's total length and on a classic pcap caplen, checked before
 * any allocation or waiting. 16 MiB is well above every real snaplen (libpcap's largest,
 * for D-Bus, is 128 MiB but nobody captures that; Ethernet-like links cap at 262144) and
 * keeps a hostile length from making us buffer gigabytes. CVE-2019-15165 was libpcap
 * trusting a pcapng block length; Wireshark caps blocks the same way.
 */
export const DEFAULT_MAX_BLOCK_BYTES = 16 * 1024 * 1024;

/** Option codes valid in every block (draft-ietf-opsawg-pcapng section 3.5). */
export const PcapngOption = {
  END_OF_OPT: 0,
  COMMENT: 1,
} as const;

export const ShbOption = {
  HARDWARE: 2,
  OS: 3,
  USER_APPLICATION: 4,
} as const;

export const IdbOption = {
  NAME: 2,
  DESCRIPTION: 3,
  IPV4_ADDR: 4,
  IPV6_ADDR: 5,
  MAC_ADDR: 6,
  EUI_ADDR: 7,
  SPEED: 8,
  /** u8: bit 7 clear = 10^-n seconds, set = 2^-n seconds; n in bits 0-6. Default 6. */
  TSRESOL: 9,
  TZONE: 10,
  FILTER: 11,
  OS: 12,
  /** u8: FCS length in bytes present at the end of each packet. */
  FCSLEN: 13,
  /** i64: seconds added to every timestamp of the interface. */
  TSOFFSET: 14,
  HARDWARE: 15,
} as const;

export const EpbOption = {
  /** u32: direction in bits 0-1, reception type in bits 2-4, FCS length in bits 5-8, errors in 16-31. */
  FLAGS: 2,
  HASH: 3,
  DROPCOUNT: 4,
  PACKETID: 5,
  QUEUE: 6,
  VERDICT: 7,
} as const;

/** epb_flags direction values (bits 0-1). */
export const EpbDirection = {
  UNKNOWN: 0,
  INBOUND: 1,
  OUTBOUND: 2,
} as const;
export const EPB_FLAGS_DIRECTION_MASK = 0x3;

const directionNames = new Map<number, string>(Object.entries(EpbDirection).map(([k, v]) => [v, k]));
/** Direction name for logs. */
export function epbDirectionName(flags: number): string {
  return directionNames.get(flags & EPB_FLAGS_DIRECTION_MASK) ?? "INVALID";
}

export const PCAPNG_OPTION_HEADER_BYTES = 4;
/** if_tsresol when the IDB has none: microseconds. */
export const DEFAULT_TSRESOL = 6;
/** if_tsresol we write for nanosecond interfaces. */
export const NANO_TSRESOL = 9;
export const TSRESOL_BASE2_FLAG = 0x80;

/** Units per second of the two batch precisions. */
export { MICROS_PER_SECOND, NANOS_PER_SECOND } from "../../packet/timestamps.ts";

/** A value rounded up to the next multiple of 4 (pcapng pads every field to 32 bits). */
export function pad4(length: number): number {
  return (length + 3) & ~3;
}

/** The 32-bit value with its bytes reversed (a magic read in the other byte order). */
export function byteSwap32(value: number): number {
  return (((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) | (value >>> 24)) >>> 0;
}
