// udpstr benchmark (npm run bench -- udpstr): for 64-, 200- and 1500-byte packets, datagrams
// and wire bytes per million packets for udpstr vs plain RPCAP-over-UDP vs the ideal packing,
// packing CPU per million packets, and an end-to-end forward -> collect run on lo.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PacketBatchBuilder, type PacketBatch } from "../../src/capture/packet-batch.ts";
import { syntheticFrame } from "../../src/capture/synthetic-source.ts";
import { CaptureFileWriter } from "../../src/outputs/capture-file/capture-file-writer.ts";
import { encodePacketMessages } from "../../src/protocols/rpcap/index.ts";
import { UdpstrPacker } from "../../src/protocols/udpstr/index.ts";
import { probeBinary } from "./support/measure.ts";

const MTU = 1472;
/** IPv4 + UDP headers on the wire for each datagram (fragments add 20 each). */
const IP_UDP = 28;
const PACKETS = 1_000_000;
const BATCH = 1024;

function batchOf(frameBytes: number, count: number): PacketBatch {
  const b = new PacketBatchBuilder(1, "micro", count * (frameBytes + 16));
  const frame = syntheticFrame(0, frameBytes);
  for (let i = 0; i < count; i++) b.push(1_700_000_000, i, frameBytes, frame);
  return b.take()!;
}

/** IP datagrams (fragments counted) and wire bytes for one UDP payload of `bytes` on a 1500 MTU link. */
function onWire(bytes: number): { packets: number; wireBytes: number } {
  const fragments = Math.max(1, Math.ceil((bytes + 8) / 1480));
  return { packets: fragments, wireBytes: bytes + 8 + 20 * fragments };
}

export async function benchUdpstr(): Promise<void> {
  console.log(`\n## udpstr packing, ${PACKETS.toLocaleString("en-US")} packets per size, MTU ${MTU}`);
  console.log("| frame bytes | scheme | datagrams per 1M pkts | IP fragments per 1M | wire bytes per pkt | vs ideal datagrams | CPU s per 1M pkts |");
  console.log("|---|---|---|---|---|---|---|");
  for (const frameBytes of [64, 200, 1500]) {
    const batch = batchOf(frameBytes, BATCH);
    const rounds = PACKETS / BATCH;
    // udpstr
    const packer = new UdpstrPacker({ mtuBytes: MTU });
    let datagrams = 0;
    let ipPackets = 0;
    let wire = 0;
    const started = process.cpuUsage();
    for (let r = 0; r < rounds; r++) {
      for (const d of packer.push(batch, r * BATCH + 1)) {
        datagrams++;
        const w = onWire(d.byteLength);
        ipPackets += w.packets;
        wire += w.wireBytes;
      }
    }
    for (const d of packer.flush()) {
      datagrams++;
      wire += onWire(d.byteLength).wireBytes;
    }
    const cpu = process.cpuUsage(started);
    const ideal = Math.ceil((PACKETS * (20 + frameBytes)) / (MTU - 8));
    const row = (scheme: string, dg: number, ip: number, w: number, seconds: number) =>
      console.log(`| ${frameBytes} | ${scheme} | ${dg.toLocaleString("en-US")} | ${ip.toLocaleString("en-US")} | ${(w / PACKETS).toFixed(1)} | ${((dg / ideal - 1) * 100).toFixed(2)}% | ${seconds.toFixed(2)} |`);
    row("udpstr", datagrams, ipPackets, wire, (cpu.user + cpu.system) / 1e6);
    // plain RPCAP over UDP: one message per datagram
    let plainIp = 0;
    let plainWire = 0;
    const plainStarted = process.cpuUsage();
    for (let r = 0; r < rounds; r++) {
      const { ends } = encodePacketMessages(batch, r * BATCH + 1);
      let start = 0;
      for (const end of ends) {
        const w = onWire(end - start);
        plainIp += w.packets;
        plainWire += w.wireBytes;
        start = end;
      }
    }
    const plainCpu = process.cpuUsage(plainStarted);
    row("plain RPCAP/UDP", PACKETS, plainIp, plainWire, (plainCpu.user + plainCpu.system) / 1e6);
    console.log(`| ${frameBytes} | ideal | ${ideal.toLocaleString("en-US")} | ${ideal.toLocaleString("en-US")} | ${((ideal * (MTU + IP_UDP)) / PACKETS).toFixed(1)} | 0% | - |`);
  }

  // End to end on lo: probe forward -r FILE (as fast as the socket takes it) -> probe collect.
  const dir = mkdtempSync(join(tmpdir(), "probe-bench-udpstr-"));
  try {
    const file = join(dir, "in.pcap");
    const count = 200_000;
    const writer = await CaptureFileWriter.open({ target: file, format: "pcap", linktype: 1, snaplen: 262144, precision: "micro" });
    await writer.write(batchOf(200, count));
    await writer.close();
    const port = 46000 + Math.floor(Math.random() * 1000);
    const collect = Bun.spawn([probeBinary, "collect", "--report-seconds", "0", "--udpstr-listen", `127.0.0.1:${port}`, "-w", "/dev/null"], { stderr: "pipe" });
    const collectLog = new Response(collect.stderr).text();
    await Bun.sleep(500);
    const t0 = performance.now();
    const forward = Bun.spawn([probeBinary, "forward", "--udpstr", `127.0.0.1:${port}`, "-r", file, "--sndbuf", String(8 << 20)], { stderr: "pipe" });
    const forwardLog = await new Response(forward.stderr).text();
    await forward.exited;
    const seconds = (performance.now() - t0) / 1000;
    const forwardCpu = forward.resourceUsage()!.cpuTime.total;
    await Bun.sleep(500);
    collect.kill("SIGINT");
    await collect.exited;
    console.log(`\nforward -> collect on lo, ${count} packets of 200 bytes at full speed: ${Math.round(count / seconds).toLocaleString("en-US")} packets/s, forwarder ${(Number(forwardCpu) / 1e6 / (count / 1e6)).toFixed(2)} CPU s per 1M packets (incl. start-up)`);
    console.log(`  forward: ${forwardLog.trim().split("\n").at(-1)}`);
    console.log(`  collect: ${(await collectLog).trim().split("\n").at(-1)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchUdpstr();
