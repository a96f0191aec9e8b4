// Processing stages in process: anonymization across link types and protocols (checksums stay
// valid), header truncation, checksum check/update/blank with marks, direction tagging, bad
// input passing unchanged, and the spec/flags layer (order, errors, exit-2 key file).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PacketBatchBuilder, forEachRecord, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { compileBpfRecordMatcher } from "../../src/packet/bpf/index.ts";
import { CHECKSUM_MODE, CHECKSUM_VERDICT, fixChecksums, networkVerdict, processChecksums, transportVerdict } from "../../src/packet/checksums.ts";
import { decodeOffsetsInto, OFFSET_FIELD_COUNT } from "../../src/packet/packet-offsets.ts";
import { AnonymizeStage } from "../../src/pipeline/stages/anonymize.ts";
import { ChecksumsStage } from "../../src/pipeline/stages/checksums.ts";
import { CryptoPan } from "../../src/pipeline/stages/cryptopan.ts";
import { DirectionStage, onlyDirection } from "../../src/pipeline/stages/direction.ts";
import { TruncateHeadersStage } from "../../src/pipeline/stages/truncate-headers.ts";
import { buildProcessingStage, ProcessingStageError } from "../../src/pipeline/stages/processing-spec.ts";
import {
  buildProcessingStages,
  normalizeProcessingArgv,
  ONLY_DIRECTION_CLI_OPTION,
  onlyDirectionFromFlags,
  PROCESSING_CLI_OPTIONS,
  processingStagesFromFlags,
} from "../../src/cli/processing-options.ts";
import { parseCommandLine } from "../../src/cli/parse-options.ts";
import { UsageError } from "../../src/cli/usage-error.ts";
import { arpBody, CRYPTOPAN_SAMPLE_KEY, frame, ipPacket, LINKTYPE_OF, parseIpv4, type Link } from "../support/packet-builder.ts";

const dir = mkdtempSync(join(tmpdir(), "stages-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function batchOf(linktype: number, frames: Uint8Array[], caplens?: number[]): PacketBatch {
  const b = new PacketBatchBuilder(linktype, "micro");
  frames.forEach((f, i) => b.push(1_700_000_000 + i, 0, f.length, f.subarray(0, caplens?.[i] ?? f.length)));
  return b.take()!;
}

function records(batch: PacketBatch): { data: Uint8Array; caplen: number; len: number }[] {
  const out: { data: Uint8Array; caplen: number; len: number }[] = [];
  forEachRecord(batch, (v, bytes) => out.push({ data: bytes.slice(v.dataOffset, v.dataOffset + v.caplen), caplen: v.caplen, len: v.len }));
  return out;
}

/** Every checksum of the packet is good (or not judgeable); returns the two verdicts. */
function verdicts(data: Uint8Array, linktype: number): [number, number] {
  const o = new Int32Array(OFFSET_FIELD_COUNT);
  decodeOffsetsInto(data, 0, data.length, linktype, o, 0);
  const packed = processChecksums(data, 0, data.length, o, 0, CHECKSUM_MODE.CHECK);
  return [networkVerdict(packed), transportVerdict(packed)];
}

const cp = new CryptoPan(CRYPTOPAN_SAMPLE_KEY);
const anon4 = (text: string) => {
  const n = cp.anonymizeIpv4(parseIpv4(text).reduce((a, b) => a * 256 + b, 0));
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
};
const { OK, NONE, DISABLED } = CHECKSUM_VERDICT;

describe("anonymize", () => {
  const links: Link[] = ["ethernet", "vlan", "qinq", "sll", "sll2", "raw", "null", "loop"];
  for (const link of links) {
    test(`${link}: IPv4 TCP/UDP/ICMP and IPv6 TCP/UDP/ICMPv6 rewritten, every checksum still good`, () => {
      const packets = [
        ipPacket({ src: "128.11.68.132", dst: "129.118.74.4", l4: { kind: "tcp", sport: 1, dport: 2, options: 12, payload: 33 } }),
        ipPacket({ src: "24.5.0.80", dst: "4.3.88.225", l4: { kind: "udp", sport: 53, dport: 5353, payload: 17 } }),
        ipPacket({ src: "64.39.15.238", dst: "63.97.7.140", ipOptions: 4, l4: { kind: "icmp-echo", payload: 9 } }),
        ipPacket({ src: "2001:db8::1", dst: "2001:db8::2", l4: { kind: "tcp", sport: 3, dport: 4, payload: 5 } }),
        ipPacket({ src: "2001:db8::1", dst: "fe80::1", hopByHop: true, l4: { kind: "udp", sport: 5, dport: 6, payload: 3 } }),
        ipPacket({ src: "::1", dst: "2001:db8::2", l4: { kind: "icmp-echo", payload: 4 } }),
      ];
      const linktype = LINKTYPE_OF[link];
      const batch = batchOf(linktype, packets.map((p) => frame(link, p)));
      const stage = new AnonymizeStage({ method: { kind: "cryptopan", key: CRYPTOPAN_SAMPLE_KEY }, which: "both" });
      const out = records(stage.apply(batch));
      const linkBytes = out[0]!.caplen - packets[0]!.length;
      expect(Array.from(out[0]!.data.subarray(linkBytes + 12, linkBytes + 20))).toEqual([...anon4("128.11.68.132"), ...anon4("129.118.74.4")]);
      expect(Array.from(out[1]!.data.subarray(linkBytes + 12, linkBytes + 16))).toEqual(anon4("24.5.0.80"));
      for (const r of out) {
        const [network, transport] = verdicts(r.data, linktype);
        expect([network === OK || network === NONE, transport]).toEqual([true, OK]);
      }
      // IPv6 source: the Go port's vector for 2001:db8::1.
      const v6 = out[3]!.data;
      expect(Buffer.from(v6.subarray(linkBytes + 8, linkBytes + 24)).toString("hex")).toBe("440102bc603fd91d027fff8ee6f1dc1e");
      expect(stage.counters()).toMatchObject({ packets_in: 6, packets_rewritten: 6, addresses_rewritten: 12, not_ip: 0, malformed: 0 });
      // The input batch is shared: untouched.
      expect(records(batch)[0]!.data).toEqual(frame(link, packets[0]!));
    });
  }

  test("ICMP error: the quoted header is rewritten too (its source as a destination), checksums fixed", () => {
    const inner = ipPacket({ src: "10.1.2.3", dst: "192.0.2.77", l4: { kind: "udp", sport: 40000, dport: 53, payload: 0 } });
    const error = ipPacket({ src: "198.51.100.1", dst: "10.1.2.3", l4: { kind: "icmp-error", inner } });
    for (const which of ["both", "src", "dst"] as const) {
      const stage = new AnonymizeStage({ method: { kind: "cryptopan", key: CRYPTOPAN_SAMPLE_KEY }, which });
      const [r] = records(stage.apply(batchOf(1, [frame("ethernet", error)])));
      const d = r!.data;
      const q = 14 + 20 + 8;
      const same = (at: number, text: string, rewritten: boolean) => expect(Array.from(d.subarray(at, at + 4))).toEqual(rewritten ? anon4(text) : parseIpv4(text));
      same(14 + 12, "198.51.100.1", which !== "dst");
      same(14 + 16, "10.1.2.3", which !== "src");
      // The quoted packet went from 10.1.2.3 (this packet's destination) to 192.0.2.77.
      same(q + 12, "10.1.2.3", which !== "src");
      same(q + 16, "192.0.2.77", which !== "dst");
      expect(verdicts(d, 1)).toEqual([OK, OK]);
      const quoted = d.slice(q, q + inner.length);
      expect(verdicts(quoted, 101)).toEqual([OK, OK]);
    }
  });

  test("ICMPv6 error quoting an IPv6 UDP packet: all checksums still good", () => {
    const inner = ipPacket({ src: "2001:db8::5", dst: "2001:db8:1::9", l4: { kind: "udp", sport: 1, dport: 2, payload: 4 } });
    const error = ipPacket({ src: "2001:db8:ffff::1", dst: "2001:db8::5", l4: { kind: "icmp-error", inner } });
    const stage = new AnonymizeStage({ method: { kind: "cryptopan", key: CRYPTOPAN_SAMPLE_KEY }, which: "both" });
    const [r] = records(stage.apply(batchOf(1, [frame("ethernet", error)])));
    expect(verdicts(r!.data, 1)).toEqual([NONE, OK]);
    expect(verdicts(r!.data.slice(14 + 48), 101)).toEqual([NONE, OK]);
    expect(r!.data.subarray(14 + 48 + 8, 14 + 48 + 24)).not.toEqual(error.subarray(48 + 8, 48 + 24));
  });

  test("UDP/IPv4 without a checksum keeps 0; ARP sender and target rewritten", () => {
    const udp = ipPacket({ src: "1.2.3.4", dst: "5.6.7.8", l4: { kind: "udp", sport: 1, dport: 2, payload: 2, noChecksum: true } });
    const stage = new AnonymizeStage({ method: { kind: "cryptopan", key: CRYPTOPAN_SAMPLE_KEY }, which: "both" });
    const out = records(stage.apply(batchOf(1, [frame("ethernet", udp), frame("vlan", arpBody("192.168.1.1", "192.168.1.2"), 0x0806)])));
    expect(verdicts(out[0]!.data, 1)).toEqual([OK, DISABLED]);
    expect(Array.from(out[1]!.data.subarray(18 + 14, 18 + 18))).toEqual(anon4("192.168.1.1"));
    expect(Array.from(out[1]!.data.subarray(18 + 24, 18 + 28))).toEqual(anon4("192.168.1.2"));
  });

  test("prefix substitution (like traceanon -p): top bits replaced, the rest kept; IPv6 too", () => {
    const stage = new AnonymizeStage({
      method: { kind: "prefix", ipv4: { address: Uint8Array.from([10, 0, 0, 0]), bits: 8 }, ipv6: { address: Uint8Array.from([0xfd, 0, ...new Array(14).fill(0)]), bits: 16 } },
      which: "both",
    });
    const out = records(stage.apply(batchOf(1, [
      frame("ethernet", ipPacket({ src: "192.168.7.9", dst: "8.8.4.4", l4: { kind: "tcp", sport: 1, dport: 2 } })),
      frame("ethernet", ipPacket({ src: "2001:db8::1", dst: "2001:db8::2", l4: { kind: "udp", sport: 1, dport: 2 } })),
    ])));
    expect(Array.from(out[0]!.data.subarray(26, 34))).toEqual([10, 168, 7, 9, 10, 8, 4, 4]);
    expect(Array.from(out[1]!.data.subarray(22, 26))).toEqual([0xfd, 0x00, 0x0d, 0xb8]);
    expect(verdicts(out[0]!.data, 1)).toEqual([OK, OK]);
    expect(verdicts(out[1]!.data, 1)).toEqual([NONE, OK]);
  });

  test("cache: repeated addresses hit, the summary reports the hit rate", () => {
    const stage = new AnonymizeStage({ method: { kind: "cryptopan", key: CRYPTOPAN_SAMPLE_KEY }, which: "both" });
    const f = frame("ethernet", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "udp", sport: 1, dport: 2 } }));
    stage.apply(batchOf(1, [f, f, f, f]));
    expect(stage.counters()).toMatchObject({ ipv4_cache_misses: 2, ipv4_cache_hits: 6, encryptions: 2 });
    expect(stage.summaryLines()[0]).toContain("cache hit rate 75.0% (6 of 8)");
  });

  test("truncated and malformed packets pass unchanged and are counted; random bytes never throw", () => {
    const good = frame("ethernet", ipPacket({ src: "1.2.3.4", dst: "5.6.7.8", l4: { kind: "tcp", sport: 1, dport: 2 } }));
    const stage = new AnonymizeStage({ method: { kind: "cryptopan", key: CRYPTOPAN_SAMPLE_KEY }, which: "both" });
    const cut = batchOf(1, [good, good, good, frame("ethernet", arpBody("1.1.1.1", "2.2.2.2"), 0x0806), good], [10, 14 + 19, 14 + 20, 14 + 20, 14 + 36]);
    const out = records(stage.apply(cut));
    expect(out[0]!.data).toEqual(good.subarray(0, 10));
    expect(out[1]!.data).toEqual(good.subarray(0, 33));
    expect(out[2]!.data.subarray(26, 30)).not.toEqual(good.subarray(26, 30)); // whole IPv4 header: rewritten
    expect(out[3]!.data).toEqual(frame("ethernet", arpBody("1.1.1.1", "2.2.2.2"), 0x0806).subarray(0, 34)); // ARP cut short
    expect(stage.counters()).toMatchObject({ not_ip: 1, malformed: 2 });
    let seed = 99;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
    const frames = Array.from({ length: 400 }, (_, n) => {
      const f = Uint8Array.from({ length: n % 90 }, rand);
      if (f.length > 20 && n % 2 === 0) f.set([0x08, 0x00, 0x45], 12);
      return f;
    });
    for (const lt of [0, 1, 101, 108, 113, 228, 229, 276, 999]) expect(() => stage.apply(batchOf(lt, frames))).not.toThrow();
  });
});

describe("truncate-headers", () => {
  const cases: [string, Uint8Array, number, number][] = [
    ["TCP with 12 option bytes", frame("vlan", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "tcp", sport: 1, dport: 2, options: 12, payload: 100 } })), 1, 18 + 20 + 32],
    ["IPv4 options + UDP", frame("ethernet", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", ipOptions: 8, l4: { kind: "udp", sport: 1, dport: 2, payload: 50 } })), 1, 14 + 28 + 8],
    ["IPv6 hop-by-hop + UDP over SLL", frame("sll", ipPacket({ src: "::1", dst: "::2", hopByHop: true, l4: { kind: "udp", sport: 1, dport: 2, payload: 50 } })), 113, 16 + 48 + 8],
    ["ICMP echo", frame("ethernet", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "icmp-echo", payload: 56 } })), 1, 14 + 20 + 8],
    ["unknown protocol (GRE) keeps the IP header", frame("raw", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "raw", protocol: 47, bytes: 40 } })), 101, 20],
    ["later fragment keeps the IP header", frame("ethernet", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", fragmentOffset: 10, l4: { kind: "udp", sport: 1, dport: 2, payload: 40 } })), 1, 34],
    ["ARP keeps its body", frame("qinq", arpBody("1.1.1.1", "2.2.2.2"), 0x0806), 1, 22 + 28],
  ];
  for (const [name, f, linktype, expected] of cases) {
    test(`${name}: caplen ${expected}, len unchanged`, () => {
      const stage = new TruncateHeadersStage({ payloadBytes: 0 });
      const [r] = records(stage.apply(batchOf(linktype, [f])));
      expect([r!.caplen, r!.len]).toEqual([expected, f.length]);
      expect(r!.data).toEqual(f.subarray(0, expected));
    });
  }

  test("+N keeps N payload bytes, never past the IP packet's end; short packets stay whole", () => {
    const f = frame("ethernet", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "udp", sport: 1, dport: 2, payload: 10 } }));
    const padded = new Uint8Array(60);
    padded.set(f);
    const stage = new TruncateHeadersStage({ payloadBytes: 4 });
    const out = records(stage.apply(batchOf(1, [f, padded, f.subarray(0, 30)])));
    expect(out.map((r) => r.caplen)).toEqual([46, 46, 30]);
    const wide = records(new TruncateHeadersStage({ payloadBytes: 1000 }).apply(batchOf(1, [padded])));
    expect(wide[0]!.caplen).toBe(f.length); // Ethernet padding is not payload
  });
});

describe("checksums", () => {
  const tcp = frame("ethernet", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "tcp", sport: 1, dport: 2, payload: 10 } }));
  const udp6 = frame("ethernet", ipPacket({ src: "::1", dst: "::2", l4: { kind: "udp", sport: 1, dport: 2, payload: 3 } }));
  const icmp = frame("ethernet", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "icmp-echo", payload: 3 } }));
  const bad = (f: Uint8Array, at: number) => {
    const c = f.slice();
    c[at]! ^= 0x5a;
    return c;
  };

  test("check: counts per protocol, marks bad packets with a comment, keeps earlier comments", () => {
    const stage = new ChecksumsStage("check");
    const input = batchOf(1, [tcp, bad(tcp, 14 + 10), bad(tcp, 14 + 20 + 16), bad(udp6, 14 + 40 + 6), bad(icmp, 14 + 20 + 2), tcp.subarray(0, 40)]);
    const withEarlier: PacketBatch = { ...input, meta: { comments: [undefined, ["hook tag"], undefined, undefined, undefined, undefined] } };
    const out = stage.apply(withEarlier);
    expect(out.bytes).toBe(input.bytes); // check never copies
    expect(out.meta!.comments).toEqual([undefined, ["hook tag", "checksum bad: ipv4"], ["checksum bad: tcp"], ["checksum bad: udp"], ["checksum bad: icmp"], undefined]);
    expect(stage.counters()).toMatchObject({ packets_bad: 4, ipv4_bad: 1, ipv4_ok: 4, tcp_bad: 1, tcp_ok: 2, tcp_truncated: 1, udp_bad: 1, icmp_bad: 1 });
    expect(stage.summaryLines()[0]).toContain("4 with a bad checksum");
  });

  test("hooks' fixChecksums (the same core) now also repairs ICMP and ICMPv6", () => {
    const icmp6 = frame("ethernet", ipPacket({ src: "::1", dst: "::2", l4: { kind: "icmp-echo", payload: 5 } }));
    for (const [f, at] of [[icmp, 14 + 20 + 2], [icmp6, 14 + 40 + 2]] as const) {
      const broken = bad(f, at);
      expect(fixChecksums(broken, 1).transport).toBe("fixed");
      expect(Array.from(broken)).toEqual(Array.from(f));
    }
  });

  test("update fixes what check found; blank zeroes (UDP/IPv4 0 stays 'no checksum')", () => {
    const broken = batchOf(1, [bad(tcp, 14 + 10), bad(udp6, 14 + 40 + 6), bad(icmp, 14 + 20 + 2)]);
    const fixed = new ChecksumsStage("update").apply(broken);
    expect(records(fixed).map((r) => r.data)).toEqual([tcp, udp6, icmp]);
    const blanked = records(new ChecksumsStage("blank").apply(batchOf(1, [tcp])))[0]!.data;
    expect([blanked[24], blanked[25], blanked[50], blanked[51]]).toEqual([0, 0, 0, 0]);
  });
});

describe("direction", () => {
  const compile = (expression: string) => {
    // "src net 10" on Ethernet/IPv4, written as BPF by hand so this test needs no libpcap.
    const first = expression === "in" ? 10 : 192;
    return compileBpfRecordMatcher([
      { code: 0x28, jt: 0, jf: 0, k: 12 },
      { code: 0x15, jt: 0, jf: 3, k: 0x0800 },
      { code: 0x30, jt: 0, jf: 0, k: 26 },
      { code: 0x15, jt: 0, jf: 1, k: first },
      { code: 0x06, jt: 0, jf: 0, k: 262144 },
      { code: 0x06, jt: 0, jf: 0, k: 0 },
    ]);
  };
  test("tags EPB flag bits, keeps other flag bits, leaves unmatched untagged; onlyDirection selects", () => {
    const a = frame("ethernet", ipPacket({ src: "10.0.0.1", dst: "1.1.1.1", l4: { kind: "udp", sport: 1, dport: 2 } }));
    const b = frame("ethernet", ipPacket({ src: "192.168.0.1", dst: "1.1.1.1", l4: { kind: "udp", sport: 1, dport: 2 } }));
    const c = frame("ethernet", ipPacket({ src: "8.8.8.8", dst: "1.1.1.1", l4: { kind: "udp", sport: 1, dport: 2 } }));
    const stage = new DirectionStage({ inbound: "in", outbound: "out", compile });
    const input = { ...batchOf(1, [a, b, c]), meta: { flags: Uint32Array.from([0x100, 0, 0]) } };
    const out = stage.apply(input);
    expect(Array.from(out.meta!.flags!)).toEqual([0x101, 2, 0]);
    expect(Array.from(input.meta.flags)).toEqual([0x100, 0, 0]);
    expect(onlyDirection(out, "in").count).toBe(1);
    expect(records(onlyDirection(out, "out"))[0]!.data).toEqual(b);
    expect(stage.counters()).toMatchObject({ inbound: 1, outbound: 1, untagged: 1 });
  });
});

describe("bad input", () => {
  test("every stage passes random and cut-short frames of every link type without throwing; lengths stay consistent", () => {
    let seed = 4242;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
    const real = frame("vlan", ipPacket({ src: "1.2.3.4", dst: "5.6.7.8", l4: { kind: "icmp-error", inner: ipPacket({ src: "5.6.7.8", dst: "9.9.9.9", l4: { kind: "tcp", sport: 1, dport: 2 } }) } }));
    const frames = Array.from({ length: 600 }, (_, n) => {
      if (n % 3 === 0) return real.slice(0, n % real.length);
      const f = Uint8Array.from({ length: n % 120 }, rand);
      if (f.length > 24 && n % 2 === 0) f.set([0x08, 0x00, 0x45, 0x00], 12);
      if (f.length > 40 && n % 5 === 0) f.set([0x86, 0xdd, 0x60], 12);
      return f;
    });
    const stages = () => [
      new AnonymizeStage({ method: { kind: "cryptopan", key: CRYPTOPAN_SAMPLE_KEY }, which: "both" }),
      new TruncateHeadersStage({ payloadBytes: 3 }),
      new ChecksumsStage("check"),
      new ChecksumsStage("update"),
      new ChecksumsStage("blank"),
    ];
    for (const lt of [0, 1, 101, 108, 113, 228, 229, 276, 999]) {
      for (const stage of stages()) {
        const input = batchOf(lt, frames);
        let out: PacketBatch | undefined;
        expect(() => (out = stage.apply(input))).not.toThrow();
        const rows = records(out!);
        expect(rows.length).toBe(frames.length);
        rows.forEach((r, i) => expect(r.caplen <= frames[i]!.length && r.len === frames[i]!.length).toBe(true));
      }
    }
  });
});

describe("spec and flags", () => {
  test("flags become stage specs in command-line order; --truncate-headers takes an optional +N", () => {
    const argv = normalizeProcessingArgv(["--checksums", "check", "--truncate-headers", "--anonymize-passphrase", "x", "-w", "-", "--direction-in", "src net 10"]);
    expect(argv).toContain("--truncate-headers=+0");
    const specs = processingStagesFromFlags({ checksums: "check", "truncate-headers": "+0", "anonymize-passphrase": "x", "direction-in": "src net 10" }, argv);
    expect(specs.map((s) => s.kind)).toEqual(["checksums", "truncate-headers", "anonymize", "direction"]);
    expect(normalizeProcessingArgv(["--truncate-headers", "+64", "port", "53"])).toEqual(["--truncate-headers=+64", "port", "53"]);
    expect(normalizeProcessingArgv(["--truncate-headers", "8", "--", "--truncate-headers"])).toEqual(["--truncate-headers=+8", "--", "--truncate-headers"]);
    expect(normalizeProcessingArgv(["--truncate-headers", "port", "53"])).toEqual(["--truncate-headers=+0", "port", "53"]);
  });

  test("through parseArgs as a command would: the option table, normalization, then specs", () => {
    const argv = normalizeProcessingArgv(["--anonymize-prefix", "10.0.0.0/8", "--anonymize-prefix", "fd00::/8", "--anonymize-only", "dst", "--truncate-headers", "+4", "--checksums=update", "-w", "-", "udp"]);
    const { values, positionals } = parseCommandLine("capture", argv, { ...PROCESSING_CLI_OPTIONS, ...ONLY_DIRECTION_CLI_OPTION, write: { type: "string", short: "w" } });
    expect(positionals).toEqual(["udp"]);
    expect(processingStagesFromFlags(values, argv)).toEqual([
      { kind: "anonymize", prefixes: ["10.0.0.0/8", "fd00::/8"], only: "dst" },
      { kind: "truncate-headers", payloadBytes: 4 },
      { kind: "checksums", action: "update" },
    ]);
    expect(onlyDirectionFromFlags({ "only-direction": "in" })).toBe("in");
    expect(() => onlyDirectionFromFlags({ "only-direction": "both" })).toThrow("--only-direction wants in or out, not 'both'");
  });

  test("bad flags are one-line usage errors naming the flag", () => {
    expect(() => processingStagesFromFlags({ checksums: "fix" }, [])).toThrow(new UsageError("--checksums wants check, update, blank or none, not 'fix'"));
    expect(() => processingStagesFromFlags({ "anonymize-only": "src" }, [])).toThrow(UsageError);
    expect(() => processingStagesFromFlags({ "anonymize-key-file": "k", "anonymize-passphrase": "p" }, [])).toThrow("exclude each other");
    expect(() => processingStagesFromFlags({ "truncate-headers": "+70000" }, [])).toThrow("--truncate-headers");
    expect(processingStagesFromFlags({ checksums: "none" }, [])).toEqual([]);
  });

  test("a key file of the wrong size: ProcessingStageError from the builder, UsageError (exit 2) from the CLI helper", async () => {
    const short = join(dir, "short.key");
    writeFileSync(short, new Uint8Array(31));
    const spec = processingStagesFromFlags({ "anonymize-key-file": short }, []);
    await expect(buildProcessingStage(spec[0]!)).rejects.toBeInstanceOf(ProcessingStageError);
    await expect(buildProcessingStages(spec)).rejects.toThrow(new UsageError(`--anonymize-key-file ${short}: a key file holds exactly 32 raw bytes (as traceanon -f reads), this one has 31`));
    await expect(buildProcessingStages(processingStagesFromFlags({ "anonymize-key-file": join(dir, "missing") }, []))).rejects.toThrow("cannot read it (ENOENT)");
    await expect(buildProcessingStages(processingStagesFromFlags({ "anonymize-prefix": ["10.0.0.0/33"] }, []))).rejects.toThrow("--anonymize-prefix");
  });

  test("a filter libpcap refuses fails at build time when the link type is known", async () => {
    const [spec] = processingStagesFromFlags({ "direction-in": "src nett 10" }, []);
    await expect(buildProcessingStages([spec!], { linktype: 1 })).rejects.toThrow("--direction-in 'src nett 10' (direction stage, link type 1): ");
  });
});
