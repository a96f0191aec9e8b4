// Pure encode/decode of libtrace RT messages: no sockets, timers, logging or Bun APIs.
// Wire map (all little-endian, see wire.ts for the sources and the reason):
//
//   header   type u32 | length u16 | pad u16 | sequence u32            (12 bytes)
//   HELLO    reliable u8                                                (1)
//   DENY     reason u32                                                 (4)
//   ACK      sequence u32                                               (4)
//   STATUS   in u64 | out u64 | ack u64 | length u64 | used u64 | probe: dropped u64 |
//            episodes u64 | policy u64                                  (64; libtrace: 40)
//   START    empty (libtrace) | probe extension (20, wire.ts)
//   METADATA label_len u32 | value_len u32 | label | value
//   DATA_DLT+linktype  tv_sec i64 | tv_usec i64 | caplen u32 | len u32 | data[caplen]
import { BATCH_RECORD_HEADER_BYTES } from "../../packet/packet-batch.ts";
import { ProtocolError } from "../../packet/protocol-error.ts";
import {
  PROBE_START_BODY_BYTES,
  PROBE_START_FLAG_RESUME,
  PROBE_START_MAGIC,
  PROBE_STREAM_LABEL,
  PROBE_STREAM_VALUE_BYTES,
  RT_ACK_BODY_BYTES,
  RT_DATA_DLT,
  RT_DATA_DLT_END,
  RT_DENY_BODY_BYTES,
  RT_HEADER_BYTES,
  RT_HELLO_BODY_BYTES,
  RT_MAX_BODY_BYTES,
  RT_MAX_CAPLEN,
  RT_PCAP_PKTHDR_BYTES,
  RT_SEQUENCE_MODULUS,
  RT_STATUS_BODY_BYTES,
  RT_STATUS_LIBTRACE_BYTES,
  RtType,
  STREAM_ID_BYTES,
} from "./wire.ts";

export interface RtHeader {
  type: number;
  length: number;
  sequence: number;
}

/** Decodes the 12-byte header at `offset` (the header decodes on its own). */
export function decodeHeader(bytes: Uint8Array, offset = 0): RtHeader {
  if (bytes.byteLength - offset < RT_HEADER_BYTES) {
    throw new ProtocolError("truncated", `truncated RT header: need ${RT_HEADER_BYTES} bytes, ${bytes.byteLength - offset} left`, offset);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, RT_HEADER_BYTES);
  return { type: view.getUint32(0, true), length: view.getUint16(4, true), sequence: view.getUint32(8, true) };
}

function writeHeader(view: DataView, at: number, type: number, length: number, sequence: number): void {
  if (length > RT_MAX_BODY_BYTES) throw new RangeError(`RT body of ${length} bytes does not fit the u16 length`);
  view.setUint32(at, type, true);
  view.setUint16(at + 4, length, true);
  view.setUint16(at + 6, 0, true);
  view.setUint32(at + 8, sequence >>> 0, true);
}

/** A control message: header plus `body` (copied). */
export function encodeMessage(type: number, body: Uint8Array = new Uint8Array(0), sequence = 0): Uint8Array {
  const out = new Uint8Array(RT_HEADER_BYTES + body.byteLength);
  writeHeader(new DataView(out.buffer), 0, type, body.byteLength, sequence);
  out.set(body, RT_HEADER_BYTES);
  return out;
}

/** Fixed messages, encoded once at load. */
export const HELLO_RELIABLE = encodeMessage(RtType.HELLO, Uint8Array.of(1));
export const HELLO_UNRELIABLE = encodeMessage(RtType.HELLO, Uint8Array.of(0));
export const END_DATA = encodeMessage(RtType.END_DATA);
export const CLOSE = encodeMessage(RtType.CLOSE);
export const START_LIBTRACE = encodeMessage(RtType.START);

export function encodeDeny(reason: number): Uint8Array {
  const body = new Uint8Array(RT_DENY_BODY_BYTES);
  new DataView(body.buffer).setUint32(0, reason, true);
  return encodeMessage(RtType.DENY_CONN, body);
}

export function encodeAck(sequence: number): Uint8Array {
  const body = new Uint8Array(RT_ACK_BODY_BYTES);
  new DataView(body.buffer).setUint32(0, sequence >>> 0, true);
  return encodeMessage(RtType.ACK, body);
}

export function decodeAck(body: Uint8Array, offset = 0): number {
  if (body.byteLength !== RT_ACK_BODY_BYTES) throw new ProtocolError("bad-ack", `ACK body is ${body.byteLength} bytes, want ${RT_ACK_BODY_BYTES}`, offset);
  return new DataView(body.buffer, body.byteOffset, 4).getUint32(0, true);
}

export function decodeHello(body: Uint8Array, offset = 0): { reliable: boolean } {
  if (body.byteLength < RT_HELLO_BODY_BYTES) throw new ProtocolError("bad-hello", "HELLO without its reliable flag", offset);
  return { reliable: body[0] !== 0 };
}

export function decodeDeny(body: Uint8Array): number {
  return body.byteLength >= RT_DENY_BODY_BYTES ? new DataView(body.buffer, body.byteOffset, 4).getUint32(0, true) : 0;
}

/** The fifo's counters as STATUS carries them (bytes unless named otherwise). */
export interface RtStatus {
  /** Bytes ever appended (fifo write pointer). */
  in: number;
  /** Bytes ever sent (read pointer). */
  out: number;
  /** Bytes ever acknowledged. */
  ack: number;
  /** Capacity in bytes. */
  length: number;
  /** Bytes held now. */
  used: number;
  /** probe: records dropped by the full-fifo policy. */
  droppedRecords: number;
  /** probe: times the fifo became full. */
  fullEpisodes: number;
  /** probe: SpoolFullPolicyCode. */
  policy: number;
}

const STATUS_FIELDS = ["in", "out", "ack", "length", "used", "droppedRecords", "fullEpisodes", "policy"] as const;

export function encodeStatus(status: RtStatus): Uint8Array {
  const body = new Uint8Array(RT_STATUS_BODY_BYTES);
  const view = new DataView(body.buffer);
  STATUS_FIELDS.forEach((field, i) => view.setBigUint64(i * 8, BigInt(Math.max(0, Math.floor(status[field]))), true));
  return encodeMessage(RtType.STATUS, body);
}

export function decodeStatus(body: Uint8Array, offset = 0): RtStatus {
  if (body.byteLength < RT_STATUS_LIBTRACE_BYTES) throw new ProtocolError("bad-status", `STATUS body is ${body.byteLength} bytes, want at least ${RT_STATUS_LIBTRACE_BYTES}`, offset);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const status = { in: 0, out: 0, ack: 0, length: 0, used: 0, droppedRecords: 0, fullEpisodes: 0, policy: 0 };
  STATUS_FIELDS.forEach((field, i) => {
    if ((i + 1) * 8 <= body.byteLength) status[field] = Number(view.getBigUint64(i * 8, true));
  });
  return status;
}

/** What a probe client tells the server in START: where it stands in which stream. */
export interface ProbeStart {
  /** Stream id the client last wrote from, or undefined for a fresh client. */
  streamId?: Uint8Array;
  /** Last sequence the client wrote (with streamId). */
  lastSequence?: number;
}

export function encodeStart(probe?: ProbeStart): Uint8Array {
  if (!probe) return START_LIBTRACE;
  const body = new Uint8Array(PROBE_START_BODY_BYTES);
  const view = new DataView(body.buffer);
  view.setUint32(0, PROBE_START_MAGIC, true);
  const resume = probe.streamId !== undefined && probe.lastSequence !== undefined;
  view.setUint32(4, resume ? PROBE_START_FLAG_RESUME : 0, true);
  if (resume) {
    if (probe.streamId!.byteLength !== STREAM_ID_BYTES) throw new RangeError("stream id must be 8 bytes");
    body.set(probe.streamId!, 8);
    view.setUint32(16, probe.lastSequence! >>> 0, true);
  }
  return encodeMessage(RtType.START, body);
}

/** START's body: undefined for libtrace's empty START (or any body that is not probe's), else the extension. */
export function decodeStart(body: Uint8Array): ProbeStart | undefined {
  if (body.byteLength !== PROBE_START_BODY_BYTES) return undefined;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (view.getUint32(0, true) !== PROBE_START_MAGIC) return undefined;
  if ((view.getUint32(4, true) & PROBE_START_FLAG_RESUME) === 0) return {};
  return { streamId: body.slice(8, 16), lastSequence: view.getUint32(16, true) };
}

const LABEL_BYTES = new TextEncoder().encode(PROBE_STREAM_LABEL);

/** METADATA "probe.stream": the stream id, the next sequence the server sends, the link type. */
export function encodeStreamAnnounce(streamId: Uint8Array, nextSequence: number, linktype: number): Uint8Array {
  const body = new Uint8Array(8 + LABEL_BYTES.byteLength + PROBE_STREAM_VALUE_BYTES);
  const view = new DataView(body.buffer);
  view.setUint32(0, LABEL_BYTES.byteLength, true);
  view.setUint32(4, PROBE_STREAM_VALUE_BYTES, true);
  body.set(LABEL_BYTES, 8);
  body.set(streamId, 8 + LABEL_BYTES.byteLength);
  view.setUint32(8 + LABEL_BYTES.byteLength + STREAM_ID_BYTES, nextSequence >>> 0, true);
  view.setUint32(8 + LABEL_BYTES.byteLength + STREAM_ID_BYTES + 4, linktype >>> 0, true);
  return encodeMessage(RtType.METADATA, body);
}

/** A METADATA body: the probe stream announcement, or undefined for any other label. */
export function decodeStreamAnnounce(body: Uint8Array, offset = 0): { streamId: Uint8Array; nextSequence: number; linktype: number } | undefined {
  if (body.byteLength < 8) throw new ProtocolError("bad-metadata", "METADATA shorter than its two lengths", offset);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const labelLen = view.getUint32(0, true);
  const valueLen = view.getUint32(4, true);
  if (8 + labelLen + valueLen !== body.byteLength) throw new ProtocolError("bad-metadata", "METADATA lengths do not add up to its body", offset);
  const label = new TextDecoder().decode(body.subarray(8, 8 + labelLen));
  if (label !== PROBE_STREAM_LABEL || valueLen !== PROBE_STREAM_VALUE_BYTES) return undefined;
  const at = 8 + labelLen;
  return {
    streamId: body.slice(at, at + STREAM_ID_BYTES),
    nextSequence: view.getUint32(at + STREAM_ID_BYTES, true),
    linktype: view.getUint32(at + STREAM_ID_BYTES + 4, true),
  };
}

/** The RT type of a pcap data message for a link type, or undefined when libtrace cannot take it. */
export function dataTypeForLinktype(linktype: number): number | undefined {
  const type = RT_DATA_DLT + linktype;
  return type > RT_DATA_DLT && type < RT_DATA_DLT_END ? type : undefined;
}

export function isPcapDataType(type: number): boolean {
  return type > RT_DATA_DLT && type < RT_DATA_DLT_END;
}

/** Size of the RT messages `encodeDataMessages` makes for records of these caplens. */
export function dataMessageBytes(caplen: number): number {
  return RT_HEADER_BYTES + RT_PCAP_PKTHDR_BYTES + Math.min(caplen, RT_MAX_CAPLEN);
}

export interface EncodedData {
  /** RT messages, back to back: one socket write. */
  bytes: Uint8Array;
  /** Records cut to RT_MAX_CAPLEN because the u16 length cannot carry more. */
  truncated: number;
}

/**
 * Encodes `count` PacketBatch-layout records (ts_sec, ts_frac, caplen, len, data; little-endian)
 * from `records` as RT pcap data messages numbered from `firstSequence` (wrapping mod 2^32).
 * Nanosecond timestamps become microseconds (pcap_pkthdr has tv_usec). Sizes first, one write.
 */
export function encodeDataMessages(
  records: Uint8Array,
  count: number,
  dataType: number,
  precision: "micro" | "nano",
  firstSequence: number,
): EncodedData {
  const src = new DataView(records.buffer, records.byteOffset, records.byteLength);
  let total = 0;
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const caplen = src.getUint32(offset + 8, true);
    total += dataMessageBytes(caplen);
    offset += BATCH_RECORD_HEADER_BYTES + caplen;
  }
  const out = new Uint8Array(total);
  const dst = new DataView(out.buffer);
  let truncated = 0;
  let at = 0;
  offset = 0;
  for (let i = 0; i < count; i++) {
    const tsSec = src.getUint32(offset, true);
    const tsFrac = src.getUint32(offset + 4, true);
    const caplen = src.getUint32(offset + 8, true);
    const len = src.getUint32(offset + 12, true);
    const kept = Math.min(caplen, RT_MAX_CAPLEN);
    if (kept < caplen) truncated++;
    // Sequence numbers wrap explicitly at 2^32 (u32 on the wire).
    writeHeader(dst, at, dataType, RT_PCAP_PKTHDR_BYTES + kept, (firstSequence + i) % RT_SEQUENCE_MODULUS);
    dst.setBigInt64(at + 12, BigInt(tsSec), true);
    dst.setBigInt64(at + 20, BigInt(precision === "nano" ? Math.floor(tsFrac / 1000) : tsFrac), true);
    dst.setUint32(at + 28, kept, true);
    dst.setUint32(at + 32, len, true);
    const dataAt = offset + BATCH_RECORD_HEADER_BYTES;
    out.set(records.subarray(dataAt, dataAt + kept), at + 12 + RT_PCAP_PKTHDR_BYTES);
    at += RT_HEADER_BYTES + RT_PCAP_PKTHDR_BYTES + kept;
    offset = dataAt + caplen;
  }
  return { bytes: out, truncated };
}

export interface PcapDataView {
  tsSec: number;
  tsUsec: number;
  caplen: number;
  len: number;
  /** Offset of the packet bytes inside the body (borrowed). */
  dataOffset: number;
}

/**
 * Decodes a pcap data body: checks caplen three ways (against the body, against len, against
 * `snaplen`) and the timestamp's range before anything is copied.
 */
export function decodePcapData(body: Uint8Array, snaplen: number, offset = 0): PcapDataView {
  if (body.byteLength < RT_PCAP_PKTHDR_BYTES) throw new ProtocolError("truncated", `data body of ${body.byteLength} bytes is shorter than pcap_pkthdr`, offset);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const tsSec = view.getBigInt64(0, true);
  const tsUsec = view.getBigInt64(8, true);
  const caplen = view.getUint32(16, true);
  const len = view.getUint32(20, true);
  if (tsSec < 0n || tsSec > 0xffffffffn) throw new ProtocolError("bad-timestamp", `tv_sec ${tsSec} out of range`, offset);
  if (tsUsec < 0n || tsUsec >= 1_000_000n) throw new ProtocolError("bad-timestamp", `tv_usec ${tsUsec} out of range`, offset + 8);
  if (caplen !== body.byteLength - RT_PCAP_PKTHDR_BYTES) throw new ProtocolError("caplen-mismatch", `caplen ${caplen} but ${body.byteLength - RT_PCAP_PKTHDR_BYTES} bytes follow`, offset + 16);
  if (caplen > len) throw new ProtocolError("caplen-exceeds-len", `caplen ${caplen} > len ${len}`, offset + 16);
  if (caplen > snaplen) throw new ProtocolError("caplen-exceeds-snaplen", `caplen ${caplen} > snaplen ${snaplen}`, offset + 16);
  return { tsSec: Number(tsSec), tsUsec: Number(tsUsec), caplen, len, dataOffset: RT_PCAP_PKTHDR_BYTES };
}

/**
 * Signed distance from `b` to `a` in sequence space (RFC 1982 serial arithmetic on u32):
 * positive when `a` is after `b`. Valid while the two are within 2^31 of each other.
 */
export function sequenceDistance(a: number, b: number): number {
  const d = ((a >>> 0) - (b >>> 0) + RT_SEQUENCE_MODULUS) % RT_SEQUENCE_MODULUS;
  return d >= RT_SEQUENCE_MODULUS / 2 ? d - RT_SEQUENCE_MODULUS : d;
}
