// PCAP-over-IP benchmark (npm run bench -- pcap-over-ip): the same bounded loopback load served
// by `probe pcap-over-ip` and by the classic pipeline `tcpdump -U -w - | socat - TCP-LISTEN`,
// with 1 and 8 consumers: packets each consumer received, server CPU per million packets
// (all processes of the pipeline), peak RSS.
import { CaptureFileReader } from "../../src/protocols/pcap/index.ts";
import { cpuOfTree, descendants, printTable, probeBinary, udpLoad, watchPeakRss, type Measurement } from "./support/measure.ts";

const PACKETS = Number(process.env.BENCH_POIP_PACKETS ?? 200_000);
const PAYLOAD = 200;

async function consumer(port: number): Promise<{ packets: () => number; close(): void }> {
  const reader = new CaptureFileReader();
  let packets = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      const socket = await Bun.connect({
        hostname: "127.0.0.1",
        port,
        socket: { data: (_s, chunk) => reader.push(new Uint8Array(chunk), (b) => void (packets += b.count)) },
      });
      return { packets: () => packets, close: () => socket.end() };
    } catch (error) {
      if (attempt > 50) throw error;
      await Bun.sleep(100);
    }
  }
}

async function measure(name: string, start: (sinkPort: number) => Promise<{ pids: () => number[]; ports: number[]; stop(): Promise<void> }>, consumers: number): Promise<Measurement> {
  const sinkPort = 31000 + Math.floor(Math.random() * 5000);
  const sink = await Bun.udpSocket({ hostname: "127.0.0.1", port: sinkPort });
  const server = await start(sinkPort);
  const rssWatchers = server.pids().map((pid) => watchPeakRss(pid));
  const clients = [];
  for (let i = 0; i < consumers; i++) clients.push(await consumer(server.ports[i % server.ports.length]!));
  await Bun.sleep(1000);
  const pids = server.pids();
  const cpuBefore = cpuOfTree(pids);
  const load = await udpLoad(sinkPort, PACKETS, PAYLOAD);
  const deadline = Date.now() + 5000;
  while (clients.some((c) => c.packets() < load.sent) && Date.now() < deadline) await Bun.sleep(50);
  const cpu = cpuOfTree(pids) - cpuBefore;
  const got = clients.map((c) => c.packets());
  for (const c of clients) c.close();
  await server.stop();
  sink.close();
  const rss = rssWatchers.reduce((n, w) => n + w.stop(), 0);
  const worst = Math.min(...got);
  return {
    name: `${name}, ${consumers} consumer${consumers > 1 ? "s" : ""}`,
    packets: worst,
    seconds: load.seconds,
    cpuSeconds: cpu,
    peakRssMiB: rss,
    note: `${load.sent} sent at ${Math.round(load.sent / load.seconds)}/s; worst consumer got ${worst}${worst === load.sent ? " (lossless)" : ""}`,
  };
}

async function startProbe(sinkPort: number) {
  const port = 47000 + Math.floor(Math.random() * 1000);
  const proc = Bun.spawn([probeBinary, "pcap-over-ip", "-i", "lo", "-f", `udp dst port ${sinkPort}`, "--listen", `127.0.0.1:${port}`], { stdout: "ignore", stderr: "ignore" });
  await Bun.sleep(700);
  return { pids: () => [proc.pid], ports: [port], stop: async () => { proc.kill("SIGTERM"); await proc.exited; } };
}

function startPipelines(count: number) {
  return async (sinkPort: number) => {
    const shells: ReturnType<typeof Bun.spawn>[] = [];
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const port = 48000 + Math.floor(Math.random() * 1000) + i * 1000;
      ports.push(port);
      shells.push(Bun.spawn(["sh", "-c", `tcpdump -i lo -U -w - 'udp dst port ${sinkPort}' 2>/dev/null | socat - TCP-LISTEN:${port},reuseaddr,bind=127.0.0.1`], { stdout: "ignore", stderr: "ignore" }));
    }
    await Bun.sleep(700);
    return {
      pids: () => shells.flatMap((s) => descendants(s.pid)),
      ports,
      stop: async () => {
        for (const s of shells) for (const pid of descendants(s.pid).reverse()) try { process.kill(pid, "SIGTERM"); } catch {}
        await Promise.all(shells.map((s) => s.exited));
      },
    };
  };
}

export async function benchPcapOverIp(): Promise<void> {
  const rows: Measurement[] = [];
  rows.push(await measure("tcpdump -U -w - | socat", startPipelines(1), 1));
  rows.push(await measure("probe pcap-over-ip", startProbe, 1));
  rows.push(await measure("8 x (tcpdump | socat)", startPipelines(8), 8));
  rows.push(await measure("probe pcap-over-ip", startProbe, 8));
  printTable(`PCAP-over-IP: ${PACKETS} UDP packets of ${PAYLOAD} payload bytes on lo (CPU = every server process)`, rows);
}

if (import.meta.main) await benchPcapOverIp();
