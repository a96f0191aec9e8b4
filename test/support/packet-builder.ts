// Builds whole frames of many kinds (IPv4/IPv6 with TCP, UDP, ICMP, ICMPv6, ICMP errors quoting a
// packet, ARP; Ethernet with VLAN/QinQ tags, Linux SLL/SLL2, raw IP, BSD loopback) with correct
// checksums computed here independently of src/, and writes them as pcap files, so real tools
// (tshark, traceanon) can judge what the processing stages do with them.

export type L4 =
  | { kind: "tcp"; sport: number; dport: number; options?: number; payload?: number }
  | { kind: "udp"; sport: number; dport: number; payload?: number; noChecksum?: boolean }
  | { kind: "icmp-echo"; payload?: number }
  | { kind: "icmp-error"; inner: Uint8Array }
  | { kind: "raw"; protocol: number; bytes: number };

export interface IpPacketSpec {
  src: string;
  dst: string;
  l4: L4;
  /** IPv4 options bytes (multiple of 4). */
  ipOptions?: number;
  /** IPv6: a hop-by-hop header before the transport. */
  hopByHop?: boolean;
  /** IPv4: fragment offset in 8-byte units / MF. */
  fragmentOffset?: number;
  moreFragments?: boolean;
}

function sum16(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let s = initial;
  for (let i = start; i < end; i += 2) s += (bytes[i]! << 8) | (i + 1 < end ? bytes[i + 1]! : 0);
  return s;
}
function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return ~s & 0xffff;
}
function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >> 8;
  b[at + 1] = v & 0xff;
}

export function parseIpv4(text: string): number[] {
  return text.split(".").map(Number);
}
export function parseIpv6(text: string): number[] {
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const words = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t].map((w) => parseInt(w, 16));
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

/** The transport bytes with a zero checksum, and where the checksum field is (or -1). */
function transport(l4: L4, isV6: boolean): { bytes: Uint8Array; protocol: number; checksumAt: number; pseudo: boolean } {
  switch (l4.kind) {
    case "tcp": {
      const opt = l4.options ?? 0;
      const b = new Uint8Array(20 + opt + (l4.payload ?? 0));
      put16(b, 0, l4.sport);
      put16(b, 2, l4.dport);
      b[4] = 0x12;
      b[12] = ((20 + opt) / 4) << 4;
      b[13] = 0x18;
      put16(b, 14, 65535);
      for (let i = 0; i < opt; i++) b[20 + i] = 1; // NOP options
      for (let i = 20 + opt; i < b.length; i++) b[i] = i & 0xff;
      return { bytes: b, protocol: 6, checksumAt: 16, pseudo: true };
    }
    case "udp": {
      const b = new Uint8Array(8 + (l4.payload ?? 0));
      put16(b, 0, l4.sport);
      put16(b, 2, l4.dport);
      put16(b, 4, b.length);
      for (let i = 8; i < b.length; i++) b[i] = (i * 7) & 0xff;
      return { bytes: b, protocol: 17, checksumAt: l4.noChecksum ? -1 : 6, pseudo: true };
    }
    case "icmp-echo": {
      const b = new Uint8Array(8 + (l4.payload ?? 0));
      b[0] = isV6 ? 128 : 8;
      put16(b, 4, 0x1234);
      put16(b, 6, 1);
      for (let i = 8; i < b.length; i++) b[i] = i & 0xff;
      return { bytes: b, protocol: isV6 ? 58 : 1, checksumAt: 2, pseudo: isV6 };
    }
    case "icmp-error": {
      const b = new Uint8Array(8 + l4.inner.length);
      b[0] = isV6 ? 1 : 3; // destination unreachable
      b[1] = isV6 ? 4 : 3; // port unreachable
      b.set(l4.inner, 8);
      return { bytes: b, protocol: isV6 ? 58 : 1, checksumAt: 2, pseudo: isV6 };
    }
    case "raw":
      return { bytes: new Uint8Array(l4.bytes).map((_, i) => i), protocol: l4.protocol, checksumAt: -1, pseudo: false };
  }
}

/** An IP packet (no link header) with every checksum correct. */
export function ipPacket(spec: IpPacketSpec): Uint8Array {
  const isV6 = spec.src.includes(":");
  const t = transport(spec.l4, isV6);
  if (!isV6) {
    const hl = 20 + (spec.ipOptions ?? 0);
    const p = new Uint8Array(hl + t.bytes.length);
    p[0] = 0x40 | (hl / 4);
    put16(p, 2, p.length);
    put16(p, 4, 0x4242);
    put16(p, 6, ((spec.moreFragments ? 0x2000 : 0) | (spec.fragmentOffset ?? 0)) >>> 0);
    p[8] = 64;
    p[9] = t.protocol;
    p.set(parseIpv4(spec.src), 12);
    p.set(parseIpv4(spec.dst), 16);
    for (let i = 20; i < hl; i++) p[i] = 1; // NOP options
    p.set(t.bytes, hl);
    if (t.checksumAt >= 0 && !(spec.fragmentOffset ?? 0)) {
      const pseudo = t.pseudo ? sum16(p, 12, 20) + t.protocol + t.bytes.length : 0;
      put16(p, hl + t.checksumAt, fold(sum16(p, hl, p.length, pseudo)) || (t.protocol === 17 ? 0xffff : 0));
    }
    put16(p, 10, fold(sum16(p, 0, hl)));
    return p;
  }
  const ext = spec.hopByHop ? 8 : 0;
  const p = new Uint8Array(40 + ext + t.bytes.length);
  p[0] = 0x60;
  put16(p, 4, ext + t.bytes.length);
  p[6] = spec.hopByHop ? 0 : t.protocol;
  p[7] = 64;
  p.set(parseIpv6(spec.src), 8);
  p.set(parseIpv6(spec.dst), 24);
  if (spec.hopByHop) {
    p[40] = t.protocol;
    p[41] = 0;
    p[42] = 1; // PadN
    p[43] = 4;
  }
  const l4 = 40 + ext;
  p.set(t.bytes, l4);
  if (t.checksumAt >= 0) {
    const pseudo = sum16(p, 8, 40) + t.protocol + t.bytes.length;
    put16(p, l4 + t.checksumAt, fold(sum16(p, l4, p.length, pseudo)) || (t.protocol === 17 ? 0xffff : 0));
  }
  return p;
}

export type Link = "ethernet" | "vlan" | "qinq" | "sll" | "sll2" | "raw" | "null" | "loop";
export const LINKTYPE_OF: Record<Link, number> = { ethernet: 1, vlan: 1, qinq: 1, sll: 113, sll2: 276, raw: 101, null: 0, loop: 108 };

/** Wraps a network-layer packet (or ARP body, etherType 0x0806) in a link header. */
export function frame(link: Link, payload: Uint8Array, etherType = payload[0]! >> 4 === 6 ? 0x86dd : 0x0800): Uint8Array {
  const parts: number[] = [];
  const mac = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
  switch (link) {
    case "ethernet":
      parts.push(...mac, etherType >> 8, etherType & 0xff);
      break;
    case "vlan":
      parts.push(...mac, 0x81, 0x00, 0x00, 0x05, etherType >> 8, etherType & 0xff);
      break;
    case "qinq":
      parts.push(...mac, 0x88, 0xa8, 0x00, 0x07, 0x81, 0x00, 0x00, 0x05, etherType >> 8, etherType & 0xff);
      break;
    case "sll":
      parts.push(0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, etherType >> 8, etherType & 0xff);
      break;
    case "sll2":
      parts.push(etherType >> 8, etherType & 0xff, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0);
      break;
    case "raw":
      break;
    case "null": // host byte order (little-endian here); 24 is the BSD AF_INET6 tshark knows
      parts.push(etherType === 0x86dd ? 24 : 2, 0, 0, 0);
      break;
    case "loop": // big-endian
      parts.push(0, 0, 0, etherType === 0x86dd ? 24 : 2);
      break;
  }
  const out = new Uint8Array(parts.length + payload.length);
  out.set(parts, 0);
  out.set(payload, parts.length);
  return out;
}

/** An Ethernet/IPv4 ARP body (RFC 826). */
export function arpBody(senderIp: string, targetIp: string): Uint8Array {
  const b = new Uint8Array(28);
  put16(b, 0, 1);
  put16(b, 2, 0x0800);
  b[4] = 6;
  b[5] = 4;
  put16(b, 6, 1);
  b.set([2, 0, 0, 0, 0, 1], 8);
  b.set(parseIpv4(senderIp), 14);
  b.set(parseIpv4(targetIp), 24);
  return b;
}

/** A classic little-endian microsecond pcap holding `frames` (caplen = len unless `caplens` cuts them). */
export function pcapFile(linktype: number, frames: readonly Uint8Array[], caplens?: readonly number[]): Uint8Array {
  const total = 24 + frames.reduce((n, f, i) => n + 16 + Math.min(f.length, caplens?.[i] ?? f.length), 0);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, 262144, true);
  v.setUint32(20, linktype, true);
  let at = 24;
  frames.forEach((f, i) => {
    const caplen = Math.min(f.length, caplens?.[i] ?? f.length);
    v.setUint32(at, 1_700_000_000 + i, true);
    v.setUint32(at + 4, i, true);
    v.setUint32(at + 8, caplen, true);
    v.setUint32(at + 12, f.length, true);
    out.set(f.subarray(0, caplen), at + 16);
    at += 16 + caplen;
  });
  return out;
}

/** Deterministic pseudo-random numbers (LCG) for reproducible tests. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

/** The sample key of the Crypto-PAn reference distribution (sample.cpp). */
export const CRYPTOPAN_SAMPLE_KEY = Uint8Array.from([
  21, 34, 23, 141, 51, 164, 207, 128, 19, 10, 91, 22, 73, 144, 125, 16, 216, 152, 143, 131, 121, 121, 101, 39, 98, 87, 76, 45, 42, 132, 34, 2,
]);
