// Rotating files behind a real capture on lo, through `probe capture -i lo -G 1` (dist/probe):
// about 3 s of paced UDP traffic, then SIGINT. Every packet sent is in exactly one file, in
// order, and no .part is left.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCaptureFile } from "../../src/protocols/pcap/index.ts";
import { openLoopbackFlow, type LoopbackFlow } from "../support/loopback-traffic.ts";
import { spawnProbeLoggingToFile, waitFor } from "../support/probe-binary.ts";
import { capinfosCount, filesIn } from "../support/rotation-files.ts";

const PACKETS = 30;
const GAP_MS = 100;
/** Ethernet (lo's link type) + IPv4 + UDP headers: where the payload starts. */
const PAYLOAD_OFFSET = 14 + 20 + 8;

let dir: string | undefined;
let flow: LoopbackFlow | undefined;

afterEach(() => {
  flow?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (dir) rmSync(`${dir}.stderr`, { force: true });
});

test("probe capture -i lo -G 1: several files, each packet once, in order, no .part", async () => {
  dir = mkdtempSync(join(tmpdir(), "rotation-live-"));
  flow = await openLoopbackFlow();
  const logged = spawnProbeLoggingToFile(["capture", "-i", "lo", "-w", join(dir, "live-%Y%m%d%H%M%S-%N.pcap"), "-G", "1", "udp and dst port", String(flow.port)], `${dir}.stderr`);
  const probe = logged.proc;
  try {
    await waitFor(() => logged.stderr().includes("listening on lo"), 10_000, "the capture to open");
    await flow.send(Array.from({ length: PACKETS }, () => 64), { gapMs: GAP_MS });
    await Bun.sleep(500); // the last packets through the capture worker
  } finally {
    probe.kill("SIGINT");
    await probe.exited;
  }
  const stderr = logged.stderr();
  expect(probe.exitCode).toBe(0);
  expect(stderr).toContain(`${PACKETS} packets captured`);
  expect(stderr).toContain("0 packets dropped by kernel");
  expect(stderr).toContain("(-G time)");
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
}, 30_000);
