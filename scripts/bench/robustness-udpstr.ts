// udpstr red team (issue 21): a real `probe forward --udpstr` stream of 5,000 packets into
// `probe collect --udpstr-listen`, and at the same time 630 forged udpstr datagrams (well-formed
// records, seqnos guessing the forwarder's) from 630 source ports on 127.0.0.2-11 and 100,000
// random datagrams from 250 sockets (200 on 127.0.0.12-31, 50 on other ports of the forwarder's
// own 127.0.0.1). Before issue 21 this mix cost the forwarder 49 of its 5,000 packets, wrote
// 16,951 forged records into its file and a loss report of the mix. Scenarios: no --allow with
// the forwarder first; then, with and without --allow 127.0.0.1/32, the same mix plus 64
// squatters (well-formed senders on 127.0.0.2-5 that start first and keep sending, as many as
// the table holds): the limit docs/udpstr.md names, which --allow removes. Prints, per scenario, the forwarder's
// packets kept and lost in the file, whether they are byte-identical to the input in order,
// forged records in the file, the forwarder's own loss line, what the collector counted apart,
// and its peak RSS. Bounded: 5,000 packets at 1 ms (5 s) per scenario, under 60 s in all.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { syntheticFrame } from "../../src/capture/synthetic-source.ts";
import { PacketBatchBuilder, forEachRecord } from "../../src/packet/packet-batch.ts";
import { CaptureFileWriter } from "../../src/outputs/capture-file/capture-file-writer.ts";
import { readCaptureFile } from "../../src/protocols/pcap/index.ts";
import { probeBinary, watchPeakRss } from "./support/measure.ts";
import { prng } from "./support/prng.ts";

const PACKETS = 5_000;
const FORGED = 630;
const FORGER_ADDRESSES = Array.from({ length: 10 }, (_, i) => `127.0.0.${2 + i}`);
const RANDOM = Number(process.env.BENCH_UDPSTR_RANDOM ?? 100_000);
const RANDOM_STRANGER_ADDRESSES = Array.from({ length: 20 }, (_, i) => `127.0.0.${12 + i}`);
const RANDOM_SOCKETS_PER_STRANGER = 10;
const RANDOM_SOCKETS_OWN_ADDRESS = 50;
/** The attack is spread over this many rounds, ROUND_GAP_MS apart (about the forward's 5 s). */
const ROUNDS = 100;
const ROUND_GAP_MS = 50;
/** Squatters: senders that fill the table before the forwarder starts and stay active. */
const SQUATTER_ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
const SQUATTERS_PER_ADDRESS = 16;
/** Longest one scenario may take before it is abandoned (the whole run stays under 60 s). */
const SCENARIO_MAX_MS = 16_000;


/** A forged udpstr datagram: ver 0, type 110, firsthdridx 8, one whole 60-byte record of 0xEE. */
function forgedDatagram(seqno: number): Uint8Array {
  const d = new Uint8Array(8 + 20 + 60).fill(0xee);
  const dv = new DataView(d.buffer);
  dv.setUint8(0, 0);
  dv.setUint8(1, 110);
  dv.setUint16(2, 8);
  dv.setUint32(4, seqno >>> 0);
  dv.setUint32(8, 1_700_000_000);
  dv.setUint32(12, 0);
  dv.setUint32(16, 60);
  dv.setUint32(20, 60);
  dv.setUint32(24, (seqno + 1) >>> 0);
  return d;
}

async function writeInput(path: string): Promise<void> {
  const writer = await CaptureFileWriter.open({ target: path, format: "pcap", linktype: 1, snaplen: 262144, precision: "micro" });
  const builder = new PacketBatchBuilder(1, "micro");
  for (let i = 0; i < PACKETS; i++) {
    const frame = syntheticFrame(i, 60 + ((i * 263) % 1400));
    builder.push(1_700_000_000 + Math.floor(i / 1000), (i % 1000) * 1000, frame.byteLength, frame);
  }
  await writer.write(builder.take()!);
  await writer.close();
}

async function recordKeys(path: string): Promise<string[]> {
  const keys: string[] = [];
  for (const batch of (await readCaptureFile(path)).batches) {
    forEachRecord(batch, (r, bytes) => keys.push(`${r.tsSec}.${r.tsFrac}/${r.len}/${Buffer.from(bytes.subarray(r.dataOffset, r.dataOffset + r.caplen)).toString("hex")}`));
  }
  return keys;
}

async function udpPort(): Promise<number> {
  const socket = await Bun.udpSocket({ hostname: "127.0.0.1" });
  const port = socket.port;
  socket.close();
  return port;
}

interface Sent {
  forged: number;
  random: number;
}

/** Sends the forged datagrams from 630 fresh ports, FORGED / ROUNDS per round (or all at once). */
async function sendForged(port: number, random: () => number, perRound: number, sent: Sent): Promise<void> {
  for (let i = 0; i < perRound && sent.forged < FORGED; i++) {
    const socket = await Bun.udpSocket({ hostname: FORGER_ADDRESSES[sent.forged % FORGER_ADDRESSES.length]! });
    // Seqnos near where the forwarder's sequence is (it sends about one datagram per packet here).
    if (socket.send(forgedDatagram(Math.floor(random() * PACKETS)), port, "127.0.0.1")) sent.forged++;
    socket.close();
  }
}

interface Row {
  scenario: string;
  kept: number;
  lost: number;
  intact: boolean;
  forgedInFile: number;
  forwarderLine: string;
  apart: string;
  peakRssMiB: number;
  cpuSeconds: number;
  seconds: number;
}

async function scenario(name: string, dir: string, input: string, inputKeys: string[], collectorArgs: string[], squat: boolean): Promise<Row> {
  const started = performance.now();
  const port = await udpPort();
  const output = join(dir, `${name.replace(/\W+/g, "-")}.pcap`);
  const collector = Bun.spawn([probeBinary, "collect", "--report-seconds", "0", "--udpstr-listen", `127.0.0.1:${port}`, "-w", output, ...collectorArgs], { stdout: "ignore", stderr: "pipe" });
  const rss = watchPeakRss(collector.pid);
  let log = "";
  const reading = (async () => {
    for await (const chunk of collector.stderr as ReadableStream<Uint8Array>) log += new TextDecoder().decode(chunk);
  })();
  const deadline = started + SCENARIO_MAX_MS;
  while (!log.includes("receiving udpstr") && performance.now() < deadline) await Bun.sleep(20);

  const random = prng(Number(process.env.BENCH_SEED ?? 21));
  const sent: Sent = { forged: 0, random: 0 };
  const strangers = await Promise.all(RANDOM_STRANGER_ADDRESSES.flatMap((hostname) => Array.from({ length: RANDOM_SOCKETS_PER_STRANGER }, () => Bun.udpSocket({ hostname }))));
  const own = await Promise.all(Array.from({ length: RANDOM_SOCKETS_OWN_ADDRESS }, () => Bun.udpSocket({ hostname: "127.0.0.1" })));
  const randomSockets = [...strangers, ...own];
  const squatters = squat ? await Promise.all(SQUATTER_ADDRESSES.flatMap((hostname) => Array.from({ length: SQUATTERS_PER_ADDRESS }, () => Bun.udpSocket({ hostname })))) : [];
  let squatted = 0;
  const squatRound = (round: number) => {
    for (const socket of squatters) if (socket.send(forgedDatagram(round), port, "127.0.0.1")) squatted++;
  };
  squatRound(0);
  if (squat) await Bun.sleep(200); // in the table before the forwarder's first datagram

  const forward = Bun.spawn([probeBinary, "forward", "--udpstr", `127.0.0.1:${port}`, "-r", input, "--realtime"], { stdout: "ignore", stderr: "pipe" });
  const forwardLog = new Response(forward.stderr).text();
  for (let round = 0; round < ROUNDS && performance.now() < deadline; round++) {
    await sendForged(port, random, Math.ceil(FORGED / ROUNDS), sent);
    squatRound(round + 1);
    for (let i = 0; i < RANDOM / ROUNDS; i++) {
      const d = Uint8Array.from({ length: 1 + Math.floor(random() * 1400) }, () => Math.floor(random() * 256));
      if (randomSockets[Math.floor(random() * randomSockets.length)]!.send(d, port, "127.0.0.1")) sent.random++;
    }
    await Bun.sleep(ROUND_GAP_MS);
  }
  for (const socket of [...randomSockets, ...squatters]) socket.close();
  const forwardTimer = setTimeout(() => forward.kill("SIGKILL"), Math.max(0, deadline - performance.now()));
  await forward.exited;
  clearTimeout(forwardTimer);
  const forwarded = /(\d+) packets forwarded in (\d+) datagrams/.exec(await forwardLog);
  await Bun.sleep(500);
  collector.kill("SIGINT");
  await collector.exited;
  await reading;
  const peakRssMiB = rss.stop();
  const cpuSeconds = Number(collector.resourceUsage()?.cpuTime.total ?? 0) / 1e6; // Bun reports microseconds

  // The file judged against the input: the forwarder's records (those in the input) in order, and the rest.
  const remaining = new Map<string, number>();
  for (const key of inputKeys) remaining.set(key, (remaining.get(key) ?? 0) + 1);
  const outKeys = await recordKeys(output).catch(() => [] as string[]);
  const fromForwarder = outKeys.filter((key) => {
    const n = remaining.get(key) ?? 0;
    if (n === 0) return false;
    remaining.set(key, n - 1);
    return true;
  });
  const intact = fromForwarder.length === inputKeys.length && fromForwarder.every((key, i) => key === inputKeys[i]);
  // The forwarder's line: the 127.0.0.1 sender with the most records.
  const lines = [...log.matchAll(/udpstr from 127\.0\.0\.1:\d+: datagrams received (\d+), lost (\d+).*?records delivered (\d+), lost (\d+)[^\n]*/g)];
  lines.sort((a, b) => Number(b[3]) - Number(a[3]));
  const best = lines[0];
  const sendersLine = /udpstr senders: ([^\n]*)/.exec(log)?.[1] ?? "(none)";
  return {
    scenario: `${name} (forward: ${forwarded ? `${forwarded[1]} pkts in ${forwarded[2]} dgrams` : "did not finish"}; sent ${sent.forged} forged, ${sent.random} random${squat ? `, ${squatted} from ${squatters.length} squatters` : ""})`,
    kept: fromForwarder.length,
    lost: inputKeys.length - fromForwarder.length,
    intact,
    forgedInFile: outKeys.length - fromForwarder.length,
    forwarderLine: best ? `dgrams ${best[1]}, lost ${best[2]}; records ${best[3]}, lost ${best[4]}` : "(no line)",
    apart: sendersLine,
    peakRssMiB,
    cpuSeconds,
    seconds: (performance.now() - started) / 1000,
  };
}

export async function benchRobustnessUdpstr(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "probe-bench-udpstr-robust-"));
  try {
    const input = join(dir, "in.pcap");
    await writeInput(input);
    const inputKeys = await recordKeys(input);
    const rows = [
      await scenario("no --allow, forwarder first", dir, input, inputKeys, [], false),
      await scenario("--allow 127.0.0.1/32, 64 squatters first", dir, input, inputKeys, ["--allow", "127.0.0.1/32"], true),
      await scenario("no --allow, 64 squatters first", dir, input, inputKeys, [], true),
    ];
    console.log(`\n## udpstr red team: a forward stream of ${PACKETS.toLocaleString("en-US")} packets beside ${FORGED} forged + ${RANDOM.toLocaleString("en-US")} random datagrams from other senders`);
    console.log("| scenario | forwarder packets kept | lost | byte-identical, in order | forged records in file | forwarder's loss line | counted apart (collector's senders line) | collector peak RSS MiB | collector CPU s | s |");
    console.log("|---|---|---|---|---|---|---|---|---|---|");
    for (const r of rows) {
      console.log(`| ${r.scenario} | ${r.kept} | ${r.lost} | ${r.intact ? "yes" : "no"} | ${r.forgedInFile} | ${r.forwarderLine} | ${r.apart} | ${r.peakRssMiB.toFixed(1)} | ${r.cpuSeconds.toFixed(1)} | ${r.seconds.toFixed(1)} |`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchRobustnessUdpstr();
