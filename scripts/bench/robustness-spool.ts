// Red team for the reliable RT spool and transport (issue 21), against dist/probe where a process
// matters and the spool module itself where only files do. Three tables:
//   1. links and foreign files in the spool directory on a restart of `probe rt --reliable
//      --spool`: the targets (temporary files standing in for /etc/passwd) must be untouched,
//      each case reported in one line, the 5,000 records still recovered;
//   2. damage at several offsets of a 5,000-record spool: records kept and lost, and whether any
//      byte on disk changed (only a torn tail at the end of the last segment may be cut); one
//      case end to end: `probe rt` serves the damaged spool to `probe capture -i rt://`;
//   3. a reliable client that sends START and never reads: seconds until the ACK timeout frees
//      the slot and a real `probe capture -i rt://`, denied meanwhile and retrying, gets in.
// Every loop is bounded in count and time (the whole run well under 60 s on an idle machine).
// Run: bun run scripts/bench/robustness-spool.ts, or through npm run bench. BENCH_ONLY=links,
// damage or stall runs one table; BENCH_DEBUG=1 prints the stall part's logs.
import { createHash } from "node:crypto";
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { silentLogger } from "../../src/logging/index.ts";
import { DiskSpool } from "../../src/outputs/rt/index.ts";
import { PacketBatchBuilder } from "../../src/packet/packet-batch.ts";
import { encodeStart, RtFramer, RtType } from "../../src/protocols/rt/index.ts";
import { probeBinary, udpLoad } from "./support/measure.ts";

const RECORDS = 5_000;
/** 24-byte spool header + 16-byte record header + 100 bytes of frame. */
const RECORD_BYTES = 24 + 16 + 100;
/** Longest wait for any one probe process to start, serve, or end. */
const STEP_TIMEOUT_MS = 15_000;
/** The stalled-client part gives up after this long (the default ACK timeout is 30 s). */
const STALL_MAX_MS = 50_000;

const segmentName = (sequence: number) => `seg-${sequence.toString(16).padStart(16, "0")}.rts`;
const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** A closed spool of RECORDS Ethernet frames numbered in their first payload bytes, one segment. */
async function makeSpool(dir: string): Promise<void> {
  const { spool } = DiskSpool.open({ directory: dir, maxBytes: 64 * 1024 * 1024, policy: "block", segmentBytes: 16 * 1024 * 1024, log: silentLogger });
  for (let first = 1; first <= RECORDS; first += 100) {
    const builder = new PacketBatchBuilder(1, "micro");
    for (let n = first; n < first + 100; n++) {
      const frame = new Uint8Array(100);
      new DataView(frame.buffer).setUint32(14, n, true);
      builder.push(1_700_000_000 + n, n % 1_000_000, 100, frame);
    }
    spool.append(builder.take()!);
  }
  await spool.close();
}

/** Every record readable from a spool (in-process), and the records held per the recovery. */
function drainSpool(dir: string): { served: number; cutBytes: number; refused?: string } {
  let opened;
  try {
    opened = DiskSpool.open({ directory: dir, maxBytes: 64 * 1024 * 1024, policy: "block", segmentBytes: 16 * 1024 * 1024, log: silentLogger });
  } catch (error) {
    return { served: 0, cutBytes: 0, refused: (error as Error).message };
  }
  const { spool, recovery } = opened;
  let served = 0;
  let next = 1;
  for (let i = 0; i < 100_000; i++) {
    const chunk = spool.read(next, 1024 * 1024);
    if (!chunk) break;
    served += chunk.count;
    next = chunk.firstSequence + chunk.count;
  }
  void spool.close();
  return { served, cutBytes: recovery.cutBytes };
}

function snapshot(dir: string): string {
  return readdirSync(dir)
    .sort()
    .map((n) => {
      const s = lstatSync(join(dir, n));
      return `${n}:${s.isFile() ? sha(join(dir, n)) : s.isSymbolicLink() ? "link" : "other"}`;
    })
    .join(",");
}

interface Run {
  proc: Subprocess;
  log: () => string;
}

function spawnProbe(args: string[]): Run {
  const proc = Bun.spawn([probeBinary, ...args], { stdout: "ignore", stderr: "pipe", stdin: "ignore" });
  let text = "";
  void (async () => {
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) text += new TextDecoder().decode(chunk);
  })();
  return { proc, log: () => text };
}

async function until(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) return false;
    await Bun.sleep(20);
  }
  return true;
}

/** `probe rt -i lo --reliable --spool DIR` started, given time to recover, stopped: its exit and stderr. */
async function restartOn(spool: string, extra: string[] = []): Promise<{ exit: number | null; log: string; port?: number }> {
  const run = spawnProbe(["rt", "-i", "lo", "-f", "udp port 1", "--reliable", "--spool", spool, "--listen", "127.0.0.1:0", ...extra]);
  await until(() => run.log().includes("rt: serving") || run.proc.exitCode !== null, STEP_TIMEOUT_MS);
  const port = Number(/rt: serving .* on 127\.0\.0\.1:(\d+)/.exec(run.log())?.[1] ?? NaN);
  if (run.proc.exitCode === null) run.proc.kill("SIGTERM");
  const timer = setTimeout(() => run.proc.kill("SIGKILL"), STEP_TIMEOUT_MS);
  const exit = await run.proc.exited;
  clearTimeout(timer);
  return { exit, log: run.log(), ...(Number.isFinite(port) ? { port } : {}) };
}

/** The lines probe wrote that are not routine (the reports a case should produce). */
function reportLines(log: string): string[] {
  return log
    .split("\n")
    .filter((l) => /left alone|not probe's|impossible|refus|EISDIR|illegal operation|cut \d+ bytes/.test(l))
    .map((l) => l.replace(/^\S+ probe \w+: /, "").replace(/^probe: /, ""));
}

async function linkTable(root: string): Promise<void> {
  const outside = join(root, "outside");
  mkdirSync(outside);
  const rows: string[][] = [];
  const cases: [string, (spool: string, target: string) => void][] = [
    ["symlink seg-…1389.rts -> file (the issue's repro)", (s, t) => symlinkSync(t, join(s, segmentName(0x1389)))],
    ["symlink seg-…0001.rts replaced by a link", (s, t) => { rmSync(join(s, segmentName(1))); symlinkSync(t, join(s, segmentName(1))); }],
    ["cursor.tmp symlink -> file", (s, t) => symlinkSync(t, join(s, "cursor.tmp"))],
    ["cursor symlink -> file", (s, t) => { rmSync(join(s, "cursor")); symlinkSync(t, join(s, "cursor")); }],
    ["hard link seg-…2000.rts -> file", (s, t) => linkSync(t, join(s, segmentName(0x2000)))],
    ["directory seg-…3000.rts", (s) => mkdirSync(join(s, segmentName(0x3000)))],
    ["FIFO seg-…4000.rts", (s) => void Bun.spawnSync(["mkfifo", join(s, segmentName(0x4000))])],
  ];
  for (const [i, [what, plant]] of cases.entries()) {
    const spool = join(root, `links-${i}`);
    await makeSpool(spool);
    const target = join(outside, `passwd-${i}`);
    writeFileSync(target, "root:x:0:0:root:/root:/bin/bash\n".repeat(40));
    const before = sha(target);
    plant(spool, target);
    const { exit, log } = await restartOn(spool);
    const recovered = exit !== 0 ? "refused" : /recovered (\d+) unacknowledged/.exec(log)?.[1] ?? "-";
    const lines = reportLines(log.replaceAll(spool, "SPOOL"));
    rows.push([what, String(exit), sha(target) === before ? "untouched" : "CHANGED", recovered, String(lines.length), lines[0]?.slice(0, 100) ?? ""]);
  }
  printRows("1. links and foreign files in the spool directory, probe rt restarted on it (targets are temp files)", ["case", "exit", "target", "recovered", "report lines", "first report line"], rows);
}

async function damageTable(root: string): Promise<void> {
  const rows: string[][] = [];
  const damages: [string, (b: Buffer, at: number) => void][] = [
    ["flipped byte", (b, at) => void (b[at + 60] = b[at + 60]! ^ 0x01)],
    ["zeroed checksum", (b, at) => b.writeUInt32LE(0, at + 4)],
    ["length 0xffffffff", (b, at) => b.writeUInt32LE(0xffffffff, at + 8)],
  ];
  const offsets = [1, 1_000, 2_500, 4_999, 5_000];
  let n = 0;
  for (const [what, damage] of damages) {
    for (const record of offsets) {
      const spool = join(root, `damage-${n++}`);
      await makeSpool(spool);
      const seg = join(spool, segmentName(1));
      const bytes = readFileSync(seg);
      damage(bytes, (record - 1) * RECORD_BYTES);
      writeFileSync(seg, bytes);
      const result = drainSpool(spool);
      const after = readFileSync(seg);
      const changed = after.equals(bytes) ? "no" : `cut ${bytes.byteLength - after.byteLength} B (torn tail of the last segment)`;
      rows.push([`${what} in record ${record.toLocaleString("en")}`, String(result.served), String(RECORDS - result.served), changed]);
    }
  }
  for (const [what, prepare] of [
    ["segment renamed seg-…1389.rts (name ≠ contents)", (s: string) => renameSync(join(s, segmentName(1)), join(s, segmentName(0x1389)))],
    ["cursor ackedThrough 9007199254740991", (s: string) => writeCursor(s, 9007199254740991)],
    ["cursor ackedThrough 5001 (past the last record)", (s: string) => writeCursor(s, 5001)],
  ] as const) {
    const spool = join(root, `damage-${n++}`);
    await makeSpool(spool);
    prepare(spool);
    const before = snapshot(spool);
    const result = drainSpool(spool);
    const same = snapshot(spool) === before ? "no" : "yes";
    rows.push([what, result.refused ? "refused" : String(result.served), result.refused ? "0 (kept on disk)" : String(RECORDS - result.served), same]);
  }
  // End to end: probe rt serves a spool with record 1,000 damaged to probe capture -i rt://.
  const spool = join(root, "served");
  await makeSpool(spool);
  const seg = join(spool, segmentName(1));
  const bytes = readFileSync(seg);
  bytes[999 * RECORD_BYTES + 60]! ^= 0x01;
  writeFileSync(seg, bytes);
  const server = spawnProbe(["rt", "-i", "lo", "-f", "udp port 1", "--reliable", "--spool", spool, "--listen", "127.0.0.1:0"]);
  await until(() => server.log().includes("rt: serving") || server.proc.exitCode !== null, STEP_TIMEOUT_MS);
  const port = /rt: serving .* on 127\.0\.0\.1:(\d+)/.exec(server.log())?.[1];
  const out = join(root, "served.pcap");
  const capture = spawnProbe(["capture", "-i", `rt://127.0.0.1:${port}`, "-c", String(RECORDS - 1), "-w", out]);
  const timer = setTimeout(() => capture.proc.kill("SIGKILL"), STEP_TIMEOUT_MS);
  await capture.proc.exited;
  clearTimeout(timer);
  server.proc.kill("SIGTERM");
  await server.proc.exited;
  const written = Number(/(\d+) packets? captured/.exec(capture.log())?.[1] ?? 0);
  rows.push(["flipped byte in record 1,000, served by probe rt to probe capture -i rt://", String(written), String(RECORDS - written), "no"]);
  printRows(`2. damage in a ${RECORDS.toLocaleString("en")}-record spool (one segment)`, ["case", "records kept/served", "lost", "bytes on disk changed"], rows);
}

/** Whole records in a classic pcap file being written (0 before its header). */
function pcapRecords(path: string): number {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return 0;
  }
  let count = 0;
  for (let at = 24; at + 16 <= bytes.byteLength; count++) {
    const next = at + 16 + bytes.readUInt32LE(at + 8);
    if (next > bytes.byteLength) break;
    at = next;
  }
  return count;
}

function writeCursor(spool: string, ackedThrough: number): void {
  const cursor = JSON.parse(readFileSync(join(spool, "cursor"), "utf8"));
  writeFileSync(join(spool, "cursor"), JSON.stringify({ ...cursor, ackedThrough }));
}

async function stallTable(root: string): Promise<void> {
  // A socket that takes the load's datagrams (an unbound port answers with ICMP errors).
  const sink = createSocket("udp4");
  await new Promise<void>((resolve) => sink.bind(0, "127.0.0.1", resolve));
  const sinkPort = sink.address().port;
  const server = spawnProbe(["rt", "-i", "lo", "-f", `udp dst port ${sinkPort}`, "--reliable", "--listen", "127.0.0.1:0"]);
  const rows: string[][] = [];
  try {
    if (!(await until(() => server.log().includes("rt: serving") || server.proc.exitCode !== null, STEP_TIMEOUT_MS))) throw new Error("probe rt did not start");
    const port = Number(/rt: serving .* on 127\.0\.0\.1:(\d+)/.exec(server.log())?.[1]);
    // The stalled client: START, then never reads (and so never ACKs).
    const stalled = connect({ host: "127.0.0.1", port });
    stalled.on("error", () => {});
    const framer = new RtFramer(() => 0xffff);
    stalled.once("data", (chunk: Buffer) => {
      if (framer.push(chunk).some((m) => m.type === RtType.HELLO)) {
        stalled.write(encodeStart());
        stalled.pause();
      }
    });
    await until(() => server.log().includes("started at sequence 1"), STEP_TIMEOUT_MS);
    const PACKETS = 2_000;
    await udpLoad(sinkPort, PACKETS, 200, 20_000);
    const stalledAt = performance.now();
    const out = join(root, "stall.pcap");
    const real = spawnProbe(["capture", "-i", `rt://127.0.0.1:${port}`, "-w", out]);
    await until(() => server.log().includes("closed to free the reliable slot") || real.proc.exitCode !== null, STALL_MAX_MS);
    const freedS = (performance.now() - stalledAt) / 1000;
    await until(() => real.log().includes("connected after") || real.proc.exitCode !== null, STALL_MAX_MS - (performance.now() - stalledAt));
    const inS = (performance.now() - stalledAt) / 1000;
    // What the fifo held for it (the capture may have lost some of the load in the kernel on a busy machine).
    await until(() => /started at sequence 1, \d+ records waiting[^]*started at sequence 1, \d+ records waiting/.test(server.log()), STEP_TIMEOUT_MS);
    const held = Number([...server.log().matchAll(/started at sequence 1, (\d+) records waiting/g)].at(-1)?.[1] ?? PACKETS);
    await until(() => pcapRecords(out) >= held, STEP_TIMEOUT_MS);
    real.proc.kill("SIGTERM");
    const timer = setTimeout(() => real.proc.kill("SIGKILL"), STEP_TIMEOUT_MS);
    const exit = await real.proc.exited;
    clearTimeout(timer);
    stalled.destroy();
    const written = pcapRecords(out);
    if (process.env.BENCH_DEBUG) console.log(server.log(), real.log());
    const denials = real.log().split("\n").filter((l) => l.includes("max connections reached")).length;
    rows.push([
      "START, never read, never ACK (default --ack-timeout-ms 30000)",
      freedS.toFixed(1),
      inS.toFixed(1),
      `${written} of ${held} held (${PACKETS} sent)`,
      String(exit),
      `${/connected after (\d+) retr/.exec(real.log())?.[1] ?? "?"} tries, ${denials} DENY line(s) logged`,
    ]);
  } finally {
    sink.close();
    server.proc.kill("SIGTERM");
    const timer = setTimeout(() => server.proc.kill("SIGKILL"), STEP_TIMEOUT_MS);
    await server.proc.exited;
    clearTimeout(timer);
  }
  printRows("3. a stalled reliable-RT client against a real probe capture -i rt://", ["stalled client", "slot freed after s", "real client in after s", "real client got", "its exit", "its retries / log"], rows);
}

function printRows(title: string, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  console.log(`\n${title}`);
  console.log(header.map((h, i) => h.padEnd(widths[i]!)).join("  "));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join("  "));
}

export async function benchRobustnessSpool(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "bench-spool-"));
  const started = performance.now();
  try {
    if (!process.env.BENCH_ONLY || process.env.BENCH_ONLY === "links") await linkTable(root);
    if (!process.env.BENCH_ONLY || process.env.BENCH_ONLY === "damage") await damageTable(root);
    if (!process.env.BENCH_ONLY || process.env.BENCH_ONLY === "stall") await stallTable(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  console.log(`\nrobustness-spool: ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

if (import.meta.main) await benchRobustnessSpool();
