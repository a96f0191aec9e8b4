// Capture benchmark (npm run bench -- capture): the same bounded loopback load captured by
// `tcpdump -i lo -w /dev/null` and by `probe capture -i lo -w /dev/null` with each capture engine
// (the TPACKET_V3 ring read directly, and libpcap), plus each one's cost with no traffic at all
// (start-up and idle, which the per-packet figures include), then a large file replayed by
// `probe capture -r` and `tcpdump -r`, all in one run on this machine.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBigFile } from "./support/big-file.ts";
import { bunBinary, cpuSecondsOf, finish, startsCold, watchPeakRss, parseSummary, printTable, probeBinary, repoRoot, udpLoad, type Measurement } from "./support/measure.ts";

const LIVE_PACKETS = Number(process.env.BENCH_LIVE_PACKETS ?? 400_000);
/** The larger load: long enough that start-up is a small share even of the whole-process figure. */
const LARGE_LIVE_PACKETS = Number(process.env.BENCH_LARGE_LIVE_PACKETS ?? 2_000_000);
/**
 * The long load (part "long", not run by default): peak RSS keeps growing for a few million
 * packets while the JIT compiles the per-batch code in its higher tiers (docs/capture-history.md,
 * "Sixth round"), which the 2M-packet run does not show. Bounded by udp-load.ts's 60 s.
 */
const LONG_LIVE_PACKETS = Math.min(Number(process.env.BENCH_LONG_LIVE_PACKETS ?? 9_000_000), 10_000_000);
/** Which parts run (comma-separated): live,large,long,busy,fanout,idle,latency,file; all but long by default. */
const PARTS = new Set((process.env.BENCH_CAPTURE_PARTS ?? "live,large,busy,fanout,idle,latency,file").split(","));
const LIVE_PAYLOAD_BYTES = 100;
/** Optional: another probe binary (e.g. built from the commit before a change) measured alongside. */
const PROBE_BEFORE = process.env.BENCH_PROBE_BEFORE;
const FILE_PACKETS = Number(process.env.BENCH_FILE_PACKETS ?? 2_000_000);

/** A live run's CPU split: what the process spent while listening (start-up and shutdown excluded). */
interface LiveMeasurement extends Measurement {
  /** CPU seconds between "the capture is listening" and "the load is over", from /proc/PID/stat. */
  steadyCpuSeconds: number;
  /** The same interval per thread name (main thread, capture Worker, JIT, GC...), CPU seconds. */
  steadyByThread: Map<string, number>;
  /** Packets captured in that interval (the warm-up's excluded). */
  steadyPackets: number;
}

/**
 * Packets sent before the steady-state sample of the large run (BENCH_CAPTURE_WARMUP): probe's
 * JIT compiles the hot paths during the first ~second of traffic (the JITWorker thread's share
 * in the per-thread split), a one-time cost like start-up. tcpdump gets the same warm-up.
 */
const LARGE_WARMUP_PACKETS = Number(process.env.BENCH_CAPTURE_WARMUP ?? 200_000);

async function liveRun(name: string, argv: string[], port: number, packets = LIVE_PACKETS, env?: Record<string, string>, warmup = 0): Promise<LiveMeasurement> {
  const sink = await Bun.udpSocket({ hostname: "127.0.0.1", port });
  startsCold(argv[0]!);
  const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe", ...(env ? { env: { ...process.env, ...env } } : {}) });
  const rss = watchPeakRss(proc.pid);
  const stderrText = new Response(proc.stderr).text();
  await Bun.sleep(700); // capture open
  const warm = warmup > 0 ? (await udpLoad(port, warmup, LIVE_PAYLOAD_BYTES)).sent : 0;
  if (warm > 0) await Bun.sleep(300);
  // Start-up (and the warm-up) is over: sample CPU here and again once the load has been drained.
  const cpuAtListen = cpuSecondsOf(proc.pid);
  const threadsAtListen = threadCpuSecondsOf(proc.pid);
  const load = packets > 0 ? await udpLoad(port, packets, LIVE_PAYLOAD_BYTES) : await Bun.sleep(2000).then(() => ({ sent: 0, seconds: 2 }));
  await Bun.sleep(500);
  const steadyCpuSeconds = cpuSecondsOf(proc.pid) - cpuAtListen;
  const steadyByThread = threadShares(threadsAtListen, threadCpuSecondsOf(proc.pid));
  proc.kill("SIGINT");
  const usage = await finish(proc, rss);
  sink.close();
  const summary = parseSummary(await stderrText);
  return {
    name,
    packets: summary.captured,
    seconds: load.seconds,
    cpuSeconds: usage.cpuSeconds,
    steadyCpuSeconds,
    steadyByThread,
    steadyPackets: summary.captured - warm,
    peakRssMiB: usage.peakRssMiB,
    kernelDrops: summary.drops,
    note: packets > 0 ? `${load.sent} sent at ${Math.round(load.sent / load.seconds)}/s${warm > 0 ? ` after ${warm} to warm up` : ""}` : `no traffic for ${load.seconds} s: ${usage.cpuSeconds.toFixed(3)} CPU s in all`,
  };
}

async function fileRun(name: string, argv: string[], packets: number): Promise<Measurement> {
  const started = performance.now();
  const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe" });
  const usage = await finish(proc, watchPeakRss(proc.pid, 5));
  const seconds = (performance.now() - started) / 1000;
  if (usage.exitCode !== 0) throw new Error(`${name} failed: ${await new Response(proc.stderr).text()}`);
  return { name, packets, seconds, cpuSeconds: usage.cpuSeconds, peakRssMiB: usage.peakRssMiB };
}

/**
 * PACKET_FANOUT: the same load captured by one ring worker, then by two workers sharing the
 * interface by flow hash (scripts/bench/support/fanout-capture.ts), eight flows so the hash
 * can spread them. Measures what a second worker costs and whether it loses less.
 */
/** Flows (sender processes, one port each) in the fanout run: enough that the flow hash spreads them. */
const FANOUT_FLOWS = 8;

async function benchFanout(port: number): Promise<void> {
  const rows: Measurement[] = [];
  for (const workers of [1, 2]) {
    const argv = [bunBinary, `${repoRoot}scripts/bench/support/fanout-capture.ts`, String(workers), String(port)];
    const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "inherit" });
    const rss = watchPeakRss(proc.pid);
    const out = new Response(proc.stdout).text();
    await Bun.sleep(1500);
    const flows = Array.from({ length: FANOUT_FLOWS }, (_, i) => i);
    const sinks = await Promise.all(flows.map((i) => Bun.udpSocket({ hostname: "127.0.0.1", port: port + i })));
    const loads = await Promise.all(flows.map((i) => udpLoad(port + i, LIVE_PACKETS / FANOUT_FLOWS, LIVE_PAYLOAD_BYTES)));
    await Bun.sleep(500);
    proc.kill("SIGINT");
    const usage = await finish(proc, rss);
    for (const sink of sinks) sink.close();
    const report = JSON.parse((await out).trim()) as { delivered: number[]; dropped: number };
    const sent = loads.reduce((n, l) => n + l.sent, 0);
    const seconds = Math.max(...loads.map((l) => l.seconds));
    rows.push({
      name: `ring, ${workers} worker${workers > 1 ? "s" : ""} (fanout hash)`,
      packets: report.delivered.reduce((a, b) => a + b, 0),
      seconds,
      cpuSeconds: usage.cpuSeconds,
      peakRssMiB: usage.peakRssMiB,
      kernelDrops: report.dropped,
      note: `${sent} sent by ${FANOUT_FLOWS} senders; per worker ${report.delivered.join("/")}`,
    });
  }
  printTable("PACKET_FANOUT on lo, 2 cores (Bun process running LiveCaptureSource directly, no output)", rows);
}

/** The busy-main-thread run: blocked this long out of every period (a slow hook, a large write). */
const BUSY_MS = 50;
const BUSY_PERIOD_MS = 100;

/**
 * Loss with a busy main thread: the ring read by its native thread, in its worker and on the
 * main thread, while the main thread is blocked BUSY_MS of every BUSY_PERIOD_MS, same unpaced load.
 */
async function benchBusyMainThread(port: number): Promise<void> {
  for (const thread of ["native", "worker", "main"]) {
    const argv = [bunBinary, `${repoRoot}scripts/bench/support/busy-main-capture.ts`, thread, String(port), String(BUSY_MS), String(BUSY_PERIOD_MS)];
    const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "inherit" });
    const out = new Response(proc.stdout).text();
    await Bun.sleep(1500);
    const sink = await Bun.udpSocket({ hostname: "127.0.0.1", port });
    const load = await udpLoad(port, LIVE_PACKETS, LIVE_PAYLOAD_BYTES);
    await Bun.sleep(500);
    proc.kill("SIGINT");
    await proc.exited;
    sink.close();
    const report = JSON.parse((await out).trim()) as { delivered: number; dropped: number };
    console.log(`main thread busy ${BUSY_MS} ms of every ${BUSY_PERIOD_MS} ms, ring read ${thread === "main" ? "on the main thread" : thread === "native" ? "by the native thread" : "in the worker"}: ${load.sent} sent at ${Math.round(load.sent / load.seconds)}/s, ${report.delivered} delivered, ${report.dropped} dropped by the kernel`);
  }
}

/** Seconds over which serve mode's idle CPU is measured. */
const IDLE_SECONDS = 10;

/**
 * Serve mode idle: `probe -i lo` serving PCAP-over-IP with one reader connected and a filter no
 * packet matches; CPU over IDLE_SECONDS after start-up, as a share of one core.
 */
async function benchServeIdle(binary: string, label: string, env?: Record<string, string>): Promise<void> {
  const port = 20000 + Math.floor(Math.random() * 10000);
  const argv = [binary, "-i", "lo", "-f", "udp port 9", "--pcap-over-ip", `127.0.0.1:${port}`, "--no-rpcap"];
  const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "ignore", ...(env ? { env: { ...process.env, ...env } } : {}) });
  try {
    await Bun.sleep(1500);
    const reader = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    await Bun.sleep(500);
    const before = cpuSecondsOf(proc.pid);
    await Bun.sleep(IDLE_SECONDS * 1000);
    const used = cpuSecondsOf(proc.pid) - before;
    reader.end();
    console.log(`serve mode idle (${label}, one PCAP-over-IP reader, no matching traffic): ${((used / IDLE_SECONDS) * 100).toFixed(2)}% of a core`);
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

/** CPU seconds (user + system) of each thread of a live process, by thread id, with its name. */
function threadCpuSecondsOf(pid: number): Map<number, { name: string; seconds: number }> {
  const fs = require("node:fs") as typeof import("node:fs");
  const threads = new Map<number, { name: string; seconds: number }>();
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        threads.set(Number(tid), { name, seconds: (Number(fields[11]) + Number(fields[12])) / 100 });
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    // the process ended
  }
  return threads;
}

/**
 * CPU per thread name between two samples ("main" for the process's first thread): where a
 * probe's time goes, the main thread against the capture Worker, the JIT and the GC helpers.
 */
function threadShares(before: Map<number, { name: string; seconds: number }>, after: Map<number, { name: string; seconds: number }>): Map<string, number> {
  const byName = new Map<string, number>();
  const mainTid = Math.min(...after.keys());
  for (const [tid, now] of after) {
    const name = tid === mainTid ? "main" : now.name;
    byName.set(name, (byName.get(name) ?? 0) + now.seconds - (before.get(tid)?.seconds ?? 0));
  }
  return byName;
}

/** Lone packets in the latency run, and the gap between them (not a multiple of the flush interval). */
const LONE_PACKETS = 20;
const LONE_GAP_MS = 137;

/**
 * The latency bound: lone packets on an idle lo, each timed from the sender's send() to the
 * moment its record arrives on the capture's standard output (`-w -`, read by this process).
 * Prints median and maximum milliseconds.
 */
async function loneLatency(label: string, argv: string[], port: number, env?: Record<string, string>): Promise<void> {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "ignore", ...(env ? { env: { ...process.env, ...env } } : {}) });
  let bytes = 0;
  const waiter: { arrived: (() => void) | null } = { arrived: null };
  const reading = (async () => {
    for await (const chunk of proc.stdout) {
      bytes += chunk.byteLength;
      waiter.arrived?.();
    }
  })();
  const sender = await Bun.udpSocket({});
  const sink = await Bun.udpSocket({ hostname: "127.0.0.1", port });
  const latencies: number[] = [];
  try {
    await Bun.sleep(1500); // capture open, file header written
    for (let i = 0; i < LONE_PACKETS; i++) {
      const before = bytes;
      const got = new Promise<void>((resolve) => (waiter.arrived = () => void (bytes > before + 16 && resolve())));
      const sentAt = performance.now();
      sender.send(new Uint8Array(64), port, "127.0.0.1");
      const timedOut = await Promise.race([got.then(() => false), Bun.sleep(2000).then(() => true)]);
      latencies.push(timedOut ? Infinity : performance.now() - sentAt);
      await Bun.sleep(LONE_GAP_MS);
    }
  } finally {
    sender.close();
    sink.close();
    proc.kill("SIGINT");
    await proc.exited;
    await reading.catch(() => {});
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const max = sorted[sorted.length - 1]!;
  console.log(`lone packet to consumer, ${label}: median ${median.toFixed(1)} ms, max ${Number.isFinite(max) ? `${max.toFixed(1)} ms` : "lost (2 s timeout)"} (${LONE_PACKETS} packets ${LONE_GAP_MS} ms apart)`);
}

/** Live rows with CPU per million packets both ways: whole process, and while listening only. */
function printLiveTable(title: string, rows: LiveMeasurement[]): void {
  printTable(title, rows);
  console.log("\nCPU s per 1M packets excluding start-up and shutdown (sampled from /proc/PID/stat once listening and after the load):");
  for (const r of rows) {
    const perMillion = r.steadyPackets > 0 ? ((r.steadyCpuSeconds / r.steadyPackets) * 1e6).toFixed(3) : "-";
    const threads = [...r.steadyByThread].filter(([, seconds]) => seconds > 0).map(([name, seconds]) => `${name} ${seconds.toFixed(2)}`).join(", ");
    console.log(`  ${r.name.padEnd(58)} ${perMillion.padStart(7)}   (${r.steadyCpuSeconds.toFixed(2)} CPU s while listening${threads ? `: ${threads}` : ""})`);
  }
}

/**
 * The probe variants measured: each engine; the ring read by its native capture thread (the
 * default; its code prebuilt by cc, or compiled by TinyCC at start), by a capture Worker (with either block walker) and on the main thread.
 * BENCH_CAPTURE_VARIANTS (labels separated by ";") keeps only some.
 */
const ALL_PROBE_VARIANTS: { label: string; engine: string; env?: Record<string, string>; args?: string[] }[] = [
  { label: "ring, native thread", engine: "ring", env: { PROBE_CAPTURE_THREAD: "native" } },
  { label: "ring, native thread, TinyCC's code", engine: "ring", env: { PROBE_CAPTURE_THREAD: "native", PROBE_RING_NATIVE: "tinycc" } },
  { label: "ring, native thread, -B 4096", engine: "ring", env: { PROBE_CAPTURE_THREAD: "native" }, args: ["-B", "4096"] },
  { label: "ring, worker", engine: "ring", env: { PROBE_CAPTURE_THREAD: "worker" } },
  { label: "ring, worker, JavaScript walker", engine: "ring", env: { PROBE_CAPTURE_THREAD: "worker", PROBE_RING_WALKER: "js" } },
  { label: "ring, main thread", engine: "ring", env: { PROBE_CAPTURE_THREAD: "main" } },
  { label: "libpcap", engine: "libpcap" },
];
const VARIANT_FILTER = process.env.BENCH_CAPTURE_VARIANTS?.split(";");
const PROBE_VARIANTS = VARIANT_FILTER ? ALL_PROBE_VARIANTS.filter((v) => VARIANT_FILTER.includes(v.label)) : ALL_PROBE_VARIANTS;

async function liveRows(port: number, filter: string, packets: number, withIdle: boolean, warmup = 0): Promise<LiveMeasurement[]> {
  const rows: LiveMeasurement[] = [];
  rows.push(await liveRun("tcpdump -i lo -w /dev/null", ["tcpdump", "-i", "lo", "-w", "/dev/null", filter], port, packets, undefined, warmup));
  for (const variant of PROBE_VARIANTS) {
    const argv = [probeBinary, "capture", "--capture-engine", variant.engine, ...(variant.args ?? []), "-i", "lo", "-w", "/dev/null", filter];
    rows.push(await liveRun(`probe capture -i lo -w /dev/null (${variant.label})`, argv, port, packets, variant.env, warmup));
  }
  if (PROBE_BEFORE) {
    rows.push(await liveRun("probe before (BENCH_PROBE_BEFORE)", [PROBE_BEFORE, "capture", "-i", "lo", "-w", "/dev/null", filter], port, packets, undefined, warmup));
  }
  if (!withIdle) return rows;
  rows.push(await liveRun("tcpdump, no traffic", ["tcpdump", "-i", "lo", "-w", "/dev/null", filter], port, 0));
  for (const variant of PROBE_VARIANTS) {
    const argv = [probeBinary, "capture", "--capture-engine", variant.engine, ...(variant.args ?? []), "-i", "lo", "-w", "/dev/null", filter];
    rows.push(await liveRun(`probe (${variant.label}), no traffic`, argv, port, 0, variant.env));
  }
  return rows;
}

export async function benchCapture(): Promise<void> {
  const port = 40000 + Math.floor(Math.random() * 10000);
  const filter = `udp dst port ${port}`;
  if (PARTS.has("live")) {
    printLiveTable(`live capture on lo: ${LIVE_PACKETS} UDP packets of ${LIVE_PAYLOAD_BYTES} payload bytes, max rate`, await liveRows(port, filter, LIVE_PACKETS, true));
    console.log("(whole-process CPU per packet includes each program's start-up and idle cost, shown in the 'no traffic' rows)");
  }
  if (PARTS.has("large")) {
    printLiveTable(`live capture on lo: ${LARGE_LIVE_PACKETS} UDP packets of ${LIVE_PAYLOAD_BYTES} payload bytes, max rate (at most 60 s)`, await liveRows(port, filter, LARGE_LIVE_PACKETS, false, LARGE_WARMUP_PACKETS));
  }
  if (PARTS.has("long")) {
    printLiveTable(`live capture on lo: ${LONG_LIVE_PACKETS} UDP packets of ${LIVE_PAYLOAD_BYTES} payload bytes, max rate (at most 60 s)`, await liveRows(port, filter, LONG_LIVE_PACKETS, false, LARGE_WARMUP_PACKETS));
  }
  if (PARTS.has("busy")) await benchBusyMainThread(port);
  if (PARTS.has("latency")) {
    const lonePort = port + 7;
    const filter = `udp dst port ${lonePort}`;
    await loneLatency("tcpdump --immediate-mode -U -w -", ["tcpdump", "--immediate-mode", "-U", "-w", "-", "-i", "lo", filter], lonePort);
    await loneLatency("probe capture -w - (ring, native thread; flush interval 10 ms)", [probeBinary, "capture", "-i", "lo", "-w", "-", filter], lonePort);
    await loneLatency("probe capture -w - (libpcap engine)", [probeBinary, "capture", "--capture-engine", "libpcap", "-i", "lo", "-w", "-", filter], lonePort);
  }
  if (!PARTS.has("fanout") && !PARTS.has("idle") && !PARTS.has("file")) return;
  if (PARTS.has("fanout")) await benchFanout(port);
  console.log("");
  if (PARTS.has("idle")) {
    await benchServeIdle(probeBinary, "ring engine, native thread", { PROBE_CAPTURE_THREAD: "native" });
    await benchServeIdle(probeBinary, "ring engine, worker", { PROBE_CAPTURE_THREAD: "worker" });
    await benchServeIdle(probeBinary, "ring engine, main thread", { PROBE_CAPTURE_THREAD: "main" });
    if (PROBE_BEFORE) await benchServeIdle(PROBE_BEFORE, "BENCH_PROBE_BEFORE");
  }
  if (!PARTS.has("file")) return;

  const dir = mkdtempSync(join(tmpdir(), "probe-bench-"));
  try {
    const big = join(dir, "big.pcap");
    await makeBigFile(big, FILE_PACKETS);
    const file: Measurement[] = [];
    file.push(await fileRun("tcpdump -r big.pcap -w /dev/null", ["tcpdump", "-r", big, "-w", "/dev/null"], FILE_PACKETS));
    file.push(await fileRun("probe capture -r big.pcap -w /dev/null", [probeBinary, "capture", "-q", "-r", big, "-w", "/dev/null"], FILE_PACKETS));
    file.push(await fileRun("tcpdump -r big.pcap -w /dev/null udp", ["tcpdump", "-r", big, "-w", "/dev/null", "udp"], FILE_PACKETS));
    file.push(await fileRun("probe capture -r big.pcap -w /dev/null udp", [probeBinary, "capture", "-q", "-r", big, "-w", "/dev/null", "udp"], FILE_PACKETS));
    printTable(`file replay: ${FILE_PACKETS} packets (${(Bun.file(big).size / 1e6).toFixed(0)} MB)`, file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchCapture();
