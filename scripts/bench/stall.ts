// Stalls (npm run bench -- stall): what a stopped process loses. `probe capture -i lo -w FILE`
// and `tcpdump -i lo -w FILE` run side by side on the same paced UDP stream (400 packets/s by
// default) while both are stopped with SIGSTOP: five stops of 300 ms, then one of 2 s (what a
// loaded VM, swapping or a long pause does to any process). Each capture keeps only the
// stream's destination port, so other traffic on lo does not count. Prints, per tool and
// stall pattern, packets sent, packets in the file (capinfos, an independent reader) and
// lost. Bounded: the sender stops after COUNT packets or MAX_SECONDS.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { probeBinary, repoRoot, startsCold } from "./support/measure.ts";

const RATE = Number(process.env.BENCH_STALL_RATE ?? 400);
const SETTLE_MS = 1500;

interface StallPattern {
  name: string;
  /** Milliseconds of each stop, in order, with STOP_GAP_MS of running between them. */
  stopsMs: number[];
}
const PATTERNS: StallPattern[] = [
  { name: "5 × 300 ms", stopsMs: [300, 300, 300, 300, 300] },
  { name: "1 × 2 s", stopsMs: [2000] },
];
const STOP_GAP_MS = 700;

async function waitForFile(path: string, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline && !(await Bun.file(path).exists())) await Bun.sleep(20);
}

async function packetsIn(path: string): Promise<number> {
  const out = Bun.spawnSync(["capinfos", "-M", "-c", "-T", path], { stdout: "pipe", stderr: "pipe" });
  const line = out.stdout.toString().trim().split("\n").at(-1) ?? "";
  return Number(line.split("\t")[1] ?? NaN);
}

async function runPattern(pattern: StallPattern, port: number, directory: string): Promise<{ tool: string; pattern: string; sent: number; captured: number }[]> {
  const filter = `udp dst port ${port}`;
  const probeFile = join(directory, `probe-${port}.pcap`);
  const tcpdumpFile = join(directory, `tcpdump-${port}.pcap`);
  startsCold(probeBinary);
  startsCold("tcpdump");
  const captures: { tool: string; file: string; proc: Subprocess }[] = [
    { tool: "probe capture -w", file: probeFile, proc: Bun.spawn([probeBinary, "capture", "-i", "lo", "-w", probeFile, filter], { stdout: "ignore", stderr: "pipe" }) },
    { tool: "tcpdump -w", file: tcpdumpFile, proc: Bun.spawn(["tcpdump", "-i", "lo", "-w", tcpdumpFile, filter], { stdout: "ignore", stderr: "pipe" }) },
  ];
  for (const capture of captures) await waitForFile(capture.file, 5000);
  await Bun.sleep(SETTLE_MS);
  const stallMs = pattern.stopsMs.reduce((a, b) => a + b + STOP_GAP_MS, 0);
  const seconds = Math.ceil((stallMs + 2000) / 1000);
  const count = RATE * seconds;
  const sender = Bun.spawn([process.execPath, `${repoRoot}scripts/bench/support/udp-load.ts`, String(port), String(count), "200", String(RATE), String(seconds + 10)], { stdout: "pipe" });
  await Bun.sleep(1000);
  for (const stopMs of pattern.stopsMs) {
    for (const capture of captures) capture.proc.kill("SIGSTOP");
    await Bun.sleep(stopMs);
    for (const capture of captures) capture.proc.kill("SIGCONT");
    await Bun.sleep(STOP_GAP_MS);
  }
  const sent = (JSON.parse(await new Response(sender.stdout).text()) as { sent: number }).sent;
  await Bun.sleep(SETTLE_MS);
  for (const capture of captures) capture.proc.kill("SIGTERM");
  await Promise.all(captures.map((capture) => capture.proc.exited));
  const rows = [];
  for (const capture of captures) rows.push({ tool: capture.tool, pattern: pattern.name, sent, captured: await packetsIn(capture.file) });
  return rows;
}

export async function benchStall(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), "probe-bench-stall-"));
  try {
    const rows = [];
    let port = 41_000 + Math.floor(Math.random() * 1000);
    for (const pattern of PATTERNS) rows.push(...(await runPattern(pattern, port++, directory)));
    console.log(`\n## stalls: SIGSTOP of both captures while ${RATE} packets/s of 200 B UDP flow on lo`);
    console.log("| capture | stops | sent | in the file | lost |\n| --- | --- | --- | --- | --- |");
    for (const row of rows) console.log(`| ${row.tool} | ${row.pattern} | ${row.sent} | ${row.captured} | ${row.sent - row.captured} |`);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchStall();
