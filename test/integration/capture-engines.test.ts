// Both live capture engines (the TPACKET_V3 ring read directly, with its native and its
// JavaScript block walker, and libpcap) judged against tcpdump capturing the same traffic at
// the same time: records compared packet by packet
// (count, caplen, len, bytes, and nanosecond timestamps, which every packet socket receives
// from the same skb). VLAN-tagged frames and direction run on a veth pair between two network
// namespaces made here (cr-n1, cr-n2); kernel drop counters, and an interface that vanishes
// under a running capture, run in this process.
// This kernel has no 802.1Q devices (CONFIG_VLAN_8021Q unset), so tagged frames are written raw
// into one end of the veth by a packet socket (python3); the receiving end strips the tag into
// skb metadata (skb_vlan_untag), which is exactly what both engines must put back.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LiveCaptureSource, type CaptureThread } from "../../src/capture/live-capture-source.ts";
import { RingSocket } from "../../src/capture/linux-ring/ring-socket.ts";
import { PcapHandle } from "../../src/capture/libpcap/pcap-handle.ts";
import { CaptureError } from "../../src/capture/errors.ts";
import type { CaptureEngine } from "../../src/capture/libpcap/pcap-handle.ts";
import { openLoopbackFlow } from "../support/loopback-traffic.ts";
import { collectStderr, probeCommand, waitFor, waitForLine } from "../support/probe-binary.ts";

const ENGINES: readonly CaptureEngine[] = ["ring", "libpcap"];
/**
 * The probe runs judged against tcpdump: both engines, and the ring engine once more with its
 * JavaScript block walker (the fallback when the native walker cannot be compiled).
 */
const VARIANTS = [
  { name: "ring", engine: "ring", env: {} },
  { name: "ring-js", engine: "ring", env: { PROBE_RING_WALKER: "js" } },
  { name: "libpcap", engine: "libpcap", env: {} },
] as const;
type VariantName = (typeof VARIANTS)[number]["name"];
const VARIANT_NAMES = VARIANTS.map((v) => v.name);
/** Namespaces and links, all prefixed with the branch name (cr-) so helpers do not collide. */
const NS1 = "cr-n1";
const NS2 = "cr-n2";
const VETH1 = "cr-v1";
const VETH2 = "cr-v2";
const VLAN_ID = 42;
const NS1_ADDRESS = "10.201.0.1";
const NS2_ADDRESS = "10.201.0.2";
/** 802.1ad (QinQ outer) TPID and the VLAN id sent with it. */
const TPID_8021AD = 0x88a8;
const VLAN_ID_8021AD = 7;
const VLAN_UDP_PORT = 7777;
/** A veth pair in this process's namespace (no addresses, no traffic) for the vanishing test. */
const HOST_VETH = "cr-h1";
const HOST_VETH_PEER = "cr-h2";
/** Every spawned capture is killed after this long, whatever happens. */
const CAPTURE_DEADLINE_MS = 20_000;

async function sh(command: string): Promise<string> {
  const proc = Bun.spawn(["sh", "-c", command], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${command}: exit ${code}: ${err}`);
  return out;
}

let dir = "";
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "probe-engines-"));
  await sh(`ip netns del ${NS1} 2>/dev/null; ip netns del ${NS2} 2>/dev/null; ip link del ${HOST_VETH} 2>/dev/null; true`);
  await sh(
    [
      `ip netns add ${NS1}`,
      `ip netns add ${NS2}`,
      `ip link add ${VETH1} netns ${NS1} type veth peer name ${VETH2} netns ${NS2}`,
      `ip -n ${NS1} link set lo up`,
      `ip -n ${NS2} link set lo up`,
      `ip -n ${NS1} addr add ${NS1_ADDRESS}/24 dev ${VETH1}`,
      `ip -n ${NS2} addr add ${NS2_ADDRESS}/24 dev ${VETH2}`,
      `ip -n ${NS1} link set ${VETH1} up`,
      `ip -n ${NS2} link set ${VETH2} up`,
    ].join(" && "),
  );
});

afterAll(async () => {
  await sh(`ip netns del ${NS1} 2>/dev/null; ip netns del ${NS2} 2>/dev/null; ip link del ${HOST_VETH} 2>/dev/null; true`);
  rmSync(dir, { recursive: true, force: true });
});

interface PcapRecord {
  tsSec: number;
  tsFrac: number;
  caplen: number;
  len: number;
  data: Uint8Array;
}

/** Reads a little-endian classic pcap file (what tcpdump -w and probe -w write here). */
function readPcap(path: string): { nano: boolean; linktype: number; records: PcapRecord[] } {
  const bytes = new Uint8Array(readFileSync(path));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error(`${path}: not a little-endian pcap file`);
  const records: PcapRecord[] = [];
  let at = 24;
  while (at + 16 <= bytes.length) {
    const caplen = view.getUint32(at + 8, true);
    records.push({
      tsSec: view.getUint32(at, true),
      tsFrac: view.getUint32(at + 4, true),
      caplen,
      len: view.getUint32(at + 12, true),
      data: bytes.slice(at + 16, at + 16 + caplen),
    });
    at += 16 + caplen;
  }
  return { nano: magic === 0xa1b23c4d, linktype: view.getUint32(20, true), records };
}

/** A background capture that has said it is listening. */
interface RunningCapture {
  name: string;
  path: string;
  exited: Promise<number>;
  stop(): Promise<{ exitCode: number; stderr: string }>;
}

/** Spawns `argv` and resolves once its standard error says it is listening. */
async function startCapture(name: string, argv: string[], path: string, env: Record<string, string> = {}): Promise<RunningCapture> {
  const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe", stdin: "ignore", env: { ...process.env, ...env } });
  const killer = setTimeout(() => proc.kill("SIGKILL"), CAPTURE_DEADLINE_MS);
  const running = collectStderr(proc);
  if (!(await waitForLine(running, "listening on", CAPTURE_DEADLINE_MS, `${name} listening`))) throw new Error(`${name} ended before listening: ${running.log()}`);
  return {
    name,
    path,
    exited: proc.exited,
    async stop() {
      proc.kill("SIGINT");
      const exitCode = await proc.exited;
      await running.drained;
      clearTimeout(killer);
      return { exitCode, stderr: running.log() };
    },
  };
}

interface TrioOptions {
  namespace?: string;
  interface: string;
  filter: string;
  /** Extra flags understood by both tcpdump and probe capture (-Q in, -s 96). */
  flags?: string[];
  nano?: boolean;
  traffic(): Promise<void>;
}

/** tcpdump and probe (each engine) capture the same traffic; returns each one's records. */
async function captureWithTcpdump(o: TrioOptions): Promise<Record<"tcpdump" | VariantName, ReturnType<typeof readPcap>>> {
  const prefix = o.namespace ? ["ip", "netns", "exec", o.namespace] : [];
  const flags = o.flags ?? [];
  const tag = `${o.interface}-${Math.random().toString(36).slice(2, 8)}`;
  const tcpdumpPath = join(dir, `tcpdump-${tag}.pcap`);
  const running: RunningCapture[] = [];
  try {
    running.push(
      await startCapture(
        "tcpdump",
        // Immediate mode: with its default 1 s buffer timeout tcpdump may still hold the packets
        // in a kernel block when SIGINT comes, and it exits without reading them. Immediate mode
        // gives each packet a 64 KiB slot on lo, so the ring is made large (-B, KiB) to be lossless.
        [...prefix, "tcpdump", "-i", o.interface, "-U", "--immediate-mode", "-B", "65536", ...(o.nano ? ["--time-stamp-precision=nano"] : []), ...flags, "-w", tcpdumpPath, o.filter],
        tcpdumpPath,
      ),
    );
    for (const { name, engine, env } of VARIANTS) {
      const path = join(dir, `probe-${name}-${tag}.pcap`);
      const argv = [...prefix, ...probeCommand(), "capture", "--capture-engine", engine, "-i", o.interface, ...(o.nano ? ["--nano"] : []), ...flags, "-w", path, o.filter];
      running.push(await startCapture(name, argv, path, env));
    }
    await o.traffic();
    await Bun.sleep(300); // the ring retires a partial block after ~10 ms, libpcap after 20 ms
  } finally {
    for (const capture of running) {
      const { exitCode, stderr } = await capture.stop();
      if (exitCode !== 0) throw new Error(`${capture.name} exited ${exitCode}: ${stderr}`);
    }
  }
  const out = {} as Record<"tcpdump" | VariantName, ReturnType<typeof readPcap>>;
  for (const capture of running) out[capture.name as "tcpdump" | VariantName] = readPcap(capture.path);
  return out;
}

/** The same records, field by field (timestamps too when `withTimestamps`). */
function expectSameRecords(actual: PcapRecord[], expected: PcapRecord[], withTimestamps: boolean): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((record, i) => {
    const reference = expected[i]!;
    expect({ i, caplen: record.caplen, len: record.len }).toEqual({ i, caplen: reference.caplen, len: reference.len });
    expect(record.data).toEqual(reference.data);
    if (withTimestamps) expect({ i, sec: record.tsSec, frac: record.tsFrac }).toEqual({ i, sec: reference.tsSec, frac: reference.tsFrac });
  });
}

/**
 * Writes `count` broadcast Ethernet frames carrying IPv4/UDP to VLAN_UDP_PORT into `link` (inside
 * `namespace`) through a raw packet socket, from MAC 02:00:00:00:00:<sourceMacByte>. When tagged,
 * frame i is untagged (i % 3 == 0), 802.1Q with VLAN_ID and priority 3 (1), or 802.1ad with
 * VLAN_ID_8021AD (2). Sizes grow with i.
 */
async function sendFrames(namespace: string, link: string, count: number, o: { tagged: boolean; sourceMacByte: number }): Promise<void> {
  const script = [
    "import socket, struct, sys",
    "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)",
    `s.bind(("${link}", 0))`,
    `for i in range(${count}):`,
    "    payload = bytes((i + k) & 255 for k in range(10 + 45 * i))",
    `    udp = struct.pack("!HHHH", ${VLAN_UDP_PORT}, ${VLAN_UDP_PORT}, 8 + len(payload), 0) + payload`,
    `    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0, socket.inet_aton("${NS2_ADDRESS}"), socket.inet_aton("${NS1_ADDRESS}"))`,
    `    tag = [b"", struct.pack("!HH", 0x8100, (3 << 13) | ${VLAN_ID}), struct.pack("!HH", ${TPID_8021AD}, ${VLAN_ID_8021AD})][i % 3 if ${o.tagged ? "True" : "False"} else 0]`,
    `    s.send(b"\\xff" * 6 + bytes([2, 0, 0, 0, 0, ${o.sourceMacByte}]) + tag + b"\\x08\\x00" + ip + udp)`,
  ].join("\n");
  const proc = Bun.spawn(["ip", "netns", "exec", namespace, "python3", "-c", script], { stdout: "ignore", stderr: "pipe" });
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`raw frame sender failed: ${err}`);
}

describe("both engines against tcpdump", () => {
  test("lo: UDP of many sizes, packet by packet, byte for byte", async () => {
    const flow = await openLoopbackFlow();
    try {
      const result = await captureWithTcpdump({
        interface: "lo",
        filter: `udp dst port ${flow.port}`,
        traffic: () => flow.send(Array.from({ length: 400 }, (_, i) => 1 + ((i * 151) % 9000)), { gapMs: 1 }),
      });
      expect(result.tcpdump.records.length).toBe(400);
      for (const name of VARIANT_NAMES) expectSameRecords(result[name].records, result.tcpdump.records, false);
    } finally {
      flow.close();
    }
  }, 60_000);

  test("lo: snaplen 96 cuts caplen like tcpdump -s 96 and keeps len", async () => {
    const flow = await openLoopbackFlow();
    try {
      const result = await captureWithTcpdump({
        interface: "lo",
        filter: `udp dst port ${flow.port}`,
        flags: ["-s", "96"],
        traffic: () => flow.send([10, 54, 55, 1000, 5000], { gapMs: 1 }),
      });
      expect(result.tcpdump.records.map((r) => r.caplen)).toEqual([52, 96, 96, 96, 96]);
      for (const name of VARIANT_NAMES) expectSameRecords(result[name].records, result.tcpdump.records, false);
    } finally {
      flow.close();
    }
  }, 60_000);

  test("VLAN-tagged frames (802.1Q and 802.1ad) on a veth keep their tag exactly as tcpdump shows it, with the same nanosecond timestamps", async () => {
    const frames = 30;
    const result = await captureWithTcpdump({
      namespace: NS1,
      interface: VETH1,
      filter: `udp port ${VLAN_UDP_PORT}`,
      nano: true,
      traffic: () => sendFrames(NS2, VETH2, frames, { tagged: true, sourceMacByte: 2 }),
    });
    const reference = result.tcpdump.records;
    expect(reference.length).toBe(frames);
    reference.forEach((record, i) => {
      const tpid = (record.data[12]! << 8) | record.data[13]!;
      const vid = ((record.data[14]! << 8) | record.data[15]!) & 0x0fff;
      if (i % 3 === 1) expect({ i, tpid, vid }).toEqual({ i, tpid: 0x8100, vid: VLAN_ID });
      if (i % 3 === 2) expect({ i, tpid, vid }).toEqual({ i, tpid: TPID_8021AD, vid: VLAN_ID_8021AD });
      if (i % 3 === 0) expect({ i, tpid }).toEqual({ i, tpid: 0x0800 });
    });
    expect(result.tcpdump.nano).toBe(true);
    for (const name of VARIANT_NAMES) {
      expect(result[name].nano).toBe(true);
      expect(result[name].linktype).toBe(1);
      expectSameRecords(result[name].records, reference, true);
    }
  }, 60_000);

  for (const direction of ["out", "in"] as const) {
    test(`-Q ${direction} keeps only the frames ${direction === "out" ? "sent on" : "received by"} the interface, as tcpdump -Q ${direction}`, async () => {
      const result = await captureWithTcpdump({
        namespace: NS1,
        interface: VETH1,
        filter: `udp port ${VLAN_UDP_PORT}`,
        flags: ["-Q", direction],
        traffic: async () => {
          await sendFrames(NS1, VETH1, 6, { tagged: false, sourceMacByte: 1 }); // leave cr-v1: outgoing
          await sendFrames(NS2, VETH2, 5, { tagged: false, sourceMacByte: 2 }); // arrive at cr-v1: incoming
        },
      });
      const expected = direction === "out" ? { count: 6, mac: 1 } : { count: 5, mac: 2 };
      expect(result.tcpdump.records.map((r) => r.data[11])).toEqual(Array(expected.count).fill(expected.mac));
      for (const name of VARIANT_NAMES) expectSameRecords(result[name].records, result.tcpdump.records, false);
    }, 60_000);
  }
});

/** Fills a small ring that nobody reads, then reads it: the kernel must count what it dropped. */
describe("kernel drop counters", () => {
  const SENT = 6000;
  const PAYLOAD_BYTES = 1000;

  for (const walker of ["native", "js"] as const) test(`ring engine (${walker} walker): PACKET_STATISTICS drops move when the ring overflows, and received = delivered + dropped`, async () => {
    const flow = await openLoopbackFlow();
    // The smallest ring: two blocks of 128 KiB (ringBlockBytes), ~240 frames of 1,042 bytes.
    const ring = RingSocket.open({ interface: "lo", snaplen: 262144, promiscuous: false, bufferBytes: 1, precision: "micro", direction: "inout", retireBlockMs: 10, batchBytes: 256 * 1024, walker });
    expect(ring.walkerKind).toBe(walker);
    try {
      ring.setFilterExpression(`udp dst port ${flow.port}`);
      ring.start();
      await flow.send(Array(SENT).fill(PAYLOAD_BYTES));
      await Bun.sleep(100);
      const stats = ring.stats();
      expect(stats.dropped).toBeGreaterThan(0);
      expect(stats.received).toBe(SENT);
      let delivered = 0;
      const batch = ring.newBatchBuilder((_staged, count) => {
        delivered += count;
        return true;
      });
      ring.readInto(batch, 100);
      batch.flush();
      expect(delivered + stats.dropped).toBe(SENT);
    } finally {
      ring.close();
      flow.close();
    }
  });

  test("libpcap engine: pcap_stats drops move when its buffer overflows", async () => {
    const flow = await openLoopbackFlow();
    const handle = PcapHandle.openLive({ interface: "lo", snaplen: 262144, promiscuous: false, timeoutMs: 20, bufferBytes: 64 * 1024, immediate: false, precision: "micro", direction: "inout" });
    try {
      handle.setFilterExpression(`udp dst port ${flow.port}`);
      await flow.send(Array(SENT).fill(PAYLOAD_BYTES));
      await Bun.sleep(100);
      expect(handle.stats().dropped).toBeGreaterThan(0);
    } finally {
      handle.close();
      flow.close();
    }
  });
});

function openFds(): string[] {
  return readdirSync("/proc/self/fd").map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return "";
    }
  });
}

/** This process's AF_PACKET sockets: fds whose socket inode /proc/net/packet lists. */
function packetSockets(): number {
  const lines = readFileSync("/proc/net/packet", "utf8").trim().split("\n");
  const inodeColumn = lines[0]!.trim().split(/\s+/).indexOf("Inode");
  const inodes = new Set(lines.slice(1).map((line) => `socket:[${line.trim().split(/\s+/)[inodeColumn]}]`));
  return openFds().filter((target) => inodes.has(target)).length;
}
/**
 * Threads a capture may leave behind: Worker threads (Bun names them "Worker") and native capture
 * threads (ring-thread.c's pthread keeps the name of the thread that made it, the main thread's);
 * the runtime's own helper threads (heap helpers, signal sender, JIT) come and go with load and
 * have names of their own, so they are not counted.
 */
const captureThreads = () => {
  const mainName = readFileSync("/proc/self/comm", "utf8").trim();
  return readdirSync("/proc/self/task").filter((task) => {
    try {
      const name = readFileSync(`/proc/self/task/${task}/comm`, "utf8").trim();
      return name === "Worker" || (name === mainName && Number(task) !== process.pid);
    } catch {
      return false; // the thread exited while being listed
    }
  }).length;
};

/** Each engine with the thread that reads it: the ring by its native thread (default) and by a Worker; libpcap in a Worker. */
const READERS = [
  ["ring", "native"],
  ["ring", "worker"],
  ["libpcap", "worker"],
] as const satisfies readonly (readonly [CaptureEngine, CaptureThread])[];

describe.each(READERS)("a vanishing interface (%s engine, %s thread)", (engine, thread) => {
  test("deleting the veth ends the capture with a clear error; its socket and thread are gone", async () => {
    await sh(`ip link del ${HOST_VETH} 2>/dev/null; ip link add ${HOST_VETH} type veth peer name ${HOST_VETH_PEER} && ip link set ${HOST_VETH} up && ip link set ${HOST_VETH_PEER} up`);
    // Warm up: the first worker of a process starts runtime threads that stay for reuse.
    const warm = new LiveCaptureSource({ interface: HOST_VETH, engine, thread, promiscuous: false });
    await warm.start({ onBatch: () => {}, onEnd: () => {} });
    await warm.stop();
    await Bun.sleep(200);
    const socketsBefore = packetSockets();
    const threadsBefore = captureThreads();

    const ended = Promise.withResolvers<{ reason: string; error?: Error }>();
    const source = new LiveCaptureSource({ interface: HOST_VETH, engine, thread, promiscuous: false });
    const info = await source.start({ onBatch: () => {}, onEnd: (reason, error) => ended.resolve(error ? { reason, error } : { reason }) });
    expect(info.engine).toBe(engine);
    expect(packetSockets()).toBeGreaterThan(socketsBefore);
    expect(captureThreads()).toBeGreaterThan(threadsBefore);
    await sh(`ip link del ${HOST_VETH}`);
    const timeout = setTimeout(() => ended.reject(new Error("capture did not end after its interface vanished")), 10_000);
    const end = await ended.promise;
    clearTimeout(timeout);
    expect(end.reason).toBe("failed");
    expect(end.error).toBeInstanceOf(CaptureError);
    expect(end.error!.message).toContain(HOST_VETH);
    if (engine === "ring") expect((end.error as CaptureError).code).toBe("no-such-device");
    await source.stop(); // harmless after the end
    // The terminated worker's thread exits soon, later under load: wait for it (a thread that
    // stays still fails below).
    await waitFor(() => captureThreads() <= threadsBefore, 10_000, "the capture thread to exit").catch(() => {});
    expect(packetSockets()).toBe(socketsBefore);
    expect(captureThreads()).toBeLessThanOrEqual(threadsBefore);
  }, 30_000);
});

describe("probe capture on a vanishing interface", () => {
  for (const engine of ENGINES) {
    test(`${engine}: exits 1 with one line naming the interface`, async () => {
      const link = `cr-x${engine === "ring" ? "r" : "l"}`;
      await sh(`ip -n ${NS1} link add ${link} type veth peer name ${link}p && ip -n ${NS1} link set ${link} up && ip -n ${NS1} link set ${link}p up`);
      const capture = await startCapture(engine, ["ip", "netns", "exec", NS1, ...probeCommand(), "capture", "--capture-engine", engine, "-i", link, "-w", "/dev/null"], "");
      await sh(`ip -n ${NS1} link del ${link}`);
      const exitCode = await Promise.race([capture.exited, Bun.sleep(10_000).then(() => -1)]);
      const { stderr } = await capture.stop();
      expect(exitCode).toBe(1);
      const errorLines = stderr.split("\n").filter((line) => line.includes(link) && !line.includes("listening on"));
      expect(errorLines.length).toBe(1);
      expect(stderr).not.toContain("    at ");
    }, 30_000);
  }
});

describe("where the ring engine hands over to libpcap", () => {
  test("the 'any' device: libpcap's cooked link type, with a note saying why", async () => {
    const source = new LiveCaptureSource({ interface: "any", engine: "ring", filter: "udp port 9" });
    const info = await source.start({ onBatch: () => {}, onEnd: () => {} });
    await source.stop();
    expect(info.engine).toBe("libpcap");
    expect(info.linktype).toBe(113); // LINKTYPE_LINUX_SLL
    expect(info.engineNote).toContain("any");
  });

  test("a 'vlan' filter expression (libpcap compiles it into in-kernel tag tests only for its own handle)", async () => {
    const source = new LiveCaptureSource({ interface: "lo", engine: "ring", filter: "vlan and udp port 9" });
    const info = await source.start({ onBatch: () => {}, onEnd: () => {} });
    await source.stop();
    expect(info.engine).toBe("libpcap");
    expect(info.engineNote).toContain("vlan");
  });

  test("setFilter with 'vlan' on a running ring capture is refused as bad-filter, and the capture goes on", async () => {
    const source = new LiveCaptureSource({ interface: "lo", engine: "ring", filter: "udp port 9" });
    const info = await source.start({ onBatch: () => {}, onEnd: () => {} });
    try {
      expect(info.engine).toBe("ring");
      const error = await source.setFilter("vlan 42").catch((e) => e);
      expect(error).toBeInstanceOf(CaptureError);
      expect(error.code).toBe("bad-filter");
      expect(error.message).toContain("--capture-engine libpcap");
      await source.setFilter("udp port 10");
    } finally {
      await source.stop();
    }
  });
});

describe("PACKET_FANOUT (ring engine)", () => {
  test("two sources in one fanout group share the traffic: every packet once, none twice", async () => {
    const flows = await Promise.all(Array.from({ length: 8 }, () => openLoopbackFlow()));
    const group = 0x4300 + (process.pid & 0xff);
    const counts = [0, 0];
    const filter = flows.map((f) => `udp dst port ${f.port}`).join(" or ");
    const sources = counts.map(() => new LiveCaptureSource({ interface: "lo", engine: "ring", filter, fanoutGroup: group }));
    try {
      await Promise.all(sources.map((source, i) => source.start({ onBatch: (b) => void (counts[i]! += b.count), onEnd: () => {} })));
      for (const flow of flows) await flow.send(Array(20).fill(64));
      const deadline = Date.now() + 10_000;
      while (counts[0]! + counts[1]! < 160 && Date.now() < deadline) await Bun.sleep(20);
      await Bun.sleep(100);
      expect(counts[0]! + counts[1]!).toBe(160);
    } finally {
      await Promise.all(sources.map((source) => source.stop()));
      for (const flow of flows) flow.close();
    }
  });
});
