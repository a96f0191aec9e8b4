// Test support for the ExtraHop udpstr vectors: reads a vector pcap (classic pcap, Ethernet,
// IPv4, UDP only) and its JSON manifest, and hands out the udpstr datagrams and the original
// frames each forwarded record must equal. Used by test/unit/udpstr-*.test.ts.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodePcapGlobalHeader, decodePcapRecordHeader, PCAP_GLOBAL_HEADER_BYTES, PCAP_RECORD_HEADER_BYTES } from "../../src/protocols/pcap/index.ts";
import { VECTORS_DIR } from "./fixtures.ts";

/** The recorded vectors folder (test/fixtures/vectors). */
export { VECTORS_DIR };

const ETHERNET_HEADER_BYTES = 14;
const ETHERTYPE_IPV4 = 0x0800;
const IPPROTO_UDP = 17;
const UDP_HEADER_BYTES = 8;

/** One frame of a vector pcap; `udp` is set for IPv4/UDP frames. */
export interface VectorFrame {
  /** 1-based, as tshark and the manifests number frames. */
  number: number;
  tsSec: number;
  tsUsec: number;
  /** The whole captured frame (caplen bytes). */
  data: Uint8Array;
  udp?: { srcPort: number; dstPort: number; payload: Uint8Array };
}

/** Every frame of a classic little- or big-endian pcap file of LINKTYPE_ETHERNET. */
export function readVectorFrames(path: string): VectorFrame[] {
  const bytes = new Uint8Array(readFileSync(path));
  const global = decodePcapGlobalHeader(bytes, 0);
  if (global.linktype !== 1) throw new Error(`${path}: linktype ${global.linktype}, expected Ethernet`);
  const frames: VectorFrame[] = [];
  let offset = PCAP_GLOBAL_HEADER_BYTES;
  while (offset < bytes.byteLength) {
    const header = decodePcapRecordHeader(bytes, offset, global.littleEndian);
    const start = offset + PCAP_RECORD_HEADER_BYTES;
    if (start + header.caplen > bytes.byteLength) throw new Error(`${path}: truncated record at ${offset}`);
    const data = bytes.subarray(start, start + header.caplen);
    frames.push({ number: frames.length + 1, tsSec: header.tsSec, tsUsec: header.tsFrac, data, udp: udpOf(data) });
    offset = start + header.caplen;
  }
  return frames;
}

function udpOf(frame: Uint8Array): VectorFrame["udp"] {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (frame.byteLength < ETHERNET_HEADER_BYTES + 20 || dv.getUint16(12) !== ETHERTYPE_IPV4) return undefined;
  const ip = ETHERNET_HEADER_BYTES;
  const ihlBytes = (dv.getUint8(ip) & 0x0f) * 4;
  if (dv.getUint8(ip + 9) !== IPPROTO_UDP) return undefined;
  const totalLength = dv.getUint16(ip + 2);
  const udp = ip + ihlBytes;
  if (udp + UDP_HEADER_BYTES > frame.byteLength) return undefined;
  const udpLength = dv.getUint16(udp + 4);
  const end = Math.min(udp + udpLength, ip + totalLength, frame.byteLength);
  return { srcPort: dv.getUint16(udp), dstPort: dv.getUint16(udp + 2), payload: frame.subarray(udp + UDP_HEADER_BYTES, end) };
}

/** The parts of expected/udpstr-extrahop*.json the udpstr tests use. */
export interface UdpstrManifest {
  udpstr_flows: {
    src: string;
    dst: string;
    datagrams: { frame: number; seqno: number; firsthdridx: number; udp_payload_len: number }[];
    incomplete_last_record: { npkt: number; caplen: number; data_bytes_sent: number; frames: number[] } | null;
  }[];
  forwarded_packets: { npkt: number; caplen: number; len: number; ts: string; original_frame: number; carried_in_frames: number[] }[];
  original_frames_not_forwarded: number[];
}

/** One forwarded record as the manifest describes it, with the original frame's bytes. */
export interface ExpectedRecord {
  npkt: number;
  caplen: number;
  len: number;
  tsSec: number;
  tsUsec: number;
  /** The original frame this record must equal byte for byte. */
  frame: Uint8Array;
  carriedInFrames: number[];
}

/** Everything a udpstr test needs from one vector. */
export interface UdpstrVector {
  name: string;
  /** ExtraHop's `-t` for the run (README section 7). */
  mtuBytes: number;
  /** UDP payloads of the udpstr flow, in frame order. */
  datagrams: Uint8Array[];
  /** The manifest's datagram table, same order. */
  datagramInfo: UdpstrManifest["udpstr_flows"][number]["datagrams"];
  /** Complete forwarded records in npkt order. */
  records: ExpectedRecord[];
  incomplete: UdpstrManifest["udpstr_flows"][number]["incomplete_last_record"];
  /** Original frames ExtraHop captured but never finished sending (the pusher), by frame number. */
  unforwardedFrames: VectorFrame[];
  frames: VectorFrame[];
}

/** "1795397670.866956" -> seconds and microseconds, exactly (no float rounding). */
export function parseTimestamp(text: string): { tsSec: number; tsUsec: number } {
  const [sec, frac = ""] = text.split(".");
  return { tsSec: Number(sec), tsUsec: Number(frac.padEnd(6, "0").slice(0, 6)) };
}

const MTU_OF_VECTOR: Record<string, number> = {
  "udpstr-extrahop": 1472,
  "udpstr-extrahop-mtu600": 600,
  "udpstr-extrahop-mt": 1472,
};

/** Loads `name` ("udpstr-extrahop", "udpstr-extrahop-mtu600" or "udpstr-extrahop-mt"). */
export function loadUdpstrVector(name: string): UdpstrVector {
  const mtuBytes = MTU_OF_VECTOR[name];
  if (mtuBytes === undefined) throw new Error(`unknown udpstr vector ${name}`);
  const frames = readVectorFrames(join(VECTORS_DIR, `${name}.pcap`));
  const manifest = JSON.parse(readFileSync(join(VECTORS_DIR, "expected", `${name}.json`), "utf8")) as UdpstrManifest;
  const flow = manifest.udpstr_flows[0];
  if (!flow || manifest.udpstr_flows.length !== 1) throw new Error(`${name}: expected one udpstr flow`);
  const frameAt = (n: number): VectorFrame => {
    const f = frames[n - 1];
    if (!f) throw new Error(`${name}: no frame ${n}`);
    return f;
  };
  const datagrams = flow.datagrams.map((d) => {
    const udp = frameAt(d.frame).udp;
    if (!udp) throw new Error(`${name}: frame ${d.frame} is not UDP`);
    return udp.payload;
  });
  const records = manifest.forwarded_packets
    .slice()
    .sort((a, b) => a.npkt - b.npkt)
    .map((p) => ({ npkt: p.npkt, caplen: p.caplen, len: p.len, ...parseTimestamp(p.ts), frame: frameAt(p.original_frame).data, carriedInFrames: p.carried_in_frames }));
  return {
    name,
    mtuBytes,
    datagrams,
    datagramInfo: flow.datagrams,
    records,
    incomplete: flow.incomplete_last_record,
    unforwardedFrames: manifest.original_frames_not_forwarded.map(frameAt),
    frames,
  };
}

/** Concatenates byte arrays (test helper). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
