// Internet checksums: verified, recomputed or blanked in place (the checksums stage, a hook's
// ctx.fixChecksums, anonymization's incremental updates). The IPv4 header checksum, and TCP,
// UDP, ICMP and ICMPv6 checksums (pseudo-headers for IPv4 and IPv6). Moved from src/hooks.
//
// Sources: RFC 1071 (one's-complement sum), RFC 791 3.1 (IPv4 header checksum), RFC 9293 3.1
// (TCP pseudo-header), RFC 768 (UDP; a transmitted 0 means "no checksum" over IPv4 and a computed
// 0 is sent as 0xffff), RFC 8200 8.1 (IPv6 pseudo-header, UDP checksum mandatory, routing header
// changes the destination used), RFC 4443 2.3 (ICMPv6 over the IPv6 pseudo-header), RFC 792
// (ICMP over the message only), RFC 1624 (incremental update: HC' = ~(~HC + ~m + m')).
import { ABSENT, decodeOffsetsInto, IP_PROTOCOL, L3_FLAG, OFFSET_FIELD, OFFSET_FIELD_COUNT } from "./packet-offsets.ts";

/** What happened to each checksum of one packet. */
export const CHECKSUM_OUTCOME = {
  /** Recomputed and written. */
  FIXED: "fixed",
  /** Nothing of that kind in the packet (not IPv4; not TCP, UDP, ICMP or ICMPv6). */
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
  /** IPv4 header checksum outcome (NONE for IPv6 and non-IP). */
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

/**
 * The comment the checksums stage gives a packet with a bad checksum, e.g. "checksum bad: ipv4 tcp"
 * (pcapng opt_comment; hooks see it as pkt.badChecksum).
 */
export const CHECKSUM_BAD_COMMENT_PREFIX = "checksum bad:";

/** What `processChecksums` does to each checksum it finds. */
export const CHECKSUM_MODE = { CHECK: 0, UPDATE: 1, BLANK: 2 } as const;
export type ChecksumMode = (typeof CHECKSUM_MODE)[keyof typeof CHECKSUM_MODE];

/**
 * Per-checksum verdict codes of `processChecksums` (4 bits each in its packed result). OK means
 * good (check), written (update) or zeroed (blank); the first six keep CHECKSUM_OUTCOME's order.
 */
export const CHECKSUM_VERDICT = {
  OK: 0,
  NONE: 1,
  TRUNCATED: 2,
  FRAGMENT: 3,
  ROUTING_HEADER: 4,
  /** UDP over IPv4 sent with checksum 0 ("no checksum", RFC 768): left alone in every mode. */
  DISABLED: 5,
  /** check: the stored checksum is wrong. */
  BAD: 6,
  /** check: a TCP/ICMP/ICMPv6 checksum of 0 (or UDP over IPv6): left unjudged, typical of transmit offload captured before the NIC filled it. */
  ZERO: 7,
} as const;

/** The transport checksum's protocol in bits 8-10 of the packed result. */
export const CHECKSUM_TRANSPORT = { NONE: 0, TCP: 1, UDP: 2, ICMP: 3, ICMPV6: 4 } as const;
export const CHECKSUM_TRANSPORT_NAMES = ["none", "tcp", "udp", "icmp", "icmpv6"] as const;

/** Unpacks `processChecksums`: IPv4 header verdict. */
export function networkVerdict(packed: number): number {
  return packed & 0xf;
}
/** Unpacks `processChecksums`: transport verdict. */
export function transportVerdict(packed: number): number {
  return (packed >>> 4) & 0xf;
}
/** Unpacks `processChecksums`: which transport checksum (CHECKSUM_TRANSPORT). */
export function transportKind(packed: number): number {
  return (packed >>> 8) & 0x7;
}

const V = CHECKSUM_VERDICT;
const T = CHECKSUM_TRANSPORT;

/** Splits the packed result of fixChecksumsPacked into counts: fixed and skipped (truncated, fragment, routing header). */
export function countChecksumOutcomes(packed: number): { fixed: number; skipped: number } {
  let fixed = 0;
  let skipped = 0;
  for (const code of [networkVerdict(packed), transportVerdict(packed)]) {
    if (code === V.OK) fixed++;
    else if (code !== V.NONE && code !== V.DISABLED) skipped++;
  }
  return { fixed, skipped };
}

/**
 * Recomputes, in place, the IPv4 header checksum and the TCP, UDP, ICMP or ICMPv6 checksum of
 * the packet `data` (exactly the captured bytes) of link type `linktype`. `scratch` is a
 * caller-owned Int32Array of at least OFFSET_FIELD_COUNT entries, so the hot path does not allocate.
 */
export function fixChecksums(
  data: Uint8Array,
  linktype: number,
  scratch: Int32Array = new Int32Array(OFFSET_FIELD_COUNT),
): ChecksumFixResult {
  const packed = fixChecksumsPacked(data, linktype, scratch);
  return { ipv4Header: OUTCOME_LIST[networkVerdict(packed)]!, transport: OUTCOME_LIST[transportVerdict(packed)]! };
}

const OUTCOME_LIST = [
  CHECKSUM_OUTCOME.FIXED,
  CHECKSUM_OUTCOME.NONE,
  CHECKSUM_OUTCOME.TRUNCATED,
  CHECKSUM_OUTCOME.FRAGMENT,
  CHECKSUM_OUTCOME.ROUTING_HEADER,
  CHECKSUM_OUTCOME.DISABLED,
] as const;

/** fixChecksums without allocation: bits 0-3 IPv4 header, 4-7 transport (CHECKSUM_VERDICT codes; 0 is fixed). */
export function fixChecksumsPacked(data: Uint8Array, linktype: number, scratch: Int32Array): number {
  decodeOffsetsInto(data, 0, data.byteLength, linktype, scratch, 0);
  return processChecksums(data, 0, data.byteLength, scratch, 0, CHECKSUM_MODE.UPDATE) & 0xff;
}

/**
 * Checks, recomputes or zeroes every checksum of one packet, `bytes[start .. start+caplen)`,
 * whose layers `decodeOffsetsInto` already wrote to `offsets[base ..]`. Never throws and never
 * reads past caplen. Returns packed verdicts: bits 0-3 IPv4 header, 4-7 transport, 8-10 which
 * transport (see networkVerdict, transportVerdict, transportKind).
 */
export function processChecksums(
  bytes: Uint8Array,
  start: number,
  caplen: number,
  offsets: Int32Array,
  base: number,
  mode: ChecksumMode,
): number {
  const ipVersion = offsets[base + OFFSET_FIELD.ipVersion]!;
  const l3Relative = offsets[base + OFFSET_FIELD.l3Offset]!;
  if (ipVersion === 0 || l3Relative === ABSENT) return V.NONE | (V.NONE << 4);
  const l3 = start + l3Relative;
  const end = start + caplen;

  let network: number = V.NONE;
  if (ipVersion === 4) {
    const headerBytes = (bytes[l3]! & 0x0f) * 4;
    if (headerBytes < 20 || l3 + headerBytes > end) network = V.TRUNCATED;
    else if (mode === CHECKSUM_MODE.CHECK) network = finishChecksum(onesComplementSum(bytes, l3, l3 + headerBytes)) === 0 ? V.OK : V.BAD;
    else {
      bytes[l3 + 10] = 0;
      bytes[l3 + 11] = 0;
      if (mode === CHECKSUM_MODE.UPDATE) writeU16(bytes, l3 + 10, internetChecksum(bytes, l3, l3 + headerBytes));
      network = V.OK;
    }
  }

  const protocol = offsets[base + OFFSET_FIELD.protocol]!;
  const kind =
    protocol === IP_PROTOCOL.TCP ? T.TCP
    : protocol === IP_PROTOCOL.UDP ? T.UDP
    : protocol === IP_PROTOCOL.ICMP && ipVersion === 4 ? T.ICMP
    : protocol === IP_PROTOCOL.ICMPV6 && ipVersion === 6 ? T.ICMPV6
    : T.NONE;
  if (kind === T.NONE) return network | (V.NONE << 4);
  return network | (transportChecksum(bytes, end, offsets, base, start, l3, ipVersion, protocol, kind, mode) << 4) | (kind << 8);
}

function transportChecksum(
  bytes: Uint8Array,
  end: number,
  offsets: Int32Array,
  base: number,
  start: number,
  l3: number,
  ipVersion: number,
  protocol: number,
  kind: number,
  mode: ChecksumMode,
): number {
  const flags = offsets[base + OFFSET_FIELD.l3Flags]!;
  if ((flags & L3_FLAG.FRAGMENT) !== 0) return V.FRAGMENT;
  const l4Relative = offsets[base + OFFSET_FIELD.l4Offset]!;
  if (l4Relative === ABSENT) return V.TRUNCATED;
  const l4 = start + l4Relative;
  const checksumAt = l4 + (kind === T.TCP ? 16 : kind === T.UDP ? 6 : 2);
  if (checksumAt + 2 > end) return V.TRUNCATED;
  const stored = (bytes[checksumAt]! << 8) | bytes[checksumAt + 1]!;
  if (kind === T.UDP && ipVersion === 4 && stored === 0) return V.DISABLED;
  if (mode === CHECKSUM_MODE.BLANK) {
    bytes[checksumAt] = 0;
    bytes[checksumAt + 1] = 0;
    return V.OK;
  }
  if ((flags & L3_FLAG.ROUTING_HEADER) !== 0 && kind !== T.ICMP) return V.ROUTING_HEADER;
  if (mode === CHECKSUM_MODE.CHECK && stored === 0) return V.ZERO;
  // The segment ends where the IP header says, not at caplen (Ethernet pads short frames).
  const declaredEnd = declaredIpEnd(bytes, l3, ipVersion, end);
  let segmentEnd = declaredEnd;
  if (kind === T.UDP) {
    const udpLength = (bytes[l4 + 4]! << 8) | bytes[l4 + 5]!;
    if (udpLength >= 8) segmentEnd = Math.min(declaredEnd, l4 + udpLength);
  }
  const minimum = kind === T.TCP ? 20 : kind === T.UDP ? 8 : 4;
  if (segmentEnd > end || segmentEnd < l4 + minimum) return V.TRUNCATED;
  const segmentLength = segmentEnd - l4;
  let sum = 0;
  if (kind === T.ICMP) sum = 0; // RFC 792: no pseudo-header
  else if (ipVersion === 4) sum = onesComplementSum(bytes, l3 + 12, l3 + 20) + protocol + segmentLength;
  else sum = onesComplementSum(bytes, l3 + 8, l3 + 40) + protocol + (segmentLength >>> 16) + (segmentLength & 0xffff);
  if (mode === CHECKSUM_MODE.CHECK) {
    // A correct checksum makes the sum over everything, itself included, fold to 0xffff.
    return finishChecksum(onesComplementSum(bytes, l4, segmentEnd, sum)) === 0 ? V.OK : V.BAD;
  }
  bytes[checksumAt] = 0;
  bytes[checksumAt + 1] = 0;
  let checksum = finishChecksum(onesComplementSum(bytes, l4, segmentEnd, sum));
  if (kind === T.UDP && checksum === 0) checksum = 0xffff;
  writeU16(bytes, checksumAt, checksum);
  return V.OK;
}

/** End of the IP packet per its own length field (may exceed the captured bytes). */
function declaredIpEnd(bytes: Uint8Array, l3: number, ipVersion: number, capturedEnd: number): number {
  if (ipVersion === 4) return l3 + ((bytes[l3 + 2]! << 8) | bytes[l3 + 3]!);
  const payloadLength = (bytes[l3 + 4]! << 8) | bytes[l3 + 5]!;
  // Jumbogram (RFC 2675): the real length is in a hop-by-hop option; use the captured end.
  return payloadLength === 0 ? capturedEnd : l3 + 40 + payloadLength;
}

/**
 * RFC 1624 eqn. 3 for one 16-bit word: the checksum stored at `checksumAt` after a covered word
 * changed from `oldWord` to `newWord`. `udp` keeps a UDP/IPv4 "no checksum" 0 as 0 and writes a
 * computed 0 as 0xffff (RFC 768). Callers sum several words' changes with `checksumDelta` first.
 */
export function adjustChecksum(bytes: Uint8Array, checksumAt: number, delta: number, udp: boolean): void {
  const stored = (bytes[checksumAt]! << 8) | bytes[checksumAt + 1]!;
  if (udp && stored === 0) return;
  let sum = (~stored & 0xffff) + delta;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  let result = ~sum & 0xffff;
  if (udp && result === 0) result = 0xffff;
  writeU16(bytes, checksumAt, result);
}

/** The one's-complement change of 16-bit words `[at, at+length)` from `before` to `after` (equal length, even offsets): ~m + m' summed. */
export function checksumDelta(before: Uint8Array, beforeAt: number, after: Uint8Array, afterAt: number, length: number): number {
  let delta = 0;
  for (let k = 0; k < length; k += 2) {
    delta += (~((before[beforeAt + k]! << 8) | before[beforeAt + k + 1]!) & 0xffff) + ((after[afterAt + k]! << 8) | after[afterAt + k + 1]!);
  }
  return delta;
}

function writeU16(data: Uint8Array, at: number, value: number): void {
  data[at] = value >> 8;
  data[at + 1] = value & 0xff;
}
