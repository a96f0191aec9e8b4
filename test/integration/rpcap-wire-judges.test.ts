// RPCAP on the wire, judged by others: libpcap's own client requests (recorded bytes) get the
// replies libpcap's daemon gave, and tshark's RPCAP dissector decodes a whole session of
// ours (recorded with tcpdump on lo) with no malformed frame.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RpcapCaptureSource } from "../../src/capture/remote/rpcap-source.ts";
import type { PacketBatch } from "../../src/packet/packet-batch.ts";
import { RpcapFramer, RpcapMessageType as T } from "../../src/protocols/rpcap/index.ts";
import { openLoopbackFlow } from "../support/loopback-traffic.ts";
import { runTool, waitFor } from "../support/probe-binary.ts";
import { rawPeer } from "../support/raw-rpcap-peer.ts";
import { startTestDaemon } from "../support/rpcapd-harness.ts";
import { loadVectorTcp, vectorsDir } from "../support/vector-streams.ts";

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), "probe-rpcap-wire-"))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("libpcap's client requests (recorded) get the same reply types libpcap's rpcapd gave", async () => {
  const harness = await startTestDaemon();
  try {
    const manifest = await Bun.file(`${vectorsDir}expected/rpcap-passive-tcp.json`).json();
    const streams = await loadVectorTcp("rpcap-passive-tcp.pcap");
    // Connection 1: AUTH + FINDALLIF; connection 2: AUTH, OPEN lo, STARTCAP, STATS, CLOSE.
    for (const stream of manifest.tcp_streams.filter((s: { role: string; dst: string }) => s.role === "ctrl" && s.dst.endsWith(":2002"))) {
      const clientBytes = streams.get(`${stream.src.split(":")[1]}>2002`)!.bytes;
      const requests = new RpcapFramer(() => 1 << 20).push(clientBytes);
      const expectedReplies = manifest.tcp_streams
        .find((s: { src: string; dst: string }) => s.src === stream.dst && s.dst === stream.src)
        .messages.map((m: { type: number }) => m.type);
      const peer = await rawPeer(harness.port);
      let replies = 0;
      for (const request of requests) {
        const bytes = new Uint8Array(8 + request.payload.byteLength);
        new DataView(bytes.buffer).setUint32(4, request.payload.byteLength);
        bytes.set([request.header.ver, request.header.type], 0);
        bytes.set(request.payload, 8);
        peer.write(bytes);
        if (request.header.type === T.CLOSE) break;
        await peer.nth(++replies);
      }
      expect(peer.messages.map((m) => m.header.type)).toEqual(expectedReplies);
      peer.end();
    }
  } finally {
    await harness.stop();
  }
});

test("tshark decodes a whole session of ours with no malformed frame", async () => {
  const harness = await startTestDaemon();
  const flow = await openLoopbackFlow();
  const file = join(dir, "session.pcap");
  // --immediate-mode and a large buffer: without them the last kernel block is still unread
  // at SIGINT and the file loses its tail (see test/fixtures/README.md).
  const tcpdump = Bun.spawn(["tcpdump", "-i", "lo", "--immediate-mode", "-B", "131072", "-U", "-s", "0", "-w", file, "tcp and host 127.0.0.1"], { stderr: "pipe" });
  try {
    await Bun.sleep(800);
    const batches: PacketBatch[] = [];
    const source = new RpcapCaptureSource({
      address: { tls: false, host: "127.0.0.1", port: harness.port, device: "lo" },
      filter: `udp dst port ${flow.port}`,
    });
    await source.start({ onBatch: (b) => void batches.push(b), onEnd: () => {} });
    await Bun.sleep(150);
    await flow.send([10, 200, 1000], { gapMs: 2 });
    await waitFor(() => batches.reduce((n, b) => n + b.count, 0) === 3, 5000, "packets through RPCAP");
    const stats = await source.stats();
    expect(stats.kernel!.received).toBeGreaterThanOrEqual(3);
    await source.stop();
    await Bun.sleep(500);
  } finally {
    tcpdump.kill("SIGINT");
    await tcpdump.exited;
    flow.close();
    await harness.stop();
  }
  const decoded = await runTool(["tshark", "-r", file, "-O", "rpcap"]);
  expect(decoded).not.toMatch(/Malformed/i);
  for (const name of ["Authentication request", "Open request", "Start capture request", "Statistics request", "Packet"]) {
    expect(decoded).toContain(name);
  }
  const frames = (await runTool(["tshark", "-r", file, "-Y", "rpcap", "-T", "fields", "-e", "rpcap.type"])).trim().split("\n");
  expect(frames.length).toBeGreaterThanOrEqual(9);
});
