// RPCAP benchmark (npm run bench -- rpcap): a bounded loopback load forwarded through
// `probe rpcapd` to the project's RPCAP client: packets delivered, daemon CPU per million
// packets, bytes on the data channel per packet, daemon peak RSS. With RPCAPD_REF=/path/rpcapd
// (a libpcap rpcapd build) the same load goes through it in the same run; with
// BENCH_PROBE_BEFORE=/path/probe (e.g. built from an earlier commit) that probe too.
// BENCH_RPCAP_RATES=20000,50000,0 picks the rates; BENCH_RPCAP_TCPDUMP=/path/tcpdump reads
// through libpcap's client instead of ours (scripts/bench/build-reference-rpcapd.sh builds both).
import { compileFilter } from "../../src/capture/libpcap/compile-filter.ts";
import { RpcapClient } from "../../src/protocols/rpcap/index.ts";
import { cpuOfTree, descendants, freePort, parseSummary, printTable, probeBinary, startsCold, udpLoad, watchPeakRss, type Measurement } from "./support/measure.ts";

const PACKETS = Number(process.env.BENCH_RPCAP_PACKETS ?? 300_000);
const PAYLOAD_BYTES = 100;
/** BENCH_RPCAP_TCPDUMP=/path/tcpdump: libpcap's client instead of the project's. */
const TCPDUMP = process.env.BENCH_RPCAP_TCPDUMP;
/** Paced rates (packets/s; 0 = as fast as the load process sends). A low rate is included so
 * there is a rate where libpcap's rpcapd is lossless (issue 14's "lossless wherever rpcapd is"). */
const RATES = (process.env.BENCH_RPCAP_RATES ?? "20000,50000,0").split(",").map(Number);
/**
 * Packets sent through each daemon before measuring (not counted): a daemon runs for days, and
 * probe's JavaScript is compiled by the JIT during its first ~second of traffic (measured: the
 * JIT's threads took 12 of 77 ticks of a 300,000-packet run at 20,000/s, 1 of 62 after this
 * warm-up). Like start-up, that is a one-time cost, not a per-packet one. 0 turns it off.
 */
const WARMUP_PACKETS = Number(process.env.BENCH_RPCAP_WARMUP ?? 100_000);

/** A port nobody listens on now (the kernel picks it), so waitForPort cannot reach another helper's daemon. */
async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      s.end();
      return;
    } catch {
      await Bun.sleep(50);
    }
  }
  throw new Error(`daemon on ${port} did not start`);
}

/** Which RPCAP client reads the capture: the project's (default) or libpcap's tcpdump. */
interface BenchClient {
  /** True once `sent` packets arrived. */
  done(sent: number): boolean;
  /** Ends the session; kernelDrops is the daemon's pcap_stats ps_drop + ps_ifdrop. */
  finish(): Promise<{ received: number; kernelDrops?: number; wire: string }>;
}

async function projectClient(port: number, sinkPort: number): Promise<BenchClient> {
  const client = await RpcapClient.connect({ host: "127.0.0.1", port });
  await client.authenticate();
  await client.open("lo");
  let received = 0;
  let wireBytes = 0;
  await client.startCapture({
    snaplen: 65535,
    filter: compileFilter(`udp dst port ${sinkPort}`, 1, 65535),
    onBatch: (batch) => {
      received += batch.count;
      wireBytes += batch.bytes.byteLength + batch.count * (28 - 16);
    },
  });
  return {
    done: (sent) => received >= sent,
    async finish() {
      const stats = await client.stats().catch(() => undefined);
      client.close();
      return {
        received,
        kernelDrops: stats ? stats.krnldrop + stats.ifdrop : undefined,
        wire: `${(wireBytes / Math.max(1, received)).toFixed(1)} data-channel bytes/pkt`,
      };
    },
  };
}

/**
 * libpcap's own client (issue 14 names it): a tcpdump built against a libpcap with remote
 * capture (Debian's is not; scripts/bench/build-reference-rpcapd.sh builds one). It writes
 * pcap to our pipe (-U: per packet) and runs until finish(): were it to exit by itself (-c),
 * libpcap's rpcapd would end the session's process before its CPU time is read.
 */
async function tcpdumpClient(tcpdump: string, port: number, sinkPort: number): Promise<BenchClient> {
  const proc = Bun.spawn([tcpdump, "-i", `rpcap://127.0.0.1:${port}/lo`, "-s", "65535", "-U", "-w", "-", `udp dst port ${sinkPort}`], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const recordBytes = 16 + 14 + 20 + 8 + PAYLOAD_BYTES; // pcap record header + Ethernet/IPv4/UDP frame
  let stdoutBytes = 0;
  let stderr = "";
  const reading = Promise.all([
    (async () => {
      for await (const chunk of proc.stdout) stdoutBytes += chunk.byteLength;
    })(),
    (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stderr) stderr += decoder.decode(chunk, { stream: true });
    })(),
  ]);
  const received = () => Math.max(0, Math.floor((stdoutBytes - 24) / recordBytes)); // 24: pcap file header
  const deadline = Date.now() + 10_000;
  while (!stderr.includes("listening on") && proc.exitCode === null && Date.now() < deadline) await Bun.sleep(20);
  if (!stderr.includes("listening on")) {
    proc.kill("SIGKILL");
    throw new Error(`tcpdump did not start: ${stderr.trim()}`);
  }
  return {
    done: (sent) => received() >= sent,
    async finish() {
      proc.kill("SIGINT");
      await proc.exited;
      await reading;
      return { received: received(), kernelDrops: parseSummary(stderr).drops, wire: "tcpdump client" };
    },
  };
}

async function runDaemon(name: string, argv: (port: number) => string[], rate: number): Promise<Measurement> {
  const port = await freePort();
  const daemonArgv = argv(port);
  startsCold(daemonArgv[0]!);
  const daemon = Bun.spawn(daemonArgv, { stdout: "ignore", stderr: "ignore" });
  const rss = watchPeakRss(daemon.pid);
  const childRss: { stop(): number }[] = [];
  try {
    await waitForPort(port);
    if (daemon.exitCode !== null) throw new Error(`${name} exited with ${daemon.exitCode} (port ${port} taken?)`);
    const sink = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
    const client = TCPDUMP ? await tcpdumpClient(TCPDUMP, port, sink.port) : await projectClient(port, sink.port);
    await Bun.sleep(300);
    const tree = descendants(daemon.pid); // includes a forked per-connection child
    // libpcap's rpcapd captures in that child: its memory counts too (summed: an upper bound,
    // pages shared with the parent after fork are counted twice).
    for (const pid of tree.slice(1)) childRss.push(watchPeakRss(pid));
    let warm = 0;
    if (WARMUP_PACKETS > 0) {
      warm = (await udpLoad(sink.port, WARMUP_PACKETS, PAYLOAD_BYTES, rate)).sent;
      const warmDeadline = Date.now() + 5000;
      while (!client.done(warm) && Date.now() < warmDeadline) await Bun.sleep(50);
    }
    const cpuBefore = cpuOfTree(tree);
    const load = await udpLoad(sink.port, PACKETS, PAYLOAD_BYTES, rate);
    const deadline = Date.now() + 5000;
    while (!client.done(warm + load.sent) && Date.now() < deadline) await Bun.sleep(50);
    const cpu = cpuOfTree(tree) - cpuBefore;
    const { received: receivedInAll, kernelDrops, wire } = await client.finish();
    const received = receivedInAll - warm; // a loss during the warm-up counts here too
    sink.close();
    return {
      name,
      packets: received,
      seconds: load.seconds,
      cpuSeconds: cpu,
      peakRssMiB: rss.stop() + childRss.reduce((n, w) => n + w.stop(), 0),
      kernelDrops,
      note: `${load.sent} sent at ${Math.round(load.sent / load.seconds)}/s; ${wire}; ${received === load.sent ? "lossless" : `${load.sent - received} lost`}${cpu === 0 ? "; CPU read as 0: the capturing process was not in the tree" : ""}`,
    };
  } finally {
    for (const w of childRss) w.stop();
    daemon.kill("SIGTERM");
    await daemon.exited;
  }
}

export async function benchRpcap(): Promise<void> {
  const rows: Measurement[] = [];
  for (const rate of RATES) {
    const label = rate ? `${rate}/s` : "max rate";
    const flags = (port: number) => ["-n", "-4", "-b", "127.0.0.1", "-p", String(port)];
    rows.push(await runDaemon(`probe rpcapd (${label})`, (port) => [probeBinary, "rpcapd", ...flags(port)], rate));
    const before = process.env.BENCH_PROBE_BEFORE;
    if (before) rows.push(await runDaemon(`probe rpcapd before (${label})`, (port) => [before, "rpcapd", ...flags(port)], rate));
    const reference = process.env.RPCAPD_REF;
    if (reference) {
      // setsid: libpcap's rpcapd answers SIGTERM with kill(0, SIGKILL), its whole process
      // group, which would otherwise be ours. Its per-connection child is forked, so CPU and
      // RSS are read for the process tree.
      rows.push(await runDaemon(`reference rpcapd (${label})`, (port) => ["setsid", reference, ...flags(port)], rate));
    }
  }
  const client = TCPDUMP ? `libpcap's client (${TCPDUMP})` : "our client";
  printTable(`RPCAP: ${PACKETS} UDP packets of ${PAYLOAD_BYTES} payload bytes on lo through the daemon to ${client} (CPU = daemon only, after a warm-up of ${WARMUP_PACKETS} packets)`, rows);
  if (!process.env.RPCAPD_REF) console.log("(set RPCAPD_REF=/path/to/rpcapd to measure libpcap's rpcapd beside it)");
}

if (import.meta.main) await benchRpcap();
