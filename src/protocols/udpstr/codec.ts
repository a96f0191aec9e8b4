// udpstr codec: the 8-byte datagram header and the 20-byte record header (rpcap_pkthdr).
// Wire map and sources: see wire.ts (ExtraHop/rpcapd pcap-remote.h and daemon.c).
// Pure: no sockets, timers, logging or Bun APIs. Decoders throw ProtocolError(code, offset).
import { ByteReader } from "../../packet/byte-reader.ts";
import { ProtocolError } from "../../packet/protocol-error.ts";
import {
  UDPSTR_FIRSTHDR_NONE,
  UDPSTR_HEADER_BYTES,
  UDPSTR_MESSAGE_TYPE,
  UDPSTR_PKTHDR_BYTES,
  UDPSTR_VERSION,
  udpstrMessageName,
} from "./wire.ts";

const BIG_ENDIAN = false;

/** A decoded struct rpcap_udpstr_header. */
export interface UdpstrHeader {
  ver: number;
  type: number;
  /** Offset in the datagram of the first record header that begins in it, or UDPSTR_FIRSTHDR_NONE. */
  firsthdridx: number;
  seqno: number;
}

/** A decoded struct rpcap_pkthdr as udpstr carries it (microsecond timestamps, big-endian). */
export interface UdpstrPkthdr {
  tsSec: number;
  tsUsec: number;
  caplen: number;
  len: number;
  npkt: number;
}

/**
 * Decodes the 8-byte header at `offset` on its own.
 * Throws ProtocolError "truncated" (fewer than 8 bytes), "unsupported-version" (ver != 0, offset
 * of ver) or "bad-message-type" (type != 110, offset of type).
 */
export function decodeUdpstrHeader(bytes: Uint8Array, offset = 0): UdpstrHeader {
  const r = new ByteReader(bytes, offset);
  r.need(UDPSTR_HEADER_BYTES, "udpstr header");
  const ver = r.u8("ver");
  if (ver !== UDPSTR_VERSION) {
    throw new ProtocolError("unsupported-version", `udpstr version ${ver}, expected ${UDPSTR_VERSION}`, offset);
  }
  const type = r.u8("type");
  if (type !== UDPSTR_MESSAGE_TYPE) {
    throw new ProtocolError("bad-message-type", `not a udpstr datagram: ${udpstrMessageName(type)}`, offset + 1);
  }
  const firsthdridx = r.u16(BIG_ENDIAN, "firsthdridx");
  const seqno = r.u32(BIG_ENDIAN, "seqno");
  return { ver, type, firsthdridx, seqno };
}

/**
 * Decodes the header of a whole datagram and checks firsthdridx against the datagram: a record
 * header can only begin after the udpstr header and before the end (8 <= firsthdridx < length),
 * unless it is UDPSTR_FIRSTHDR_NONE. Throws what decodeUdpstrHeader throws, or
 * "firsthdridx-out-of-range" at offset 2.
 */
export function decodeUdpstrDatagramHeader(datagram: Uint8Array): UdpstrHeader {
  const header = decodeUdpstrHeader(datagram, 0);
  const idx = header.firsthdridx;
  if (idx !== UDPSTR_FIRSTHDR_NONE && (idx < UDPSTR_HEADER_BYTES || idx >= datagram.byteLength)) {
    throw new ProtocolError(
      "firsthdridx-out-of-range",
      `firsthdridx ${idx} outside the datagram's stream bytes ${UDPSTR_HEADER_BYTES}..${datagram.byteLength - 1}`,
      2,
    );
  }
  return header;
}

/**
 * Writes a udpstr header at `offset` of `view`. Values must already be in range (u16/u32); the
 * packer produces them, so a violation is a bug and throws RangeError.
 */
export function writeUdpstrHeader(view: DataView, offset: number, firsthdridx: number, seqno: number): void {
  checkUnsigned(firsthdridx, 0xffff, "firsthdridx");
  checkUnsigned(seqno, 0xffffffff, "seqno");
  view.setUint8(offset, UDPSTR_VERSION);
  view.setUint8(offset + 1, UDPSTR_MESSAGE_TYPE);
  view.setUint16(offset + 2, firsthdridx, BIG_ENDIAN);
  view.setUint32(offset + 4, seqno, BIG_ENDIAN);
}

/** Encodes a standalone 8-byte udpstr header (tests and tools; the packer writes in place). */
export function encodeUdpstrHeader(firsthdridx: number, seqno: number): Uint8Array {
  const bytes = new Uint8Array(UDPSTR_HEADER_BYTES);
  writeUdpstrHeader(new DataView(bytes.buffer), 0, firsthdridx, seqno);
  return bytes;
}

/**
 * Decodes the 20 bytes of a record header at `offset` without judging the values (see
 * checkUdpstrPkthdr). Throws ProtocolError "truncated".
 */
export function decodeUdpstrPkthdr(bytes: Uint8Array, offset: number): UdpstrPkthdr {
  const r = new ByteReader(bytes, offset);
  r.need(UDPSTR_PKTHDR_BYTES, "rpcap_pkthdr");
  return {
    tsSec: r.u32(BIG_ENDIAN, "ts_sec"),
    tsUsec: r.u32(BIG_ENDIAN, "ts_usec"),
    caplen: r.u32(BIG_ENDIAN, "caplen"),
    len: r.u32(BIG_ENDIAN, "len"),
    npkt: r.u32(BIG_ENDIAN, "npkt"),
  };
}

/**
 * Checks a record header's lengths before anything is allocated for it: caplen <= len (a
 * capture never holds more than the packet) and caplen <= maxCaplen (the snaplen cap).
 * `offset` is where the header began, for the error. Throws "caplen-exceeds-len" or
 * "caplen-exceeds-snaplen" (offset of caplen).
 */
export function checkUdpstrPkthdr(header: UdpstrPkthdr, maxCaplen: number, offset: number): void {
  const caplenOffset = offset + 8;
  if (header.caplen > header.len) {
    throw new ProtocolError("caplen-exceeds-len", `caplen ${header.caplen} > len ${header.len}`, caplenOffset);
  }
  if (header.caplen > maxCaplen) {
    throw new ProtocolError("caplen-exceeds-snaplen", `caplen ${header.caplen} > limit ${maxCaplen}`, caplenOffset);
  }
}

/** Writes a record header at `offset` of `view` (the packer's hot path: no allocation). */
export function writeUdpstrPkthdr(
  view: DataView,
  offset: number,
  tsSec: number,
  tsUsec: number,
  caplen: number,
  len: number,
  npkt: number,
): void {
  view.setUint32(offset, tsSec, BIG_ENDIAN);
  view.setUint32(offset + 4, tsUsec, BIG_ENDIAN);
  view.setUint32(offset + 8, caplen, BIG_ENDIAN);
  view.setUint32(offset + 12, len, BIG_ENDIAN);
  view.setUint32(offset + 16, npkt, BIG_ENDIAN);
}

/** Encodes a standalone 20-byte record header (tests and tools). Throws RangeError on a non-u32 value. */
export function encodeUdpstrPkthdr(header: UdpstrPkthdr): Uint8Array {
  for (const [name, value] of Object.entries(header)) checkUnsigned(value, 0xffffffff, name);
  const bytes = new Uint8Array(UDPSTR_PKTHDR_BYTES);
  writeUdpstrPkthdr(new DataView(bytes.buffer), 0, header.tsSec, header.tsUsec, header.caplen, header.len, header.npkt);
  return bytes;
}

function checkUnsigned(value: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${what} out of range: ${value}`);
}
