// The default serve mode with 1 PCAP-over-IP consumer + 4 RPCAP clients and a no-op hook: CPU
// per million packets of the probe process. Before issue 10 the hook ran once per consumer
// (5x per batch); now once. `bun run scripts/bench/serve.ts [PROBE_BINARY]` compares binaries.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileFilter } from "../../src/capture/libpcap/compile-filter.ts";
import { RpcapClient } from "../../src/protocols/rpcap/index.ts";
import { cpuSecondsOf, printTable, probeBinary, udpLoad, watchPeakRss, type Measurement } from "./support/measure.ts";

/** Packets per run: a few seconds on loopback, bounded. */
const PACKETS = 200_000;
const FRAME_PAYLOAD_BYTES = 64;
const RPCAP_CLIENTS = 4;

async function measure(binary: string, name: string): Promise<Measurement> {
  const dir = mkdtempSync(join(tmpdir(), "bench-serve-"));
  const hook = join(dir, "noop.js");
  writeFileSync(hook, "export default function () {}\n");
  const sink = await Bun.udpSocket({ hostname: "127.0.0.1" });
  const poip = 30000 + Math.floor(Math.random() * 10000);
  const rpcap = poip + 1;
  const proc = Bun.spawn([binary, "-i", "lo", "-f", `udp dst port ${sink.port}`, "--pcap-over-ip", `127.0.0.1:${poip}`, "--rpcap", `127.0.0.1:${rpcap}`, "--hook", hook], {
    stderr: "pipe",
    stdout: "ignore",
  });
  let log = "";
  void (async () => {
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) log += new TextDecoder().decode(chunk);
  })();
  const deadline = Date.now() + 15_000;
  while (!log.includes("Ctrl-C to stop") && Date.now() < deadline) await Bun.sleep(50);
  const rss = watchPeakRss(proc.pid);
  let poipBytes = 0;
  const stream = await Bun.connect({ hostname: "127.0.0.1", port: poip, socket: { data: (_s, d) => void (poipBytes += d.byteLength) } });
  const clients: RpcapClient[] = [];
  const received = new Array(RPCAP_CLIENTS).fill(0);
  for (let i = 0; i < RPCAP_CLIENTS; i++) {
    const client = await RpcapClient.connect({ host: "127.0.0.1", port: rpcap });
    await client.authenticate();
    await client.open("lo");
    await client.startCapture({ filter: compileFilter(`udp dst port ${sink.port}`, 1, 65535), onBatch: (b) => void (received[i] += b.count) });
    clients.push(client);
  }
  await Bun.sleep(300);
  const cpuBefore = cpuSecondsOf(proc.pid);
  const load = await udpLoad(sink.port, PACKETS, FRAME_PAYLOAD_BYTES);
  await Bun.sleep(1000);
  const cpu = cpuSecondsOf(proc.pid) - cpuBefore;
  for (const c of clients) c.close();
  stream.end();
  proc.kill("SIGTERM");
  await proc.exited;
  sink.close();
  rmSync(dir, { recursive: true, force: true });
  const captured = Number(/(\d+) packets? captured/.exec(log)?.[1] ?? load.sent);
  return {
    name,
    packets: load.sent,
    seconds: load.seconds,
    cpuSeconds: cpu,
    peakRssMiB: rss.stop(),
    note: `rpcap clients got ${received.join("/")}; poip ${Math.round(poipBytes / 1024)} KiB; captured ${Number.isNaN(captured) ? "?" : captured}`,
  };
}

export async function benchServe(binaries: string[] = [probeBinary]): Promise<void> {
  const rows: Measurement[] = [];
  for (const binary of binaries) rows.push(await measure(binary, `serve: 1 PCAP-over-IP + ${RPCAP_CLIENTS} RPCAP, no-op hook (${binary})`));
  printTable("serve mode, hook once per batch", rows);
}

if (import.meta.main) await benchServe(process.argv.length > 2 ? process.argv.slice(2) : [probeBinary]);
