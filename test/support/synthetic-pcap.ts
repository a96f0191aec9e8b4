// Builds a classic little-endian pcap (LINKTYPE_ETHERNET) whose frames carry given TCP or UDP
// payloads between IPv4 endpoints, so a real dissector (tshark) can judge bytes we encoded.
// Checksums are left zero: run tshark with -o tcp.check_checksum:FALSE (its default anyway).

export interface SyntheticSegment {
  proto: "tcp" | "udp";
  src: string;
  dst: string;
  sport: number;
  dport: number;
  payload: Uint8Array;
}

const ETHERNET_BYTES = 14;
const IPV4_BYTES = 20;
const TCP_BYTES = 20;
const UDP_BYTES = 8;

/**
 * A pcap file's bytes. TCP sequence numbers run on per direction (starting at 1000), each
 * segment carrying PSH|ACK, so dissectors see one clean stream per direction.
 */
export function syntheticPcap(segments: readonly SyntheticSegment[], startSec = 1_700_000_000): Uint8Array {
  const frames = segments.map((s) => s.payload.byteLength + ETHERNET_BYTES + IPV4_BYTES + (s.proto === "tcp" ? TCP_BYTES : UDP_BYTES));
  const out = new Uint8Array(24 + frames.reduce((n, f) => n + 16 + f, 0));
  const view = new DataView(out.buffer);
  view.setUint32(0, 0xa1b2c3d4, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setUint32(16, 262144, true);
  view.setUint32(20, 1, true); // LINKTYPE_ETHERNET
  const nextSeq = new Map<string, number>();
  let at = 24;
  segments.forEach((s, i) => {
    const length = frames[i]!;
    view.setUint32(at, startSec + i, true);
    view.setUint32(at + 4, 0, true);
    view.setUint32(at + 8, length, true);
    view.setUint32(at + 12, length, true);
    const f = at + 16;
    // Ethernet: zero MACs, type IPv4.
    view.setUint16(f + 12, 0x0800);
    const ip = f + ETHERNET_BYTES;
    out[ip] = 0x45;
    view.setUint16(ip + 2, length - ETHERNET_BYTES);
    out[ip + 8] = 64;
    out[ip + 9] = s.proto === "tcp" ? 6 : 17;
    out.set(s.src.split(".").map(Number), ip + 12);
    out.set(s.dst.split(".").map(Number), ip + 16);
    const l4 = ip + IPV4_BYTES;
    view.setUint16(l4, s.sport);
    view.setUint16(l4 + 2, s.dport);
    if (s.proto === "tcp") {
      const key = `${s.src}:${s.sport}>${s.dst}:${s.dport}`;
      const back = `${s.dst}:${s.dport}>${s.src}:${s.sport}`;
      const seq = nextSeq.get(key) ?? 1000;
      nextSeq.set(key, seq + s.payload.byteLength);
      view.setUint32(l4 + 4, seq);
      view.setUint32(l4 + 8, nextSeq.get(back) ?? 1000);
      out[l4 + 12] = 0x50; // data offset 5 words
      out[l4 + 13] = 0x18; // PSH|ACK
      view.setUint16(l4 + 14, 65535);
      out.set(s.payload, l4 + TCP_BYTES);
    } else {
      view.setUint16(l4 + 4, UDP_BYTES + s.payload.byteLength);
      out.set(s.payload, l4 + UDP_BYTES);
    }
    at = f + length;
  });
  return out;
}

/** A small valid Ethernet/IPv4/UDP frame (as a capture would hold) with `size` payload bytes. */
export function sampleUdpFrame(size: number, seed = 0): Uint8Array {
  return syntheticPcap([{ proto: "udp", src: "192.0.2.1", dst: "192.0.2.2", sport: 9998, dport: 9999, payload: Uint8Array.from({ length: size }, (_, k) => (seed + k) & 0xff) }]).subarray(24 + 16);
}

/** One record of taggedPcap: a timestamp and the text its frame carries. */
export interface TaggedRecord {
  sec: number;
  /** Microseconds or nanoseconds, as the file's precision says. */
  frac: number;
  tag: string;
}

/**
 * A little-endian pcap (micro magic a1b2c3d4 or nano a1b23c4d) of Ethernet frames with the local
 * experimental EtherType 0x88b5 whose payload is the record's tag, so tshark shows it as
 * data.data and every record's bytes say where it came from.
 */
export function taggedPcap(records: readonly TaggedRecord[], precision: "micro" | "nano" = "micro"): Uint8Array {
  const frames = records.map((r) => {
    const tag = new TextEncoder().encode(r.tag);
    const frame = new Uint8Array(ETHERNET_BYTES + tag.byteLength);
    frame[12] = 0x88;
    frame[13] = 0xb5;
    frame.set(tag, ETHERNET_BYTES);
    return frame;
  });
  const out = new Uint8Array(24 + frames.reduce((n, f) => n + 16 + f.byteLength, 0));
  const view = new DataView(out.buffer);
  view.setUint32(0, precision === "nano" ? 0xa1b23c4d : 0xa1b2c3d4, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setUint32(16, 65535, true);
  view.setUint32(20, 1, true); // LINKTYPE_ETHERNET
  let at = 24;
  records.forEach((r, i) => {
    const frame = frames[i]!;
    view.setUint32(at, r.sec, true);
    view.setUint32(at + 4, r.frac, true);
    view.setUint32(at + 8, frame.byteLength, true);
    view.setUint32(at + 12, frame.byteLength, true);
    out.set(frame, at + 16);
    at += 16 + frame.byteLength;
  });
  return out;
}
