// One capture, many consumers: consumers with the same interface/filter/snaplen share one
// libpcap handle, and a stalled consumer drops (counted for it alone) while the others get all.
import { afterEach, expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import type { PacketBatch } from "../../src/packet/packet-batch.ts";
import { SyntheticSource } from "../../src/capture/synthetic-source.ts";
import { CaptureHub } from "../../src/pipeline/capture-hub.ts";
import { ConsumerQueue } from "../../src/pipeline/consumer-queue.ts";
import { openLoopbackFlow, type LoopbackFlow } from "../support/loopback-traffic.ts";
import { waitFor } from "../support/probe-binary.ts";

let hub: CaptureHub | undefined;
let flow: LoopbackFlow | undefined;
afterEach(async () => {
  await hub?.close();
  flow?.close();
  hub = undefined;
  flow = undefined;
});

const collector = () => {
  const batches: PacketBatch[] = [];
  return { batches, packets: () => batches.reduce((n, b) => n + b.count, 0), sink: { write: (b: PacketBatch) => void batches.push(b) } };
};

test("three consumers share one handle; a stalled one drops alone", async () => {
  hub = new CaptureHub();
  flow = await openLoopbackFlow();
  const spec = { interface: "lo", filter: `udp dst port ${flow.port}`, snaplen: 2000 };
  const a = collector();
  const b = collector();
  const stalled = { write: () => new Promise<void>(() => {}) }; // never accepts a second batch
  const subA = await hub.subscribe(spec, a.sink);
  const subB = await hub.subscribe(spec, b.sink);
  const subStalled = await hub.subscribe(spec, stalled, { maxQueueBytes: 4096 });
  expect(hub.captureCount).toBe(1);

  const total = 2000;
  for (let sent = 0; sent < total; sent += 100) {
    await flow.send(Array(100).fill(500));
    await Bun.sleep(5); // spread over several batches so the stalled queue overflows
  }
  await waitFor(() => a.packets() >= total && b.packets() >= total, 15_000, "both healthy consumers");
  expect(a.packets()).toBe(total);
  expect(b.packets()).toBe(total);
  expect(subA.counters.droppedPackets).toBe(0);
  expect(subB.counters.droppedPackets).toBe(0);
  expect(subStalled.counters.droppedPackets).toBeGreaterThan(0);
  // Every packet is accounted for: the first batch sits in the stalled sink, later batches wait
  // while they fit in its 4096 bytes (ConsumerQueue.offer's rule; the capture may publish a batch
  // of a packet or a few when the kernel retires a block on its timer), the rest are dropped.
  const c = subStalled.counters;
  expect(c.deliveredPackets + c.droppedPackets + c.queuedPackets).toBe(total);
  let heldBytes = 0;
  let held = 0;
  for (const batch of a.batches) {
    if (heldBytes > 0 && heldBytes + batch.bytes.byteLength > 4096) continue;
    heldBytes += batch.bytes.byteLength;
    held += batch.count;
  }
  expect(c.queuedPackets).toBe(held);
  expect(c.queuedPackets).toBeGreaterThanOrEqual(a.batches[0]!.count);
  const stats = await subA.captureStats();
  expect(stats.kernel!.dropped).toBe(0);

  await subStalled.unsubscribe();
  await subA.unsubscribe();
  expect(hub.captureCount).toBe(1);
  await subB.unsubscribe();
  expect(hub.captureCount).toBe(0);
});

test("a different filter gets its own handle", async () => {
  hub = new CaptureHub();
  const s1 = await hub.subscribe({ interface: "lo", filter: "udp port 1" }, collector().sink);
  const s2 = await hub.subscribe({ interface: "lo", filter: "udp port 2" }, collector().sink);
  expect(hub.captureCount).toBe(2);
  await s1.unsubscribe();
  await s2.unsubscribe();
  expect(hub.captureCount).toBe(0);
});

test("ConsumerQueue counts exactly the packets it could not hold", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const written: PacketBatch[] = [];
  const queue = new ConsumerQueue({ write: async (b) => { written.push(b); await gate; } }, 3000);
  const batches: PacketBatch[] = [];
  const source = new SyntheticSource({ count: 50, frameBytes: 100, packetsPerBatch: 10 });
  const ended = Promise.withResolvers<void>();
  await source.start({ onBatch: (b) => void batches.push(b), onEnd: () => ended.resolve() });
  await ended.promise;
  expect(batches.length).toBe(5); // 10 packets x (16 + 100) bytes = 1160 bytes each
  for (const b of batches) queue.offer(b);
  // The batch in the sink counts against the bound: two batches (2320 bytes) fit in 3000,
  // the other three are dropped.
  expect(queue.counters.droppedPackets).toBe(30);
  expect(queue.counters.droppedBatches).toBe(3);
  expect(queue.counters.queuedPackets).toBe(20);
  release();
  await queue.drained();
  expect(queue.counters.deliveredPackets).toBe(20);
  expect(queue.counters.queuedBytes).toBe(0);
  expect(written.length).toBe(2);
});

test("per-consumer userland filters on one shared handle", async () => {
  hub = new CaptureHub();
  flow = await openLoopbackFlow();
  const other = await openLoopbackFlow();
  try {
    const spec = { interface: "lo", filter: `udp and (dst port ${flow.port} or dst port ${other.port})` };
    const all = collector();
    const onlyFlow = collector();
    const onlyOther = collector();
    await hub.subscribe(spec, all.sink);
    await hub.subscribe(spec, onlyFlow.sink, { filter: `udp dst port ${flow.port}` });
    await hub.subscribe(spec, onlyOther.sink, { filter: `udp dst port ${other.port} and len > 100` });
    expect(hub.captureCount).toBe(1);
    await flow.send([10, 20, 30]);
    await other.send([40, 200]);
    await waitFor(() => all.packets() >= 5, 10_000, "all packets");
    await Bun.sleep(100);
    expect(onlyFlow.packets()).toBe(3);
    expect(onlyOther.packets()).toBe(1);
  } finally {
    other.close();
  }
});

test("opening and stopping captures leaks no file descriptors", async () => {
  // Descriptors (number and what it names) open now that were not before: other work in this
  // process (a previous file's subprocess pipes, servers closing) may close descriptors or
  // finish closing them late, so the count alone was off by one after the metrics tests.
  const openFds = () => new Map(readdirSync("/proc/self/fd").map((fd) => [fd, (() => { try { return readlinkSync(`/proc/self/fd/${fd}`); } catch { return "gone"; } })()]));
  const added = (before: Map<string, string>) => [...openFds()].filter(([fd, target]) => target !== "gone" && before.get(fd) !== target);
  hub = new CaptureHub();
  const first = await hub.subscribe({ interface: "lo", filter: "udp port 7" }, collector().sink);
  await first.unsubscribe();
  await Bun.sleep(50);
  const before = openFds();
  for (let i = 0; i < 15; i++) {
    const sub = await hub.subscribe({ interface: "lo", filter: `udp port ${i + 1}` }, collector().sink);
    await sub.unsubscribe();
  }
  await waitFor(() => added(before).length === 0, 3_000, "the captures' descriptors closed").catch(() => {});
  expect(added(before)).toEqual([]);
  expect(hub.captureCount).toBe(0);
});
