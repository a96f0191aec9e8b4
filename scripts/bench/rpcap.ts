// RPCAP benchmark (npm run bench -- rpcap): a bounded loopback load forwarded through
// `probe rpcapd` to the project's RPCAP client: packets delivered, daemon CPU per million
// packets, bytes on the data channel per packet, daemon peak RSS. With RPCAPD_REF=/path/rpcapd
// (a libpcap rpcapd build) the same load goes through it in the same run; with
// BENCH_PROBE_BEFORE=/path/probe (e.g. built from an earlier commit) that probe too.
import { compileFilter } from "../../src/capture/libpcap/compile-filter.ts";
import { RpcapClient } from "../../src/protocols/rpcap/index.ts";
import { cpuOfTree, descendants, printTable, probeBinary, udpLoad, watchPeakRss, type Measurement } from "./support/measure.ts";

const PACKETS = Number(process.env.BENCH_RPCAP_PACKETS ?? 300_000);
const PAYLOAD_BYTES = 100;

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

async function runDaemon(name: string, argv: string[], port: number, rate: number): Promise<Measurement> {
  const daemon = Bun.spawn(argv, { stdout: "ignore", stderr: "ignore" });
  const rss = watchPeakRss(daemon.pid);
  try {
    await waitForPort(port);
    const sinkPort = 30000 + Math.floor(Math.random() * 10000);
    const sink = await Bun.udpSocket({ hostname: "127.0.0.1", port: sinkPort });
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
    await Bun.sleep(300);
    const tree = descendants(daemon.pid); // includes a forked per-connection child
    const cpuBefore = cpuOfTree(tree);
    const load = await udpLoad(sinkPort, PACKETS, PAYLOAD_BYTES, rate);
    const deadline = Date.now() + 5000;
    while (received < load.sent && Date.now() < deadline) await Bun.sleep(50);
    const cpu = cpuOfTree(tree) - cpuBefore;
    client.close();
    sink.close();
    return {
      name,
      packets: received,
      seconds: load.seconds,
      cpuSeconds: cpu,
      peakRssMiB: rss.stop(),
      note: `${load.sent} sent at ${Math.round(load.sent / load.seconds)}/s; ${(wireBytes / Math.max(1, received)).toFixed(1)} data-channel bytes/pkt; ${received === load.sent ? "lossless" : `${load.sent - received} lost`}`,
    };
  } finally {
    daemon.kill("SIGTERM");
    await daemon.exited;
  }
}

export async function benchRpcap(): Promise<void> {
  const rows: Measurement[] = [];
  for (const rate of [50_000, 0]) {
    const label = rate ? `${rate}/s` : "max rate";
    const port = 42000 + Math.floor(Math.random() * 1000);
    rows.push(await runDaemon(`probe rpcapd (${label})`, [probeBinary, "rpcapd", "-n", "-4", "-b", "127.0.0.1", "-p", String(port)], port, rate));
    const before = process.env.BENCH_PROBE_BEFORE;
    if (before) {
      const beforePort = port + 500;
      rows.push(await runDaemon(`probe rpcapd before (${label})`, [before, "rpcapd", "-n", "-4", "-b", "127.0.0.1", "-p", String(beforePort)], beforePort, rate));
    }
    const reference = process.env.RPCAPD_REF;
    if (reference) {
      const refPort = port + 1000;
      // setsid: libpcap's rpcapd answers SIGTERM by killing its whole process group, which
      // would otherwise be ours. Its per-connection child is forked, so CPU is read for the
      // process tree.
      rows.push(await runDaemon(`reference rpcapd (${label})`, ["setsid", reference, "-n", "-4", "-b", "127.0.0.1", "-p", String(refPort)], refPort, rate));
    }
  }
  printTable(`RPCAP: ${PACKETS} UDP packets of ${PAYLOAD_BYTES} payload bytes on lo through the daemon to our client (CPU = daemon only)`, rows);
  if (!process.env.RPCAPD_REF) console.log("(set RPCAPD_REF=/path/to/rpcapd to measure libpcap's rpcapd beside it)");
}

if (import.meta.main) await benchRpcap();
