// The rotating file output end to end through `probe capture -r FILE -w ...` (dist/probe, the
// runner's path): -C and -C -W against Debian's tcpdump byte for byte, -G 1 over a few real
// seconds of --realtime replay, a real reconnect of a tcp:// input cutting a file, kill -9 and
// recovery, retention and disk full on small tmpfs mounts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodePcapGlobalHeader } from "../../src/protocols/pcap/index.ts";
import { collectStderr, probeCommand } from "../support/probe-binary.ts";
import { batchAt, capinfosCount, filesIn, packetTags, tsharkFields } from "../support/rotation-files.ts";
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

/** `probe capture ARGS` in the background. */
function capture(args: string[]) {
  return Bun.spawn([...probeCommand(), "capture", ...args], { stdout: "pipe", stderr: "pipe" });
}

async function runCapture(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = capture(args);
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
    expect((await runCapture(["-r", input, "-w", join(ours, "out"), "-C", "0.2"])).code).toBe(0);
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
      const r = await runCapture(["-r", big, "-w", join(ours, "out"), "-C", "1", ...extra]);
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
  test("--print-pipeline makes a rotating-file output; probe run of it writes the same files", async () => {
    const direct = freshDir("spec-direct");
    const viaSpec = freshDir("spec-run");
    const flags = ["-r", input, "-C", "0.3", "-W", "2", "--rotate-packets", "2000"];
    expect((await runCapture([...flags, "-w", join(direct, "s-%N.pcap")])).code).toBe(0);
    const printed = await runCapture([...flags, "-w", join(viaSpec, "s-%N.pcap"), "--print-pipeline"]);
    expect(printed.code).toBe(0);
    const spec = Bun.YAML.parse(printed.stdout) as { outputs: unknown[] };
    expect(spec.outputs).toEqual([
      {
        kind: "rotating-file",
        path: join(viaSpec, "s-%N.pcap"),
        format: "pcap",
        triggers: { maxBytes: 300_000, maxPackets: 2000 },
        rotateOnLoss: true,
        retention: { files: 2 },
        fsyncOnRotate: false,
        onDiskFull: "stop",
      },
    ]);
    const specFile = join(root, "rotation.yaml");
    writeFileSync(specFile, printed.stdout);
    const run = Bun.spawnSync([...probeCommand(), "run", specFile], { stdout: "pipe", stderr: "pipe" });
    expect(run.exitCode).toBe(0);
    expect(filesIn(viaSpec)).toEqual(filesIn(direct));
    expect(filesIn(direct).length).toBe(2);
    for (const name of filesIn(direct)) expect(Buffer.compare(readFileSync(join(viaSpec, name)), readFileSync(join(direct, name)))).toBe(0);
  });

  test("-w 'out-%N.pcap' -C 1 on a 5 MB file: capinfos finds every packet in exactly one file, in order", async () => {
    const dir = freshDir("n-c1");
    const big = join(root, "big-n.pcap");
    writeInput(big, INPUT_PACKETS * 5);
    const r = await runCapture(["-r", big, "-w", join(dir, "out-%N.pcap"), "-C", "1"]);
    expect(r.code).toBe(0);
    const names = filesIn(dir);
    expect(names).toEqual(Array.from({ length: Math.ceil((INPUT_PACKETS * 5) / perFile(1_000_000)) }, (_, i) => `out-${String(i).padStart(4, "0")}.pcap`));
    expect(names.map((n) => capinfosCount(join(dir, n))).reduce((a, b) => a + b, 0)).toBe(INPUT_PACKETS * 5);
    expect(await allTags(dir)).toEqual(Array.from({ length: INPUT_PACKETS * 5 }, (_, i) => i));
    expect(r.stderr).toContain(`${INPUT_PACKETS * 5} packets written to ${names.length} files`);
  });

  test("-G 1 over about 3 s of --realtime replay: capinfos counts in each file what probe said it closed there, every file but the last cut by -G, every packet once in order", async () => {
    const dir = freshDir("g1");
    const count = 1500;
    const small = join(root, "g1.pcap");
    writeInput(small, count, 500);
    const r = await runCapture(["-r", small, "--realtime", "-w", join(dir, "g-%N.pcap"), "-G", "1"]);
    expect(r.code).toBe(0);
    const names = filesIn(dir);
    expect(names.length).toBeGreaterThanOrEqual(2);
    expect(names.some((n) => n.endsWith(".part"))).toBe(false);
    // probe's own account, one "closed" line per file: the outside judge must agree file by file.
    const closed = [...r.stderr.matchAll(/closed (\S+): (\d+) packets, (\d+) bytes \(([^)]+)\)/g)].map((m) => ({
      name: m[1]!.split("/").at(-1)!,
      packets: Number(m[2]),
      bytes: Number(m[3]),
      reason: m[4]!,
    }));
    expect(closed.map((c) => c.name)).toEqual(names);
    expect(names.map((n) => capinfosCount(join(dir, n)))).toEqual(closed.map((c) => c.packets));
    expect(names.map((n) => statSync(join(dir, n)).size)).toEqual(closed.map((c) => c.bytes));
    expect(closed.map((c) => c.reason)).toEqual([...names.slice(1).map(() => "-G time"), "output stopped"]);
    expect(await allTags(dir)).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(names.reduce((n, name) => n + capinfosCount(join(dir, name)), 0)).toBe(count);
  }, 30_000);

  test("a tcp:// input that drops mid-record and is redialled: the next file's first packet says so (pcapng comment)", async () => {
    const dir = freshDir("loss");
    const file = readFileSync(input);
    const firstRecords = 24 + RECORD_BYTES * 40;
    let connections = 0;
    // First connection: 40 records and half of the 41st, then closed (a retriable end); the
    // second: the whole file from the start.
    const server = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(socket) {
          connections++;
          if (connections === 1) {
            socket.write(file.subarray(0, firstRecords + 50));
            setTimeout(() => socket.end(), 100);
          } else socket.write(file.subarray(0, 24 + RECORD_BYTES * 60));
        },
        data() {},
      },
    });
    try {
      const r = await runCapture(["-i", `tcp://127.0.0.1:${server.port}`, "-c", "100", "-F", "pcapng", "-w", join(dir, "l-%N.pcapng")]);
      expect(r.stderr).toContain("reconnected: closing the current file");
      expect(r.code).toBe(0);
      expect(connections).toBe(2);
      expect(filesIn(dir)).toEqual(["l-0000.pcapng", "l-0001.pcapng"]);
      expect(filesIn(dir).map((f) => capinfosCount(join(dir, f)))).toEqual([40, 60]);
      const rows = tsharkFields(join(dir, "l-0001.pcapng"), ["frame.number", "frame.comment"]);
      expect(rows[0]![1]).toBe(`probe: new file after input "127.0.0.1:${server.port}" reconnected`);
      expect(rows.slice(1).every((row) => (row[1] ?? "") === "")).toBe(true);
      expect(tsharkFields(join(dir, "l-0000.pcapng"), ["frame.comment"]).every((row) => (row[0] ?? "") === "")).toBe(true);
      expect(await allTags(dir)).toEqual([...Array.from({ length: 40 }, (_, i) => i), ...Array.from({ length: 60 }, (_, i) => i)]);
    } finally {
      server.stop(true);
    }
  }, 30_000);

  test("kill -9 in the middle of a file, restart: the recovered file is readable and holds every record written before the cut", async () => {
    const dir = freshDir("kill");
    const args = ["-r", input, "--realtime", "-w", join(dir, "k-%N.pcap"), "--rotate-packets", "100000"];
    const proc = capture(args);
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
    const r = await runCapture(["-r", tiny, "-w", join(dir, "k-%N.pcap"), "--rotate-packets", "100000"]);
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
    // The input three times over (merged: records of equal time in input order).
    const r = await runCapture(["-r", input, "-r", input, "-r", input, "-w", join(dir, "m-%N.pcap"), "-C", "0.1", "--retain-min-free", "1M"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("retention: deleted");
    expect(existsSync(join(dir, "foreign.bin"))).toBe(true);
    const names = filesIn(dir).filter((n) => n.startsWith("m-"));
    expect(names.some((n) => n.endsWith(".part"))).toBe(false);
    for (const n of names) expect(capinfosCount(join(dir, n))).toBeGreaterThan(0);
    // The newest files survive: the last packet written is the input's last.
    expect((await allTags(dir, names)).at(-1)).toBe(INPUT_PACKETS - 1);
  });

  test("--retain-bytes 300k -C 0.1: exactly the last three files (two of 862 packets, the last of 380), 244,136 bytes, judged by capinfos", async () => {
    const dir = freshDir("bytes");
    const r = await runCapture(["-r", input, "-w", join(dir, "b-%N.pcap"), "-C", "0.1", "--retain-bytes", "300k"]);
    expect(r.code).toBe(0);
    // 862 packets (100,016 bytes) a file, eleven files; before each new file the closed ones
    // plus its header must fit in 300,000 bytes: two full files stay, and the last one.
    const per = perFile(100_000);
    const last = INPUT_PACKETS - 10 * per;
    expect(filesIn(dir)).toEqual(["b-0008.pcap", "b-0009.pcap", "b-0010.pcap"]);
    const sizes = filesIn(dir).map((f) => statSync(join(dir, f)).size);
    expect(sizes).toEqual([24 + per * RECORD_BYTES, 24 + per * RECORD_BYTES, 24 + last * RECORD_BYTES]);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(244_136);
    expect(filesIn(dir).map((f) => capinfosCount(join(dir, f)))).toEqual([per, per, last]);
    expect(await allTags(dir)).toEqual(Array.from({ length: 2 * per + last }, (_, i) => INPUT_PACKETS - 2 * per - last + i));
    expect(r.stderr.match(/retention: deleted /g)).toHaveLength(8);
  });

  test("disk full on a 512 KiB tmpfs: one clear error, exit 1, every file complete and readable, no .part", async () => {
    const dir = mountTmpfs("full", "512k");
    const r = await runCapture(["-r", input, "-w", join(dir, "f-%N.pcap"), "-C", "0.1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot write .*ENOSPC \(disk full\); stopped \(the files written are complete\)/);
    expect(r.stderr).not.toContain("    at ");
    expect(r.stderr.match(/ENOSPC \(disk full\); stopped/g)).toHaveLength(1);
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
    // 3000 packets a second of replay: the whole input in about 3 s.
    const paced = join(root, "paced.pcap");
    writeInput(paced, INPUT_PACKETS, 3000);
    const running = collectStderr(capture(["-r", paced, "--realtime", "-w", join(dir, "d-%N.pcapng"), "-F", "pcapng", "-C", "0.1", "--on-disk-full", "drop"]));
    // Bounded wait for the disk to fill, then give the space back.
    for (let i = 0; i < 200 && !running.log().includes("dropping packets until space returns"); i++) await Bun.sleep(25);
    rmSync(filler);
    const code = await running.proc.exited;
    await running.drained;
    const stderr = running.log();
    expect(code).toBe(0);
    expect(stderr).toContain("dropping packets until space returns");
    expect(stderr).toMatch(/writing again after dropping \d+ packets/);
    // From the summary: "N packets written to M files (B bytes)", "D packets dropped: disk full or unwritable".
    const counters = {
      packets_written: Number(/^(\d+) packets written to/m.exec(stderr)?.[1]),
      packets_dropped_disk: Number(/^(\d+) packets dropped: disk full/m.exec(stderr)?.[1]),
    };
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
