// RPCAP daemon sessions on real loopback sockets: every data-channel kind, active mode,
// filters, sampling, stats, and peers that misbehave. Each test checks that one bad session
// costs nothing to the daemon or to another client.
import { afterEach, describe, expect, test } from "bun:test";
import { compileFilter } from "../../src/capture/libpcap/compile-filter.ts";
import { forEachRecord, type PacketBatch } from "../../src/packet/packet-batch.ts";
import {
  decodeErrorText,
  encodeAuthRequest,
  encodeMessage,
  RpcapClient,
  RpcapErrorCode as E,
  RpcapMessageType as T,
  RpcapServerError,
  SamplingMethod,
} from "../../src/protocols/rpcap/index.ts";
import { openLoopbackFlow, type LoopbackFlow } from "../support/loopback-traffic.ts";
import { waitFor } from "../support/probe-binary.ts";
import { rawPeer } from "../support/raw-rpcap-peer.ts";
import { startTestDaemon } from "../support/rpcapd-harness.ts";
import { CaptureHub } from "../../src/pipeline/capture-hub.ts";
import { DEFAULT_FLUSH_INTERVAL_MS, LiveCaptureSource } from "../../src/capture/live-capture-source.ts";
import { MAX_RPCAP_FLUSH_INTERVAL_MS } from "../../src/daemon/session.ts";

type Harness = Awaited<ReturnType<typeof startTestDaemon>>;
let harness: Harness | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await harness?.stop();
  harness = undefined;
});

async function setup(overrides = {}) {
  harness = await startTestDaemon(overrides);
  const flow = await openLoopbackFlow();
  cleanups.push(() => flow.close());
  return { port: harness.port, flow };
}

function collector() {
  const payloads: Uint8Array[] = [];
  const npkts: number[] = [];
  return {
    payloads,
    npkts,
    onBatch(batch: PacketBatch, n: number[]) {
      npkts.push(...n);
      forEachRecord(batch, (r, bytes) => payloads.push(bytes.slice(r.dataOffset + 42, r.dataOffset + r.caplen)));
    },
  };
}

async function capturingClient(port: number, flow: LoopbackFlow, mode: { udp?: boolean; serverOpen?: boolean } = {}) {
  const client = await RpcapClient.connect({ host: "127.0.0.1", port });
  cleanups.push(() => client.close());
  await client.authenticate();
  await client.open("lo");
  const sink = collector();
  await client.startCapture({ filter: compileFilter(`udp dst port ${flow.port}`, 1, 65535), ...mode, onBatch: sink.onBatch });
  await Bun.sleep(150); // data connection up
  return { client, sink };
}

describe("capturing", () => {
  for (const [name, mode] of [["passive TCP", {}], ["UDP", { udp: true }], ["server-opened TCP", { serverOpen: true }]] as const) {
    test(`${name}: every packet byte for byte, npkt from 1, STATS counts them`, async () => {
      const { port, flow } = await setup();
      const { client, sink } = await capturingClient(port, flow, mode);
      const sizes = Array.from({ length: 40 }, (_, i) => 1 + i * 30);
      await flow.send(sizes, { gapMs: 1 });
      await waitFor(() => sink.payloads.length >= 40, 10_000, "packets");
      expect(sink.payloads).toEqual(flow.sent);
      expect(sink.npkts).toEqual(sizes.map((_, i) => i + 1));
      const stats = await client.stats();
      expect(stats.svrcapt).toBe(40);
      expect(stats.ifrecv).toBeGreaterThanOrEqual(40);
      await client.endCapture();
    });
  }

  test("the capture waits at most the client's read_timeout (as libpcap's rpcapd), clamped to [10 ms, 1 s]", async () => {
    const asked: (number | undefined)[] = [];
    const hub = new CaptureHub((options) => {
      asked.push(options.flushIntervalMs);
      return new LiveCaptureSource(options);
    });
    cleanups.push(() => void hub.close());
    const { port, flow } = await setup({ hub });
    const sinks = [];
    for (const readTimeoutMs of [500, 0, 60_000]) {
      const client = await RpcapClient.connect({ host: "127.0.0.1", port });
      cleanups.push(() => client.close());
      await client.authenticate();
      await client.open("lo");
      const sink = collector();
      await client.startCapture({ filter: compileFilter(`udp dst port ${flow.port}`, 1, 65535), readTimeoutMs, onBatch: sink.onBatch });
      sinks.push(sink);
    }
    // tcpdump's 1000 ms arrives as 500; 0 ("no timeout") gets the default; 60 s is capped.
    expect(asked).toEqual([500, DEFAULT_FLUSH_INTERVAL_MS, MAX_RPCAP_FLUSH_INTERVAL_MS]);
    await Bun.sleep(150); // data connections up
    await flow.send([10, 20, 30], { gapMs: 1 });
    for (const sink of sinks) await waitFor(() => sink.payloads.length >= 3, 10_000, "packets");
    for (const sink of sinks) expect(sink.payloads).toEqual(flow.sent);
  });

  test("active mode: the daemon dials the collector, serves it, and redials after it leaves", async () => {
    const clients: RpcapClient[] = [];
    const collectorListener = RpcapClient.listenForActive("127.0.0.1", 0, (c) => clients.push(c));
    cleanups.push(() => collectorListener.stop(true));
    const { flow } = await setup({ listen: undefined, active: [{ host: "127.0.0.1", port: collectorListener.port }] });
    await waitFor(() => clients.length === 1, 5000, "active connection");
    const client = clients[0]!;
    await client.authenticate();
    expect((await client.findAllInterfaces()).some((i) => i.name === "lo")).toBe(true);
    await client.open("lo");
    const sink = collector();
    // Active mode: the daemon opens the data connection whatever the flags say.
    await client.startCapture({ serverOpen: true, filter: compileFilter(`udp dst port ${flow.port}`, 1, 65535), onBatch: sink.onBatch });
    await Bun.sleep(150);
    await flow.send([5, 6, 7]);
    await waitFor(() => sink.payloads.length === 3, 5000, "packets over active mode");
    await client.endCapture();
    client.close();
    await waitFor(() => clients.length === 2, 5000, "redial after the collector left");
  });

  test("two clients with different filters at once get exactly their own packets", async () => {
    const { port, flow } = await setup();
    const other = await openLoopbackFlow();
    cleanups.push(() => other.close());
    const a = await capturingClient(port, flow);
    const b = await capturingClient(port, other);
    await flow.send([10, 11]);
    await other.send([20, 21, 22]);
    await waitFor(() => a.sink.payloads.length >= 2 && b.sink.payloads.length >= 3, 5000, "both");
    await Bun.sleep(100);
    expect(a.sink.payloads).toEqual(flow.sent);
    expect(b.sink.payloads).toEqual(other.sent);
  });

  test("UPDATEFILTER switches a running capture; npkt continues; an invalid program is refused and changes nothing", async () => {
    const { port, flow } = await setup();
    const other = await openLoopbackFlow();
    cleanups.push(() => other.close());
    const { client, sink } = await capturingClient(port, flow);
    await flow.send([1, 2]);
    await waitFor(() => sink.payloads.length === 2, 5000, "first phase");
    // A backward jump (CVE-2026-6554 class) must never be installed.
    const bad = [{ code: 0x05, jt: 0, jf: 0, k: 0xffffffff }, { code: 0x06, jt: 0, jf: 0, k: 0 }];
    const refused = await client.updateFilter(bad).catch((e) => e);
    expect(refused).toBeInstanceOf(RpcapServerError);
    expect(refused.code).toBe(E.UPDATEFILTER);
    await flow.send([3]);
    await waitFor(() => sink.payloads.length === 3, 5000, "capture goes on under the old filter");
    await client.updateFilter(compileFilter(`udp dst port ${other.port}`, 1, 65535));
    await flow.send([4]);
    await other.send([5]);
    await waitFor(() => sink.payloads.length === 4, 5000, "new filter");
    await Bun.sleep(100);
    expect(sink.payloads.at(-1)).toEqual(other.sent[0]!);
    expect(sink.npkts).toEqual([1, 2, 3, 4]);
  });

  test("SETSAMPLING one-every-3 is applied (libpcap's daemon ignores it)", async () => {
    const { port, flow } = await setup();
    const client = await RpcapClient.connect({ host: "127.0.0.1", port });
    cleanups.push(() => client.close());
    await client.authenticate();
    await client.open("lo");
    await client.setSampling(SamplingMethod.ONE_EVERY_N, 3);
    const sink = collector();
    await client.startCapture({ filter: compileFilter(`udp dst port ${flow.port}`, 1, 65535), onBatch: sink.onBatch });
    await Bun.sleep(150);
    await flow.send(Array(9).fill(10).map((s, i) => s + i), { gapMs: 1 });
    await waitFor(() => sink.payloads.length >= 3, 5000, "sampled packets");
    await Bun.sleep(150);
    expect(sink.payloads).toEqual([flow.sent[0]!, flow.sent[3]!, flow.sent[6]!]);
  });

  test("STARTCAP with an invalid BPF program gets an error, not a capture", async () => {
    const { port } = await setup();
    const client = await RpcapClient.connect({ host: "127.0.0.1", port });
    cleanups.push(() => client.close());
    await client.authenticate();
    await client.open("lo");
    const error = await client.startCapture({ filter: [{ code: 0x06 + 0x30, jt: 0, jf: 0, k: 0 }], onBatch: () => {} }).catch((e) => e);
    expect(error).toBeInstanceOf(RpcapServerError);
    expect(error.code).toBe(E.STARTCAPTURE);
    expect(error.message).toContain("Invalid filter");
  });
});

describe("authentication and access", () => {
  test("wrong password: one public message and a pause; then the right one works on the same connection", async () => {
    const { port } = await setup();
    const client = await RpcapClient.connect({ host: "127.0.0.1", port });
    cleanups.push(() => client.close());
    const error = await client.authenticate("test", "wrong").catch((e) => e);
    expect(error.code).toBe(E.AUTH_FAILED);
    expect(error.message).toBe("AUTH_FAILED: Authentication failed");
    const unknown = await client.authenticate("nosuchuser", "x").catch((e) => e);
    expect(unknown.message).toBe(error.message);
    const started = performance.now();
    await client.authenticate("test", "secret");
    // The daemon paused this peer (200 ms in the harness) before reading its next AUTH.
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);
    expect(harness!.log.lines.some((l) => l.includes("bad password for test"))).toBe(true);
  });

  test("OPEN of anything but a local interface is refused (CVE-2019-15164)", async () => {
    const { port } = await setup();
    const client = await RpcapClient.connect({ host: "127.0.0.1", port });
    cleanups.push(() => client.close());
    await client.authenticate();
    for (const source of ["rpcap://10.1.2.3:2002/eth0", "/etc/passwd", "nosuch0", "lo/../x", "file:///tmp/x.pcap"]) {
      const error = await client.open(source).catch((e) => e);
      expect(error).toBeInstanceOf(RpcapServerError);
      expect(error.code).toBe(E.OPEN);
    }
    expect((await client.open("lo")).linktype).toBe(1);
  });

  test("a host outside the host list is refused before AUTH", async () => {
    const { port } = await setup({ isHostAllowed: () => false });
    const peer = await rawPeer(port);
    const reply = await peer.nth(1);
    expect(reply.header.type).toBe(T.ERROR);
    expect(reply.header.value).toBe(E.HOSTNOAUTH);
    await peer.waitClosed();
  });
});

describe("timeouts and sampling by time", () => {
  test("an authenticated connection with no capture is closed at the idle timeout with error 14", async () => {
    const { port } = await setup({ idleTimeoutMs: 300 });
    const peer = await rawPeer(port);
    peer.write(encodeMessage(0, T.AUTH_REQ, 0, encodeAuthRequest({ authType: 0, username: "", password: "" })));
    expect((await peer.nth(1)).header.type).toBe(T.AUTH_REPLY);
    const m = await peer.nth(2, 3000);
    expect([m.header.type, m.header.value]).toEqual([T.ERROR, E.RUNTIMETIMEOUT]);
    await peer.waitClosed();
  });

  test("SETSAMPLING first-after-N-ms keeps one packet per interval", async () => {
    const { port, flow } = await setup();
    const client = await RpcapClient.connect({ host: "127.0.0.1", port });
    cleanups.push(() => client.close());
    await client.authenticate();
    await client.open("lo");
    await client.setSampling(SamplingMethod.FIRST_AFTER_N_MS, 10_000);
    const sink = collector();
    await client.startCapture({ filter: compileFilter(`udp dst port ${flow.port}`, 1, 65535), onBatch: sink.onBatch });
    await Bun.sleep(150);
    await flow.send([1, 2, 3, 4, 5], { gapMs: 2 });
    await waitFor(() => sink.payloads.length >= 1, 5000, "first packet");
    await Bun.sleep(300);
    // All five fall inside one 10 s interval: only the first is forwarded.
    expect(sink.payloads).toEqual([flow.sent[0]!]);
    expect((await client.stats()).svrcapt).toBe(1);
  });
});

describe("misbehaving peers", () => {
  test("silent peer and one-byte-at-a-time peer are dropped at the initial timeout", async () => {
    const { port } = await setup({ authTimeoutMs: 400 });
    const silent = await rawPeer(port);
    const dribbler = await rawPeer(port);
    const auth = encodeMessage(0, T.AUTH_REQ, 0, encodeAuthRequest({ authType: 0, username: "", password: "" }));
    const timer = setInterval(() => dribbler.write(auth.subarray(0, 1)), 100);
    cleanups.push(() => clearInterval(timer));
    for (const peer of [silent, dribbler]) {
      const m = await peer.nth(1, 3000);
      expect(m.header.value).toBe(E.INITTIMEOUT);
      await peer.waitClosed();
    }
  });

  test("requests before AUTH get WRONGMSG and the connection stays usable", async () => {
    const { port } = await setup();
    const peer = await rawPeer(port);
    peer.write(encodeMessage(0, T.FINDALLIF_REQ, 0));
    const first = await peer.nth(1);
    expect([first.header.type, first.header.value]).toEqual([T.ERROR, E.WRONGMSG]);
    expect(decodeErrorText(first.payload)).toBe("RPCAP_MSG_FINDALLIF_REQ request sent before authentication was completed");
    peer.write(encodeMessage(0, 0x55, 0));
    expect(decodeErrorText((await peer.nth(2)).payload)).toBe("Unknown message type 85");
    peer.write(encodeMessage(0, T.AUTH_REQ, 0, encodeAuthRequest({ authType: 0, username: "", password: "" })));
    expect((await peer.nth(3)).header.type).toBe(T.AUTH_REPLY);
    expect(peer.closed).toBe(false);
  });

  test("wrong version: error echoing it, then closed", async () => {
    const { port } = await setup();
    const peer = await rawPeer(port);
    peer.write(encodeMessage(1, T.AUTH_REQ, 0, encodeAuthRequest({ authType: 0, username: "", password: "" })));
    const m = await peer.nth(1);
    expect([m.header.ver, m.header.type, m.header.value]).toEqual([1, T.ERROR, E.WRONGVER]);
    await peer.waitClosed();
  });

  test("a 4 GiB plen is refused at once, and another client's capture goes on untouched", async () => {
    const { port, flow } = await setup();
    const good = await capturingClient(port, flow);
    const peer = await rawPeer(port);
    peer.write(encodeMessage(0, T.AUTH_REQ, 0, encodeAuthRequest({ authType: 0, username: "", password: "" })));
    await peer.nth(1);
    peer.write(new Uint8Array([0, T.STARTCAP_REQ, 0, 0, 0xff, 0xff, 0xff, 0xff]));
    const m = await peer.nth(2);
    expect([m.header.type, m.header.value]).toEqual([T.ERROR, E.WRONGMSG]);
    await peer.waitClosed();
    // unknown type after AUTH on another connection: error and closed (as libpcap's daemon)
    const other = await rawPeer(port);
    other.write(encodeMessage(0, T.AUTH_REQ, 0, encodeAuthRequest({ authType: 0, username: "", password: "" })));
    await other.nth(1);
    other.write(encodeMessage(0, 0x55, 0, new Uint8Array(3)));
    expect((await other.nth(2)).header.value).toBe(E.WRONGMSG);
    await other.waitClosed();
    await flow.send([33, 44]);
    await waitFor(() => good.sink.payloads.length === 2, 5000, "good client's packets");
    expect((await good.client.stats()).svrcapt).toBe(2);
  });

  test("a client that never reads its data channel loses only its own packets", async () => {
    const { port, flow } = await setup({ dataQueueBytes: 64 * 1024 });
    const good = await capturingClient(port, flow);
    // The stalled client: a raw data connection that never reads.
    const stalled = await RpcapClient.connect({ host: "127.0.0.1", port });
    cleanups.push(() => stalled.close());
    await stalled.authenticate();
    await stalled.open("lo");
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => s.pause(), data: () => {} } });
    cleanups.push(() => listener.stop(true));
    // SERVEROPEN to our non-reading listener: the daemon connects to it and writes into the void.
    const { RpcapMessageType: MT, encodeStartCapRequestPayload } = await import("../../src/protocols/rpcap/index.ts");
    await stalled.request(MT.STARTCAP_REQ, encodeStartCapRequestPayload({
      snaplen: 65535, readTimeoutMs: 100, flags: 4, portdata: listener.port,
      program: compileFilter(`udp dst port ${flow.port}`, 1, 65535),
    }));
    const total = 4000;
    for (let i = 0; i < total; i += 200) {
      await flow.send(Array(200).fill(1400));
      await Bun.sleep(2);
    }
    await waitFor(() => good.sink.payloads.length >= total, 20_000, "the good client's packets");
    expect(good.sink.payloads.length).toBe(total);
    const stalledStats = await stalled.stats();
    expect(stalledStats.krnldrop).toBeGreaterThan(0); // its own queue overflowed, counted for it
    expect((await good.client.stats()).krnldrop).toBe(0);
  });
});
