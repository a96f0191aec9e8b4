// Processing stages judged by real tools: Debian's traceanon (libtrace 3.0.22) for CryptoPAn and
// prefix substitution on the same input and key, tshark for checksums after anonymization, the
// header lengths after truncation, checksum verdicts on deliberately broken packets, and the
// pcapng EPB direction flags and comments our writer emits. Files go through
// test/support/process-capture-file.ts (the project's reader, the stages, the project's writer).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AnonymizeStage, type AnonymizeWhich } from "../../src/pipeline/stages/anonymize.ts";
import { ChecksumsStage } from "../../src/pipeline/stages/checksums.ts";
import { CryptoPan } from "../../src/pipeline/stages/cryptopan.ts";
import { TruncateHeadersStage } from "../../src/pipeline/stages/truncate-headers.ts";
import { buildProcessingStages, processingStagesFromFlags } from "../../src/cli/processing-options.ts";
import { arpBody, CRYPTOPAN_SAMPLE_KEY, frame, ipPacket, LINKTYPE_OF, pcapFile, seededRandom, type Link } from "../support/packet-builder.ts";
import { processCaptureFile } from "../support/process-capture-file.ts";

const dir = mkdtempSync(join(tmpdir(), "stages-judges-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const keyFile = join(dir, "sample.key");
writeFileSync(keyFile, CRYPTOPAN_SAMPLE_KEY);

function run(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

const CHECK_ALL = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"];

function tsharkFields(path: string, fields: string[], extra: string[] = []): string[][] {
  const out = run(["tshark", "-r", path, "-n", ...extra, "-T", "fields", "-E", "separator=|", ...fields.flatMap((f) => ["-e", f])]);
  const lines = out.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((line) => line.split("|"));
}

const rand = seededRandom(2026);
const randomIpv4 = () => [1 + Math.floor(rand() * 223), Math.floor(rand() * 256), Math.floor(rand() * 256), Math.floor(rand() * 256)].join(".");
const randomIpv6 = () => `2001:db8:${Math.floor(rand() * 65536).toString(16)}::${Math.floor(rand() * 65536).toString(16)}`;

/** Many IPv4 addresses in TCP, UDP, ICMP echo and ICMP errors quoting UDP. */
function manyIpv4Frames(link: Link, count: number): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const src = randomIpv4();
    const dst = i % 7 === 0 ? "10.0.0.1" : randomIpv4(); // some repeats, for the cache
    const l4 =
      i % 4 === 0 ? ({ kind: "tcp", sport: 1024 + i, dport: 443, options: (i % 3) * 4, payload: i % 50 } as const)
      : i % 4 === 1 ? ({ kind: "udp", sport: 53, dport: 1024 + i, payload: i % 30 } as const)
      : i % 4 === 2 ? ({ kind: "icmp-echo", payload: 8 } as const)
      : ({ kind: "icmp-error", inner: ipPacket({ src: dst, dst: randomIpv4(), l4: { kind: "udp", sport: 4000, dport: 33434, payload: 4 } }) } as const);
    frames.push(frame(link, ipPacket({ src, dst, l4 })));
  }
  return frames;
}

async function anonymizeFile(input: string, output: string, which: AnonymizeWhich, format: "pcap" | "pcapng" = "pcap") {
  const stage = new AnonymizeStage({ method: { kind: "cryptopan", key: CRYPTOPAN_SAMPLE_KEY }, which });
  await processCaptureFile(input, output, format, [stage]);
  return stage;
}

describe("anonymization against traceanon (libtrace 3.0.22)", () => {
  for (const [which, flags] of [["both", ["-s", "-d"]], ["src", ["-s"]], ["dst", ["-d"]]] as const) {
    test(`IPv4 addresses (outer and ICMP-quoted) identical to traceanon ${flags.join(" ")} -f KEYFILE`, async () => {
      const input = join(dir, `v4-${which}.pcap`);
      writeFileSync(input, pcapFile(1, [...manyIpv4Frames("ethernet", 600), ...manyIpv4Frames("vlan", 100)]));
      const ours = join(dir, `v4-${which}-ours.pcap`);
      const theirs = join(dir, `v4-${which}-traceanon.pcap`);
      await anonymizeFile(input, ours, which);
      run(["traceanon", ...flags, "-f", keyFile, `pcapfile:${input}`, `pcapfile:${theirs}`]);
      const fields = ["ip.src", "ip.dst"];
      const expected = tsharkFields(theirs, fields);
      expect(expected.length).toBe(700);
      expect(tsharkFields(ours, fields)).toEqual(expected);
      expect(tsharkFields(input, fields)).not.toEqual(expected);
    });
  }

  test("prefix substitution identical to traceanon -p 10.0.0.0/8", async () => {
    const input = join(dir, "prefix.pcap");
    writeFileSync(input, pcapFile(1, manyIpv4Frames("ethernet", 200)));
    const ours = join(dir, "prefix-ours.pcap");
    const theirs = join(dir, "prefix-traceanon.pcap");
    const stages = await buildProcessingStages(processingStagesFromFlags({ "anonymize-prefix": ["10.0.0.0/8"] }, []));
    await processCaptureFile(input, ours, "pcap", stages);
    run(["traceanon", "-s", "-d", "-p", "10.0.0.0/8", `pcapfile:${input}`, `pcapfile:${theirs}`]);
    expect(tsharkFields(ours, ["ip.src", "ip.dst"])).toEqual(tsharkFields(theirs, ["ip.src", "ip.dst"]));
  });

  test("IPv6 and ARP: traceanon 3.0.22 leaves them as they are; we rewrite them (docs/stages.md)", async () => {
    const frames = Array.from({ length: 50 }, (_, i) =>
      frame("ethernet", ipPacket({ src: randomIpv6(), dst: randomIpv6(), l4: { kind: "udp", sport: 1, dport: 2 + i, payload: 4 } })));
    frames.push(frame("ethernet", arpBody("192.168.1.1", "192.168.1.2"), 0x0806));
    const input = join(dir, "v6.pcap");
    writeFileSync(input, pcapFile(1, frames));
    const ours = join(dir, "v6-ours.pcap");
    const theirs = join(dir, "v6-traceanon.pcap");
    await anonymizeFile(input, ours, "both");
    run(["traceanon", "-s", "-d", "-f", keyFile, `pcapfile:${input}`, `pcapfile:${theirs}`]);
    const fields = ["ipv6.src", "ipv6.dst", "arp.src.proto_ipv4", "arp.dst.proto_ipv4"];
    const original = tsharkFields(input, fields);
    expect(tsharkFields(theirs, fields)).toEqual(original);
    const rewritten = tsharkFields(ours, fields);
    expect(rewritten.length).toBe(51);
    for (let i = 0; i < 50; i++) {
      expect(rewritten[i]![0]).not.toBe(original[i]![0]);
      expect(rewritten[i]![1]).not.toBe(original[i]![1]);
    }
    expect(original[50]!.slice(2)).toEqual(["192.168.1.1", "192.168.1.2"]);
    const cp = new CryptoPan(CRYPTOPAN_SAMPLE_KEY);
    const anonymized = (a: number) => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join(".");
    expect(rewritten[50]!.slice(2)).toEqual([anonymized(cp.anonymizeIpv4(0xc0a80101)), anonymized(cp.anonymizeIpv4(0xc0a80102))]);
  });

  for (const link of ["ethernet", "vlan", "qinq", "sll", "sll2", "raw", "null", "loop"] as const) {
    test(`${link}: tshark finds every checksum good after anonymization (IPv4, TCP, UDP, ICMP, ICMPv6)`, async () => {
      const frames = [
        ...manyIpv4Frames(link, 40),
        ...Array.from({ length: 12 }, (_, i) =>
          frame(link, ipPacket({
            src: randomIpv6(),
            dst: randomIpv6(),
            hopByHop: i % 2 === 0,
            l4: i % 3 === 0 ? { kind: "tcp", sport: 1, dport: 2, payload: 9 } : i % 3 === 1 ? { kind: "udp", sport: 1, dport: 2, payload: 9 } : { kind: "icmp-echo", payload: 9 },
          }))),
      ];
      const input = join(dir, `ck-${link}.pcap`);
      writeFileSync(input, pcapFile(LINKTYPE_OF[link], frames));
      const ours = join(dir, `ck-${link}-ours.pcap`);
      const stage = await anonymizeFile(input, ours, "both");
      expect(stage.counters().packets_rewritten).toBe(frames.length);
      const fields = ["ip.checksum.status", "tcp.checksum.status", "udp.checksum.status", "icmp.checksum.status", "icmpv6.checksum.status"];
      const rows = tsharkFields(ours, fields, CHECK_ALL);
      expect(rows.length).toBe(frames.length);
      // Status 1 is "good" (0 bad, 2 unverified); the ICMP-quoted headers' checksums appear as a second value.
      const statuses = rows.flat().flatMap((cell) => cell.split(",")).filter((v) => v !== "");
      expect(statuses.length).toBeGreaterThan(frames.length * 2);
      expect(statuses.filter((v) => v !== "1")).toEqual([]);
    });
  }
});

describe("header truncation judged by tshark", () => {
  test("per protocol, caplen equals the header length tshark reports, len unchanged", async () => {
    const frames = [
      frame("ethernet", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "tcp", sport: 1, dport: 2, options: 12, payload: 200 } })),
      frame("vlan", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", ipOptions: 8, l4: { kind: "tcp", sport: 1, dport: 2, payload: 20 } })),
      frame("ethernet", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "udp", sport: 1, dport: 53, payload: 100 } })),
      frame("qinq", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "icmp-echo", payload: 56 } })),
      frame("ethernet", ipPacket({ src: "2001:db8::1", dst: "2001:db8::2", l4: { kind: "tcp", sport: 1, dport: 2, options: 20, payload: 100 } })),
      frame("ethernet", ipPacket({ src: "2001:db8::1", dst: "2001:db8::2", hopByHop: true, l4: { kind: "udp", sport: 1, dport: 2, payload: 100 } })),
      frame("ethernet", ipPacket({ src: "2001:db8::1", dst: "2001:db8::2", l4: { kind: "icmp-echo", payload: 100 } })),
    ];
    const input = join(dir, "trunc.pcap");
    writeFileSync(input, pcapFile(1, frames));
    const output = join(dir, "trunc-out.pcap");
    await processCaptureFile(input, output, "pcap", [new TruncateHeadersStage({ payloadBytes: 0 })]);
    const fields = ["frame.cap_len", "frame.len", "vlan.id", "ieee8021ad.id", "ip.hdr_len", "ipv6.hopopts.len_oct", "tcp.hdr_len", "udp.length", "icmp.type", "icmpv6.type"];
    const before = tsharkFields(input, fields);
    const after = tsharkFields(output, fields);
    after.forEach((row, i) => {
      const [capLen, len, vlans, sTags, ipHdr, hop, tcpHdr, udp, icmp, icmp6] = row;
      const tags = (vlans === "" ? 0 : vlans!.split(",").length) + (sTags === "" ? 0 : sTags!.split(",").length);
      const link = 14 + 4 * tags;
      const network = ipHdr !== "" ? Number(ipHdr) : 40 + (hop === "" ? 0 : Number(hop));
      const transport = tcpHdr !== "" ? Number(tcpHdr) : udp !== "" || icmp !== "" || icmp6 !== "" ? 8 : 0;
      expect(`${i}: ${capLen}`).toBe(`${i}: ${link + network + transport}`);
      expect(len).toBe(before[i]![1]!);
    });
    // "+N": N payload bytes more.
    const plus = join(dir, "trunc-plus.pcap");
    await processCaptureFile(input, plus, "pcap", [new TruncateHeadersStage({ payloadBytes: 16 })]);
    expect(tsharkFields(plus, ["frame.cap_len"]).map((r) => Number(r[0]))).toEqual(after.map((r) => Number(r[0]) + 16));
  });
});

describe("checksum check judged by tshark", () => {
  test("bad counts per protocol equal tshark's verdicts; bad packets carry a pcapng comment", async () => {
    const good = [
      ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "tcp", sport: 1, dport: 2, payload: 11 } }),
      ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "udp", sport: 1, dport: 2, payload: 11 } }),
      ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "icmp-echo", payload: 11 } }),
      ipPacket({ src: "2001:db8::1", dst: "2001:db8::2", l4: { kind: "tcp", sport: 1, dport: 2, payload: 11 } }),
      ipPacket({ src: "2001:db8::1", dst: "2001:db8::2", l4: { kind: "udp", sport: 1, dport: 2, payload: 11 } }),
      ipPacket({ src: "2001:db8::1", dst: "2001:db8::2", l4: { kind: "icmp-echo", payload: 11 } }),
    ];
    /** Offsets of each checksum field inside those packets: IPv4 header; transport. */
    const transportChecksumAt = [20 + 16, 20 + 6, 20 + 2, 40 + 16, 40 + 6, 40 + 2];
    const frames: Uint8Array[] = [];
    let expectedBad = 0;
    for (let round = 0; round < 30; round++) {
      good.forEach((p, k) => {
        const copy = p.slice();
        const breakWhat = (round + k) % 4; // 0 good, 1 transport, 2 IPv4 header (v4 only), 3 both
        if (breakWhat === 1 || breakWhat === 3) copy[transportChecksumAt[k]!]! ^= 0x21;
        if ((breakWhat === 2 || breakWhat === 3) && k < 3) copy[10]! ^= 0x42;
        if (breakWhat !== 0 && !(breakWhat === 2 && k >= 3)) expectedBad++;
        frames.push(frame("ethernet", copy));
      });
    }
    const input = join(dir, "broken.pcap");
    writeFileSync(input, pcapFile(1, frames));
    const output = join(dir, "broken-marked.pcapng");
    const stage = new ChecksumsStage("check");
    await processCaptureFile(input, output, "pcapng", [stage]);
    const fields = ["ip.checksum.status", "tcp.checksum.status", "udp.checksum.status", "icmp.checksum.status", "icmpv6.checksum.status", "frame.comment"];
    const rows = tsharkFields(output, fields, CHECK_ALL);
    const badByTshark = (column: number) => rows.filter((r) => r[column] === "0").length;
    const c = stage.counters();
    expect([c.ipv4_bad, c.tcp_bad, c.udp_bad, c.icmp_bad, c.icmpv6_bad]).toEqual([0, 1, 2, 3, 4].map(badByTshark));
    expect([c.ipv4_ok, c.tcp_ok, c.udp_ok, c.icmp_ok, c.icmpv6_ok]).toEqual([0, 1, 2, 3, 4].map((col) => rows.filter((r) => r[col] === "1").length));
    expect(c.packets_bad).toBe(expectedBad);
    // The comment names exactly what tshark found bad.
    const names = ["ipv4", "tcp", "udp", "icmp", "icmpv6"];
    for (const r of rows) {
      const bad = names.filter((_, col) => r[col] === "0");
      expect(r[5]).toBe(bad.length === 0 ? "" : `checksum bad: ${bad.join(" ")}`);
    }
    // update repairs all of them, as tshark sees it.
    const repaired = join(dir, "repaired.pcap");
    await processCaptureFile(input, repaired, "pcap", [new ChecksumsStage("update")]);
    expect(tsharkFields(repaired, fields.slice(0, 5), CHECK_ALL).flat().filter((v) => v !== "" && v !== "1")).toEqual([]);
  });
});

describe("direction tagging judged by tshark", () => {
  test("EPB flags read back as frame.packet_flags_direction (libpcap-compiled filters)", async () => {
    const frames = [
      frame("ethernet", ipPacket({ src: "10.0.0.5", dst: "8.8.8.8", l4: { kind: "udp", sport: 1, dport: 53 } })),
      frame("ethernet", ipPacket({ src: "8.8.8.8", dst: "10.0.0.5", l4: { kind: "udp", sport: 53, dport: 1 } })),
      frame("ethernet", ipPacket({ src: "9.9.9.9", dst: "8.8.8.8", l4: { kind: "udp", sport: 53, dport: 1 } })),
    ];
    const input = join(dir, "dir.pcap");
    writeFileSync(input, pcapFile(1, frames));
    const output = join(dir, "dir.pcapng");
    const stages = await buildProcessingStages(
      processingStagesFromFlags({ "direction-in": "dst net 10.0.0.0/8", "direction-out": "src net 10.0.0.0/8" }, []),
      { linktype: 1 },
    );
    await processCaptureFile(input, output, "pcapng", stages);
    const rows = tsharkFields(output, ["frame.packet_flags_direction"]);
    // 0x1 inbound, 0x2 outbound; no option at all for the untagged packet.
    expect(rows.map((r) => r[0])).toEqual(["0x00000002", "0x00000001", ""]);
  });
});
