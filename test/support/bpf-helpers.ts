// Test helpers for the BPF tests: a tiny classic-pcap reader/writer, tcpdump as a compiler and
// as a judge, a seeded PRNG, and a synthetic corpus of frames chosen to exercise the filters.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VECTORS_DIR } from "./fixtures.ts";
import { seededRandom } from "./seeded-random.ts";

export { VECTORS_DIR };

export interface PcapRecord {
  tsSec: number;
  tsFrac: number;
  caplen: number;
  len: number;
  data: Uint8Array;
}

export interface PcapFile {
  linktype: number;
  snaplen: number;
  records: PcapRecord[];
}

/** Reads a classic pcap (either byte order, micro or nano); throws on anything else. */
export function parsePcap(bytes: Uint8Array): PcapFile {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  let little: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) little = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) little = false;
  else throw new Error(`not a classic pcap (magic ${magic.toString(16)})`);
  const snaplen = view.getUint32(16, little);
  const linktype = view.getUint32(20, little) & 0x0fffffff;
  const records: PcapRecord[] = [];
  let offset = 24;
  while (offset < bytes.length) {
    if (offset + 16 > bytes.length) throw new Error("truncated record header");
    const caplen = view.getUint32(offset + 8, little);
    const record: PcapRecord = {
      tsSec: view.getUint32(offset, little),
      tsFrac: view.getUint32(offset + 4, little),
      caplen,
      len: view.getUint32(offset + 12, little),
      data: bytes.subarray(offset + 16, offset + 16 + caplen),
    };
    if (record.data.length !== caplen) throw new Error("truncated record data");
    records.push(record);
    offset += 16 + caplen;
  }
  return { linktype, snaplen, records };
}

export function readPcap(path: string): PcapFile {
  return parsePcap(new Uint8Array(readFileSync(path)));
}

/** A little-endian microsecond classic pcap. */
export function buildPcap(linktype: number, snaplen: number, records: readonly PcapRecord[]): Uint8Array {
  const size = 24 + records.reduce((sum, r) => sum + 16 + r.caplen, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0xa1b2c3d4, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setUint32(16, snaplen, true);
  view.setUint32(20, linktype, true);
  let offset = 24;
  for (const r of records) {
    view.setUint32(offset, r.tsSec, true);
    view.setUint32(offset + 4, r.tsFrac, true);
    view.setUint32(offset + 8, r.caplen, true);
    view.setUint32(offset + 12, r.len, true);
    out.set(r.data.subarray(0, r.caplen), offset + 16);
    offset += 16 + r.caplen;
  }
  return out;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Runs a tool and returns stdout bytes; throws with stderr when it fails. */
export function run(argv: string[]): Uint8Array {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) {
    throw new Error(`${argv.join(" ")} failed (${result.exitCode}): ${result.stderr.toString()}`);
  }
  return new Uint8Array(result.stdout);
}

/** `tcpdump -ddd -y EN10MB expr` output (compilation needs no privileges: pcap_open_dead). */
export function tcpdumpDecimal(expression: string, flag = "-ddd"): string {
  return new TextDecoder().decode(run(["tcpdump", flag, "-y", "EN10MB", expression]));
}

/** ts_sec of every record tcpdump keeps when reading `file` through `expression`. */
export function tcpdumpKeptSeconds(file: string, expression: string): number[] {
  return parsePcap(run(["tcpdump", "-r", file, "-w", "-", expression])).records.map((r) => r.tsSec);
}

/** The tests' one seeded generator (seeded-random.ts), by this file's old name. */
export const prng = seededRandom;

// ---- synthetic frames ------------------------------------------------------------------------

function bytes(...parts: (number[] | Uint8Array)[]): Uint8Array {
  return new Uint8Array(parts.flatMap((p) => [...p]));
}
const u16 = (v: number) => [(v >>> 8) & 0xff, v & 0xff];
const ip4 = (a: string) => a.split(".").map(Number);

function ether(type: number, dst = [0, 0x11, 0x22, 0x33, 0x44, 0x55], vlans: number[] = []): number[] {
  const src = [0x02, 0, 0, 0, 0, 1];
  const tags = vlans.flatMap((vid, i) => [...u16(i === 0 && vlans.length > 1 ? 0x88a8 : 0x8100), ...u16(vid)]);
  // With VLANs the first TPID follows the source MAC and the real type comes last.
  return [...dst, ...src, ...tags, ...u16(type)];
}

function ipv4(proto: number, src: string, dst: string, payload: Uint8Array, opts: { frag?: number; options?: number[]; tos?: number } = {}): Uint8Array {
  const options = opts.options ?? [];
  const ihl = 5 + options.length / 4;
  const total = ihl * 4 + payload.length;
  return bytes([0x40 | ihl, opts.tos ?? 0, ...u16(total), 0x12, 0x34, ...u16(opts.frag ?? 0x4000), 64, proto, 0, 0, ...ip4(src), ...ip4(dst), ...options], payload);
}

function ipv6(next: number, payload: Uint8Array, src = 1, dst = 2): Uint8Array {
  const addr = (last: number) => [0xfd, 0, ...new Array(13).fill(0), last];
  return bytes([0x60, 0, 0, 0, ...u16(payload.length), next, 64, ...addr(src), ...addr(dst)], payload);
}

const udp = (sport: number, dport: number, payload: number[]) => bytes([...u16(sport), ...u16(dport), ...u16(8 + payload.length), 0, 0], payload);
const tcp = (sport: number, dport: number, flags: number, payload: number[] = []) =>
  bytes([...u16(sport), ...u16(dport), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0], payload);
const icmpEcho = () => bytes([8, 0, 0, 0, 0, 1, 0, 1, 1, 2, 3, 4]);

/** A frame as a pcap record (caplen may be cut below len to test out-of-bounds loads). */
function frame(data: Uint8Array, caplen = data.length): PcapRecord {
  return { tsSec: 0, tsFrac: 0, caplen: Math.min(caplen, data.length), len: data.length, data: data.subarray(0, Math.min(caplen, data.length)) };
}

/**
 * Frames for the filter table: IPv4/IPv6 UDP/TCP/ICMP, VLAN and QinQ, ARP, IP options and
 * fragments, broadcast/multicast, sizes around 60/100/1000, payloads with 0x0102, HTTP GET, and
 * every UDP/TCP frame again cut at caplens that end inside each header field.
 */
export function syntheticFrames(seed = 7): PcapRecord[] {
  const out: PcapRecord[] = [];
  const frames: Uint8Array[] = [];
  const pad = (n: number) => Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
  for (const port of [53, 9989, 9990, 9995, 9997, 9999, 10000]) {
    frames.push(bytes(ether(0x0800), ipv4(17, "127.0.0.1", "127.0.0.1", udp(9998, port, [1, 2, 3, 4]))));
    frames.push(bytes(ether(0x0800), ipv4(17, "10.1.2.3", "192.0.2.9", udp(port, 40000, [1, 2, ...pad(150)]))));
  }
  frames.push(bytes(ether(0x0800), ipv4(17, "10.0.0.1", "10.0.0.2", udp(1, 2, [0x01, 0x02, 0xff]))));
  frames.push(bytes(ether(0x0800), ipv4(17, "10.0.0.1", "10.0.0.2", udp(1, 9999, [0x01, 0x03]))));
  for (const flags of [0x02, 0x12, 0x10, 0x11, 0x04, 0x18]) {
    frames.push(bytes(ether(0x0800), ipv4(6, "127.0.0.1", "127.0.0.2", tcp(40000, 2002, flags))));
    frames.push(bytes(ether(0x0800), ipv4(6, "198.51.100.1", "127.0.0.1", tcp(80, 9995, flags, pad(300)))));
  }
  frames.push(bytes(ether(0x0800), ipv4(6, "10.0.0.1", "10.0.0.2", tcp(5555, 80, 0x18, [0x47, 0x45, 0x54, 0x20, 0x2f]))));
  frames.push(bytes(ether(0x0800), ipv4(1, "127.0.0.1", "127.0.0.1", icmpEcho())));
  frames.push(bytes(ether(0x0800), ipv4(17, "127.0.0.1", "127.0.0.1", udp(9998, 9999, [9, 9]), { options: [1, 1, 1, 0] })));
  frames.push(bytes(ether(0x0800), ipv4(17, "127.0.0.1", "127.0.0.1", udp(9998, 9999, [9, 9]), { frag: 0x2000 })));
  frames.push(bytes(ether(0x0800), ipv4(17, "127.0.0.1", "127.0.0.1", Uint8Array.from(pad(40)), { frag: 0x0010 })));
  frames.push(bytes(ether(0x0800, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), ipv4(17, "10.0.0.1", "10.255.255.255", udp(68, 67, pad(300)))));
  frames.push(bytes(ether(0x0800, [0x01, 0x00, 0x5e, 0, 0, 0xfb]), ipv4(17, "10.0.0.1", "224.0.0.251", udp(5353, 5353, pad(20)))));
  frames.push(bytes(ether(0x0806, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), [0, 1, 8, 0, 6, 4, 0, 1, ...pad(20)]));
  frames.push(bytes(ether(0x86dd), ipv6(17, udp(9998, 9999, [1, 2, 3]))));
  frames.push(bytes(ether(0x86dd), ipv6(6, tcp(1234, 9995, 0x02))));
  frames.push(bytes(ether(0x86dd, [0x33, 0x33, 0, 0, 0, 1]), ipv6(58, bytes([128, 0, 0, 0, 0, 1, 0, 1]))));
  frames.push(bytes(ether(0x0800, undefined, [100]), ipv4(17, "127.0.0.1", "127.0.0.1", udp(9998, 9999, [1, 2]))));
  frames.push(bytes(ether(0x0800, undefined, [200]), ipv4(6, "127.0.0.1", "127.0.0.1", tcp(1, 2, 0x02))));
  frames.push(bytes(ether(0x86dd, undefined, [100]), ipv6(17, udp(53, 9990, [0]))));
  frames.push(bytes(ether(0x0800, undefined, [10, 20]), ipv4(17, "10.0.0.1", "10.0.0.2", udp(9998, 9999, [1]))));
  frames.push(bytes(ether(0x0800), ipv4(17, "127.0.0.1", "127.0.0.1", udp(9998, 9999, pad(1100)))));
  frames.push(bytes(ether(0x0800), ipv4(17, "127.0.0.1", "127.0.0.1", udp(9998, 9999, []), { tos: 0xb8 })));
  for (const f of frames) out.push(frame(f));
  // The same frames cut short: loads that reach past caplen must reject, whatever len says.
  const cuts = [0, 1, 12, 13, 14, 15, 20, 22, 23, 24, 30, 34, 35, 36, 37, 38, 40, 42, 47, 48, 54, 55, 56, 57, 58];
  for (const [i, f] of frames.entries()) {
    if (i % 3 !== 0 && i < frames.length - 8) continue;
    for (const cut of cuts) if (cut < f.length) out.push(frame(f, cut));
  }
  // Random frames (random lengths, random bytes but a plausible ethertype half of the time).
  const random = prng(seed);
  for (let n = 0; n < 120; n++) {
    const length = Math.floor(random() * 120);
    const data = Uint8Array.from({ length }, () => Math.floor(random() * 256));
    if (length >= 14 && random() < 0.5) data.set(u16([0x0800, 0x86dd, 0x8100, 0x0806][n % 4]!), 12);
    if (length >= 24 && random() < 0.5 && data[13] === 0x00) data[14] = 0x45;
    out.push(frame(data, random() < 0.2 ? Math.floor(random() * length) : length));
  }
  return out;
}
