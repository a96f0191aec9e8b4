// Layer decoding shared by hooks and the processing stages (anonymize, truncate-headers,
// checksums): where the network, transport and payload start in a captured packet (Ethernet
// with 802.1Q/802.1ad tags, Linux cooked, raw IP, BSD loopback). Moved here from src/hooks so
// pipeline stages and hooks use one parser.
//
// Why on the host and not inside QuickJS: the interpreter runs at roughly 8 million simple
// operations per second on the reference machine (measured with quickjs-emscripten 0.32 under
// Bun 1.4.4), so a 40-operation decoder in the sandbox would cost ~5 µs per packet; here, in
// JIT-compiled TypeScript, it costs tens of nanoseconds and the sandbox only reads numbers.
//
// Best effort by design: a capture truncated by snaplen or a malformed header is normal input,
// not an error, so nothing here throws. Each field is filled as far as the captured bytes go
// and left at ABSENT (-1) past that point. The manual bounds checks (instead of a ByteReader)
// keep the per-packet path free of allocation.
//
// Sources: IEEE 802.1Q-2018 (TPID 0x8100, S-tag TPID 0x88a8, TCI low 12 bits = VID);
// RFC 791 (IPv4 header, IHL, fragment offset); RFC 8200 (IPv6 header, extension header lengths
// in 8-octet units, fragment header 8 octets); RFC 4302 (AH length in 4-octet units minus 2);
// RFC 9293 (TCP data offset); RFC 768 (UDP); tcpdump.org/linktypes.html (link-layer headers).

/** LINKTYPE_* values this decoder understands (tcpdump.org/linktypes.html). */
export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

/** EtherType values the decoder follows (IEEE registry). 0x9100 is the pre-802.1ad Q-in-Q TPID still seen in the field. */
export const ETHERTYPE = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  IPV6: 0x86dd,
  QINQ: 0x88a8,
  QINQ_LEGACY: 0x9100,
} as const;

/** IP protocol / IPv6 next-header numbers (IANA "Assigned Internet Protocol Numbers"). */
export const IP_PROTOCOL = {
  HOPOPT: 0,
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  NO_NEXT_HEADER: 59,
  DSTOPTS: 60,
  SCTP: 132,
} as const;

const ipProtocolNames = new Map<number, string>(Object.entries(IP_PROTOCOL).map(([k, v]) => [v, k]));

/** Name of an IP protocol number for logs, e.g. 17 -> "UDP"; unknown numbers print as digits. */
export function ipProtocolName(protocol: number): string {
  return ipProtocolNames.get(protocol) ?? String(protocol);
}

/** Value of a field that the captured bytes do not reach (or that does not exist for this packet). */
export const ABSENT = -1;

/** Most VLAN tags followed in one frame; deeper stacks are treated as unknown L3 (802.1ad defines two, allow slack). */
export const MAX_VLAN_TAGS = 4;

/** Most IPv6 extension headers followed before giving up (RFC 8200 4.1 recommends a small fixed order; 8 is generous). */
export const MAX_IPV6_EXTENSION_HEADERS = 8;

/** Bits of the `l3Flags` field. */
export const L3_FLAG = {
  /** IPv4 with MF set or a non-zero fragment offset, or an IPv6 fragment header. */
  FRAGMENT: 1,
  /** IPv6 routing header present: the pseudo-header destination is not the header's (RFC 8200 8.1). */
  ROUTING_HEADER: 2,
} as const;

/**
 * Field positions in a decoded-offsets record (an Int32Array slice). The same layout is
 * copied into the sandbox, so the in-VM getters read these indices.
 */
export const OFFSET_FIELD = {
  /** EtherType (or equivalent) after any VLAN tags; ABSENT for raw IP link types. */
  etherType: 0,
  vlanCount: 1,
  /** VID of the outermost tag. */
  vlanId: 2,
  l3Offset: 3,
  /** 4, 6, or 0 when not IP. */
  ipVersion: 4,
  /** IPv4 protocol or final IPv6 next header. */
  protocol: 5,
  /** End of the IP packet inside the captured data (IP total length, clamped to caplen): excludes Ethernet padding. */
  l3End: 6,
  l3Flags: 7,
  l4Offset: 8,
  payloadOffset: 9,
  srcPort: 10,
  dstPort: 11,
  tcpFlags: 12,
  /** Direction-independent 32-bit hash of protocol, addresses and ports; 0 when not IP. */
  flowHash: 13,
  /**
   * End of the link-layer header: where the network header starts whatever its protocol (IP,
   * ARP, an unknown EtherType). ABSENT when the link header was not captured whole or the link
   * type is unknown. Not shown to hooks (they have l3Offset).
   */
  linkEnd: 14,
  /**
   * End of the IP header and every IPv6 extension header followed: where a transport header
   * would start, also for later fragments and unknown protocols (l4Offset is ABSENT there).
   * May exceed caplen. Not shown to hooks.
   */
  networkEnd: 15,
} as const;

/** Number of Int32 fields in one decoded-offsets record. */
export const OFFSET_FIELD_COUNT = 16;

/** Decoded offsets as a plain object (tests, dry-run output). Offsets are relative to the packet start. */
export interface PacketOffsets {
  etherType: number;
  vlanCount: number;
  vlanId: number;
  l3Offset: number;
  ipVersion: number;
  protocol: number;
  l3End: number;
  l3Flags: number;
  l4Offset: number;
  payloadOffset: number;
  srcPort: number;
  dstPort: number;
  tcpFlags: number;
  flowHash: number;
  linkEnd: number;
  networkEnd: number;
}

const BSD_AF_INET = 2;
/** AF_INET6 differs by OS in DLT_NULL/DLT_LOOP headers: Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, macOS 30 (libpcap pcap/dlt.h notes). */
const BSD_AF_INET6 = new Set([10, 24, 28, 30]);

/**
 * Decodes the layers of one packet into `out[base .. base + OFFSET_FIELD_COUNT)`.
 * `bytes[start .. start + caplen)` is the captured data; offsets written are relative to `start`.
 * Never throws; unreachable fields are ABSENT.
 */
export function decodeOffsetsInto(
  bytes: Uint8Array,
  start: number,
  caplen: number,
  linktype: number,
  out: Int32Array,
  base: number,
): void {
  for (let f = 0; f < OFFSET_FIELD_COUNT; f++) out[base + f] = ABSENT;
  out[base + OFFSET_FIELD.vlanCount] = 0;
  out[base + OFFSET_FIELD.ipVersion] = 0;
  out[base + OFFSET_FIELD.l3Flags] = 0;
  out[base + OFFSET_FIELD.flowHash] = 0;

  let l3 = ABSENT;
  let etherType = ABSENT;
  switch (linktype) {
    case LINKTYPE.ETHERNET: {
      if (caplen < 14) return;
      let at = 12;
      etherType = u16(bytes, start + at);
      let tags = 0;
      while (
        (etherType === ETHERTYPE.VLAN || etherType === ETHERTYPE.QINQ || etherType === ETHERTYPE.QINQ_LEGACY) &&
        tags < MAX_VLAN_TAGS
      ) {
        if (at + 6 > caplen) {
          out[base + OFFSET_FIELD.vlanCount] = tags;
          return;
        }
        if (tags === 0) out[base + OFFSET_FIELD.vlanId] = u16(bytes, start + at + 2) & 0x0fff;
        tags++;
        at += 4;
        etherType = u16(bytes, start + at);
      }
      out[base + OFFSET_FIELD.vlanCount] = tags;
      out[base + OFFSET_FIELD.etherType] = etherType;
      // Values below 0x0600 are an 802.3 length field (LLC follows), not an EtherType.
      if (etherType < 0x0600) return;
      l3 = at + 2;
      break;
    }
    case LINKTYPE.LINUX_SLL:
      // 16-byte header, protocol type (EtherType) at offset 14 (tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html).
      if (caplen < 16) return;
      etherType = u16(bytes, start + 14);
      out[base + OFFSET_FIELD.etherType] = etherType;
      l3 = 16;
      break;
    case LINKTYPE.LINUX_SLL2:
      // 20-byte header, protocol type at offset 0 (tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html).
      if (caplen < 20) return;
      etherType = u16(bytes, start);
      out[base + OFFSET_FIELD.etherType] = etherType;
      l3 = 20;
      break;
    case LINKTYPE.NULL:
    case LINKTYPE.LOOP: {
      // 4-byte address family: host byte order of the capturing machine for NULL, big-endian for LOOP.
      if (caplen < 4) return;
      const be = (bytes[start]! << 24) | (bytes[start + 1]! << 16) | (bytes[start + 2]! << 8) | bytes[start + 3]!;
      const le = (bytes[start + 3]! << 24) | (bytes[start + 2]! << 16) | (bytes[start + 1]! << 8) | bytes[start]!;
      const family = linktype === LINKTYPE.LOOP ? be : be >>> 0 < 256 ? be : le;
      if (family === BSD_AF_INET) etherType = ETHERTYPE.IPV4;
      else if (BSD_AF_INET6.has(family)) etherType = ETHERTYPE.IPV6;
      else return;
      l3 = 4;
      break;
    }
    case LINKTYPE.RAW:
      if (caplen < 1) return;
      etherType = bytes[start]! >> 4 === 6 ? ETHERTYPE.IPV6 : ETHERTYPE.IPV4;
      l3 = 0;
      break;
    case LINKTYPE.IPV4:
      etherType = ETHERTYPE.IPV4;
      l3 = 0;
      break;
    case LINKTYPE.IPV6:
      etherType = ETHERTYPE.IPV6;
      l3 = 0;
      break;
    default:
      return;
  }
  // The network header's start is known from the link layer alone: recorded for every
  // protocol (ARP, unknown EtherTypes, IP too short to decode) so truncation can keep it.
  if (l3 <= caplen) out[base + OFFSET_FIELD.linkEnd] = l3;
  if (etherType === ETHERTYPE.IPV4) decodeIpv4(bytes, start, caplen, l3, out, base);
  else if (etherType === ETHERTYPE.IPV6) decodeIpv6(bytes, start, caplen, l3, out, base);
}

function decodeIpv4(bytes: Uint8Array, start: number, caplen: number, l3: number, out: Int32Array, base: number): void {
  if (l3 + 20 > caplen) return;
  const p = start + l3;
  if (bytes[p]! >> 4 !== 4) return;
  const ihlBytes = (bytes[p]! & 0x0f) * 4;
  out[base + OFFSET_FIELD.l3Offset] = l3;
  out[base + OFFSET_FIELD.ipVersion] = 4;
  const protocol = bytes[p + 9]!;
  out[base + OFFSET_FIELD.protocol] = protocol;
  const totalLength = u16(bytes, p + 2);
  out[base + OFFSET_FIELD.l3End] = Math.min(caplen, l3 + Math.max(totalLength, ihlBytes));
  const fragment = u16(bytes, p + 6);
  const fragmentOffset = fragment & 0x1fff;
  const moreFragments = (fragment & 0x2000) !== 0;
  if (fragmentOffset !== 0 || moreFragments) out[base + OFFSET_FIELD.l3Flags] = L3_FLAG.FRAGMENT;
  // IHL below 5 is malformed; a header longer than what was captured leaves L4 unknown.
  if (ihlBytes < 20) return;
  out[base + OFFSET_FIELD.networkEnd] = l3 + ihlBytes;
  if (l3 + ihlBytes > caplen) return;
  const hash = hashEndpoints(bytes, p + 12, p + 16, 4, protocol, l3 + ihlBytes, start, caplen, fragmentOffset === 0);
  out[base + OFFSET_FIELD.flowHash] = hash;
  // A non-first fragment carries no transport header (RFC 791).
  if (fragmentOffset !== 0) return;
  decodeTransport(bytes, start, caplen, l3 + ihlBytes, protocol, out, base);
}

function decodeIpv6(bytes: Uint8Array, start: number, caplen: number, l3: number, out: Int32Array, base: number): void {
  if (l3 + 40 > caplen) return;
  const p = start + l3;
  if (bytes[p]! >> 4 !== 6) return;
  out[base + OFFSET_FIELD.l3Offset] = l3;
  out[base + OFFSET_FIELD.ipVersion] = 6;
  const payloadLength = u16(bytes, p + 4);
  // Payload length 0 with a hop-by-hop header means a jumbogram (RFC 2675): use what was captured.
  out[base + OFFSET_FIELD.l3End] = payloadLength === 0 ? caplen : Math.min(caplen, l3 + 40 + payloadLength);
  let next = bytes[p + 6]!;
  let at = l3 + 40;
  let flags = 0;
  let firstFragment = true;
  for (let n = 0; n < MAX_IPV6_EXTENSION_HEADERS; n++) {
    if (next === IP_PROTOCOL.HOPOPT || next === IP_PROTOCOL.ROUTING || next === IP_PROTOCOL.DSTOPTS) {
      if (at + 2 > caplen) break;
      if (next === IP_PROTOCOL.ROUTING) flags |= L3_FLAG.ROUTING_HEADER;
      const length = (bytes[start + at + 1]! + 1) * 8;
      next = bytes[start + at]!;
      at += length;
    } else if (next === IP_PROTOCOL.FRAGMENT) {
      if (at + 8 > caplen) break;
      flags |= L3_FLAG.FRAGMENT;
      if ((u16(bytes, start + at + 2) & 0xfff8) !== 0) firstFragment = false;
      next = bytes[start + at]!;
      at += 8;
    } else if (next === IP_PROTOCOL.AH) {
      if (at + 2 > caplen) break;
      const length = (bytes[start + at + 1]! + 2) * 4;
      next = bytes[start + at]!;
      at += length;
    } else {
      break;
    }
  }
  out[base + OFFSET_FIELD.protocol] = next;
  out[base + OFFSET_FIELD.l3Flags] = flags;
  out[base + OFFSET_FIELD.networkEnd] = at;
  const extensionDone = next !== IP_PROTOCOL.HOPOPT && next !== IP_PROTOCOL.ROUTING && next !== IP_PROTOCOL.DSTOPTS &&
    next !== IP_PROTOCOL.FRAGMENT && next !== IP_PROTOCOL.AH;
  out[base + OFFSET_FIELD.flowHash] = hashEndpoints(bytes, p + 8, p + 24, 16, next, at, start, caplen, extensionDone && firstFragment);
  if (!extensionDone || !firstFragment || at > caplen) return;
  decodeTransport(bytes, start, caplen, at, next, out, base);
}

function decodeTransport(
  bytes: Uint8Array,
  start: number,
  caplen: number,
  l4: number,
  protocol: number,
  out: Int32Array,
  base: number,
): void {
  if (protocol === IP_PROTOCOL.TCP) {
    if (l4 + 20 > caplen) return;
    out[base + OFFSET_FIELD.l4Offset] = l4;
    out[base + OFFSET_FIELD.srcPort] = u16(bytes, start + l4);
    out[base + OFFSET_FIELD.dstPort] = u16(bytes, start + l4 + 2);
    out[base + OFFSET_FIELD.tcpFlags] = bytes[start + l4 + 13]!;
    const dataOffset = (bytes[start + l4 + 12]! >> 4) * 4;
    if (dataOffset >= 20 && l4 + dataOffset <= caplen) out[base + OFFSET_FIELD.payloadOffset] = l4 + dataOffset;
  } else if (protocol === IP_PROTOCOL.UDP) {
    if (l4 + 8 > caplen) return;
    out[base + OFFSET_FIELD.l4Offset] = l4;
    out[base + OFFSET_FIELD.srcPort] = u16(bytes, start + l4);
    out[base + OFFSET_FIELD.dstPort] = u16(bytes, start + l4 + 2);
    out[base + OFFSET_FIELD.payloadOffset] = l4 + 8;
  } else if (protocol === IP_PROTOCOL.SCTP) {
    // Ports sit where TCP and UDP keep theirs (RFC 9260 3.1); the chunks are not decoded.
    if (l4 + 12 > caplen) return;
    out[base + OFFSET_FIELD.l4Offset] = l4;
    out[base + OFFSET_FIELD.srcPort] = u16(bytes, start + l4);
    out[base + OFFSET_FIELD.dstPort] = u16(bytes, start + l4 + 2);
  } else if (l4 < caplen) {
    out[base + OFFSET_FIELD.l4Offset] = l4;
  }
}

/**
 * FNV-1a over one endpoint (address bytes then port). The flow hash combines the two
 * endpoint hashes in sorted order so both directions of a conversation get the same value.
 */
function hashEndpoints(
  bytes: Uint8Array,
  srcAt: number,
  dstAt: number,
  addressBytes: number,
  protocol: number,
  l4: number,
  start: number,
  caplen: number,
  hasPorts: boolean,
): number {
  const portsKnown = hasPorts && (protocol === IP_PROTOCOL.TCP || protocol === IP_PROTOCOL.UDP || protocol === IP_PROTOCOL.SCTP) &&
    l4 + 4 <= caplen;
  const srcPort = portsKnown ? u16(bytes, start + l4) : 0;
  const dstPort = portsKnown ? u16(bytes, start + l4 + 2) : 0;
  const a = endpointHash(bytes, srcAt, addressBytes, srcPort);
  const b = endpointHash(bytes, dstAt, addressBytes, dstPort);
  const low = a < b ? a : b;
  const high = a < b ? b : a;
  let h = Math.imul(FNV_OFFSET ^ protocol, FNV_PRIME);
  h = Math.imul(h ^ low, FNV_PRIME);
  h = Math.imul(h ^ high, FNV_PRIME);
  return h | 0;
}

/** FNV-1a 32-bit parameters (draft-eastlake-fnv). */
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

function endpointHash(bytes: Uint8Array, at: number, count: number, port: number): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < count; i++) h = Math.imul(h ^ bytes[at + i]!, FNV_PRIME);
  h = Math.imul(h ^ (port >> 8), FNV_PRIME);
  h = Math.imul(h ^ (port & 0xff), FNV_PRIME);
  return h >>> 0;
}

function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

/** Decodes one packet (`data` is exactly the captured bytes) into a plain object. Allocates; not for the hot path. */
export function decodeOffsets(data: Uint8Array, linktype: number): PacketOffsets {
  const out = new Int32Array(OFFSET_FIELD_COUNT);
  decodeOffsetsInto(data, 0, data.byteLength, linktype, out, 0);
  const result = {} as Record<keyof PacketOffsets, number>;
  for (const [name, index] of Object.entries(OFFSET_FIELD) as [keyof PacketOffsets, number][]) result[name] = out[index]!;
  return result;
}
