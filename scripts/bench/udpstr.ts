// udpstr benchmark (npm run bench -- udpstr): for 64-, 200- and 1500-byte packets, datagrams
// and wire bytes per million packets for udpstr vs plain RPCAP-over-UDP vs the ideal packing,
// packing CPU per million packets, and an end-to-end forward -> collect run on lo.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PacketBatchBuilder, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { syntheticFrame } from "../../src/capture/synthetic-source.ts";
import { CaptureFileWriter } from "../../src/outputs/capture-file/capture-file-writer.ts";
import { encodePacketMessages } from "../../src/protocols/rpcap/index.ts";
import { IovLayout, UdpstrPacker } from "../../src/protocols/udpstr/index.ts";
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
    const ideal = Math.ceil((PACKETS * (20 + frameBytes)) / (MTU - 8));
    const row = (scheme: string, dg: number, ip: number, w: number, seconds: number) =>
      console.log(`| ${frameBytes} | ${scheme} | ${dg.toLocaleString("en-US")} | ${ip.toLocaleString("en-US")} | ${(w / PACKETS).toFixed(1)} | ${((dg / ideal - 1) * 100).toFixed(2)}% | ${seconds.toFixed(2)} |`);
    for (const layout of [IovLayout.SINGLE_THREADED, IovLayout.DENSE]) {
      const packer = new UdpstrPacker({ mtuBytes: MTU, iovLayout: layout });
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
    row(layout === IovLayout.DENSE ? "udpstr dense (probe forward)" : "udpstr ExtraHop-exact (rpcapd -t)", datagrams, ipPackets, wire, (cpu.user + cpu.system) / 1e6);
    }
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

  // End to end on lo: probe forward -r FILE --realtime (the file's timestamps set the rate)
  // -> probe collect; the sender is lossless at a rate when the collector counts no loss.
  const dir = mkdtempSync(join(tmpdir(), "probe-bench-udpstr-"));
  try {
    console.log("\n## forward -> collect on lo, 100,000 packets of 200 bytes, paced by --realtime");
    console.log("| rate (pkts/s) | achieved pkts/s | forwarder CPU s per 1M pkts | datagrams | collector report |");
    console.log("|---|---|---|---|---|");
    for (const rate of [50_000, 100_000, 200_000]) {
      const count = 100_000;
      const file = join(dir, `in-${rate}.pcap`);
      const writer = await CaptureFileWriter.open({ target: file, format: "pcap", linktype: 1, snaplen: 262144, precision: "micro" });
      const builder = new PacketBatchBuilder(1, "micro", count * 220);
      const frame = syntheticFrame(0, 200);
      for (let i = 0; i < count; i++) {
        const us = Math.floor((i * 1e6) / rate);
        builder.push(1_700_000_000 + Math.floor(us / 1e6), us % 1e6, 200, frame);
      }
      await writer.write(builder.take()!);
      await writer.close();
      const port = 46000 + Math.floor(Math.random() * 1000);
      const collect = Bun.spawn([probeBinary, "collect", "--report-seconds", "0", "--udpstr-listen", `127.0.0.1:${port}`, "-w", "/dev/null"], { stderr: "pipe" });
      const collectLog = new Response(collect.stderr).text();
      await Bun.sleep(500);
      const t0 = performance.now();
      const forward = Bun.spawn([probeBinary, "forward", "--realtime", "--udpstr", `127.0.0.1:${port}`, "-r", file], { stderr: "pipe" });
      const forwardLog = await new Response(forward.stderr).text();
      await forward.exited;
      const seconds = (performance.now() - t0) / 1000;
      const forwardCpu = Number(forward.resourceUsage()!.cpuTime.total) / 1e6;
      await Bun.sleep(2000); // let the collector drain its socket before it reports
      collect.kill("SIGINT");
      await collect.exited;
      const datagrams = /in (\d+) datagrams/.exec(forwardLog)?.[1] ?? "?";
      console.log(`| ${rate.toLocaleString("en-US")} | ${Math.round(count / seconds).toLocaleString("en-US")} | ${(forwardCpu / (count / 1e6)).toFixed(2)} | ${datagrams} | ${(await collectLog).trim().split("\n").at(-1)} |`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchUdpstr();
