// Test helpers for the hooks tests: packet builders, a tiny classic-pcap reader/writer into
// PacketBatches, an independent checksum for expected bytes, and tshark as an outside judge.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PacketBatchBuilder, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { VECTORS_DIR } from "./fixtures.ts";

export const VECTORS = VECTORS_DIR;
export const EXAMPLES = join(import.meta.dir, "../../examples/hooks");

/** Reads a little-endian microsecond classic pcap into one batch (what the vectors are). */
export function readPcap(path: string, packetsPerBatch = 1 << 30): { batches: PacketBatch[]; linktype: number } {
  const file = new Uint8Array(require("node:fs").readFileSync(path));
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (view.getUint32(0, true) !== 0xa1b2c3d4) throw new Error(`${path}: not a LE microsecond pcap`);
  const linktype = view.getUint32(20, true);
  const builder = new PacketBatchBuilder(linktype, "micro");
  const batches: PacketBatch[] = [];
  for (let at = 24; at + 16 <= file.byteLength; ) {
    const caplen = view.getUint32(at + 8, true);
    builder.push(view.getUint32(at, true), view.getUint32(at + 4, true), view.getUint32(at + 12, true), file.subarray(at + 16, at + 16 + caplen));
    at += 16 + caplen;
    if (builder.count >= packetsPerBatch) batches.push(builder.take()!);
  }
  const last = builder.take();
  if (last) batches.push(last);
  return { batches, linktype };
}

/** A classic pcap file image: 24-byte LE header + the batches' bytes (records are already pcap records). */
export function pcapImage(batches: PacketBatch[], linktype: number): Uint8Array {
  const total = 24 + batches.reduce((n, b) => n + b.bytes.byteLength, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0xa1b2c3d4, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setUint32(16, 262144, true);
  view.setUint32(20, linktype, true);
  let at = 24;
  for (const b of batches) {
    out.set(b.bytes, at);
    at += b.bytes.byteLength;
  }
  return out;
}

export function tempPath(name: string): string {
  return join(mkdtempSync(join(tmpdir(), "probe-hooks-")), name);
}

export function writePcap(batches: PacketBatch[], linktype: number): string {
  const path = tempPath("out.pcap");
  writeFileSync(path, pcapImage(batches, linktype));
  return path;
}

/** tshark -T fields; one array of field values per packet. */
export function tsharkFields(path: string, fields: string[], extra: string[] = []): string[][] {
  const args = ["tshark", "-r", path, "-T", "fields", ...extra, ...fields.flatMap((f) => ["-e", f])];
  const run = Bun.spawnSync(args, { stderr: "pipe" });
  if (run.exitCode !== 0) throw new Error(`tshark failed: ${run.stderr.toString()}`);
  return run.stdout
    .toString()
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => l.split("\t"));
}

/** Records of a batch as owned arrays (data only). */
export function records(batch: PacketBatch): { caplen: number; len: number; tsSec: number; tsFrac: number; data: Uint8Array }[] {
  const out: { caplen: number; len: number; tsSec: number; tsFrac: number; data: Uint8Array }[] = [];
  const view = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
  let at = 0;
  for (let i = 0; i < batch.count; i++) {
    const caplen = view.getUint32(at + 8, true);
    out.push({
      tsSec: view.getUint32(at, true),
      tsFrac: view.getUint32(at + 4, true),
      caplen,
      len: view.getUint32(at + 12, true),
      data: batch.bytes.slice(at + 16, at + 16 + caplen),
    });
    at += 16 + caplen;
  }
  return out;
}

export function batchOf(frames: Uint8Array[], linktype = 1, lens?: number[]): PacketBatch {
  const builder = new PacketBatchBuilder(linktype, "micro");
  frames.forEach((f, i) => builder.push(1_700_000_000 + i, 250_000, lens?.[i] ?? f.byteLength, f));
  return builder.take()!;
}

// --- packet builders (independent of src/hooks) ---

export interface L4Spec {
  protocol: "udp" | "tcp";
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

/** Ethernet (+ optional VLAN tags) + IPv4 + UDP/TCP with correct checksums computed here. */
export function ipv4Frame(opts: L4Spec & { src?: number[]; dst?: number[]; vlans?: { tpid: number; vid: number }[]; padTo?: number }): Uint8Array {
  const src = opts.src ?? [10, 1, 2, 3];
  const dst = opts.dst ?? [192, 168, 7, 9];
  const l4Header = opts.protocol === "udp" ? 8 : 20;
  const l4 = new Uint8Array(l4Header + opts.payload.length);
  const v4 = new DataView(l4.buffer);
  v4.setUint16(0, opts.srcPort);
  v4.setUint16(2, opts.dstPort);
  if (opts.protocol === "udp") v4.setUint16(4, l4.length);
  else {
    v4.setUint32(4, 0x01020304);
    v4.setUint32(8, 0x0a0b0c0d);
    l4[12] = 0x50;
    l4[13] = 0x18;
    v4.setUint16(14, 65535);
  }
  l4.set(opts.payload, l4Header);
  const proto = opts.protocol === "udp" ? 17 : 6;
  const pseudo = [...src, ...dst, 0, proto, l4.length >> 8, l4.length & 0xff];
  let sum = wordSum(new Uint8Array(pseudo)) + wordSum(l4);
  let ck = fold(sum);
  if (opts.protocol === "udp" && ck === 0) ck = 0xffff;
  v4.setUint16(opts.protocol === "udp" ? 6 : 16, ck);
  const ip = new Uint8Array(20);
  const iv = new DataView(ip.buffer);
  ip[0] = 0x45;
  iv.setUint16(2, 20 + l4.length);
  iv.setUint16(4, 0x1234);
  ip[8] = 64;
  ip[9] = proto;
  ip.set(src, 12);
  ip.set(dst, 16);
  iv.setUint16(10, fold(wordSum(ip)));
  const vlans = opts.vlans ?? [];
  const eth = new Uint8Array(14 + vlans.length * 4);
  eth.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
  const ev = new DataView(eth.buffer);
  vlans.forEach((v, k) => {
    ev.setUint16(12 + 4 * k, v.tpid);
    ev.setUint16(14 + 4 * k, v.vid);
  });
  ev.setUint16(12 + 4 * vlans.length, 0x0800);
  let frame = concat(eth, ip, l4);
  if (opts.padTo !== undefined && frame.length < opts.padTo) frame = concat(frame, new Uint8Array(opts.padTo - frame.length).fill(0xee));
  return frame;
}

/** Ethernet + IPv6 (optional extension headers as [nextHeaderType, bytes]) + UDP/TCP with correct checksum. */
export function ipv6Frame(opts: L4Spec & { extensions?: { type: number; bytes: Uint8Array }[] }): Uint8Array {
  const src = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xab, 0xcd]);
  const dst = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0x12, 0x34]);
  const l4Header = opts.protocol === "udp" ? 8 : 20;
  const l4 = new Uint8Array(l4Header + opts.payload.length);
  const v4 = new DataView(l4.buffer);
  v4.setUint16(0, opts.srcPort);
  v4.setUint16(2, opts.dstPort);
  if (opts.protocol === "udp") v4.setUint16(4, l4.length);
  else {
    l4[12] = 0x50;
    l4[13] = 0x02;
  }
  l4.set(opts.payload, l4Header);
  const proto = opts.protocol === "udp" ? 17 : 6;
  const pseudo = concat(src, dst, Uint8Array.from([0, 0, l4.length >> 8, l4.length & 0xff, 0, 0, 0, proto]));
  let ck = fold(wordSum(pseudo) + wordSum(l4));
  if (opts.protocol === "udp" && ck === 0) ck = 0xffff;
  v4.setUint16(opts.protocol === "udp" ? 6 : 16, ck);
  const exts = opts.extensions ?? [];
  const extBytes: Uint8Array[] = exts.map((e, k) => {
    const copy = e.bytes.slice();
    copy[0] = k + 1 < exts.length ? exts[k + 1]!.type : proto;
    return copy;
  });
  const ip = new Uint8Array(40);
  const iv = new DataView(ip.buffer);
  ip[0] = 0x60;
  const payloadLength = extBytes.reduce((n, e) => n + e.length, 0) + l4.length;
  iv.setUint16(4, payloadLength);
  ip[6] = exts.length > 0 ? exts[0]!.type : proto;
  ip[7] = 64;
  ip.set(src, 8);
  ip.set(dst, 24);
  const eth = new Uint8Array(14);
  eth.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd]);
  return concat(eth, ip, ...extBytes, l4);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function wordSum(bytes: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i]! << 8) + (bytes[i + 1] ?? 0);
  return s;
}

function fold(sum: number): number {
  while (sum >>> 16) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Independent re-computation of the checksums of an Ethernet/IPv4 or IPv6 TCP/UDP frame (expected values). */
export function referenceChecksums(frame: Uint8Array): Uint8Array {
  const f = frame.slice();
  let l3 = 14;
  while (((f[l3 - 2]! << 8) | f[l3 - 1]!) === 0x8100 || ((f[l3 - 2]! << 8) | f[l3 - 1]!) === 0x88a8) l3 += 4;
  const dv = new DataView(f.buffer);
  if (f[l3]! >> 4 === 4) {
    const ihl = (f[l3]! & 15) * 4;
    dv.setUint16(l3 + 10, 0);
    dv.setUint16(l3 + 10, fold(wordSum(f.subarray(l3, l3 + ihl))));
    const proto = f[l3 + 9]!;
    const total = dv.getUint16(l3 + 2);
    const l4 = l3 + ihl;
    const segment = f.subarray(l4, l3 + total);
    if (proto !== 6 && proto !== 17) return f;
    const at = l4 + (proto === 6 ? 16 : 6);
    if (proto === 17 && dv.getUint16(at) === 0) return f;
    dv.setUint16(at, 0);
    const pseudo = concat(f.subarray(l3 + 12, l3 + 20), Uint8Array.from([0, proto, segment.length >> 8, segment.length & 255]));
    let ck = fold(wordSum(pseudo) + wordSum(segment));
    if (proto === 17 && ck === 0) ck = 0xffff;
    dv.setUint16(at, ck);
  }
  return f;
}
