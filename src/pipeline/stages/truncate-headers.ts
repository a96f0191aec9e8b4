// TruncateHeadersStage (`--truncate-headers [+N]`): keeps each packet's link, network and
// transport headers plus N payload bytes, sets caplen to that and keeps len (the wire length),
// like WDCap's header truncation. Unlike `-s` snaplen the cut follows each packet's headers.
//
// Where the headers end (packet-offsets.ts decodes them): TCP at its data offset (options
// included); UDP 8 bytes; ICMP and ICMPv6 8 bytes (type, code, checksum and the 4-byte rest of
// header, RFC 792/4443); SCTP its 12-byte common header (RFC 9260); any other protocol, and
// IPv4/IPv6 fragments after the first, after the IP header and every IPv6 extension header;
// ARP its whole body (RFC 826: 8 + 2 hlen + 2 plen bytes); other EtherTypes after the link
// header. A link type not decoded (or a link header not captured whole) keeps the packet as is
// and is counted. Payload bytes never reach past the IP packet's own end (no Ethernet padding).
import type { PacketBatch } from "../../packet/packet-batch.ts";
import { BATCH_RECORD_HEADER_BYTES, selectRecords } from "../../packet/packet-batch.ts";
import { ABSENT, decodeOffsetsInto, ETHERTYPE, IP_PROTOCOL, OFFSET_FIELD, OFFSET_FIELD_COUNT } from "../../packet/packet-offsets.ts";
import type { PacketStage } from "../stage.ts";

/** Largest +N: a payload allowance above the largest snaplen would mean "keep everything". */
export const MAX_TRUNCATE_PAYLOAD_BYTES = 65535;

const UDP_HEADER_BYTES = 8;
const ICMP_HEADER_BYTES = 8;
const SCTP_COMMON_HEADER_BYTES = 12;
const TCP_MINIMUM_HEADER_BYTES = 20;
const ARP_FIXED_BYTES = 8;

export interface TruncateHeadersOptions {
  /** Payload bytes kept after the last header (the N of `+N`); 0 keeps headers only. */
  payloadBytes: number;
}

export class TruncateHeadersStage implements PacketStage {
  readonly name = "truncate-headers";
  private readonly offsets = new Int32Array(OFFSET_FIELD_COUNT);
  private readonly stats = { packets_in: 0, packets_truncated: 0, bytes_removed: 0, not_decoded: 0 };

  constructor(private readonly options: TruncateHeadersOptions) {
    if (!Number.isInteger(options.payloadBytes) || options.payloadBytes < 0 || options.payloadBytes > MAX_TRUNCATE_PAYLOAD_BYTES) {
      throw new RangeError(`truncate-headers payload bytes must be 0..${MAX_TRUNCATE_PAYLOAD_BYTES}, not ${options.payloadBytes}`);
    }
  }

  apply(batch: PacketBatch): PacketBatch {
    if (batch.count === 0) return batch;
    this.stats.packets_in += batch.count;
    const bytes = batch.bytes;
    return selectRecords(batch, (_view, recordOffset, caplen) => {
      const keep = this.keptBytes(bytes, recordOffset + BATCH_RECORD_HEADER_BYTES, caplen, batch.linktype);
      if (keep < caplen) {
        this.stats.packets_truncated++;
        this.stats.bytes_removed += caplen - keep;
      }
      return keep;
    });
  }

  counters(): Readonly<Record<string, number>> {
    return { ...this.stats };
  }

  summaryLines(): string[] {
    const s = this.stats;
    const extra = s.not_decoded > 0 ? `; ${s.not_decoded} kept whole (link layer not decoded)` : "";
    return [`truncate-headers: ${s.packets_in} packets, ${s.packets_truncated} truncated, ${s.bytes_removed} bytes removed${extra}`];
  }

  /** Bytes of the packet at `bytes[start .. start+caplen)` to keep (never more than caplen). */
  private keptBytes(bytes: Uint8Array, start: number, caplen: number, linktype: number): number {
    const o = this.offsets;
    decodeOffsetsInto(bytes, start, caplen, linktype, o, 0);
    const headersEnd = headersEndOf(bytes, start, caplen, o);
    if (headersEnd === ABSENT) {
      this.stats.not_decoded++;
      return caplen;
    }
    let keep = headersEnd;
    if (this.options.payloadBytes > 0) {
      const l3End = o[OFFSET_FIELD.l3End]!;
      const dataEnd = l3End === ABSENT ? caplen : l3End;
      keep = Math.max(headersEnd, Math.min(dataEnd, headersEnd + this.options.payloadBytes));
    }
    return Math.min(caplen, keep);
  }
}

/** Where the last header the stage keeps ends (relative to the packet), or ABSENT when the link layer was not decoded. */
export function headersEndOf(bytes: Uint8Array, start: number, caplen: number, o: Int32Array): number {
  const linkEnd = o[OFFSET_FIELD.linkEnd]!;
  if (linkEnd === ABSENT) return ABSENT;
  const ipVersion = o[OFFSET_FIELD.ipVersion]!;
  if (ipVersion === 0) {
    if (o[OFFSET_FIELD.etherType] === ETHERTYPE.ARP && linkEnd + 6 <= caplen) {
      return linkEnd + ARP_FIXED_BYTES + 2 * bytes[start + linkEnd + 4]! + 2 * bytes[start + linkEnd + 5]!;
    }
    // Not IP, or an IP header cut short: the link header, and whatever of the rest was captured is cut.
    return o[OFFSET_FIELD.etherType] === ETHERTYPE.IPV4 || o[OFFSET_FIELD.etherType] === ETHERTYPE.IPV6 ? caplen : linkEnd;
  }
  const l4 = o[OFFSET_FIELD.l4Offset]!;
  const networkEnd = o[OFFSET_FIELD.networkEnd]!;
  if (l4 === ABSENT) return networkEnd === ABSENT ? caplen : networkEnd;
  switch (o[OFFSET_FIELD.protocol]) {
    case IP_PROTOCOL.TCP: {
      const payload = o[OFFSET_FIELD.payloadOffset]!;
      if (payload !== ABSENT) return payload;
      // Data offset beyond what was captured (or invalid): keep the header as declared, capped by caplen.
      const dataOffset = (bytes[start + l4 + 12]! >> 4) * 4;
      return l4 + Math.max(TCP_MINIMUM_HEADER_BYTES, dataOffset);
    }
    case IP_PROTOCOL.UDP:
      return l4 + UDP_HEADER_BYTES;
    case IP_PROTOCOL.ICMP:
    case IP_PROTOCOL.ICMPV6:
      return l4 + ICMP_HEADER_BYTES;
    case IP_PROTOCOL.SCTP:
      return l4 + SCTP_COMMON_HEADER_BYTES;
    default:
      return l4;
  }
}
