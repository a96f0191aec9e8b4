// The rotating file output behind a real capture on lo: -G 1 over about 3 s of paced UDP
// traffic. Every packet sent is in exactly one file, in order, and no .part is left.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LiveCaptureSource } from "../../src/capture/live-capture-source.ts";
import { buildRotatingFileOutput, rotatingFileSpecFromFlags } from "../../src/cli/rotation-options.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { readCaptureFile } from "../../src/protocols/pcap/index.ts";
import { openLoopbackFlow, type LoopbackFlow } from "../support/loopback-traffic.ts";
import { capinfosCount, filesIn } from "../support/rotation-files.ts";

const PACKETS = 30;
const GAP_MS = 100;
/** Ethernet (lo's link type) + IPv4 + UDP headers: where the payload starts. */
const PAYLOAD_OFFSET = 14 + 20 + 8;

let dir: string | undefined;
let flow: LoopbackFlow | undefined;
let source: LiveCaptureSource | undefined;

afterEach(async () => {
  await source?.stop();
  flow?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("-G 1 behind a live capture on lo: several files, each packet once, in order, no .part", async () => {
  dir = mkdtempSync(join(tmpdir(), "rotation-live-"));
  flow = await openLoopbackFlow();
  const logger = memoryLogger();
  const spec = rotatingFileSpecFromFlags("test", { "rotate-seconds": "1" }, { path: join(dir, "live-%Y%m%d%H%M%S-%N.pcap"), format: "pcap" })!;
  const output = buildRotatingFileOutput(spec, { logger });
  await output.start({ inputs: [{ name: "lo", linktype: 1, snaplen: 262144, description: "lo" }], precision: "micro" });
  source = new LiveCaptureSource({ interface: "lo", filter: `udp and dst port ${flow.port}` });
  let captured = 0;
  await source.start({
    onBatch: (batch) => {
      captured += batch.count;
      output.write(batch);
    },
    onEnd: () => {},
  });
  await Bun.sleep(300); // capture open
  await flow.send(Array.from({ length: PACKETS }, () => 64), { gapMs: GAP_MS });
  for (let i = 0; i < 40 && captured < PACKETS; i++) await Bun.sleep(50);
  const stats = await source.stop();
  await output.stop();

  expect(captured).toBe(PACKETS);
  expect(stats.kernel?.dropped ?? 0).toBe(0);
  const names = filesIn(dir);
  expect(names.some((n) => n.endsWith(".part"))).toBe(false);
  expect(names.length).toBeGreaterThanOrEqual(2);
  expect(names.reduce((n, f) => n + capinfosCount(join(dir!, f)), 0)).toBe(PACKETS);
  // The payload's first byte is its sequence number: 0..29 across the files in name order.
  const sequence: number[] = [];
  for (const name of names) {
    const { batches } = await readCaptureFile(join(dir, name));
    for (const batch of batches) {
      let at = 0;
      const view = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
      for (let i = 0; i < batch.count; i++) {
        sequence.push(batch.bytes[at + 16 + PAYLOAD_OFFSET]!);
        at += 16 + view.getUint32(at + 8, true);
      }
    }
  }
  expect(sequence).toEqual(Array.from({ length: PACKETS }, (_, i) => i));
  expect(logger.lines.filter((l) => l.includes("(-G time)")).length).toBeGreaterThanOrEqual(1);
}, 30_000);
