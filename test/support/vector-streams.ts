// The TCP byte streams (per connection and direction, reassembled by TCP sequence number so
// retransmissions and overlaps count once) and the UDP datagrams of a shared vector capture
// (test/fixtures/vectors), extracted with tshark. Used by the RPCAP and udpstr vector tests.
import { runTool } from "./probe-binary.ts";
import { VECTORS_DIR } from "./fixtures.ts";

export const vectorsDir = `${VECTORS_DIR}/`;

/** One direction of one TCP connection. */
export interface VectorTcpStream {
  /** "127.0.0.1:57284>127.0.0.1:2002" */
  key: string;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  /** The payload bytes in sequence order, each byte once. */
  bytes: Uint8Array;
  /** Frames that added new bytes, with the stream offset of their first new byte. */
  segments: { frame: number; offset: number; length: number }[];
  /** Frames whose payload was entirely seen before (retransmissions, D-SACK duplicates). */
  duplicateFrames: number[];
  /** Bytes missing between segments (0 in every shared vector: nothing was lost). */
  gapBytes: number;
}

/** One UDP datagram. */
export interface VectorUdpDatagram {
  frame: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export interface VectorStreams {
  /** Keyed by VectorTcpStream.key; directions appear in the order of their first payload. */
  tcp: Map<string, VectorTcpStream>;
  udp: VectorUdpDatagram[];
}

const cache = new Map<string, Promise<VectorStreams>>();

/** Streams and datagrams of `fileName` in the vectors folder (tshark runs once per file). */
export function loadVectorStreams(fileName: string): Promise<VectorStreams> {
  let pending = cache.get(fileName);
  if (!pending) {
    pending = extract(`${vectorsDir}${fileName}`);
    cache.set(fileName, pending);
  }
  return pending;
}

/** The TCP direction from `srcPort` to `dstPort` (ports are unique within a vector). */
export function tcpStreamByPorts(streams: VectorStreams, srcPort: number, dstPort: number): VectorTcpStream | undefined {
  for (const s of streams.tcp.values()) if (s.srcPort === srcPort && s.dstPort === dstPort) return s;
  return undefined;
}

/** Older shape kept for existing tests: TCP directions keyed "srcport>dstport". */
export interface TcpDirection {
  key: string;
  srcPort: number;
  dstPort: number;
  bytes: Uint8Array;
  segments: { frame: number; offset: number }[];
}

export async function loadVectorTcp(fileName: string): Promise<Map<string, TcpDirection>> {
  const { tcp } = await loadVectorStreams(fileName);
  const out = new Map<string, TcpDirection>();
  for (const s of tcp.values()) {
    const key = `${s.srcPort}>${s.dstPort}`;
    out.set(key, { key, srcPort: s.srcPort, dstPort: s.dstPort, bytes: s.bytes, segments: s.segments });
  }
  return out;
}

/** Every UDP payload with its ports, in frame order (older shape kept for existing tests). */
export async function loadVectorUdp(fileName: string): Promise<{ frame: number; srcPort: number; dstPort: number; payload: Uint8Array }[]> {
  return (await loadVectorStreams(fileName)).udp;
}

interface Segment {
  frame: number;
  seq: number;
  payload: Uint8Array;
}

async function extract(path: string): Promise<VectorStreams> {
  const text = await runTool([
    "tshark", "-r", path, "-T", "fields",
    "-e", "frame.number", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport",
    "-e", "tcp.seq_raw", "-e", "tcp.payload", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "udp.payload",
  ]);
  const segments = new Map<string, { src: string; dst: string; srcPort: number; dstPort: number; list: Segment[] }>();
  const udp: VectorUdpDatagram[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const [frame, src = "", tcpSrc, dst = "", tcpDst, seq, tcpPayload, udpSrc, udpDst, udpPayload] = line.split("\t");
    if (tcpSrc && tcpPayload) {
      const key = `${src}:${tcpSrc}>${dst}:${tcpDst}`;
      let entry = segments.get(key);
      if (!entry) {
        entry = { src, dst, srcPort: Number(tcpSrc), dstPort: Number(tcpDst), list: [] };
        segments.set(key, entry);
      }
      entry.list.push({ frame: Number(frame), seq: Number(seq), payload: hexBytes(tcpPayload) });
    } else if (udpSrc) {
      udp.push({ frame: Number(frame), src, dst, srcPort: Number(udpSrc), dstPort: Number(udpDst), payload: hexBytes(udpPayload ?? "") });
    }
  }
  const tcp = new Map<string, VectorTcpStream>();
  for (const [key, entry] of segments) tcp.set(key, { key, src: entry.src, dst: entry.dst, srcPort: entry.srcPort, dstPort: entry.dstPort, ...reassemble(entry.list) });
  return { tcp, udp };
}

/**
 * Orders segments by sequence number relative to the first one (mod 2^32, so a stream that
 * crosses the wrap works) and keeps each byte once.
 */
function reassemble(list: Segment[]): Pick<VectorTcpStream, "bytes" | "segments" | "duplicateFrames" | "gapBytes"> {
  const base = list[0]!.seq;
  const ordered = list
    .map((s) => ({ ...s, rel: (s.seq - base + 2 ** 32) % 2 ** 32 }))
    .sort((a, b) => a.rel - b.rel || a.frame - b.frame);
  const parts: Uint8Array[] = [];
  const kept: VectorTcpStream["segments"] = [];
  const duplicateFrames: number[] = [];
  let next = 0;
  let gapBytes = 0;
  for (const s of ordered) {
    const end = s.rel + s.payload.byteLength;
    if (end <= next) {
      duplicateFrames.push(s.frame);
      continue;
    }
    if (s.rel > next) gapBytes += s.rel - next;
    const fresh = s.payload.subarray(Math.max(0, next - s.rel));
    kept.push({ frame: s.frame, offset: parts.reduce((n, p) => n + p.byteLength, 0), length: fresh.byteLength });
    parts.push(fresh);
    next = end;
  }
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  return { bytes, segments: kept, duplicateFrames: duplicateFrames.sort((a, b) => a - b), gapBytes };
}

function hexBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex.replaceAll(":", ""), "hex"));
}
