// Hook stage throughput: packets per second through HookRunner.run() for a no-op hook and the
// three examples (and a hook that tags every packet), on synthetic Ethernet/IPv4/UDP batches (1024 packets of 100 and 512 bytes).
// Usage: bun run scripts/bench/hooks.ts [seconds-per-case]
// Targets (issue 6): no-op >= 1M packets/s, redact.js >= 300k packets/s. Prints, never asserts.
import { join } from "node:path";
import { PacketBatchBuilder, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { syntheticFrame } from "../../src/capture/synthetic-source.ts";
import { HookRunner } from "../../src/hooks/index.ts";

const secondsPerCase = Number(process.argv[2] ?? 2);
const examples = join(import.meta.dir, "../../examples/hooks");
const PACKETS_PER_BATCH = 1024;
/** Distinct flows in the synthetic traffic, so sample.js has per-flow counters to keep. */
const FLOWS = 256;

function syntheticBatch(frameBytes: number, batchIndex: number): PacketBatch {
  const builder = new PacketBatchBuilder(1, "micro");
  for (let i = 0; i < PACKETS_PER_BATCH; i++) {
    const frame = syntheticFrame(batchIndex * PACKETS_PER_BATCH + i, frameBytes);
    // Vary the source port per flow (UDP checksum left as synthesized: 0, "no checksum").
    const port = 10000 + ((batchIndex * PACKETS_PER_BATCH + i) % FLOWS);
    frame[34] = port >> 8;
    frame[35] = port & 0xff;
    builder.push(1_700_000_000, i, frameBytes, frame);
  }
  return builder.take()!;
}

const cases: [string, string][] = [
  ["no-op", "export default function (pkt, ctx) {}"],
  ["tag.js", await Bun.file(join(examples, "tag.js")).text()],
  ["sample.js", await Bun.file(join(examples, "sample.js")).text()],
  ["redact.js", await Bun.file(join(examples, "redact.js")).text()],
  // Every packet tagged: the result transport (tags out of the VM, decoded on the host) at its busiest.
  ["tag-every", `export default function (pkt, ctx) { ctx.tag(pkt.protocol === 17 ? "udp" : "other"); }`],
];

console.log(`hook stage throughput, ${PACKETS_PER_BATCH} packets per batch, ${secondsPerCase}s per case (Bun ${Bun.version})`);
for (const frameBytes of [100, 512]) {
  const batches = Array.from({ length: 8 }, (_, k) => syntheticBatch(frameBytes, k));
  for (const [name, source] of cases) {
    const runner = await HookRunner.create({ name, source });
    for (let k = 0; k < 200; k++) runner.run(batches[k % batches.length]!); // warm up (wasm tiers up)
    const started = performance.now();
    let packets = 0;
    let k = 0;
    while (performance.now() - started < secondsPerCase * 1000) {
      packets += runner.run(batches[k++ % batches.length]!).outcomes.length;
    }
    const seconds = (performance.now() - started) / 1000;
    const stats = runner.stats;
    const failures = Object.values(stats.failures).reduce((a, b) => a + b, 0);
    console.log(
      `${name.padEnd(10)} ${String(frameBytes).padStart(4)} B  ${(packets / seconds / 1000).toFixed(0).padStart(6)} k packets/s` +
        `  (passed ${stats.passed}, dropped ${stats.dropped}, modified ${stats.modified}, failures ${failures})`,
    );
    runner.dispose();
  }
}
