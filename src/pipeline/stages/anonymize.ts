// AnonymizeStage: rewrites IP addresses in every packet, prefix-preserving (CryptoPAn) or by
// prefix substitution (like `traceanon -p`), and keeps the checksums that cover them valid by
// RFC 1624 incremental updates (traceanon zeroes them instead).
//
// What is rewritten: IPv4 source/destination, the IPv4 header inside ICMP errors (types 3, 4, 5,
// 11, 12), IPv6 source/destination, the IPv6 header inside ICMPv6 errors (types 1-4), ARP
// sender/target protocol addresses (Ethernet/IPv4 ARP). Link types: whatever packet-offsets.ts
// decodes (Ethernet with VLAN/QinQ tags, Linux SLL/SLL2, raw IP, NULL/loopback).
// What is not: addresses inside payloads (DNS answers, ICMPv6 neighbour discovery targets,
// IPv6 routing-header segments), MAC addresses. docs/stages.md says so.
//
// Checksums adjusted: IPv4 header; TCP, UDP (pseudo-header; a UDP/IPv4 0 stays 0) and ICMPv6
// (pseudo-header) on a packet carrying the transport header; ICMP and ICMPv6 over the inner
// header they quote, and the quoted header's own checksums. With an IPv6 routing header the
// pseudo-header holds the final destination (from the routing header, not rewritten), so only
// the source's change is applied.
//
// Ownership: the input batch is shared and read-only; the stage copies its bytes once per batch
// and rewrites the copy.
import type { PacketBatch } from "../../packet/packet-batch.ts";
import { BATCH_RECORD_HEADER_BYTES } from "../../packet/packet-batch.ts";
import { adjustChecksum } from "../../packet/checksums.ts";
import { ABSENT, decodeOffsetsInto, ETHERTYPE, IP_PROTOCOL, L3_FLAG, OFFSET_FIELD, OFFSET_FIELD_COUNT } from "../../packet/packet-offsets.ts";
import type { PacketStage } from "../stage.ts";
import { Ipv4AddressCache, Ipv6AddressCache } from "./address-cache.ts";
import { CryptoPan } from "./cryptopan.ts";

/** Which addresses of a packet to rewrite (`--anonymize-only`). */
export type AnonymizeWhich = "both" | "src" | "dst";

/** An address prefix for substitution: the top `bits` bits of every address are replaced by `address`'s. */
export interface AddressPrefix {
  /** 4 or 16 bytes. */
  address: Uint8Array;
  bits: number;
}

export type AnonymizeMethod =
  | { kind: "cryptopan"; key: Uint8Array }
  /** Prefix substitution; a family without a prefix is left as is. */
  | { kind: "prefix"; ipv4?: AddressPrefix | undefined; ipv6?: AddressPrefix | undefined };

export interface AnonymizeStageOptions {
  method: AnonymizeMethod;
  which: AnonymizeWhich;
}

/** ICMP types whose body quotes the offending IP header (RFC 792, RFC 1812 4.3.2.3). */
const ICMP_ERROR_TYPES = new Set([3, 4, 5, 11, 12]);
/** ICMPv6 error types (RFC 4443 2.1: 1-4 are errors quoting the invoking packet). */
const ICMPV6_ERROR_MAX_TYPE = 4;
/** ICMP/ICMPv6 header before the quoted packet (type, code, checksum, 4 unused/MTU bytes). */
const ICMP_ERROR_HEADER_BYTES = 8;
/** ARP fixed part for Ethernet/IPv4 (RFC 826): htype, ptype, hlen, plen, oper, then the addresses. */
const ARP_IPV4_BYTES = 28;

export interface AnonymizeCounters {
  packets_in: number;
  /** Packets in which at least one address was rewritten. */
  packets_rewritten: number;
  addresses_rewritten: number;
  ipv4_cache_hits: number;
  ipv4_cache_misses: number;
  ipv6_cache_hits: number;
  ipv6_cache_misses: number;
  cache_resets: number;
  /** AES computations (one per address not in the cache). */
  encryptions: number;
  /** Packets passed as they were: not IP or ARP (or a link type not decoded). */
  not_ip: number;
  /** Packets passed as they were: IP or ARP named by the link layer, but its header is cut short or malformed. */
  malformed: number;
}

export class AnonymizeStage implements PacketStage {
  readonly name = "anonymize";
  private readonly cryptoPan: CryptoPan | undefined;
  private readonly prefix4: { value: number; mask: number } | undefined;
  private readonly prefix6: AddressPrefix | undefined;
  private readonly cache4 = new Ipv4AddressCache();
  private readonly cache6: Ipv6AddressCache;
  private readonly rewriteSource: boolean;
  private readonly rewriteDestination: boolean;
  private readonly offsets = new Int32Array(OFFSET_FIELD_COUNT);
  /** The anonymized form of one IPv6 address, before it is written over the original. */
  private readonly scratch6 = new Uint8Array(16);
  private readonly stats: AnonymizeCounters = {
    packets_in: 0,
    packets_rewritten: 0,
    addresses_rewritten: 0,
    ipv4_cache_hits: 0,
    ipv4_cache_misses: 0,
    ipv6_cache_hits: 0,
    ipv6_cache_misses: 0,
    cache_resets: 0,
    encryptions: 0,
    not_ip: 0,
    malformed: 0,
  };
  /** Addresses rewritten in the packet being processed (for packets_rewritten). */
  private rewrittenInPacket = 0;

  constructor(options: AnonymizeStageOptions) {
    const method = options.method;
    if (method.kind === "cryptopan") {
      this.cryptoPan = new CryptoPan(method.key);
      this.cache6 = new Ipv6AddressCache();
    } else {
      this.cryptoPan = undefined;
      this.cache6 = new Ipv6AddressCache(1); // unused in prefix mode
      if (method.ipv4) {
        const mask = method.ipv4.bits === 0 ? 0 : (-1 << (32 - method.ipv4.bits)) >>> 0;
        this.prefix4 = { value: (readU32(method.ipv4.address, 0) & mask) >>> 0, mask };
      }
      this.prefix6 = method.ipv6;
    }
    this.rewriteSource = options.which !== "dst";
    this.rewriteDestination = options.which !== "src";
  }

  apply(batch: PacketBatch): PacketBatch {
    if (batch.count === 0) return batch;
    // One copy per batch: inputs are shared and read-only.
    const bytes = batch.bytes.slice();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let offset = 0;
    for (let i = 0; i < batch.count; i++) {
      const caplen = view.getUint32(offset + 8, true);
      const at = offset + BATCH_RECORD_HEADER_BYTES;
      if (at + caplen > bytes.byteLength) break; // a batch is well formed by contract; stop rather than read past it
      this.packet(bytes, at, caplen, batch.linktype);
      offset = at + caplen;
    }
    this.stats.packets_in += batch.count;
    return { ...batch, bytes };
  }

  counters(): Readonly<Record<string, number>> {
    const s = this.stats;
    s.ipv4_cache_hits = this.cache4.counters.hits;
    s.ipv4_cache_misses = this.cache4.counters.misses;
    s.ipv6_cache_hits = this.cache6.counters.hits;
    s.ipv6_cache_misses = this.cache6.counters.misses;
    s.cache_resets = this.cache4.counters.resets + this.cache6.counters.resets;
    s.encryptions = this.cryptoPan?.encryptions ?? 0;
    return { ...s };
  }

  summaryLines(): string[] {
    const c = this.counters();
    const lookups = c.ipv4_cache_hits! + c.ipv4_cache_misses! + c.ipv6_cache_hits! + c.ipv6_cache_misses!;
    const hits = c.ipv4_cache_hits! + c.ipv6_cache_hits!;
    const rate = lookups === 0 ? "n/a" : `${((100 * hits) / lookups).toFixed(1)}%`;
    const parts = [
      `${c.packets_in} packets, ${c.packets_rewritten} rewritten, ${c.addresses_rewritten} addresses`,
      this.cryptoPan ? `cache hit rate ${rate} (${hits} of ${lookups}), ${c.encryptions} new addresses encrypted` : "prefix substitution",
    ];
    if (c.cache_resets! > 0) parts.push(`cache cleared ${c.cache_resets}x`);
    if (c.not_ip! > 0 || c.malformed! > 0) parts.push(`passed unchanged: ${c.not_ip} not IP/ARP, ${c.malformed} malformed or cut short`);
    return [`anonymize: ${parts.join("; ")}`];
  }

  close(): void {
    // The key lives inside the node:crypto cipher; nothing else to release.
  }

  /** Rewrites one packet, `bytes[start .. start+caplen)`, in place. Never throws for its content. */
  private packet(bytes: Uint8Array, start: number, caplen: number, linktype: number): void {
    const o = this.offsets;
    decodeOffsetsInto(bytes, start, caplen, linktype, o, 0);
    this.rewrittenInPacket = 0;
    const ipVersion = o[OFFSET_FIELD.ipVersion]!;
    const end = start + caplen;
    if (ipVersion === 4) this.ipv4Packet(bytes, start, end);
    else if (ipVersion === 6) this.ipv6Packet(bytes, start, end);
    else {
      const etherType = o[OFFSET_FIELD.etherType]!;
      const linkEnd = o[OFFSET_FIELD.linkEnd]!;
      if (etherType === ETHERTYPE.ARP && linkEnd !== ABSENT) this.arp(bytes, start + linkEnd, end);
      else if ((etherType === ETHERTYPE.IPV4 || etherType === ETHERTYPE.IPV6) && linkEnd !== ABSENT) this.stats.malformed++;
      else this.stats.not_ip++;
    }
    if (this.rewrittenInPacket > 0) {
      this.stats.packets_rewritten++;
      this.stats.addresses_rewritten += this.rewrittenInPacket;
    }
  }

  private ipv4Packet(bytes: Uint8Array, start: number, end: number): void {
    const o = this.offsets;
    const l3 = start + o[OFFSET_FIELD.l3Offset]!;
    // decodeOffsetsInto guarantees the 20-byte fixed header is captured.
    const delta = this.ipv4Addresses(bytes, l3 + 12, l3 + 16, this.rewriteSource, this.rewriteDestination);
    adjustChecksum(bytes, l3 + 10, delta, false);
    const l4Relative = o[OFFSET_FIELD.l4Offset]!;
    if (l4Relative === ABSENT) return; // a later fragment, or the transport header was not captured
    const l4 = start + l4Relative;
    const protocol = o[OFFSET_FIELD.protocol]!;
    if (protocol === IP_PROTOCOL.TCP || protocol === IP_PROTOCOL.UDP) {
      adjustTransport(bytes, l4, end, protocol, delta);
    } else if (protocol === IP_PROTOCOL.ICMP && l4 + 4 <= end && ICMP_ERROR_TYPES.has(bytes[l4]!)) {
      const inner = l4 + ICMP_ERROR_HEADER_BYTES;
      if (inner + 20 > end || bytes[inner]! >> 4 !== 4) return;
      // The quoted packet travelled the other way: its source is this packet's destination.
      const innerDelta = this.quotedIpv4(bytes, inner, end);
      adjustChecksum(bytes, l4 + 2, innerDelta, false);
    }
  }

  /**
   * Rewrites the IPv4 header quoted in an ICMP error at `inner` and its own checksums; returns
   * the one's-complement change of the ICMP body (addresses and the checksums that moved).
   */
  private quotedIpv4(bytes: Uint8Array, inner: number, end: number): number {
    let icmpDelta = 0;
    const addressDelta = this.ipv4Addresses(bytes, inner + 12, inner + 16, this.rewriteDestination, this.rewriteSource);
    icmpDelta += addressDelta;
    icmpDelta += adjustTracked(bytes, inner + 10, addressDelta, false);
    const headerBytes = (bytes[inner]! & 0x0f) * 4;
    const fragmentOffset = ((bytes[inner + 6]! << 8) | bytes[inner + 7]!) & 0x1fff;
    const protocol = bytes[inner + 9]!;
    const l4 = inner + headerBytes;
    if (headerBytes < 20 || fragmentOffset !== 0) return icmpDelta;
    if (protocol === IP_PROTOCOL.TCP || protocol === IP_PROTOCOL.UDP) {
      const checksumAt = l4 + (protocol === IP_PROTOCOL.TCP ? 16 : 6);
      if (checksumAt + 2 <= end) icmpDelta += adjustTracked(bytes, checksumAt, addressDelta, protocol === IP_PROTOCOL.UDP);
    }
    return icmpDelta;
  }

  private ipv6Packet(bytes: Uint8Array, start: number, end: number): void {
    const o = this.offsets;
    const l3 = start + o[OFFSET_FIELD.l3Offset]!;
    const sourceDelta = this.rewriteSource ? this.ipv6Address(bytes, l3 + 8) : 0;
    const destinationDelta = this.rewriteDestination ? this.ipv6Address(bytes, l3 + 24) : 0;
    const routed = (o[OFFSET_FIELD.l3Flags]! & L3_FLAG.ROUTING_HEADER) !== 0;
    const pseudoDelta = sourceDelta + (routed ? 0 : destinationDelta);
    const l4Relative = o[OFFSET_FIELD.l4Offset]!;
    if (l4Relative === ABSENT) return;
    const l4 = start + l4Relative;
    const protocol = o[OFFSET_FIELD.protocol]!;
    if (protocol === IP_PROTOCOL.TCP || protocol === IP_PROTOCOL.UDP) {
      adjustTransport(bytes, l4, end, protocol, pseudoDelta);
    } else if (protocol === IP_PROTOCOL.ICMPV6 && l4 + 4 <= end) {
      let icmpDelta = pseudoDelta;
      const type = bytes[l4]!;
      const inner = l4 + ICMP_ERROR_HEADER_BYTES;
      if (type >= 1 && type <= ICMPV6_ERROR_MAX_TYPE && inner + 40 <= end && bytes[inner]! >> 4 === 6) {
        const innerSource = this.rewriteDestination ? this.ipv6Address(bytes, inner + 8) : 0;
        const innerDestination = this.rewriteSource ? this.ipv6Address(bytes, inner + 24) : 0;
        icmpDelta += innerSource + innerDestination;
        // The quoted packet's own transport checksum, when it follows the fixed header directly.
        const next = bytes[inner + 6]!;
        const innerL4 = inner + 40;
        if (next === IP_PROTOCOL.TCP || next === IP_PROTOCOL.UDP || next === IP_PROTOCOL.ICMPV6) {
          const checksumAt = innerL4 + (next === IP_PROTOCOL.TCP ? 16 : next === IP_PROTOCOL.UDP ? 6 : 2);
          if (checksumAt + 2 <= end) icmpDelta += adjustTracked(bytes, checksumAt, innerSource + innerDestination, next === IP_PROTOCOL.UDP);
        }
      }
      adjustChecksum(bytes, l4 + 2, icmpDelta, false);
    }
  }

  private arp(bytes: Uint8Array, arp: number, end: number): void {
    if (arp + ARP_IPV4_BYTES > end) {
      this.stats.malformed++;
      return;
    }
    const hardwareLength = bytes[arp + 4]!;
    const protocolLength = bytes[arp + 5]!;
    const protocolType = (bytes[arp + 2]! << 8) | bytes[arp + 3]!;
    if (protocolType !== ETHERTYPE.IPV4 || hardwareLength !== 6 || protocolLength !== 4) {
      this.stats.not_ip++;
      return;
    }
    // sender hardware 8..13, sender protocol 14..17, target hardware 18..23, target protocol 24..27.
    this.ipv4Addresses(bytes, arp + 14, arp + 24, this.rewriteSource, this.rewriteDestination);
  }

  /** Rewrites the IPv4 addresses at `sourceAt` and `destinationAt` as asked; returns the checksum delta. */
  private ipv4Addresses(bytes: Uint8Array, sourceAt: number, destinationAt: number, source: boolean, destination: boolean): number {
    return (source ? this.ipv4Address(bytes, sourceAt) : 0) + (destination ? this.ipv4Address(bytes, destinationAt) : 0);
  }

  /** Rewrites one IPv4 address in place; returns ~old + new over its two 16-bit words. */
  private ipv4Address(bytes: Uint8Array, at: number): number {
    const original = readU32(bytes, at);
    let anonymized: number;
    if (this.cryptoPan) {
      anonymized = this.cache4.get(original);
      if (anonymized < 0) {
        anonymized = this.cryptoPan.anonymizeIpv4(original);
        this.cache4.set(original, anonymized);
      }
    } else if (this.prefix4) {
      anonymized = (this.prefix4.value | (original & ~this.prefix4.mask)) >>> 0;
    } else {
      return 0;
    }
    bytes[at] = anonymized >>> 24;
    bytes[at + 1] = (anonymized >>> 16) & 0xff;
    bytes[at + 2] = (anonymized >>> 8) & 0xff;
    bytes[at + 3] = anonymized & 0xff;
    this.rewrittenInPacket++;
    return (~(original >>> 16) & 0xffff) + (anonymized >>> 16) + (~original & 0xffff) + (anonymized & 0xffff);
  }

  /** Rewrites one IPv6 address in place; returns its checksum delta. */
  private ipv6Address(bytes: Uint8Array, at: number): number {
    const next = this.scratch6;
    if (this.cryptoPan) {
      if (!this.cache6.get(bytes, at, next, 0)) {
        this.cryptoPan.anonymizeIpv6(bytes, at, next, 0);
        this.cache6.set(bytes, at, next, 0);
      }
    } else if (this.prefix6) {
      substitutePrefix(bytes, at, this.prefix6, next);
    } else {
      return 0;
    }
    let delta = 0;
    for (let k = 0; k < 16; k += 2) {
      delta += (~((bytes[at + k]! << 8) | bytes[at + k + 1]!) & 0xffff) + ((next[k]! << 8) | next[k + 1]!);
    }
    bytes.set(next, at);
    this.rewrittenInPacket++;
    return delta;
  }
}

/** Applies a pseudo-header change to a TCP or UDP checksum, when its field was captured. */
function adjustTransport(bytes: Uint8Array, l4: number, end: number, protocol: number, delta: number): void {
  const checksumAt = l4 + (protocol === IP_PROTOCOL.TCP ? 16 : 6);
  if (checksumAt + 2 <= end) adjustChecksum(bytes, checksumAt, delta, protocol === IP_PROTOCOL.UDP);
}

/** adjustChecksum, returning the change of the checksum field itself (it is covered by an enclosing ICMP checksum). */
function adjustTracked(bytes: Uint8Array, checksumAt: number, delta: number, udp: boolean): number {
  const before = (bytes[checksumAt]! << 8) | bytes[checksumAt + 1]!;
  adjustChecksum(bytes, checksumAt, delta, udp);
  const after = (bytes[checksumAt]! << 8) | bytes[checksumAt + 1]!;
  return (~before & 0xffff) + after;
}

function substitutePrefix(bytes: Uint8Array, at: number, prefix: AddressPrefix, out: Uint8Array): void {
  for (let b = 0; b < 16; b++) {
    const bitsHere = Math.max(0, Math.min(8, prefix.bits - b * 8));
    const mask = bitsHere === 0 ? 0 : (0xff << (8 - bitsHere)) & 0xff;
    out[b] = (prefix.address[b]! & mask) | (bytes[at + b]! & ~mask & 0xff);
  }
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}
