// Helpers for the udpstr tests: a seeded PRNG, batches of synthetic packets, an independent
// reference parser of a loss-free udpstr datagram sequence (written from the spec, not from the
// reassembler), and a generic sender that cuts a record stream at arbitrary points.
import { expect } from "bun:test";
import { PacketBatchBuilder, type PacketBatch, type TimestampPrecision } from "../../src/packet/packet-batch.ts";

export const LINKTYPE_ETHERNET = 1;

export { seededRandom } from "./seeded-random.ts";

/** A synthetic packet: payload byte k is (seq + k) & 0xff, like the shared vectors. */
export interface SyntheticPacket {
  tsSec: number;
  /** Microseconds (or nanoseconds when the batch is nano). */
  tsFrac: number;
  len: number;
  data: Uint8Array;
}

export function syntheticPackets(sizes: readonly number[], firstSeq = 0): SyntheticPacket[] {
  return sizes.map((size, i) => {
    const seq = firstSeq + i;
    const data = new Uint8Array(size);
    for (let k = 0; k < size; k++) data[k] = (seq * 7 + k) & 0xff;
    return { tsSec: 1_700_000_000 + seq, tsFrac: (seq * 4567) % 1_000_000, len: size + (seq % 3), data };
  });
}

export function batchOf(packets: readonly SyntheticPacket[], precision: TimestampPrecision = "micro"): PacketBatch {
  const builder = new PacketBatchBuilder(LINKTYPE_ETHERNET, precision, 1024);
  for (const p of packets) builder.push(p.tsSec, p.tsFrac, p.len, p.data);
  const batch = builder.take();
  if (!batch) throw new Error("empty batch");
  return batch;
}

/** A record as read back from the stream. */
export interface StreamRecord {
  tsSec: number;
  tsUsec: number;
  caplen: number;
  len: number;
  npkt: number;
  data: Uint8Array;
}

export interface ParsedStream {
  records: StreamRecord[];
  /** Header of the record the stream ends inside, with the data bytes that arrived. */
  incomplete: { tsSec: number; tsUsec: number; caplen: number; len: number; npkt: number; bytesReceived: number } | null;
  /** For each datagram, where the first record header beginning in it really is (0xFFFF: none). */
  realFirsthdr: number[];
  /** Record headers that straddle a datagram boundary. */
  splitHeaders: number;
}

/**
 * Reference parser for a loss-free, in-order udpstr datagram sequence: concatenates the stream
 * bytes, walks records from the start, and records where headers really begin. Asserts seqno
 * continuity from `firstSeqno`.
 */
export function parseDatagrams(datagrams: readonly Uint8Array[], firstSeqno = 0): ParsedStream {
  const starts: number[] = []; // stream offset where each datagram's stream bytes begin
  let total = 0;
  datagrams.forEach((d, i) => {
    const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
    expect(dv.getUint8(0)).toBe(0);
    expect(dv.getUint8(1)).toBe(110);
    expect(dv.getUint32(4)).toBe((firstSeqno + i) >>> 0);
    starts.push(total);
    total += d.byteLength - 8;
  });
  const stream = new Uint8Array(total);
  datagrams.forEach((d, i) => stream.set(d.subarray(8), starts[i]!));
  const dv = new DataView(stream.buffer);
  const realFirsthdr = datagrams.map(() => 0xffff);
  const records: StreamRecord[] = [];
  let incomplete: ParsedStream["incomplete"] = null;
  let splitHeaders = 0;
  let p = 0;
  let dgIndex = 0;
  while (p < total) {
    while (dgIndex + 1 < datagrams.length && starts[dgIndex + 1]! <= p) dgIndex++;
    if (realFirsthdr[dgIndex] === 0xffff) realFirsthdr[dgIndex] = p - starts[dgIndex]! + 8;
    const dgEnd = starts[dgIndex]! + datagrams[dgIndex]!.byteLength - 8;
    if (p + 20 > dgEnd) splitHeaders++;
    if (p + 20 > total) throw new Error(`stream ends inside a record header at ${p}`);
    const header = { tsSec: dv.getUint32(p), tsUsec: dv.getUint32(p + 4), caplen: dv.getUint32(p + 8), len: dv.getUint32(p + 12), npkt: dv.getUint32(p + 16) };
    const dataStart = p + 20;
    if (dataStart + header.caplen > total) {
      incomplete = { ...header, bytesReceived: total - dataStart };
      break;
    }
    records.push({ ...header, data: stream.slice(dataStart, dataStart + header.caplen) });
    p = dataStart + header.caplen;
  }
  return { records, incomplete, realFirsthdr, splitHeaders };
}

/** The complete udpstr stream bytes (rpcap_pkthdr + data per record), for generic senders. */
export function streamOf(records: readonly { tsSec: number; tsUsec: number; caplen?: number; len: number; npkt: number; data: Uint8Array }[]): {
  stream: Uint8Array;
  headerOffsets: number[];
} {
  const total = records.reduce((n, r) => n + 20 + r.data.byteLength, 0);
  const stream = new Uint8Array(total);
  const dv = new DataView(stream.buffer);
  const headerOffsets: number[] = [];
  let p = 0;
  for (const r of records) {
    headerOffsets.push(p);
    dv.setUint32(p, r.tsSec);
    dv.setUint32(p + 4, r.tsUsec);
    dv.setUint32(p + 8, r.caplen ?? r.data.byteLength);
    dv.setUint32(p + 12, r.len);
    dv.setUint32(p + 16, r.npkt);
    stream.set(r.data, p + 20);
    p += 20 + r.data.byteLength;
  }
  return { stream, headerOffsets };
}

/**
 * A generic udpstr sender (not ExtraHop's algorithm): cuts `stream` at the given stream offsets
 * (ascending, inside 1..length-1) and sets each datagram's firsthdridx from `headerOffsets`.
 * It may split record headers, which ExtraHop never does but the format allows.
 */
export function cutStream(stream: Uint8Array, headerOffsets: readonly number[], cuts: readonly number[], firstSeqno = 0): Uint8Array[] {
  const bounds = [0, ...cuts, stream.byteLength];
  const datagrams: Uint8Array[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const from = bounds[i]!;
    const to = bounds[i + 1]!;
    const first = headerOffsets.find((h) => h >= from && h < to);
    const d = new Uint8Array(8 + to - from);
    const dv = new DataView(d.buffer);
    dv.setUint8(1, 110);
    dv.setUint16(2, first === undefined ? 0xffff : first - from + 8);
    dv.setUint32(4, (firstSeqno + i) >>> 0);
    d.set(stream.subarray(from, to), 8);
    datagrams.push(d);
  }
  return datagrams;
}

/** Copies a datagram and overwrites header fields (hostile and reordering tests). */
export function withHeader(datagram: Uint8Array, fields: { ver?: number; type?: number; firsthdridx?: number; seqno?: number }): Uint8Array {
  const d = datagram.slice();
  const dv = new DataView(d.buffer);
  if (fields.ver !== undefined) dv.setUint8(0, fields.ver);
  if (fields.type !== undefined) dv.setUint8(1, fields.type);
  if (fields.firsthdridx !== undefined) dv.setUint16(2, fields.firsthdridx);
  if (fields.seqno !== undefined) dv.setUint32(4, fields.seqno);
  return d;
}

export function firsthdrOf(datagram: Uint8Array): number {
  return new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength).getUint16(2);
}

export function seqnoOf(datagram: Uint8Array): number {
  return new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength).getUint32(4);
}
