// `probe collect --rpcap-active-listen` (libpcap#960) against real active daemons: probe's own
// `rpcapd --active` capturing loopback traffic (re-served as PCAP-over-IP and to files, two
// probes at once, a probe that reconnects), and libpcap's rpcapd as recorded in
// test/fixtures/vectors/rpcap-active.pcap, replayed by a small peer that answers each request
// with the recorded reply and sends the recorded packets on the data connection through the
// filter and snaplen the collector's STARTCAP asked for. What the collector writes is judged
// byte for byte against tcpdump reading the recording itself. Issue 21: no lockouts (silent
// peers, --allow, per-address cap, setup deadline).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { connect as netConnect, type Socket as NetSocket } from "node:net";
import { interpretBpfProgram } from "../../src/packet/bpf/index.ts";
import { decodePacketPayload, decodeStartCapRequest, RpcapClient, RpcapFramer, RpcapMessageType, type RpcapMessage } from "../../src/protocols/rpcap/index.ts";
import { VECTORS_DIR } from "../support/fixtures.ts";
import { openLoopbackFlow } from "../support/loopback-traffic.ts";
import { type RunningProbe, runProbe, runTool, startProbe, waitFor } from "../support/probe-binary.ts";
import { loadVectorStreams } from "../support/vector-streams.ts";
import { processesStoppedAfterEach } from "../support/process-cleanup.ts";
import { freeTcpPort } from "../support/free-port.ts";

let dir: string;
const procs = processesStoppedAfterEach();
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "probe-collect-active-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** probe in the background, its log collected, stopped after the test. */
const started = (args: string[]): RunningProbe => startProbe(args, { procs });

async function stop(proc: Subprocess): Promise<number> {
  proc.kill("SIGTERM");
  return proc.exited;
}

async function udpLengths(file: string): Promise<number[]> {
  const text = await runTool(["tshark", "-r", file, "-T", "fields", "-e", "udp.length"]);
  return text.trim() === "" ? [] : text.trim().split("\n").map(Number);
}

describe("collect --rpcap-active-listen with probe's own rpcapd --active", () => {
  test("one probe: PCAP-over-IP reader and -w file get what was sent; a reconnecting probe resumes the stream", async () => {
    const flow = await openLoopbackFlow();
    try {
      const listenPort = freeTcpPort();
      const servePort = freeTcpPort();
      const file = join(dir, "collected.pcap");
      const collector = started([
        "collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-i", "lo", "-f", `udp dst port ${flow.port}`,
        "-w", file, "--serve-pcap-over-ip", `127.0.0.1:${servePort}`,
      ]);
      await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
      // A PCAP-over-IP reader connected before any probe: it sees both connections' packets.
      const reader = started(["capture", "-i", `tcp://127.0.0.1:${servePort}`, "-c", "7", "-w", join(dir, "reader.pcap")]);
      const first = started(["rpcapd", "-v", "--active", `127.0.0.1:${listenPort}`, "-n"]);
      await waitFor(() => collector.log().includes("capturing on lo"), 10_000, "first connection capturing");
      await Bun.sleep(300); // the data connection follows STARTCAP's reply
      await flow.send([10, 20, 30, 40], { gapMs: 5 });
      await waitFor(async () => (await udpLengths(file).catch(() => [])).length >= 4, 10_000, "4 packets written");
      expect(await stop(first.proc)).toBe(0);
      await waitFor(() => collector.log().includes("disconnected"), 10_000, "collector sees the probe go");

      const second = started(["rpcapd", "-v", "--active", `127.0.0.1:${listenPort}`, "-n"]);
      await waitFor(() => collector.log().includes("stream resumed"), 10_000, "second connection capturing");
      await Bun.sleep(300);
      await flow.send([50, 60, 70], { gapMs: 5 });
      expect(await reader.proc.exited).toBe(0);
      expect(await udpLengths(join(dir, "reader.pcap"))).toEqual([18, 28, 38, 48, 58, 68, 78]);
      await stop(second.proc);
      expect(await stop(collector.proc)).toBe(0);
      expect(await udpLengths(file)).toEqual([18, 28, 38, 48, 58, 68, 78]);
      expect(collector.log()).toContain("7 packets over 2 connection(s)");
      expect(collector.log()).not.toMatch(/\n\s+at /);
    } finally {
      flow.close();
    }
  }, 40_000);

  test("two probes at once, each named (--probe-name) and written to its own {probe} file", async () => {
    const flow = await openLoopbackFlow();
    try {
      const listenPort = freeTcpPort();
      const collector = started([
        "collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-i", "lo", "-f", `udp dst port ${flow.port}`,
        "--probe-name", "127.0.0.1=edge", "-w", join(dir, "each-{probe}.pcap"),
      ]);
      await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
      started(["rpcapd", "-v", "--active", `127.0.0.1:${listenPort}`, "-n"]);
      await waitFor(() => collector.log().includes("probe edge (127.0.0.1) capturing"), 10_000, "first probe");
      started(["rpcapd", "-v", "--active", `127.0.0.1:${listenPort}`, "-n"]);
      await waitFor(() => collector.log().includes("probe edge-2 (127.0.0.1) capturing"), 10_000, "second probe");
      await Bun.sleep(300);
      await flow.send([15, 25, 35], { gapMs: 5 });
      const a = join(dir, "each-edge.pcap");
      const b = join(dir, "each-edge-2.pcap");
      await waitFor(async () => (await udpLengths(a).catch(() => [])).length >= 3 && (await udpLengths(b).catch(() => [])).length >= 3, 10_000, "both files");
      expect(await stop(collector.proc)).toBe(0);
      // Both probes capture the same loopback: each file holds every packet once.
      expect(await udpLengths(a)).toEqual([23, 33, 43]);
      expect(await udpLengths(b)).toEqual([23, 33, 43]);
    } finally {
      flow.close();
    }
  }, 30_000);

  test("--serve-rpcap: the probes are interfaces of a passive RPCAP daemon; probe capture -i rpcap://collector/PROBE reads one", async () => {
    const flow = await openLoopbackFlow();
    try {
      const listenPort = freeTcpPort();
      const rpcapPort = freeTcpPort();
      const collector = started([
        "collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-i", "lo", "-f", "udp",
        "--probe-name", "127.0.0.1=edge", "--serve-rpcap", `127.0.0.1:${rpcapPort}`, "-n",
      ]);
      await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
      started(["rpcapd", "-v", "--active", `127.0.0.1:${listenPort}`, "-n"]);
      await waitFor(() => collector.log().includes("probe edge (127.0.0.1) capturing"), 10_000, "probe capturing");
      const client = await RpcapClient.connect({ host: "127.0.0.1", port: rpcapPort });
      await client.authenticate();
      expect((await client.findAllInterfaces()).map((i) => i.name)).toEqual(["edge"]);
      const refused = await client.open("lo").then(() => null, (error: Error) => error.message);
      expect(refused).toContain("not a local capture interface");
      client.close();
      const out = join(dir, "via-rpcap.pcap");
      // The client's own filter runs at the collector on top of the probe's -f udp.
      const reader = started(["capture", "-i", `rpcap://127.0.0.1:${rpcapPort}/edge`, "-c", "3", "-w", out, `udp dst port ${flow.port}`]);
      await waitFor(() => collector.log().includes("capturing on edge"), 10_000, "re-served capture running");
      await Bun.sleep(300);
      await flow.send([12, 24, 36], { gapMs: 5 });
      expect(await reader.proc.exited).toBe(0);
      expect(await udpLengths(out)).toEqual([20, 32, 44]);
    } finally {
      flow.close();
    }
  }, 30_000);

  test("--udpstr: a probe running rpcapd -t sends udpstr datagrams; the collector reassembles every packet", async () => {
    const flow = await openLoopbackFlow();
    try {
      const listenPort = freeTcpPort();
      const file = join(dir, "udpstr.pcap");
      const collector = started(["collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-i", "lo", "-f", `udp dst port ${flow.port}`, "--udpstr", "-w", file]);
      await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
      const probe = started(["rpcapd", "-v", "--active", `127.0.0.1:${listenPort}`, "-n", "-t", "600"]);
      await waitFor(() => collector.log().includes("capturing on lo"), 10_000, "probe capturing");
      await Bun.sleep(300);
      // Sizes around and past the 600-byte datagram: records are split across datagrams.
      await flow.send([10, 500, 700, 1400, 3000, 20], { gapMs: 5 });
      await waitFor(async () => (await udpLengths(file).catch(() => [])).length >= 6, 10_000, "6 packets written");
      await stop(probe.proc);
      expect(await stop(collector.proc)).toBe(0);
      expect(await udpLengths(file)).toEqual([18, 508, 708, 1408, 3008, 28]);
      expect(collector.log()).toContain("0 lost in udpstr datagrams");
      expect(probe.log()).toContain("udpstr");
    } finally {
      flow.close();
    }
  }, 30_000);

  test("a peer that dials in and sends garbage: one line naming it, the collector carries on", async () => {
    const listenPort = freeTcpPort();
    const collector = started(["collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-i", "lo", "-w", join(dir, "none.pcap")]);
    await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
    const closed = Promise.withResolvers<void>();
    const socket = await Bun.connect({ hostname: "127.0.0.1", port: listenPort, socket: { data() {}, close: () => closed.resolve() } });
    // An AUTH reply header declaring a 4 GiB payload, then terminal escapes.
    socket.write(Uint8Array.from([0, 0x88, 0, 0, 0xff, 0xff, 0xff, 0xff, ...new TextEncoder().encode("junk\n\x1b[31m")]));
    await closed.promise;
    await waitFor(() => collector.log().includes("connection closed"), 10_000, "garbage logged");
    expect(collector.proc.exitCode).toBeNull();
    const lines = collector.log().split("\n").filter((l) => l.includes("probe 127.0.0.1"));
    expect(lines).toHaveLength(1);
    expect(collector.log()).not.toContain("\x1b");
    expect(collector.log()).not.toMatch(/\n\s+at /);
  });
});

/** A TCP connection from `from` that says nothing and reads nothing; resolves once connected. */
function silentPeer(port: number, from: string): Promise<NetSocket & { closedAt?: number }> {
  return new Promise((resolve) => {
    const socket: NetSocket & { closedAt?: number } = netConnect({ host: "127.0.0.1", port, localAddress: from });
    socket.once("connect", () => resolve(socket));
    socket.on("error", () => {});
    socket.on("data", () => {});
    socket.once("close", () => {
      socket.closedAt = performance.now();
      // Refused at accept: the reset may come before the connect event.
      resolve(socket);
    });
  });
}

describe("no lockouts (issue 21)", () => {
  test("80 peers that never answer AUTH, one per address: a real probe dialling in next captures at once (before: refused, '64 probes already')", async () => {
    const flow = await openLoopbackFlow();
    const silent: NetSocket[] = [];
    try {
      const listenPort = freeTcpPort();
      const file = join(dir, "after-silent.pcap");
      const collector = started(["collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-i", "lo", "-f", `udp dst port ${flow.port}`, "-w", file]);
      await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
      for (let i = 1; i <= 80; i++) silent.push(await silentPeer(listenPort, `127.0.7.${i}`));
      // 64 may wait for their setup at once: the 16 oldest were put out for the newer ones.
      await waitFor(() => silent.filter((s) => s.closed).length === 16, 10_000, "16 silent peers evicted");
      const probe = started(["rpcapd", "-v", "--active", `127.0.0.1:${listenPort}`, "-n"]);
      await waitFor(() => collector.log().includes("capturing on lo"), 10_000, "the probe capturing");
      await Bun.sleep(300);
      await flow.send([11, 22, 33], { gapMs: 5 });
      await waitFor(async () => (await udpLengths(file).catch(() => [])).length >= 3, 10_000, "3 packets written");
      expect(silent.filter((s) => s.closed).length).toBe(17); // one more made room for the probe
      expect(collector.log()).not.toContain("probes already");
      await stop(probe.proc);
      expect(await stop(collector.proc)).toBe(0);
      expect(await udpLengths(file)).toEqual([19, 30, 41]);
      // The probe is the only one named: silent peers never took a name.
      expect(collector.log()).toMatch(/probe 127\.0\.0\.1: 3 packets over 1 connection\(s\)/);
      expect(collector.log()).not.toMatch(/probe 127\.0\.7\.\d+: \d+ packets/);
    } finally {
      for (const socket of silent) socket.destroy();
      flow.close();
    }
  }, 40_000);

  test("--setup-timeout-ms: a silent peer is closed at the deadline and never counted; --max-probes 1 still admits the real probe after it", async () => {
    const listenPort = freeTcpPort();
    const collector = started([
      "collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-i", "lo", "-f", "udp dst port 9", "-w", join(dir, "deadline.pcap"),
      "--setup-timeout-ms", "400", "--max-probes", "1",
    ]);
    await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
    const peers = [await silentPeer(listenPort, "127.0.8.1"), await silentPeer(listenPort, "127.0.8.2")];
    for (const peer of peers) await waitFor(() => peer.closed, 10_000, "silent peer closed at the deadline");
    expect(collector.log().match(/not capturing within 400 ms; closed/g)?.length).toBe(2);
    started(["rpcapd", "-v", "--active", `127.0.0.1:${listenPort}`, "-n"]);
    await waitFor(() => collector.log().includes("capturing on lo"), 10_000, "the probe capturing");
    expect(collector.log()).not.toContain("probes connected already");
    expect(await stop(collector.proc)).toBe(0);
  }, 30_000);

  test("--allow: a peer outside is closed before a byte is read; --max-per-address: the third connection from one address is closed at once", async () => {
    const listenPort = freeTcpPort();
    const collector = started([
      "collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-i", "lo", "-w", join(dir, "allow.pcap"),
      "--allow", "127.0.9.0/24", "--allow", "127.0.0.1", "--max-per-address", "2",
    ]);
    await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
    const outsider = await silentPeer(listenPort, "127.0.10.1");
    await waitFor(() => outsider.closed, 5_000, "outsider closed");
    expect(collector.log()).toContain("refused active connection from 127.0.10.1: not in --allow");
    const inside = [await silentPeer(listenPort, "127.0.9.7"), await silentPeer(listenPort, "127.0.9.7")];
    const third = await silentPeer(listenPort, "127.0.9.7");
    await waitFor(() => third.closed, 5_000, "third connection closed");
    expect(collector.log()).toContain("refused active connection from 127.0.9.7: 2 connections from this address already (limit 2 per address)");
    expect(inside.every((s) => !s.closed)).toBe(true);
    for (const socket of inside) socket.destroy();
    expect(await stop(collector.proc)).toBe(0);
    const bad = await runProbe(["collect", "--rpcap-active-listen", "127.0.0.1:1", "-w", join(dir, "x.pcap"), "--allow", "10.0.0.0/33"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.split("\n")[0]).toBe("probe: --allow: '10.0.0.0/33': prefix length must be 0 to 32");
  }, 30_000);
});

describe("the rpcap-active pipeline input (probe run FILE)", () => {
  test("SIGTERM before any probe has dialled in: a clean stop, exit 0 (not the stop watchdog's exit 1)", async () => {
    const listenPort = freeTcpPort();
    const pipelineFile = join(dir, "active-no-probe.json");
    const out = join(dir, "no-probe.pcap");
    await Bun.write(pipelineFile, JSON.stringify({
      inputs: [{ kind: "rpcap-active", listen: { host: "127.0.0.1", port: listenPort }, device: "eth0" }],
      outputs: [{ kind: "file", path: out }],
    }));
    const run = started(["run", pipelineFile]);
    await waitFor(() => run.log().includes("accepting active rpcapd connections"), 10_000, "run listening");
    // A start that waited for its first probe was ended by the stop watchdog: exit 1, its line.
    expect(await stop(run.proc)).toBe(0);
    expect(run.log()).not.toContain("did not stop");
    // The listener is gone: nothing accepts on the port any more.
    const refused = await Bun.connect({ hostname: "127.0.0.1", port: listenPort, socket: { data() {} } }).then((socket) => (socket.end(), false), () => true);
    expect(refused).toBe(true);
  }, 30_000);

  test("allow: a probe outside it is closed at accept; a bad block is one line, exit 2 (issue 21)", async () => {
    const listenPort = freeTcpPort();
    const pipelineFile = join(dir, "active-allow.json");
    await Bun.write(pipelineFile, JSON.stringify({
      inputs: [{ kind: "rpcap-active", listen: { host: "127.0.0.1", port: listenPort }, device: "eth0", allow: ["127.0.13.0/24"], setupTimeoutMs: 5000 }],
      outputs: [{ kind: "file", path: join(dir, "allow-run.pcap") }],
    }));
    const run = started(["run", pipelineFile]);
    await waitFor(() => run.log().includes("accepting active rpcapd connections"), 10_000, "run listening");
    const outsider = await silentPeer(listenPort, "127.0.14.1");
    await waitFor(() => outsider.closed, 5_000, "outsider closed");
    expect(run.log()).toContain("refused active connection from 127.0.14.1: not in --allow");
    // A probe inside the block captures (the recorded daemon, dialling from 127.0.13.9).
    await replayActiveDaemon(listenPort, "127.0.13.9");
    await waitFor(() => run.log().includes("probe 127.0.13.9 capturing on eth0"), 10_000, "the allowed probe capturing");
    expect(await stop(run.proc)).toBe(0);
    await Bun.write(pipelineFile, JSON.stringify({
      inputs: [{ kind: "rpcap-active", listen: { host: "127.0.0.1", port: listenPort }, allow: ["127.0.13.0/40"] }],
      outputs: [{ kind: "file", path: join(dir, "allow-run.pcap") }],
    }));
    const bad = await runProbe(["run", pipelineFile]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("rpcap-active allow: '127.0.13.0/40': prefix length must be 0 to 32");
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  }, 30_000);

  test("probes dialling in feed the runner: file output and --metrics counts equal what was sent", async () => {
    const flow = await openLoopbackFlow();
    try {
      const listenPort = freeTcpPort();
      const out = join(dir, "pipeline.pcap");
      const pipelineFile = join(dir, "active.json");
      await Bun.write(pipelineFile, JSON.stringify({
        inputs: [{ kind: "rpcap-active", listen: { host: "127.0.0.1", port: listenPort }, device: "lo", filter: `udp dst port ${flow.port}`, probeNames: { "127.0.0.1": "edge" } }],
        outputs: [{ kind: "file", path: out }],
      }));
      const run = started(["run", pipelineFile, "--metrics", "127.0.0.1:0"]);
      await waitFor(() => run.log().includes("accepting active rpcapd connections"), 10_000, "run listening");
      started(["rpcapd", "-v", "--active", `127.0.0.1:${listenPort}`, "-n"]);
      await waitFor(() => run.log().includes("probe edge (127.0.0.1) capturing on lo"), 10_000, "probe capturing");
      await Bun.sleep(300);
      await flow.send([9, 19, 29, 39], { gapMs: 5 });
      const port = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(run.log())![1]);
      await waitFor(async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return new RegExp(`probe_input_packets_received_total\\{input="rpcap-active:${listenPort}"\\} 4\\b`).test(text);
      }, 10_000, "4 packets counted at the input");
      expect(await stop(run.proc)).toBe(0);
      expect(await udpLengths(out)).toEqual([17, 27, 37, 47]);
    } finally {
      flow.close();
    }
  }, 30_000);
});

/** Splits a recorded control stream into messages (8-byte header, plen at offset 4). */
function messages(bytes: Uint8Array): RpcapMessage[] {
  return new RpcapFramer(() => 1 << 20).push(bytes);
}

/**
 * Plays libpcap's rpcapd in active mode from the recorded vector: dials the collector, answers
 * each request with the recorded reply of that type, and on STARTCAP connects to the port the
 * collector asked for and sends the recorded packets as a daemon would have captured them under
 * that request: the filter program run on each (libpcap's bpf_filter semantics: 0 drops, else
 * the bytes to keep), caplen cut to the snaplen, npkt counted afresh.
 */
async function replayActiveDaemon(collectorPort: number, from = "127.0.0.1"): Promise<ReplayedDaemon> {
  const streams = await loadVectorStreams("rpcap-active.pcap");
  const all = [...streams.tcp.values()];
  const control = all.find((s) => s.dstPort === 2003)!; // the daemon dialled the collector's 2003
  const data = all.find((s) => s !== control && s.srcPort !== 2003 && messages(s.bytes).some((m) => m.header.type === RpcapMessageType.PACKET))!;
  const replies = new Map<number, Uint8Array>();
  let offset = 0;
  for (const m of messages(control.bytes)) {
    const size = 8 + m.payload.byteLength;
    replies.set(m.header.type, control.bytes.subarray(offset, offset + size));
    offset += size;
  }
  const done = Promise.withResolvers<void>();
  const framer = new RpcapFramer(() => 1 << 20);
  let dataSocket: NetSocket | undefined;
  // node:net, to dial from `from` (the collector takes the data connection only from there too).
  const socket = netConnect({ host: "127.0.0.1", port: collectorPort, localAddress: from });
  const result: ReplayedDaemon = { requests: [], startcap: null, done: done.promise, close: () => socket.destroy() };
  socket.on("error", () => {});
  socket.on("data", async (chunk: Buffer) => {
    for (const request of framer.push(chunk)) {
      result.requests.push(request.header.type);
      const reply = replies.get(request.header.type | 0x80);
      if (reply) socket.write(reply);
      if (request.header.type === RpcapMessageType.STARTCAP_REQ) {
        const startcap = decodeStartCapRequest(request.payload);
        result.startcap = { snaplen: startcap.snaplen, instructions: startcap.filter.program.length };
        const opened = Promise.withResolvers<void>();
        dataSocket = netConnect({ host: "127.0.0.1", port: startcap.portdata, localAddress: from }, () => opened.resolve());
        dataSocket.on("error", () => {});
        await opened.promise;
        dataSocket.write(capturedAs(messages(data.bytes), startcap.snaplen, startcap.filter.program));
      }
    }
  });
  socket.once("close", () => {
    dataSocket?.end();
    done.resolve();
  });
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return result;
}

interface ReplayedDaemon {
  /** Request types received, in order. */
  requests: number[];
  /** What STARTCAP asked for (null before it came). */
  startcap: { snaplen: number; instructions: number } | null;
  /** Resolves when the control connection has closed. */
  done: Promise<void>;
  /** Hangs up (the probe goes away). */
  close(): void;
}

/** The recorded PACKET messages re-encoded as a daemon capturing with `program` and `snaplen` sends them. */
function capturedAs(recorded: RpcapMessage[], snaplen: number, program: Parameters<typeof interpretBpfProgram>[0]): Uint8Array {
  const out: Uint8Array[] = [];
  let npkt = 0;
  for (const m of recorded) {
    if (m.header.type !== RpcapMessageType.PACKET) continue;
    const { header, data } = decodePacketPayload(m.payload);
    const keep = program.length === 0 ? header.caplen : interpretBpfProgram(program, data, header.len);
    if (keep === 0) continue;
    const caplen = Math.min(header.caplen, keep, snaplen);
    const message = new Uint8Array(8 + 20 + caplen);
    const view = new DataView(message.buffer);
    view.setUint8(0, m.header.ver);
    view.setUint8(1, RpcapMessageType.PACKET);
    view.setUint32(4, 20 + caplen);
    view.setUint32(8, header.tsSec);
    view.setUint32(12, header.tsUsec);
    view.setUint32(16, caplen);
    view.setUint32(20, header.len);
    view.setUint32(24, ++npkt);
    message.set(data.subarray(0, caplen), 28);
    out.push(message);
  }
  return Buffer.concat(out);
}

/** Every packet's bytes as tcpdump prints them (-xx: the whole frame in hex; -t: no timestamps). */
async function tcpdumpBytes(file: string, filter: string[] = []): Promise<string> {
  return runTool(["tcpdump", "-r", file, "-n", "-t", "-xx", ...filter]);
}

const RECORDING = `${VECTORS_DIR}/rpcap-active.pcap`;

describe("collect --rpcap-active-listen with libpcap's rpcapd (recorded active session replayed)", () => {
  test("AUTH, OPEN, STARTCAP answered as recorded; the 10 recorded packets reach -w byte for byte, with their times", async () => {
    const expected = JSON.parse(readFileSync(`${VECTORS_DIR}/expected/rpcap-active.json`, "utf8")) as {
      original_packets: { frame_len: number; ts: string }[];
    };
    // The daemon's own timestamps, as its PACKET headers carry them (its capture saw each frame
    // a microsecond or two away from the recording's).
    const streams = await loadVectorStreams("rpcap-active.pcap");
    const dataStream = [...streams.tcp.values()].find((s) => messages(s.bytes).some((m) => m.header.type === RpcapMessageType.PACKET))!;
    const sentTimes = messages(dataStream.bytes).map((m) => {
      const { header } = decodePacketPayload(m.payload);
      return `${header.tsSec}.${String(header.tsUsec).padStart(6, "0")}`;
    });
    const listenPort = freeTcpPort();
    const file = join(dir, "replayed.pcap");
    const collector = started(["collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-i", "eth0", "-w", file]);
    await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
    const peer = await replayActiveDaemon(listenPort);
    await waitFor(async () => {
      const text = await runTool(["capinfos", "-c", "-M", file]).catch(() => "");
      return /Number of packets:\s+10\b/.test(text);
    }, 10_000, "10 packets written");
    expect(await stop(collector.proc)).toBe(0);
    await peer.done;
    expect(peer.requests.slice(0, 3)).toEqual([RpcapMessageType.AUTH_REQ, RpcapMessageType.OPEN_REQ, RpcapMessageType.STARTCAP_REQ]);
    expect(peer.startcap).toEqual({ snaplen: 262144, instructions: 0 });
    // tcpdump reading the recording picks the 10 original frames off the wire (the UDP packets
    // to port 9999 the daemon captured): the collector's file holds exactly their bytes.
    const judged = await tcpdumpBytes(RECORDING, ["udp dst port 9999"]);
    expect(judged.split("\n").filter((line) => line.startsWith("IP ")).length).toBe(10);
    expect(await tcpdumpBytes(file)).toBe(judged);
    const fields = await runTool(["tshark", "-r", file, "-T", "fields", "-e", "frame.len", "-e", "frame.time_epoch"]);
    const rows = fields.trim().split("\n").map((line) => line.split("\t"));
    expect(rows.map((r) => Number(r[0]))).toEqual(expected.original_packets.map((p) => p.frame_len));
    // As text: a double cannot hold these epoch times to the microsecond.
    const written = rows.map((r) => r[1]!.slice(0, r[1]!.indexOf(".") + 7));
    expect(written).toEqual(sentTimes);
  });

  test("the replayed daemon runs the filter the collector sent (-f): only the packets tcpdump's same filter picks from the recording arrive, byte for byte", async () => {
    const listenPort = freeTcpPort();
    const file = join(dir, "replayed-filtered.pcap");
    const filter = "udp and greater 300";
    const collector = started(["collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-i", "eth0", "-f", filter, "-w", file]);
    await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
    const peer = await replayActiveDaemon(listenPort);
    const judged = await tcpdumpBytes(RECORDING, [`udp dst port 9999 and (${filter})`]);
    const count = judged.split("\n").filter((line) => line.startsWith("IP ")).length;
    expect(count).toBe(5); // frames of 375, 554, 1041, 1242 and 1442 bytes
    await waitFor(async () => {
      const text = await runTool(["capinfos", "-c", "-M", file]).catch(() => "");
      return new RegExp(`Number of packets:\\s+${count}\\b`).test(text);
    }, 10_000, `${count} packets written`);
    expect(await stop(collector.proc)).toBe(0);
    await peer.done;
    expect(peer.startcap!.instructions).toBeGreaterThan(0);
    expect(await tcpdumpBytes(file)).toBe(judged);
  });

  test("--max-probes 1: while the probe is connected a newcomer is refused; once it left, it is forgotten for the newcomer (its {probe} file closed whole)", async () => {
    const listenPort = freeTcpPort();
    const collector = started(["collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-i", "eth0", "-w", join(dir, "max1-{probe}.pcap"), "--max-probes", "1"]);
    await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
    const first = await replayActiveDaemon(listenPort, "127.0.11.1");
    await waitFor(() => collector.log().includes("probe 127.0.11.1 capturing"), 10_000, "first probe capturing");
    const refused = await replayActiveDaemon(listenPort, "127.0.11.2");
    await refused.done;
    await waitFor(() => collector.log().includes("probe 127.0.11.2: 1 probes connected already (limit 1); connection closed"), 10_000, "newcomer refused");
    first.close();
    await waitFor(() => collector.log().includes("probe 127.0.11.1 disconnected"), 10_000, "first probe gone");
    await replayActiveDaemon(listenPort, "127.0.11.3");
    await waitFor(() => collector.log().includes("probe 127.0.11.3 capturing"), 10_000, "third probe capturing");
    expect(collector.log()).toContain("1 probes known (limit 1): forgetting 127.0.11.1, disconnected longest, for 127.0.11.3");
    // The forgotten probe's own file was closed when it was forgotten: complete, all 10 packets.
    expect(await tcpdumpBytes(join(dir, "max1-127.0.11.1.pcap"))).toBe(await tcpdumpBytes(RECORDING, ["udp dst port 9999"]));
    expect(await stop(collector.proc)).toBe(0);
    expect(collector.log()).not.toContain("probe 127.0.11.1: 10 packets"); // forgotten: not in the exit summary
    expect(collector.log()).toContain("probe 127.0.11.3: 10 packets over 1 connection(s)");
  }, 30_000);

  test("a spec with snaplen 64 (probe run): the daemon is asked for 64 and every packet arrives cut to 64, as editcap -s 64 cuts the recording's", async () => {
    const listenPort = freeTcpPort();
    const out = join(dir, "replayed-snap.pcap");
    const pipelineFile = join(dir, "active-snap.json");
    await Bun.write(pipelineFile, JSON.stringify({
      inputs: [{ kind: "rpcap-active", listen: { host: "127.0.0.1", port: listenPort }, device: "eth0", snaplen: 64 }],
      outputs: [{ kind: "file", path: out }],
    }));
    const run = started(["run", pipelineFile]);
    await waitFor(() => run.log().includes("accepting active rpcapd connections"), 10_000, "run listening");
    const peer = await replayActiveDaemon(listenPort);
    await waitFor(async () => /Number of packets:\s+10\b/.test(await runTool(["capinfos", "-c", "-M", out]).catch(() => "")), 10_000, "10 packets written");
    expect(await stop(run.proc)).toBe(0);
    await peer.done;
    expect(peer.startcap!.snaplen).toBe(64);
    const original = join(dir, "recording-originals.pcap");
    const cut = join(dir, "recording-cut64.pcap");
    await runTool(["tcpdump", "-r", RECORDING, "-w", original, "udp dst port 9999"]);
    await runTool(["editcap", "-s", "64", original, cut]);
    const judged = await tcpdumpBytes(cut);
    expect(await tcpdumpBytes(out)).toBe(judged);
    const caplens = (await runTool(["tshark", "-r", out, "-T", "fields", "-e", "frame.cap_len"])).trim().split("\n").map(Number);
    expect(caplens).toEqual([43, 64, 64, 64, 64, 64, 64, 64, 64, 64]);
  });
});
