// Live capture on lo through both engines (the TPACKET_V3 ring read directly, and libpcap) and
// the thread that reads them: traffic the test sends is compared packet by packet with what the
// source delivers. Every test runs once per engine and reader: the ring read by its native
// capture thread (the default), by a capture Worker and on the main thread; libpcap in a Worker.
import { afterEach, describe, expect, test } from "bun:test";
import { LiveCaptureSource, type CaptureThread, type LiveCaptureOptions } from "../../src/capture/live-capture-source.ts";
import { forEachRecord, ownedBatch, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { compileFilter } from "../../src/capture/libpcap/compile-filter.ts";
import { listInterfaces } from "../../src/capture/libpcap/devices.ts";
import { CaptureError } from "../../src/capture/errors.ts";
import type { CaptureEngine } from "../../src/capture/libpcap/pcap-handle.ts";
import { openLoopbackFlow, type LoopbackFlow } from "../support/loopback-traffic.ts";
import { runTool, waitFor } from "../support/probe-binary.ts";

/** Ethernet (lo's zero header) + IPv4 + UDP in front of each payload. */
const UDP_FRAME_OVERHEAD = 14 + 20 + 8;

function udpPayloads(batches: PacketBatch[]): Uint8Array[] {
  const payloads: Uint8Array[] = [];
  for (const batch of batches) {
    forEachRecord(batch, (r, bytes) => {
      payloads.push(bytes.slice(r.dataOffset + UDP_FRAME_OVERHEAD, r.dataOffset + r.caplen));
    });
  }
  return payloads;
}

let flow: LoopbackFlow | undefined;
let source: LiveCaptureSource | undefined;
afterEach(async () => {
  await source?.stop();
  flow?.close();
  source = undefined;
  flow = undefined;
});

/** Each engine, and the ring engine read by its native thread, its worker and the main thread. */
const VARIANTS = [
  ["ring", "native"],
  ["ring", "worker"],
  ["ring", "main"],
  ["libpcap", "worker"],
] as const satisfies readonly (readonly [CaptureEngine, CaptureThread])[];

async function capture(engine: CaptureEngine, filterFor: (port: number) => string | ReturnType<typeof compileFilter>, options: Partial<LiveCaptureOptions> = {}) {
  flow = await openLoopbackFlow();
  const batches: PacketBatch[] = [];
  source = new LiveCaptureSource({ interface: "lo", engine, filter: filterFor(flow.port), ...options });
  const info = await source.start({ onBatch: (b) => void batches.push(ownedBatch(b)) /* kept past the call: a live batch is lent */, onEnd: () => {} });
  return { info, batches, flow, source };
}

const count = (batches: PacketBatch[]) => batches.reduce((n, b) => n + b.count, 0);

describe.each(VARIANTS)("live capture on lo (%s engine, %s thread)", (engine, thread) => {
  test("delivers every packet sent, byte for byte, in order", async () => {
    const { info, batches, flow } = await capture(engine, (port) => `udp and dst port ${port}`, { thread });
    expect(info.linktype).toBe(1);
    expect(info.engine).toBe(engine);
    const sizes = Array.from({ length: 300 }, (_, i) => 1 + ((i * 37) % 1400));
    await flow.send(sizes);
    await waitFor(() => count(batches) >= sizes.length, 10_000, "captured packets");
    const payloads = udpPayloads(batches);
    expect(payloads.length).toBe(sizes.length);
    payloads.forEach((p, i) => expect(p).toEqual(flow.sent[i]!));
  });

  test("records carry wire length and timestamps that move forward", async () => {
    const { batches, flow } = await capture(engine, (port) => `udp dst port ${port}`, { thread, snaplen: 64 });
    await flow.send([10, 500, 1000]);
    await waitFor(() => count(batches) >= 3, 10_000, "captured packets");
    const seen: { caplen: number; len: number; ts: number }[] = [];
    for (const b of batches) forEachRecord(b, (r) => seen.push({ caplen: r.caplen, len: r.len, ts: r.tsSec * 1e6 + r.tsFrac }));
    expect(seen.map((s) => s.len)).toEqual([10 + 42, 500 + 42, 1000 + 42]);
    expect(seen.map((s) => s.caplen)).toEqual([52, 64, 64]);
    expect(seen[1]!.ts).toBeGreaterThanOrEqual(seen[0]!.ts);
    expect(Math.abs(seen[0]!.ts / 1e6 - Date.now() / 1000)).toBeLessThan(60);
  });

  test("a raw BPF program compiled by tcpdump -ddd filters like the expression", async () => {
    flow = await openLoopbackFlow();
    const other = await openLoopbackFlow();
    try {
      const text = await runTool(["tcpdump", "-ddd", "-y", "EN10MB", "-i", "lo", `udp dst port ${flow.port}`]);
      const lines = text.trim().split("\n");
      const program = lines.slice(1).map((line) => {
        const [code, jt, jf, k] = line.trim().split(/\s+/).map(Number);
        return { code: code!, jt: jt!, jf: jf!, k: k! >>> 0 };
      });
      expect(program.length).toBe(Number(lines[0]));
      const batches: PacketBatch[] = [];
      source = new LiveCaptureSource({ interface: "lo", engine, thread, filter: program });
      await source.start({ onBatch: (b) => void batches.push(ownedBatch(b)) /* kept past the call: a live batch is lent */, onEnd: () => {} });
      await other.send([100, 100, 100]);
      await flow.send([20, 30]);
      await waitFor(() => count(batches) >= 2, 10_000, "captured packets");
      await Bun.sleep(100);
      expect(udpPayloads(batches)).toEqual(flow.sent);
    } finally {
      other.close();
    }
  });

  test("setFilter on a running capture switches traffic", async () => {
    const { batches, flow, source } = await capture(engine, (port) => `udp dst port ${port}`, { thread });
    const second = await openLoopbackFlow();
    try {
      await flow.send([11]);
      await waitFor(() => count(batches) >= 1, 10_000, "first packet");
      await source.setFilter(`udp dst port ${second.port}`);
      await flow.send([12]);
      await second.send([13]);
      await waitFor(() => count(batches) >= 2, 10_000, "second packet");
      await Bun.sleep(100);
      const payloads = udpPayloads(batches);
      expect(payloads).toEqual([flow.sent[0]!, second.sent[0]!]);
    } finally {
      second.close();
    }
  });

  test("kernel stats count what the filter accepted", async () => {
    const { batches, flow, source } = await capture(engine, (port) => `udp dst port ${port}`, { thread });
    await flow.send(Array(50).fill(64));
    await waitFor(() => count(batches) >= 50, 10_000, "captured packets");
    const stats = await source.stats();
    // lo shows each packet twice to a packet socket (outgoing and incoming); libpcap keeps one.
    expect(stats.kernel!.received).toBeGreaterThanOrEqual(50);
    expect(stats.kernel!.dropped).toBe(0);
    expect(stats.delivered).toBe(50);
  });

  test("a bad filter fails start() with libpcap's message and the expression", async () => {
    source = new LiveCaptureSource({ interface: "lo", engine, thread, filter: "udp port banana" });
    const error = await source.start({ onBatch: () => {}, onEnd: () => {} }).catch((e) => e);
    expect(error).toBeInstanceOf(CaptureError);
    expect(error.code).toBe("bad-filter");
    expect(error.message).toContain("udp port banana");
    source = undefined;
  });

  test("an unknown interface fails with no-such-device", async () => {
    source = new LiveCaptureSource({ interface: "nosuch0", engine, thread });
    const error = await source.start({ onBatch: () => {}, onEnd: () => {} }).catch((e) => e);
    expect(error).toBeInstanceOf(CaptureError);
    expect(error.code).toBe("no-such-device");
    source = undefined;
  });

  test("stop() ends the worker and reports final kernel stats; stop twice is harmless", async () => {
    const { source } = await capture(engine, (port) => `udp dst port ${port}`, { thread });
    const first = await source.stop();
    const second = await source.stop();
    expect(first.kernel).toBeDefined();
    expect(second.delivered).toBe(first.delivered);
  });
});

describe("the native capture thread", () => {
  /** Runs test/support/capture-thread-exit.ts in its own process (it ends that process). */
  async function runExitScript(mode: "exit" | "throw") {
    const proc = Bun.spawn([process.execPath, `${import.meta.dir}/../support/capture-thread-exit.ts`, mode], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    return { exitCode, stderr, report: JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown> };
  }

  test("PROBE_RING_WALKER=js reads the ring in a Worker instead, and engineNote says why", async () => {
    const saved = process.env.PROBE_RING_WALKER;
    process.env.PROBE_RING_WALKER = "js";
    try {
      const { info, batches, flow } = await capture("ring", (port) => `udp dst port ${port}`, { thread: "native" });
      expect(info.engine).toBe("ring");
      expect(info.engineNote).toBe("PROBE_RING_WALKER=js asks for the JavaScript walker; ring read by a capture Worker");
      await flow.send([10, 20, 30]);
      await waitFor(() => count(batches) >= 3, 10_000, "captured packets");
    } finally {
      if (saved === undefined) delete process.env.PROBE_RING_WALKER;
      else process.env.PROBE_RING_WALKER = saved;
    }
  });

  test("process.exit() while it publishes batches: the exit handler ends and joins it, the process exits 0", async () => {
    const { exitCode, stderr, report } = await runExitScript("exit");
    expect(stderr).toBe("");
    expect(exitCode).toBe(0);
    expect(report.delivered as number).toBeGreaterThan(0);
  }, 30_000);

  test("a consumer that throws ends the capture as failed with that error, and stop() still reports", async () => {
    const { exitCode, report } = await runExitScript("throw");
    expect(exitCode).toBe(0);
    expect(report.reason).toBe("failed");
    expect(report.error).toBe("consumer failed on purpose");
    expect((report.stats as { kernel?: unknown }).kernel).toBeDefined();
  }, 30_000);
});

describe("interface list", () => {
  test("lists lo with its IPv4 and IPv6 addresses and the loopback flag", () => {
    const lo = listInterfaces().find((d) => d.name === "lo");
    expect(lo).toBeDefined();
    expect(lo!.loopback).toBe(true);
    expect(lo!.addresses).toContainEqual({ family: "inet", addr: "127.0.0.1", netmask: "255.0.0.0" });
    expect(lo!.addresses.some((a) => a.family === "inet6" && a.addr === "::1")).toBe(true);
  });
});
