// Rotation benchmark (npm run bench -- rotation): a big pcap rewritten with -C 10 by the
// rotating file output and by `tcpdump -r big.pcap -w out -C 10`, beside each writing one file
// without rotation, all in one run on this machine. The target: rotation costs no more than
// 1.2x the CPU of writing one file. Our side is `probe capture -r big.pcap -w ...` (the runner,
// the project's file reader and the output) under Bun from the sources.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBigFile } from "./support/big-file.ts";
import { bunBinary, finish, printTable, repoRoot, watchPeakRss, type Measurement } from "./support/measure.ts";
import { isManifestName } from "../../src/outputs/rotating-file/owned-files.ts";

const FILE_PACKETS = Number(process.env.BENCH_ROTATION_PACKETS ?? 1_000_000);
const PROBE = `${repoRoot}src/cli/main.ts`;

async function run(name: string, argv: string[], outDir: string): Promise<Measurement> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir);
  const started = performance.now();
  const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe" });
  const stderr = new Response(proc.stderr).text();
  const usage = await finish(proc, watchPeakRss(proc.pid, 5));
  const seconds = (performance.now() - started) / 1000;
  if (usage.exitCode !== 0) throw new Error(`${name} failed: ${await stderr}`);
  // Capture files only: the rotating output's manifest (.probe-files-HASH) sits beside them.
  const files = readdirSync(outDir).filter((n) => !isManifestName(n)).length;
  rmSync(outDir, { recursive: true, force: true });
  return { name, packets: FILE_PACKETS, seconds, cpuSeconds: usage.cpuSeconds, peakRssMiB: usage.peakRssMiB, note: `${files} file${files === 1 ? "" : "s"}` };
}

export async function benchRotation(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "probe-bench-rotation-"));
  try {
    const big = join(dir, "big.pcap");
    await makeBigFile(big, FILE_PACKETS);
    const out = join(dir, "out");
    const ours = (extra: string[], name: string) => [bunBinary, PROBE, "capture", "-q", "-r", big, "-w", join(out, name), ...extra];
    const rows: Measurement[] = [];
    rows.push(await run("tcpdump -r big.pcap -w one.pcap", ["tcpdump", "-Z", "root", "-r", big, "-w", join(out, "one.pcap")], out));
    rows.push(await run("tcpdump -r big.pcap -w out -C 10", ["tcpdump", "-Z", "root", "-r", big, "-w", join(out, "out"), "-C", "10"], out));
    rows.push(await run("probe: one file (file output)", ours([], "one.pcap"), out));
    rows.push(await run("probe: rotating output, no trigger", ours(["--no-rotate-on-loss"], "one-%N.pcap"), out));
    rows.push(await run("probe: rotating output -C 10", ours(["-C", "10"], "out-%N.pcap"), out));
    printTable(`rotation: ${FILE_PACKETS} packets (${(Bun.file(big).size / 1e6).toFixed(0)} MB) rewritten, -C 10`, rows);
    const perPacket = (m: Measurement) => m.cpuSeconds / m.packets;
    const [tcpOne, tcpRot, oneFile, , rotating] = rows;
    console.log(
      `\nCPU ratio, rotating -C 10 / one file: probe ${(perPacket(rotating!) / perPacket(oneFile!)).toFixed(2)}x ` +
        `(target <= 1.2x), tcpdump ${(perPacket(tcpRot!) / perPacket(tcpOne!)).toFixed(2)}x. ` +
        "Two shared cores: numbers are noisy; probe runs from the sources under Bun (startup included).",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await benchRotation();
