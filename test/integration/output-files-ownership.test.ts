// Files probe owns, and only those, through dist/probe (the runner's path). The repros:
// `-w other/out.pcap -C 0.5 --retain-bytes 1M` beside a pre-existing 300 kB out.pcap, and
// `-w 'other/out-%N.pcap'` beside a symbolic link out-0002.pcap — the pre-existing file and the
// link (and its target) untouched byte for byte, the exact set of files left judged by capinfos.
// -W with -z gzip keeps exactly N compressed files. The one -w file: a planted symbolic link and
// a hard link refused, /dev/null, a FIFO with a reader and an existing file the user named
// written (judged by capinfos).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodePcapGlobalHeader } from "../../src/protocols/pcap/index.ts";
import { probeCommand, runProbe, waitFor } from "../support/probe-binary.ts";
import { batchAt, capinfosCount, filesIn, packetTags } from "../support/rotation-files.ts";

const DAY = Date.UTC(2026, 11, 1) / 1000;
/** Bytes of one input packet in a pcap file: record header + a 100-byte frame. */
const RECORD_BYTES = 116;
const PCAP_HEADER_BYTES = 24;
/** Packets in a file cut by -C at `limit` bytes: the first count that takes it past the limit. */
const perFile = (limit: number) => Math.ceil((limit + 1 - PCAP_HEADER_BYTES) / RECORD_BYTES);
const PACKETS = 20_000;

let root: string;
let input: string;

function writeInput(path: string, count: number): void {
  const timestamps = Array.from({ length: count }, (_, i) => DAY + Math.floor(i / 100));
  const header = encodePcapGlobalHeader({ linktype: 1, snaplen: 262144, precision: "micro", littleEndian: true });
  writeFileSync(path, Buffer.concat([header, batchAt(timestamps, 0).bytes]));
}

function freshDir(name: string, mode?: number): string {
  const dir = join(root, name);
  mkdirSync(dir);
  if (mode !== undefined) chmodSync(dir, mode);
  return dir;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "ownership-it-"));
  input = join(root, "in.pcap");
  writeInput(input, PACKETS);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("retention deletes only files probe wrote", () => {
  // 20,000 packets cut at 500 kB: four files of 4,311 packets (500,100 bytes) and one of 2,756.
  const full = perFile(500_000);
  const fullBytes = PCAP_HEADER_BYTES + full * RECORD_BYTES;
  const lastPackets = PACKETS - 4 * full;
  const lastBytes = PCAP_HEADER_BYTES + lastPackets * RECORD_BYTES;

  test("-w other/out.pcap -C 0.5 --retain-bytes 1M: the pre-existing 300 kB out.pcap untouched and not counted; the last two files of ours left", async () => {
    const dir = freshDir("other");
    const foreign = Buffer.alloc(300_000, 0x5a);
    writeFileSync(join(dir, "out.pcap"), foreign);
    const r = await runProbe(["capture", "-r", input, "-w", join(dir, "out.pcap"), "-C", "0.5", "--retain-bytes", "1M"]);
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(dir, "out.pcap"))).toEqual(foreign);
    // tcpdump numbering goes on after the name taken: out.pcap1 .. out.pcap5; two fit in 1 MB.
    expect(filesIn(dir)).toEqual(["out.pcap", "out.pcap4", "out.pcap5"]);
    expect([statSync(join(dir, "out.pcap4")).size, statSync(join(dir, "out.pcap5")).size]).toEqual([fullBytes, lastBytes]);
    expect(fullBytes + lastBytes).toBeLessThanOrEqual(1_000_000);
    expect([capinfosCount(join(dir, "out.pcap4")), capinfosCount(join(dir, "out.pcap5"))]).toEqual([full, lastPackets]);
    expect([...(await packetTags(join(dir, "out.pcap4"))), ...(await packetTags(join(dir, "out.pcap5")))]).toEqual(range(3 * full, PACKETS));
    expect(r.stderr).toContain("left alone 1 name the template makes that probe did not write: out.pcap (file)");
    expect(r.stderr.match(/retention: deleted \S+out\.pcap\d\b/g)).toHaveLength(3);
  });

  test("-w 'other/out-%N.pcap' beside a symbolic link out-0002.pcap: the link and its target untouched; a restart retires the earlier run's files", async () => {
    const dir = freshDir("other-n");
    const target = join(root, "link-target");
    writeFileSync(target, "target of the link");
    symlinkSync(target, join(dir, "out-0002.pcap"));
    const run = () => runProbe(["capture", "-r", input, "-w", join(dir, "out-%N.pcap"), "-C", "0.5", "--retain-bytes", "1M"]);
    const first = await run();
    expect(first.exitCode).toBe(0);
    expect(filesIn(dir)).toEqual(["out-0002.pcap", "out-0006.pcap", "out-0007.pcap"]);
    expect(first.stderr).toContain("out-0002.pcap (symbolic link)");
    const second = await run();
    expect(second.exitCode).toBe(0);
    // The earlier run's out-0006 and out-0007 are retired like this run's own.
    expect(filesIn(dir)).toEqual(["out-0002.pcap", "out-0011.pcap", "out-0012.pcap"]);
    expect(second.stderr).toContain("retention: deleted " + join(dir, "out-0006.pcap"));
    expect(lstatSync(join(dir, "out-0002.pcap")).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, "out-0002.pcap"))).toBe(target);
    expect(readFileSync(target, "utf8")).toBe("target of the link");
    expect(capinfosCount(join(dir, "out-0011.pcap")) + capinfosCount(join(dir, "out-0012.pcap"))).toBe(full + lastPackets);
  }, 60_000);

  test("--retain-bytes 300k -C 0.1 beside a foreign b-0000.pcap and a link b-0001.pcap: exactly the last three files, 244,136 bytes", async () => {
    const dir = freshDir("bytes");
    const foreign = Buffer.alloc(300_000, 1);
    writeFileSync(join(dir, "b-0000.pcap"), foreign);
    symlinkSync(join(root, "in.pcap"), join(dir, "b-0001.pcap"));
    const inputBefore = readFileSync(input);
    const count = 9000;
    const small = join(root, "in-9000.pcap");
    writeInput(small, count);
    const r = await runProbe(["capture", "-r", small, "-w", join(dir, "b-%N.pcap"), "-C", "0.1", "--retain-bytes", "300k"]);
    expect(r.exitCode).toBe(0);
    // 862 packets (100,016 bytes) a file: eleven files b-0002..b-0012, the last of 380 packets.
    const per = perFile(100_000);
    const last = count - 10 * per;
    expect(filesIn(dir)).toEqual(["b-0000.pcap", "b-0001.pcap", "b-0010.pcap", "b-0011.pcap", "b-0012.pcap"]);
    const ours = ["b-0010.pcap", "b-0011.pcap", "b-0012.pcap"].map((n) => join(dir, n));
    expect(ours.map((p) => statSync(p).size)).toEqual([PCAP_HEADER_BYTES + per * RECORD_BYTES, PCAP_HEADER_BYTES + per * RECORD_BYTES, PCAP_HEADER_BYTES + last * RECORD_BYTES]);
    expect(ours.reduce((n, p) => n + statSync(p).size, 0)).toBe(244_136);
    expect(ours.map((p) => capinfosCount(p))).toEqual([per, per, last]);
    const tags: number[] = [];
    for (const p of ours) tags.push(...(await packetTags(p)));
    expect(tags).toEqual(range(count - 2 * per - last, count));
    expect(readFileSync(join(dir, "b-0000.pcap"))).toEqual(foreign);
    expect(readFileSync(input)).toEqual(inputBefore);
  });

  test("--rotate-packets 1000 -W 3 -z gzip: exactly three .gz files of ours left, 1,000 packets each, the input's last 3,000", async () => {
    const dir = freshDir("gzip");
    const count = 9000;
    const small = join(root, "in-gz.pcap");
    writeInput(small, count);
    const r = await runProbe(["capture", "-r", small, "-w", join(dir, "z-%N.pcap"), "--rotate-packets", "1000", "-W", "3", "-z", "gzip"]);
    expect(r.exitCode).toBe(0);
    expect(filesIn(dir)).toEqual(["z-0006.pcap.gz", "z-0007.pcap.gz", "z-0008.pcap.gz"]);
    expect(filesIn(dir).map((n) => capinfosCount(join(dir, n)))).toEqual([1000, 1000, 1000]);
    const unzipped = join(root, "z-0006.pcap");
    writeFileSync(unzipped, Bun.spawnSync(["gzip", "-dc", join(dir, "z-0006.pcap.gz")]).stdout);
    expect(await packetTags(unzipped)).toEqual(range(6000, 7000));
  }, 60_000);
});

describe("the one -w file", () => {
  test("a symbolic link planted in a directory others can write is refused in one line; its target untouched", async () => {
    const shared = freshDir("shared", 0o1777);
    const victim = join(root, "victim");
    writeFileSync(victim, "secret\n");
    symlinkSync(victim, join(shared, "cap.pcap"));
    const r = await runProbe(["capture", "-r", input, "-c", "10", "-w", join(shared, "cap.pcap")]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split("\n").filter((l) => l.includes("symbolic link"))).toEqual([
      `probe: -w ${join(shared, "cap.pcap")}: is a symbolic link in ${shared}, a directory others can write: not followed (name the file itself)`,
    ]);
    expect(r.stderr).not.toContain("    at ");
    expect(readFileSync(victim, "utf8")).toBe("secret\n");
  });

  test("a hard link to another file is not truncated", async () => {
    const dir = freshDir("hard");
    const other = join(root, "other-file");
    writeFileSync(other, "another file\n");
    linkSync(other, join(dir, "cap.pcap"));
    const r = await runProbe(["capture", "-r", input, "-c", "10", "-w", join(dir, "cap.pcap")]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`-w ${join(dir, "cap.pcap")}: has 2 hard links (it is another file too): not truncated`);
    expect(readFileSync(other, "utf8")).toBe("another file\n");
  });

  test("an existing file the user named is replaced (as tcpdump -w does); /dev/null and a FIFO with a reader are written", async () => {
    const dir = freshDir("named");
    const existing = join(dir, "cap.pcap");
    writeFileSync(existing, Buffer.alloc(5000, 0xee));
    const r = await runProbe(["capture", "-r", input, "-c", "123", "-w", existing]);
    expect(r.exitCode).toBe(0);
    expect(statSync(existing).size).toBe(PCAP_HEADER_BYTES + 123 * RECORD_BYTES);
    expect(capinfosCount(existing)).toBe(123);

    const devNull = await runProbe(["capture", "-r", input, "-c", "50", "-w", "/dev/null"]);
    expect(devNull.exitCode).toBe(0);
    expect(devNull.stderr).toContain("50 packets captured");
    expect(lstatSync("/dev/null").isCharacterDevice()).toBe(true);

    const fifo = join(dir, "pipe");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    const copy = join(dir, "copy.pcap");
    const reader = Bun.spawn(["sh", "-c", `exec cat "${fifo}" > "${copy}"`], { stdout: "ignore", stderr: "ignore" });
    try {
      // The reader counts as one once it waits in open() for a writer (bounded wait).
      await waitFor(() => {
        try {
          return readFileSync(`/proc/${reader.pid}/wchan`, "utf8") === "wait_for_partner";
        } catch {
          return false;
        }
      }, 10_000, "cat to open the FIFO");
      const viaFifo = await runProbe(["capture", "-r", input, "-c", "4000", "-w", fifo]);
      expect(viaFifo.exitCode).toBe(0);
      expect(await reader.exited).toBe(0);
    } finally {
      reader.kill();
    }
    expect(capinfosCount(copy)).toBe(4000);
    expect(await packetTags(copy)).toEqual(range(0, 4000));
  }, 60_000);

  test("-w - still writes standard output", async () => {
    const proc = Bun.spawn([...probeCommand(), "capture", "-r", input, "-c", "7", "-w", "-"], { stdout: "pipe", stderr: "pipe" });
    const bytes = new Uint8Array(await new Response(proc.stdout).arrayBuffer());
    expect(await proc.exited).toBe(0);
    expect(bytes.byteLength).toBe(PCAP_HEADER_BYTES + 7 * RECORD_BYTES);
  });
});
