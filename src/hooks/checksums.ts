// Internet checksums recomputed after a hook edits a packet: the IPv4 header checksum and the
// TCP and UDP checksums over IPv4 and IPv6 pseudo-headers. Runs on the host, in place.
//
// Sources: RFC 1071 (one's-complement sum), RFC 791 3.1 (IPv4 header checksum), RFC 9293 3.1
// (TCP pseudo-header), RFC 768 (UDP; a transmitted 0 means "no checksum" over IPv4 and a computed
// 0 is sent as 0xffff), RFC 8200 8.1 (IPv6 pseudo-header, UDP checksum mandatory, routing header
// changes the destination used).
import { ABSENT, decodeOffsetsInto, IP_PROTOCOL, L3_FLAG, OFFSET_FIELD, OFFSET_FIELD_COUNT } from "./packet-offsets.ts";

/** What happened to each checksum of one packet. */
export const CHECKSUM_OUTCOME = {
  /** Recomputed and written. */
  FIXED: "fixed",
  /** Nothing of that kind in the packet (not IPv4, not TCP/UDP). */
  NONE: "none",
  /** Not all the bytes the checksum covers were captured (snaplen or the hook truncated). */
  TRUNCATED: "truncated",
  /** The covered data spans fragments this packet does not hold. */
  FRAGMENT: "fragment",
  /** IPv6 routing header: the pseudo-header needs the final destination, which is not decoded. */
  ROUTING_HEADER: "routing-header",
  /** UDP over IPv4 sent without a checksum (0); left at 0 as the sender chose (RFC 768). */
  DISABLED: "disabled",
} as const;

export type ChecksumOutcome = (typeof CHECKSUM_OUTCOME)[keyof typeof CHECKSUM_OUTCOME];

export interface ChecksumFixResult {
  ipv4Header: ChecksumOutcome;
  transport: ChecksumOutcome;
}

/** One's-complement sum of 16-bit big-endian words of `bytes[start..end)` added to `initial`, not folded. */
export function onesComplementSum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  // Sums stay below 2^53 for any packet size (2^16 per word), so folding once at the end is exact.
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8; // odd length: pad with a zero byte
  return sum;
}

/** Folds a sum to 16 bits and complements it: the value to store in a checksum field. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** RFC 1071 checksum of `bytes[start..end)`. */
export function internetChecksum(bytes: Uint8Array, start = 0, end = bytes.byteLength): number {
  return finishChecksum(onesComplementSum(bytes, start, end));
}

/** Outcome codes of the allocation-free form, in the order of CHECKSUM_OUTCOME. */
const OUTCOME_LIST = [
  CHECKSUM_OUTCOME.FIXED,
  CHECKSUM_OUTCOME.NONE,
  CHECKSUM_OUTCOME.TRUNCATED,
  CHECKSUM_OUTCOME.FRAGMENT,
  CHECKSUM_OUTCOME.ROUTING_HEADER,
  CHECKSUM_OUTCOME.DISABLED,
] as const;
const FIXED = 0;
const NONE = 1;
const TRUNCATED = 2;
const FRAGMENT = 3;
const ROUTING_HEADER = 4;
const DISABLED = 5;

/** Splits the packed result of fixChecksumsPacked into counts: fixed and skipped (truncated, fragment, routing header). */
export function countChecksumOutcomes(packed: number): { fixed: number; skipped: number } {
  let fixed = 0;
  let skipped = 0;
  for (const code of [packed & 0xf, packed >> 4]) {
    if (code === FIXED) fixed++;
    else if (code !== NONE && code !== DISABLED) skipped++;
  }
  return { fixed, skipped };
}

/**
 * Recomputes, in place, the IPv4 header checksum and the TCP or UDP checksum of the packet
 * `data` (exactly the captured bytes) of link type `linktype`. `scratch` is a caller-owned
 * Int32Array of at least OFFSET_FIELD_COUNT entries, so the hot path does not allocate.
 */
export function fixChecksums(
  data: Uint8Array,
  linktype: number,
  scratch: Int32Array = new Int32Array(OFFSET_FIELD_COUNT),
): ChecksumFixResult {
  const packed = fixChecksumsPacked(data, linktype, scratch);
  return { ipv4Header: OUTCOME_LIST[packed & 0xf]!, transport: OUTCOME_LIST[packed >> 4]! };
}

/** fixChecksums without allocation: IPv4 header outcome code in bits 0-3, transport in bits 4-7. */
export function fixChecksumsPacked(data: Uint8Array, linktype: number, scratch: Int32Array): number {
  decodeOffsetsInto(data, 0, data.byteLength, linktype, scratch, 0);
  const ipVersion = scratch[OFFSET_FIELD.ipVersion]!;
  const l3 = scratch[OFFSET_FIELD.l3Offset]!;
  if (ipVersion === 0 || l3 === ABSENT) return NONE | (NONE << 4);

  let header = NONE;
  if (ipVersion === 4) {
    const headerBytes = (data[l3]! & 0x0f) * 4;
    if (headerBytes < 20 || l3 + headerBytes > data.byteLength) {
      header = TRUNCATED;
    } else {
      data[l3 + 10] = 0;
      data[l3 + 11] = 0;
      writeU16(data, l3 + 10, internetChecksum(data, l3, l3 + headerBytes));
      header = FIXED;
    }
  }
  return header | (fixTransport(data, scratch, l3, ipVersion) << 4);
}

function fixTransport(data: Uint8Array, scratch: Int32Array, l3: number, ipVersion: number): number {
  const protocol = scratch[OFFSET_FIELD.protocol]!;
  if (protocol !== IP_PROTOCOL.TCP && protocol !== IP_PROTOCOL.UDP) return NONE;
  const flags = scratch[OFFSET_FIELD.l3Flags]!;
  if ((flags & L3_FLAG.FRAGMENT) !== 0) return FRAGMENT;
  if ((flags & L3_FLAG.ROUTING_HEADER) !== 0) return ROUTING_HEADER;
  const l4 = scratch[OFFSET_FIELD.l4Offset]!;
  if (l4 === ABSENT) return TRUNCATED;
  // The segment ends where the IP header says, not at caplen (Ethernet pads short frames).
  const declaredEnd = declaredIpEnd(data, l3, ipVersion);
  let segmentEnd = declaredEnd;
  if (protocol === IP_PROTOCOL.UDP) {
    const udpLength = (data[l4 + 4]! << 8) | data[l4 + 5]!;
    if (udpLength >= 8) segmentEnd = Math.min(declaredEnd, l4 + udpLength);
  }
  if (segmentEnd > data.byteLength || segmentEnd < l4 + (protocol === IP_PROTOCOL.TCP ? 20 : 8)) return TRUNCATED;
  const checksumAt = l4 + (protocol === IP_PROTOCOL.TCP ? 16 : 6);
  if (protocol === IP_PROTOCOL.UDP && ipVersion === 4 && data[checksumAt] === 0 && data[checksumAt + 1] === 0) return DISABLED;
  const segmentLength = segmentEnd - l4;
  let sum: number;
  if (ipVersion === 4) {
    sum = onesComplementSum(data, l3 + 12, l3 + 20) + protocol + segmentLength;
  } else {
    sum = onesComplementSum(data, l3 + 8, l3 + 40) + protocol + (segmentLength >>> 16) + (segmentLength & 0xffff);
  }
  data[checksumAt] = 0;
  data[checksumAt + 1] = 0;
  let checksum = finishChecksum(onesComplementSum(data, l4, segmentEnd, sum));
  if (protocol === IP_PROTOCOL.UDP && checksum === 0) checksum = 0xffff;
  writeU16(data, checksumAt, checksum);
  return FIXED;
}

/** End of the IP packet per its own length field (may exceed the captured bytes). */
function declaredIpEnd(data: Uint8Array, l3: number, ipVersion: number): number {
  if (ipVersion === 4) return l3 + ((data[l3 + 2]! << 8) | data[l3 + 3]!);
  const payloadLength = (data[l3 + 4]! << 8) | data[l3 + 5]!;
  // Jumbogram (RFC 2675): the real length is in a hop-by-hop option; use the captured end.
  return payloadLength === 0 ? data.byteLength : l3 + 40 + payloadLength;
}

function writeU16(data: Uint8Array, at: number, value: number): void {
  data[at] = value >> 8;
  data[at + 1] = value & 0xff;
}
