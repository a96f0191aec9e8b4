// Processing stages throughput (issue 11): packets per second inside each stage on a generated
// 1M-packet mixed file (IPv4 TCP/UDP/ICMP, IPv6 TCP/UDP, VLAN-tagged and plain Ethernet, ~4000
// distinct addresses), next to traceanon on the same file and a plain batch copy as the anchor.
// Usage: bun run scripts/bench/index.ts stages  (or: bun run scripts/bench/stages.ts [packets])
// Targets: anonymize warm >= 1M packets/s and >= 2x traceanon; truncate and checksum check
// >= 2M packets/s; new addresses per second (cold) reported. Prints, never asserts; numbers
// from a shared 2-core machine are noisy.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PacketBatch } from "../../src/packet/packet-batch.ts";
import type { PacketStage } from "../../src/pipeline/stage.ts";
import { AnonymizeStage } from "../../src/pipeline/stages/anonymize.ts";
import { ChecksumsStage } from "../../src/pipeline/stages/checksums.ts";
import { DirectionStage } from "../../src/pipeline/stages/direction.ts";
import { TruncateHeadersStage } from "../../src/pipeline/stages/truncate-headers.ts";
import { compileFilter } from "../../src/capture/libpcap/compile-filter.ts";
import { compileBpfRecordMatcher } from "../../src/packet/bpf/index.ts";
import { MAXIMUM_SNAPLEN } from "../../src/packet/packet-batch.ts";
import { readCaptureFile } from "../../src/protocols/pcap/read-capture-file.ts";
import { CRYPTOPAN_SAMPLE_KEY, frame, ipPacket, pcapFile, seededRandom } from "../../test/support/packet-builder.ts";
import { bunBinary, finish, printTable, watchPeakRss, type Measurement } from "./support/measure.ts";

/** Distinct frames the file cycles through (each with its own address pair). */
const TEMPLATES = 2000;

export function mixedFrames(count: number, seed: number, v4Pool: number): Uint8Array[] {
  const rand = seededRandom(seed);
  const pool = Array.from({ length: v4Pool }, () => [10 + Math.floor(rand() * 200), Math.floor(rand() * 256), Math.floor(rand() * 256), 1 + Math.floor(rand() * 254)].join("."));
  const pick = () => pool[Math.floor(rand() * pool.length)]!;
  const v6 = () => `2001:db8:${Math.floor(rand() * 64).toString(16)}::${Math.floor(rand() * 64).toString(16)}`;
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const r = i % 10;
    const link = i % 4 === 0 ? "vlan" : "ethernet";
    const payload = 20 + Math.floor(rand() * 200);
    const packet =
      r < 5 ? ipPacket({ src: pick(), dst: pick(), l4: { kind: "tcp", sport: 1024 + (i % 50000), dport: 443, options: 12, payload } })
      : r < 8 ? ipPacket({ src: pick(), dst: pick(), l4: { kind: "udp", sport: 53, dport: 1024 + (i % 50000), payload } })
      : r < 9 ? ipPacket({ src: v6(), dst: v6(), l4: i % 2 ? { kind: "tcp", sport: 1, dport: 2, payload } : { kind: "udp", sport: 1, dport: 2, payload } })
      : ipPacket({ src: pick(), dst: pick(), l4: { kind: "icmp-echo", payload: 56 } });
    frames.push(frame(link, packet));
  }
  return frames;
}

/** A pcap of `packets` records cycling through `templates`, written in one go. */
export function writeCycledPcap(path: string, templates: Uint8Array[], packets: number): void {
  const sizes = templates.map((t) => 16 + t.length);
  let total = 24;
  for (let i = 0; i < packets; i++) total += sizes[i % templates.length]!;
  const out = new Uint8Array(total);
  out.set(pcapFile(1, []), 0);
  const view = new DataView(out.buffer);
  let at = 24;
  for (let i = 0; i < packets; i++) {
    const t = templates[i % templates.length]!;
    view.setUint32(at, 1_700_000_000 + Math.floor(i / 1000), true);
    view.setUint32(at + 4, (i % 1000) * 1000, true);
    view.setUint32(at + 8, t.length, true);
    view.setUint32(at + 12, t.length, true);
    out.set(t, at + 16);
    at += 16 + t.length;
  }
  writeFileSync(path, out);
}

function peakRssMiB(): number {
  const status = require("node:fs").readFileSync("/proc/self/status", "utf8") as string;
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** Runs `stage` over every batch once; in-stage time and CPU only. */
function measureStage(name: string, stage: PacketStage | ((batch: PacketBatch) => PacketBatch), batches: PacketBatch[], note = ""): Measurement {
  const apply = typeof stage === "function" ? stage : (b: PacketBatch) => stage.apply(b);
  let packets = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (const batch of batches) packets += apply(batch).count;
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { name, packets, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssMiB: peakRssMiB(), note };
}

export async function benchStages(packets = 1_000_000): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-stages-"));
  try {
    const input = join(dir, "mixed.pcap");
    writeCycledPcap(input, mixedFrames(TEMPLATES, 11, 4000), packets);
    const keyFile = join(dir, "key");
    writeFileSync(keyFile, CRYPTOPAN_SAMPLE_KEY);
    const { batches } = await readCaptureFile(input);
    console.log(`processing stages, ${packets} packets in ${batches.length} batches (${TEMPLATES} distinct frames), Bun ${Bun.version}`);

    const rows: Measurement[] = [];
    rows.push(measureStage("anchor: batch copy (bytes.slice)", (b) => ({ ...b, bytes: b.bytes.slice() }), batches));
    const anonymize = new AnonymizeStage({ method: { kind: "cryptopan", key: CRYPTOPAN_SAMPLE_KEY }, which: "both" });
    rows.push(measureStage("anonymize, first pass", anonymize, batches, "cache fills during the first batches"));
    rows.push(measureStage("anonymize, warm cache", anonymize, batches, anonymize.summaryLines()[0]!.replace(/^anonymize: /, "").slice(0, 60)));
    rows.push(measureStage("truncate-headers", new TruncateHeadersStage({ payloadBytes: 0 }), batches));
    rows.push(measureStage("checksums check", new ChecksumsStage("check"), batches));
    rows.push(measureStage("checksums update", new ChecksumsStage("update"), batches));
    const compile = (expression: string, linktype: number) => compileBpfRecordMatcher(compileFilter(expression, linktype, MAXIMUM_SNAPLEN));
    rows.push(measureStage("direction (2 filters)", new DirectionStage({ inbound: "dst net 10.0.0.0/8", outbound: "src net 10.0.0.0/8", compile }), batches));

    // Cold: every packet carries two addresses never seen before.
    const coldCount = 100_000;
    const coldInput = join(dir, "cold.pcap");
    const rand = seededRandom(5);
    const unique = () => [Math.floor(rand() * 256), Math.floor(rand() * 256), Math.floor(rand() * 256), Math.floor(rand() * 256)].join(".");
    writeFileSync(coldInput, pcapFile(1, Array.from({ length: coldCount }, () => frame("ethernet", ipPacket({ src: unique(), dst: unique(), l4: { kind: "udp", sport: 1, dport: 2, payload: 8 } })))));
    const cold = await readCaptureFile(coldInput);
    const coldStage = new AnonymizeStage({ method: { kind: "cryptopan", key: CRYPTOPAN_SAMPLE_KEY }, which: "both" });
    const coldRow = measureStage("anonymize, cold (2 new addresses/packet)", coldStage, cold.batches);
    const encryptions = coldStage.counters().encryptions!;
    coldRow.note = `${Math.round(encryptions / coldRow.seconds).toLocaleString("en-US")} new addresses/s (${encryptions} AES runs)`;
    rows.push(coldRow);
    printTable("in-stage throughput (one pass over the batches in memory)", rows);

    // Side by side with traceanon on the same file: whole programs, file in and file out.
    const files: Measurement[] = [];
    const traceanonOut = join(dir, "traceanon.pcap");
    {
      const proc = Bun.spawn(["traceanon", "-s", "-d", "-f", keyFile, `pcapfile:${input}`, `pcapfile:${traceanonOut}`], { stdout: "ignore", stderr: "inherit" });
      const rss = watchPeakRss(proc.pid);
      const started = performance.now();
      const done = await finish(proc, rss);
      files.push({ name: "traceanon -s -d -f KEY (file to file)", packets, seconds: (performance.now() - started) / 1000, cpuSeconds: done.cpuSeconds, peakRssMiB: done.peakRssMiB, note: "libtrace 3.0.22, zeroes checksums" });
    }
    {
      const script = join(dir, "anonymize-file.ts");
      const root = new URL("../..", import.meta.url).pathname;
      writeFileSync(script, `
        import { AnonymizeStage } from "${root}src/pipeline/stages/anonymize.ts";
        import { processCaptureFile } from "${root}test/support/process-capture-file.ts";
        const key = new Uint8Array(await Bun.file(process.argv[2]).bytes());
        await processCaptureFile(process.argv[3], process.argv[4], "pcap", [new AnonymizeStage({ method: { kind: "cryptopan", key }, which: "both" })]);
      `);
      const proc = Bun.spawn([bunBinary, script, keyFile, input, join(dir, "ours.pcap")], { stdout: "ignore", stderr: "inherit" });
      const rss = watchPeakRss(proc.pid);
      const started = performance.now();
      const done = await finish(proc, rss);
      files.push({ name: "probe anonymize (file to file)", packets, seconds: (performance.now() - started) / 1000, cpuSeconds: done.cpuSeconds, peakRssMiB: done.peakRssMiB, note: "reader + stage + writer, checksums kept valid" });
    }
    printTable("anonymization side by side with traceanon (same file, same key)", files);
    const warm = rows.find((r) => r.name === "anonymize, warm cache")!;
    const trace = files[0]!;
    console.log(`\nanonymize warm in-stage: ${(warm.packets / warm.seconds / (trace.packets / trace.seconds)).toFixed(1)}x traceanon's file-to-file rate; ` +
      `probe file-to-file: ${(files[1]!.packets / files[1]!.seconds / (trace.packets / trace.seconds)).toFixed(1)}x`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchStages(Number(process.argv[2] ?? 1_000_000));
