// The rotating file output end to end in its own process (test/support/rotation-driver.ts reads
// a capture file through the project's reader and writes through the output, as the runner
// will): -C and -C -W against Debian's tcpdump byte for byte, -G 1 over a few real seconds,
// loss events, kill -9 and recovery, retention and disk full on small tmpfs mounts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodePcapGlobalHeader } from "../../src/protocols/pcap/index.ts";
import { batchAt, capinfosCount, filesIn, packetTags, tsharkFields } from "../support/rotation-files.ts";

const DRIVER = new URL("../support/rotation-driver.ts", import.meta.url).pathname;
const DAY = Date.UTC(2026, 11, 1) / 1000;

let root: string;
let input: string;
const INPUT_PACKETS = 9000;
/** Bytes of one input packet in a pcap file: record header + a 100-byte frame (input: ~1 MB). */
const RECORD_BYTES = 116;
/** Packets in a file cut by -C at `limit` bytes: the first count that takes it past the limit. */
const perFile = (limit: number) => Math.ceil((limit + 1 - 24) / RECORD_BYTES);
const mounts: string[] = [];

/** A pcap of `count` tagged UDP frames, `perSecond` packets per second of timestamp. */
function writeInput(path: string, count: number, perSecond = 100): void {
  const timestamps = Array.from({ length: count }, (_, i) => DAY + Math.floor(i / perSecond));
  const batch = batchAt(timestamps, 0);
  const header = encodePcapGlobalHeader({ linktype: 1, snaplen: 262144, precision: "micro", littleEndian: true });
  writeFileSync(path, Buffer.concat([header, batch.bytes]));
}

function driver(args: string[]) {
  return Bun.spawn([process.execPath, DRIVER, ...args], { stdout: "pipe", stderr: "pipe" });
}

async function runDriver(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = driver(args);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

function freshDir(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir);
  return dir;
}

function mountTmpfs(name: string, size: string): string {
  const dir = freshDir(name);
  const proc = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${size}`, `rotation-${name}`, dir]);
  if (proc.exitCode !== 0) throw new Error(`mount tmpfs: ${proc.stderr.toString()}`);
  mounts.push(dir);
  return dir;
}

/** All tags across the files of `dir` in name order (ring files are ordered by the caller). */
async function allTags(dir: string, names = filesIn(dir)): Promise<number[]> {
  const out: number[] = [];
  for (const name of names) out.push(...(await packetTags(join(dir, name))));
  return out;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "rotation-it-"));
  input = join(root, "in.pcap");
  writeInput(input, INPUT_PACKETS);
});

afterAll(() => {
  for (const dir of mounts) Bun.spawnSync(["umount", dir]);
  rmSync(root, { recursive: true, force: true });
});

describe("rotation against tcpdump", () => {
  test("-C 0.2 (a fraction of a megabyte, which tcpdump 4.99.3 refuses): tcpdump's names, every packet once in order", async () => {
    const ours = freshDir("c-ours");
    expect((await runDriver(["-r", input, "-w", join(ours, "out"), "-C", "0.2"])).code).toBe(0);
    const names = filesIn(ours);
    const files = Math.ceil(INPUT_PACKETS / perFile(200_000));
    expect(names).toEqual(["out", ...Array.from({ length: files - 1 }, (_, i) => `out${i + 1}`)]);
    expect(await allTags(ours)).toEqual(Array.from({ length: INPUT_PACKETS }, (_, i) => i));
    // Cut one packet past the limit, as tcpdump cuts.
    for (const n of names.slice(0, -1)) expect(statSync(join(ours, n)).size).toBe(24 + RECORD_BYTES * perFile(200_000));
  });

  test("-C 1 and -C 1 -W 3 (ring): same names and the same bytes as Debian's tcpdump", async () => {
    const big = join(root, "big.pcap");
    writeInput(big, INPUT_PACKETS * 5);
    for (const extra of [[], ["-W", "3"]]) {
      const ours = freshDir(`c1-ours${extra.length}`);
      const theirs = freshDir(`c1-tcpdump${extra.length}`);
      const r = await runDriver(["-r", big, "-w", join(ours, "out"), "-C", "1", ...extra]);
      expect(r.code).toBe(0);
      const t = Bun.spawnSync(["tcpdump", "-Z", "root", "-r", big, "-w", join(theirs, "out"), "-C", "1", ...extra]);
      expect(t.exitCode).toBe(0);
      expect(filesIn(ours)).toEqual(filesIn(theirs));
      expect(filesIn(ours).length).toBe(extra.length ? 3 : Math.ceil((INPUT_PACKETS * 5) / perFile(1_000_000)));
      for (const name of filesIn(ours)) expect(Buffer.compare(readFileSync(join(ours, name)), readFileSync(join(theirs, name)))).toBe(0);
      if (extra.length) expect(r.stderr).toContain("retention: deleted");
    }
  });
});

describe("real runs", () => {
  test("-G 1 over about 3 s: several files, every packet in exactly one, in order, no .part left", async () => {
    const dir = freshDir("g1");
    const count = 1500;
    const small = join(root, "g1.pcap");
    writeInput(small, count);
    const r = await runDriver(["-r", small, "-w", join(dir, "g-%N.pcap"), "-G", "1", "--batch-packets", "50", "--pace-ms", "100"]);
    expect(r.code).toBe(0);
    const names = filesIn(dir);
    expect(names.length).toBeGreaterThanOrEqual(2);
    expect(names.some((n) => n.endsWith(".part"))).toBe(false);
    expect(await allTags(dir)).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(names.reduce((n, name) => n + capinfosCount(join(dir, name)), 0)).toBe(count);
  }, 30_000);

  test("loss events from the pipeline (input reconnect, our queue's drop) cut files with their reason", async () => {
    const dir = freshDir("loss");
    const r = await runDriver([
      "-r", input, "-w", join(dir, "l-%N.pcapng"), "-F", "pcapng", "--rotate-on-loss",
      "--batch-packets", "100", "--reconnect-after", "1000", "--queue-drop-after", "3000",
    ]);
    expect(r.code).toBe(0);
    expect(filesIn(dir)).toEqual(["l-0000.pcapng", "l-0001.pcapng", "l-0002.pcapng"]);
    expect(filesIn(dir).map((f) => capinfosCount(join(dir, f)))).toEqual([1000, 2000, INPUT_PACKETS - 3000]);
    const firstComments = filesIn(dir).map((f) => tsharkFields(join(dir, f), ["frame.number", "frame.comment"])[0]![1] ?? "");
    expect(firstComments[1]).toContain("reconnected");
    expect(firstComments[2]).toContain("output queue dropped 7 packets");
    expect(r.stderr).toContain("reconnected: closing the current file");
  });

  test("kill -9 in the middle of a file, restart: the recovered file is readable and holds every record written before the cut", async () => {
    const dir = freshDir("kill");
    const args = ["-r", input, "-w", join(dir, "k-%N.pcap"), "--rotate-packets", "100000", "--batch-packets", "10", "--pace-ms", "5"];
    const proc = driver(args);
    const part = join(dir, "k-0000.pcap.part");
    // Wait (bounded) until the flush timer has put records on disk.
    for (let i = 0; i < 100 && !(existsSync(part) && statSync(part).size > 24 + RECORD_BYTES * 10); i++) await Bun.sleep(50);
    proc.kill(9);
    await proc.exited;
    expect(existsSync(part)).toBe(true);
    // Tear the last record as a crash mid-write would: append half a record.
    const before = readFileSync(part);
    const complete = (before.byteLength - 24) / RECORD_BYTES;
    expect(Number.isInteger(complete)).toBe(true);
    writeFileSync(part, Buffer.concat([before, before.subarray(24, 24 + 90)]));

    const tiny = join(root, "tiny.pcap");
    writeInput(tiny, 3);
    const r = await runDriver(["-r", tiny, "-w", join(dir, "k-%N.pcap"), "--rotate-packets", "100000"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${complete} complete records kept, 90 bytes of a torn last record cut`);
    expect(filesIn(dir)).toEqual(["k-0000.pcap", "k-0001.pcap"]);
    expect(capinfosCount(join(dir, "k-0000.pcap"))).toBe(complete);
    expect(await packetTags(join(dir, "k-0000.pcap"))).toEqual(Array.from({ length: complete }, (_, i) => i));
  }, 30_000);
});

describe("retention and disk full on small tmpfs mounts", () => {
  test("--retain-min-free 1M on a 2 MiB tmpfs: oldest of ours deleted (logged), a foreign file kept, every file readable", async () => {
    const dir = mountTmpfs("minfree", "2m");
    writeFileSync(join(dir, "foreign.bin"), Buffer.alloc(100_000));
    const r = await runDriver(["-r", input, "--loop", "3", "-w", join(dir, "m-%N.pcap"), "-C", "0.1", "--retain-min-free", "1M"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("retention: deleted");
    expect(existsSync(join(dir, "foreign.bin"))).toBe(true);
    const names = filesIn(dir).filter((n) => n.startsWith("m-"));
    expect(names.some((n) => n.endsWith(".part"))).toBe(false);
    for (const n of names) expect(capinfosCount(join(dir, n))).toBeGreaterThan(0);
    // The newest files survive: the last packet written is the input's last.
    expect((await allTags(dir, names)).at(-1)).toBe(INPUT_PACKETS - 1);
  });

  test("--retain-bytes 300k -C 0.1: at most 300 kB of our files plus the last file's overshoot", async () => {
    const dir = freshDir("bytes");
    const r = await runDriver(["-r", input, "-w", join(dir, "b-%N.pcap"), "-C", "0.1", "--retain-bytes", "300k"]);
    expect(r.code).toBe(0);
    const total = filesIn(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    expect(total).toBeLessThanOrEqual(300_000 + 100_000 + RECORD_BYTES);
    expect(filesIn(dir).length).toBeGreaterThanOrEqual(2);
  });

  test("disk full on a 512 KiB tmpfs: one clear error, exit 1, every file complete and readable, no .part", async () => {
    const dir = mountTmpfs("full", "512k");
    const r = await runDriver(["-r", input, "-w", join(dir, "f-%N.pcap"), "-C", "0.1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot write .*ENOSPC \(disk full\); stopped \(the files written are complete\)/);
    expect(r.stderr).not.toContain("    at ");
    const names = filesIn(dir);
    expect(names.some((n) => n.endsWith(".part"))).toBe(false);
    const tags = await allTags(dir);
    expect(tags.length).toBeGreaterThan(0);
    expect(tags).toEqual(Array.from({ length: tags.length }, (_, i) => i));
    for (const n of names) capinfosCount(join(dir, n));
  });

  test("--on-disk-full drop: drops and counts while full, writes again once space returns", async () => {
    const dir = mountTmpfs("drop", "768k");
    const filler = join(dir, "filler.bin");
    writeFileSync(filler, Buffer.alloc(400_000));
    const proc = driver(["-r", input, "-w", join(dir, "d-%N.pcapng"), "-F", "pcapng", "-C", "0.1", "--on-disk-full", "drop", "--batch-packets", "100", "--pace-ms", "30"]);
    const stderrChunks: string[] = [];
    const stderrDone = (async () => {
      for await (const chunk of proc.stderr as unknown as AsyncIterable<Uint8Array>) stderrChunks.push(Buffer.from(chunk).toString());
    })();
    // Bounded wait for the disk to fill, then give the space back.
    for (let i = 0; i < 200 && !stderrChunks.join("").includes("dropping packets until space returns"); i++) await Bun.sleep(25);
    rmSync(filler);
    const [stdout, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    await stderrDone;
    const stderr = stderrChunks.join("");
    expect(code).toBe(0);
    expect(stderr).toContain("dropping packets until space returns");
    expect(stderr).toMatch(/writing again after dropping \d+ packets/);
    const counters = JSON.parse(stdout.trim());
    expect(counters.packets_dropped_disk).toBeGreaterThan(0);
    expect(counters.packets_written + counters.packets_dropped_disk).toBe(INPUT_PACKETS);
    const names = filesIn(dir);
    expect(names.some((n) => n.endsWith(".part"))).toBe(false);
    const counts = names.map((n) => capinfosCount(join(dir, n)));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(counters.packets_written);
    // The first file after the gap says why (pcapng comment), and packets stay in order.
    const comments = names.flatMap((n) => tsharkFields(join(dir, n), ["frame.number", "frame.comment"]).map((r) => r[1] ?? ""));
    expect(comments.filter((c) => /disk full: \d+ packets dropped/.test(c)).length).toBe(1);
    const tags = await allTags(dir, names);
    expect([...tags].sort((a, b) => a - b)).toEqual(tags);
  }, 30_000);
});
