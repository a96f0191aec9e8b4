// RT benchmark (npm run bench -- rt): the same bounded loopback load served by `probe rt`
// unreliable, reliable with a memory fifo, reliable with a disk spool, beside `probe
// pcap-over-ip` (the anchor, measured in the same run). One consumer each: a raw RT client that
// acknowledges cumulatively once per socket read (as probe's rt:// input does per batch).
// Then: spool write amplification (spool bytes on disk per captured packet byte, no consumer)
// and recovery time after kill -9 with a large spool (BENCH_RT_RECOVERY_PACKETS of 1000-byte
// payloads; default 200 000, about 215 MB; the issue asks for 1 GB, which did not fit the time
// budget on a shared 2-core machine: set the variable to ~1 000 000 for it).
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CaptureFileReader } from "../../src/protocols/pcap/index.ts";
import { encodeAck, encodeStart, RtFramer } from "../../src/protocols/rt/index.ts";
import { cpuOfTree, printTable, probeBinary, udpLoad, watchPeakRss, type Measurement } from "./support/measure.ts";

const PACKETS = Number(process.env.BENCH_RT_PACKETS ?? 200_000);
const PAYLOAD = 200;
const RECOVERY_PACKETS = Number(process.env.BENCH_RT_RECOVERY_PACKETS ?? 200_000);
const RECOVERY_PAYLOAD = 1000;

interface Consumer {
  packets(): number;
  close(): void;
}

function rtConsumer(port: number): Promise<Consumer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const framer = new RtFramer(() => 0xffff);
    let packets = 0;
    let reliable = false;
    socket.on("error", reject);
    socket.on("data", (chunk: Buffer) => {
      let last = -1;
      for (const m of framer.push(chunk)) {
        if (m.type === 1) {
          reliable = m.body[0] === 1;
          socket.write(encodeStart());
          resolve({ packets: () => packets, close: () => socket.destroy() });
        } else if (m.type > 2000) {
          packets++;
          last = m.sequence;
        }
      }
      if (reliable && last >= 0) socket.write(encodeAck(last));
    });
  });
}

async function poipConsumer(port: number): Promise<Consumer> {
  const reader = new CaptureFileReader();
  let packets = 0;
  const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data: (_s, chunk) => reader.push(new Uint8Array(chunk), (b) => void (packets += b.count)) } });
  return { packets: () => packets, close: () => socket.end() };
}

async function startServer(args: string[]): Promise<{ proc: ReturnType<typeof Bun.spawn>; port: number; log: () => string }> {
  const proc = Bun.spawn([probeBinary, ...args, "--listen", "127.0.0.1:0"], { stdout: "ignore", stderr: "pipe" });
  let log = "";
  void (async () => {
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) log += new TextDecoder().decode(chunk);
  })();
  const deadline = Date.now() + 15_000;
  for (;;) {
    const match = /(?:on|serving PCAP-over-IP on) 127\.0\.0\.1:(\d+)/.exec(log);
    if (match) return { proc, port: Number(match[1]), log: () => log };
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`server did not start: ${log}`);
    await Bun.sleep(50);
  }
}

async function measure(name: string, args: (sinkPort: number) => string[], rt: boolean): Promise<Measurement> {
  const sink = await Bun.udpSocket({ hostname: "127.0.0.1" });
  const server = await startServer(args(sink.port));
  const rss = watchPeakRss(server.proc.pid);
  const consumer = rt ? await rtConsumer(server.port) : await poipConsumer(server.port);
  await Bun.sleep(1000);
  const cpuBefore = cpuOfTree([server.proc.pid]);
  const load = await udpLoad(sink.port, PACKETS, PAYLOAD);
  const deadline = Date.now() + 10_000;
  while (consumer.packets() < load.sent && Date.now() < deadline) await Bun.sleep(50);
  const cpu = cpuOfTree([server.proc.pid]) - cpuBefore;
  const got = consumer.packets();
  consumer.close();
  server.proc.kill("SIGTERM");
  await server.proc.exited;
  sink.close();
  return { name, packets: got, seconds: load.seconds, cpuSeconds: cpu, peakRssMiB: rss.stop(), note: `${load.sent} sent at ${Math.round(load.sent / load.seconds)}/s; consumer got ${got}${got === load.sent ? " (lossless)" : ""}` };
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, name) => n + statSync(join(dir, name)).size, 0);
}

async function spoolWithoutConsumer(dir: string, packets: number, payload: number) {
  const sink = await Bun.udpSocket({ hostname: "127.0.0.1" });
  const server = await startServer(["rt", "-i", "lo", "-f", `udp dst port ${sink.port}`, "--reliable", "--spool", dir, "--spool-max-bytes", "2GiB"]);
  const load = await udpLoad(sink.port, packets, payload);
  await Bun.sleep(2000);
  return { server, sink, load };
}

export async function benchRt(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "bench-rt-"));
  try {
    const rows: Measurement[] = [];
    const filter = (p: number) => ["-i", "lo", "-f", `udp dst port ${p}`];
    rows.push(await measure("probe pcap-over-ip (anchor)", (p) => ["pcap-over-ip", ...filter(p)], false));
    rows.push(await measure("probe rt, unreliable", (p) => ["rt", ...filter(p)], true));
    rows.push(await measure("probe rt --reliable, memory fifo", (p) => ["rt", ...filter(p), "--reliable"], true));
    rows.push(await measure("probe rt --reliable --spool", (p) => ["rt", ...filter(p), "--reliable", "--spool", join(root, "s1")], true));
    printTable(`RT: ${PACKETS} UDP packets of ${PAYLOAD} payload bytes on lo, one consumer (CPU = the server process)`, rows);

    // Write amplification: spool bytes per captured packet byte (frame = payload + 42 bytes of headers).
    const amp = await spoolWithoutConsumer(join(root, "s2"), 50_000, PAYLOAD);
    const spoolBytes = dirBytes(join(root, "s2"));
    const frameBytes = amp.load.sent * (PAYLOAD + 42);
    amp.server.proc.kill("SIGTERM");
    await amp.server.proc.exited;
    amp.sink.close();
    console.log(`spool write amplification: ${spoolBytes} bytes in the spool for ${amp.load.sent} packets of ${PAYLOAD + 42}-byte frames (${frameBytes} bytes): ${(spoolBytes / frameBytes).toFixed(3)}x (24-byte record header + 16-byte pcap record header per packet; no fsync)`);

    // Recovery after kill -9 with a large spool.
    const dir = join(root, "s3");
    const big = await spoolWithoutConsumer(dir, RECOVERY_PACKETS, RECOVERY_PAYLOAD);
    const bytes = dirBytes(dir);
    big.server.proc.kill("SIGKILL");
    await big.server.proc.exited;
    big.sink.close();
    const started = performance.now();
    const again = await startServer(["rt", "-i", "lo", "-f", "udp dst port 9", "--reliable", "--spool", dir, "--spool-max-bytes", "2GiB"]);
    const toListen = performance.now() - started;
    const recovered = /recovered (\d+) unacknowledged records .* in (\d+) ms/.exec(again.log());
    again.proc.kill("SIGTERM");
    await again.proc.exited;
    console.log(`recovery after kill -9: spool of ${(bytes / 1e6).toFixed(0)} MB; ${recovered ? `${recovered[1]} records recovered, spool scan ${recovered[2]} ms` : "(no recovery line)"}; process start to listening ${toListen.toFixed(0)} ms`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchRt();
