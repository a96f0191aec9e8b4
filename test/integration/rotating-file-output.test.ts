// RotatingFileOutput on real files with an injected clock, judged by our reader, capinfos and
// tshark: period alignment and empty periods, -G with the timer's tick, --rotate-packets,
// pcapng SHB/IDB per file, loss events with their comment, no overwriting, retention by
// count (never touching foreign files), -z, and .part recovery.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildRotatingFileOutput, rotatingFileSpecFromFlags } from "../../src/cli/rotation-options.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import type { StreamDescription } from "../../src/pipeline/output.ts";
import { RotatingFileOutput } from "../../src/outputs/rotating-file/index.ts";
import { MAX_PENDING_REASONS } from "../../src/outputs/rotating-file/rotating-file-output.ts";
import { batchAt, capinfosCount, filesIn, packetTags, tsharkFields } from "../support/rotation-files.ts";

const STREAM: StreamDescription = {
  inputs: [{ name: "eth0", linktype: 1, snaplen: 262144, description: "eth0" }],
  precision: "micro",
};
const DAY = Date.UTC(2026, 11, 1) / 1000;

let dir: string;
let nowMs: number;
let logger: ReturnType<typeof memoryLogger>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "rotation-unit-"));
  nowMs = DAY * 1000;
  logger = memoryLogger();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function output(flags: Record<string, string | boolean>, file: string, format: "pcap" | "pcapng" = "pcap"): RotatingFileOutput {
  const spec = rotatingFileSpecFromFlags("test", flags, { path: join(dir, file), format })!;
  return buildRotatingFileOutput(spec, { logger, clockMs: () => nowMs, timers: false });
}

describe("rotating file output", () => {
  test("--rotate-period day --rotate-per-period 4: files named by slot start, an empty slot makes none, every packet once in order", async () => {
    const out = output({ "rotate-period": "day", "rotate-per-period": "4" }, "cap-%Y%m%d-%H%M%S.pcap");
    await out.start(STREAM);
    const h = 3600;
    // 01:00 and 05:59:59 (slot 00:00); nothing in 06:00-12:00; 12:30 (slot 12:00); 18:00:00 exactly (slot 18:00).
    out.write(batchAt([DAY + h, DAY + 6 * h - 1, DAY + 12 * h + 1800], 0));
    out.write(batchAt([DAY + 12 * h + 1801, DAY + 18 * h], 3));
    await out.stop();
    expect(filesIn(dir)).toEqual(["cap-20261201-000000.pcap", "cap-20261201-120000.pcap", "cap-20261201-180000.pcap"]);
    const tags = await Promise.all(filesIn(dir).map((f) => packetTags(join(dir, f))));
    expect(tags).toEqual([[0, 1], [2, 3], [4]]);
    expect(filesIn(dir).map((f) => capinfosCount(join(dir, f)))).toEqual([2, 2, 1]);
  });

  test("-G 10 with an injected clock: cut at the first packet 10 s after opening; tick() closes a quiet file", async () => {
    const out = output({ "rotate-seconds": "10" }, "g-%N.pcap");
    await out.start(STREAM);
    out.write(batchAt([DAY, DAY], 0));
    nowMs += 9_999;
    out.write(batchAt([DAY + 1], 2));
    nowMs += 1;
    out.write(batchAt([DAY + 2], 3));
    expect(filesIn(dir)).toEqual(["g-0000.pcap", "g-0001.pcap.part"]);
    nowMs += 10_000;
    out.tick();
    expect(filesIn(dir)).toEqual(["g-0000.pcap", "g-0001.pcap"]);
    await out.stop();
    expect(await packetTags(join(dir, "g-0000.pcap"))).toEqual([0, 1, 2]);
    expect(await packetTags(join(dir, "g-0001.pcap"))).toEqual([3]);
  });

  test("-G 2 with an injected clock: tshark finds 6 packets in each file, its first and last timestamps inside its own 2 s period", async () => {
    const out = output({ "rotate-seconds": "2" }, "gp-%N.pcap");
    await out.start(STREAM);
    // 20 s of traffic, 3 packets a second (at +0, +1 and +2 microseconds), the clock on the packets' time.
    for (let k = 0; k < 20; k++) {
      nowMs = (DAY + k) * 1000;
      out.write(batchAt([DAY + k, DAY + k, DAY + k], 3 * k));
    }
    await out.stop();
    const names = filesIn(dir);
    expect(names).toEqual(Array.from({ length: 10 }, (_, j) => `gp-${String(j).padStart(4, "0")}.pcap`));
    names.forEach((name, j) => {
      const times = tsharkFields(join(dir, name), ["frame.time_epoch"]).map((row) => row[0]!);
      const periodStart = DAY + 2 * j;
      // Exact: the file opened at its first packet's clock and was cut by -G 2 s later.
      expect(times).toEqual([0, 1].flatMap((s) => [0, 1, 2].map((us) => `${periodStart + s}.00000${us}000`)));
      expect(Number(times[0]) >= periodStart && Number(times.at(-1)) < periodStart + 2).toBe(true);
    });
    expect(names.reduce((n, f) => n + capinfosCount(join(dir, f)), 0)).toBe(60);
    expect(await packetTags(join(dir, names[9]!))).toEqual([54, 55, 56, 57, 58, 59]);
  }, 60_000);

  test("--rotate-interval 60 on the wall clock, -C and --rotate-packets cut mid-batch", async () => {
    nowMs = (DAY + 59) * 1000;
    const out = output({ "rotate-interval": "60", "rotate-packets": "3", "fsync-on-rotate": true }, "i-%H%M%S-%N.pcap");
    await out.start(STREAM);
    out.write(batchAt([DAY, DAY, DAY, DAY, DAY], 0)); // 3 + 2 by count
    nowMs += 1000; // 00:01:00: a new interval
    out.write(batchAt([DAY], 5));
    await out.stop();
    expect(filesIn(dir)).toEqual(["i-000000-0000.pcap", "i-000000-0001.pcap", "i-000100-0002.pcap"]);
    const tags = await Promise.all(filesIn(dir).map((f) => packetTags(join(dir, f))));
    expect(tags).toEqual([[0, 1, 2], [3, 4], [5]]);
  });

  test("pcapng: every file starts with its SHB and one IDB per input, readable alone", async () => {
    const out = output({ "rotate-packets": "2" }, "ng-%N-%I.pcapng", "pcapng");
    const stream: StreamDescription = {
      inputs: [
        { name: "eth0", linktype: 1, snaplen: 262144, description: "eth0" },
        { name: "rpcap://h/eth1", linktype: 1, snaplen: 65535, description: "remote" },
      ],
      precision: "nano",
    };
    await out.start(stream);
    const b = batchAt([DAY, DAY, DAY, DAY], 0);
    out.write({ ...b, precision: "nano", meta: { inputs: Uint16Array.of(0, 1, 1, 0), flags: Uint32Array.of(1, 2, 0, 1) } });
    await out.stop();
    expect(filesIn(dir)).toEqual(["ng-0000-eth0+rpcap___h_eth1.pcapng", "ng-0001-eth0+rpcap___h_eth1.pcapng"]);
    const rows = filesIn(dir).flatMap((f) => tsharkFields(join(dir, f), ["frame.interface_name", "frame.packet_flags_direction"]));
    expect(rows).toEqual([
      ["eth0", "0x00000001"],
      ["rpcap://h/eth1", "0x00000002"],
      ["rpcap://h/eth1", "0x00000000"],
      ["eth0", "0x00000001"],
    ]);
  });

  test("-C with pcapng counts EPB bytes exactly (options included): files cut one packet past the limit", async () => {
    const out = output({ "rotate-size": "0.001" }, "c-%N.pcapng", "pcapng");
    await out.start(STREAM);
    const count = 40;
    const b = batchAt(Array.from({ length: count }, () => DAY), 0);
    out.write({ ...b, meta: { flags: new Uint32Array(count).fill(1) } });
    await out.stop();
    const sizes = filesIn(dir).map((f) => Bun.file(join(dir, f)).size);
    // Every EPB here: 32 fixed + pad4(100) data + 8 epb_flags + 4 opt_endofopt = 144 bytes.
    const epb = 144;
    const full = sizes.slice(0, -1);
    expect(full.length).toBeGreaterThanOrEqual(3);
    expect(new Set(full).size).toBe(1);
    expect(full[0]!).toBeGreaterThan(1000);
    expect(full[0]! - epb).toBeLessThanOrEqual(1000);
    expect(filesIn(dir).reduce((n, f) => n + capinfosCount(join(dir, f)), 0)).toBe(count);
  });

  test("loss events close the file; the next file's first packet carries the reason (pcapng comment)", async () => {
    // No trigger besides loss rotation (on by default; the flag says so explicitly).
    const spec = rotatingFileSpecFromFlags("test", { "rotate-on-loss": true }, { path: join(dir, "loss-%N.pcapng"), format: "pcapng" })!;
    const lossy = buildRotatingFileOutput(spec, { logger, clockMs: () => nowMs, timers: false });
    await lossy.start(STREAM);
    lossy.write(batchAt([DAY, DAY], 0));
    lossy.event({ kind: "kernel-drop", input: 0, packets: 12 });
    lossy.write(batchAt([DAY, DAY], 2));
    lossy.event({ kind: "queue-drop", output: "pcap-over-ip", packets: 5 }); // another output's loss: no cut
    lossy.event({ kind: "input-reconnect", input: 0 });
    lossy.write(batchAt([DAY], 4));
    await lossy.stop();
    expect(filesIn(dir)).toEqual(["loss-0000.pcapng", "loss-0001.pcapng", "loss-0002.pcapng"]);
    const comments = filesIn(dir).map((f) => tsharkFields(join(dir, f), ["frame.number", "frame.comment"]).map((r) => r[1] ?? ""));
    expect(comments).toEqual([["", ""], ['probe: new file after kernel dropped 12 packets on "eth0"', ""], ['probe: new file after input "eth0" reconnected']]);
    expect(logger.lines.some((l) => l.includes('kernel dropped 12 packets on "eth0"'))).toBe(true);
    expect(lossy.counters().loss_rotations).toBe(2);
    // Two cuts by loss; the last file closed by stop() is not a rotation.
    expect(lossy.counters().rotations__loss).toBe(2);
    expect(lossy.counters().rotations__packets).toBe(0);
  });

  test("queue drops: this output's and the runner's in front of the stages cut the file, another output's does not", async () => {
    const spec = rotatingFileSpecFromFlags("test", {}, { path: join(dir, "q-%N.pcapng"), format: "pcapng" }, { nameConversions: true })!;
    const out = buildRotatingFileOutput(spec, { logger, clockMs: () => nowMs, timers: false });
    await out.start(STREAM);
    out.write(batchAt([DAY], 0));
    out.event({ kind: "queue-drop", output: "udpstr", packets: 3 });
    out.write(batchAt([DAY], 1));
    out.event({ kind: "queue-drop", output: "stages", packets: 7 });
    out.write(batchAt([DAY], 2));
    out.event({ kind: "queue-drop", output: "file", packets: 2 });
    out.write(batchAt([DAY], 3));
    await out.stop();
    const comments = filesIn(dir).map((f) => tsharkFields(join(dir, f), ["frame.number", "frame.comment"]).map((r) => r[1] ?? ""));
    expect(comments).toEqual([["", ""], ["probe: new file after probe dropped 7 packets in front of the stages"], ["probe: new file after output queue dropped 2 packets"]]);
  });

  test("loss reasons waiting for a packet are bounded (MAX_PENDING_REASONS), the rest counted", async () => {
    const spec = rotatingFileSpecFromFlags("test", { "rotate-on-loss": true }, { path: join(dir, "b-%N.pcapng"), format: "pcapng" })!;
    const out = buildRotatingFileOutput(spec, { logger, clockMs: () => nowMs, timers: false });
    await out.start(STREAM);
    for (let i = 0; i < 20; i++) out.event({ kind: "input-reconnect", input: 0 });
    out.event({ kind: "kernel-drop", input: 0, packets: 0 }); // nothing lost: ignored
    out.write(batchAt([DAY], 0));
    await out.stop();
    const comments = tsharkFields(join(dir, "b-0000.pcapng"), ["frame.comment"])[0]![0]!.split(",");
    expect(comments.length).toBe(MAX_PENDING_REASONS);
    expect(comments.at(-1)).toBe("probe: new file after 13 more loss events");
    expect(out.counters().loss_rotations).toBe(20);
  });

  test("never overwrites: existing names move the sequence on; a plain name continues tcpdump's numbering", async () => {
    writeFileSync(join(dir, "keep-0000.pcap"), "not ours to overwrite");
    const out = output({ "rotate-packets": "1" }, "keep-%N.pcap");
    await out.start(STREAM);
    out.write(batchAt([DAY, DAY], 0));
    await out.stop();
    expect(readFileSync(join(dir, "keep-0000.pcap"), "utf8")).toBe("not ours to overwrite");
    expect(filesIn(dir)).toEqual(["keep-0000.pcap", "keep-0001.pcap", "keep-0002.pcap"]);

    const again = output({ "rotate-packets": "1" }, "keep-%N.pcap");
    await again.start(STREAM);
    again.write(batchAt([DAY], 9));
    await again.stop();
    expect(await packetTags(join(dir, "keep-0003.pcap"))).toEqual([9]);
  });

  test("-W 3: keeps 3 of our files, deletes the oldest (logged), never a foreign file", async () => {
    writeFileSync(join(dir, "notes.txt"), "foreign");
    const out = output({ "rotate-packets": "1", "ring-files": "3" }, "w-%N.pcap");
    await out.start(STREAM);
    for (let i = 0; i < 6; i++) {
      nowMs += 1000; // distinct mtimes are not needed: the sequence breaks ties
      out.write(batchAt([DAY + i], i));
    }
    await out.stop();
    expect(filesIn(dir)).toEqual(["notes.txt", "w-0003.pcap", "w-0004.pcap", "w-0005.pcap"]);
    expect(logger.lines.filter((l) => l.includes("retention: deleted")).length).toBe(3);
  });

  test("-C -W 3 ring on a plain name: slots reused in order, never a newer slot deleted", async () => {
    const out = output({ "rotate-size": "0.0002", "ring-files": "3" }, "ring"); // 200 bytes: 2 packets per file
    await out.start(STREAM);
    const write = (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        out.write(batchAt([DAY], i));
      }
    };
    write(0, 9); // files 1-5 in slots 0 1 2 0 1; the fifth (slot 1) open with one packet
    expect(filesIn(dir)).toEqual(["ring0", "ring1.part", "ring2"]);
    expect(await packetTags(join(dir, "ring0"))).toEqual([6, 7]);
    write(9, 14); // files 6 and 7 in slots 2 and 0
    await out.stop();
    expect(filesIn(dir)).toEqual(["ring0", "ring1", "ring2"]);
    const tags = await Promise.all(["ring0", "ring1", "ring2"].map((f) => packetTags(join(dir, f))));
    expect(tags).toEqual([[12, 13], [8, 9], [10, 11]]);
  });

  test("-z runs after each rotation with the closed file's path; a failing command is logged, capture goes on", async () => {
    const log = join(dir, "z.log");
    const script = join(dir, "post.sh");
    writeFileSync(script, `#!/bin/sh\necho "$1" >> ${log}\ncase "$1" in *0001*) echo boom >&2; exit 3;; esac\n`);
    chmodSync(script, 0o755);
    const out = output({ "rotate-packets": "1", "post-rotate-command": script }, "z-%N.pcap");
    await out.start(STREAM);
    out.write(batchAt([DAY, DAY, DAY], 0));
    await out.stop();
    expect(readFileSync(log, "utf8").trim().split("\n").sort()).toEqual([0, 1, 2].map((k) => join(dir, `z-000${k}.pcap`)));
    expect(logger.lines.some((l) => l.includes("exit status 3") && l.includes('"boom"'))).toBe(true);
    expect(out.counters().post_rotate_failures).toBe(1);
  });

  test("-G 10 -W 3 -z gzip: the compressed files are ours and counted; exactly 3 left, every packet of them read by capinfos", async () => {
    const out = output({ "rotate-seconds": "10", "ring-files": "3", "post-rotate-command": "gzip" }, "gz-%N.pcap");
    await out.start(STREAM);
    for (let k = 0; k < 6; k++) {
      nowMs = (DAY + 10 * k) * 1000;
      out.write(batchAt([DAY + 10 * k, DAY + 10 * k], 2 * k));
      // Let each gzip finish before the next file, as a capture of 10 s per file would.
      for (let i = 0; i < 200 && !existsSync(join(dir, `gz-${String(k - 1).padStart(4, "0")}.pcap.gz`)) && k > 0; i++) await Bun.sleep(10);
    }
    await out.stop();
    expect(filesIn(dir)).toEqual(["gz-0003.pcap.gz", "gz-0004.pcap.gz", "gz-0005.pcap.gz"]);
    expect(filesIn(dir).map((f) => capinfosCount(join(dir, f)))).toEqual([2, 2, 2]);
    const gunzipped = Bun.spawnSync(["gzip", "-dc", join(dir, "gz-0005.pcap.gz")]).stdout;
    writeFileSync(join(dir, "..", "gz-last.pcap"), gunzipped);
    expect(await packetTags(join(dir, "..", "gz-last.pcap"))).toEqual([10, 11]);
    rmSync(join(dir, "..", "gz-last.pcap"));
    expect(logger.lines.filter((l) => /retention: deleted \S+gz-000[012]\.pcap\.gz/.test(l))).toHaveLength(3);
  });

  test("-C -W 3 ring with -z gzip: a slot's turn deletes its .gz too, so gzip never finds its name taken", async () => {
    const out = output({ "rotate-size": "0.0002", "ring-files": "3", "post-rotate-command": "gzip" }, "zr"); // 2 packets per file
    await out.start(STREAM);
    for (let file = 0; file < 7; file++) {
      out.write(batchAt([DAY, DAY], 2 * file));
      // gzip has finished with the file just closed (its .gz is there and the plain file gone; the
      // .gz alone appears as soon as gzip starts writing it).
      const done = () => existsSync(join(dir, `zr${(file - 1) % 3}.gz`)) && !existsSync(join(dir, `zr${(file - 1) % 3}`));
      for (let i = 0; i < 500 && file > 0 && !done(); i++) await Bun.sleep(10);
    }
    await out.stop();
    expect(filesIn(dir)).toEqual(["zr0.gz", "zr1.gz", "zr2.gz"]);
    expect(out.counters().post_rotate_failures).toBe(0);
    // Files 5, 6 and 7 (packets 8..13) in slots 1, 2, 0.
    expect(filesIn(dir).map((f) => capinfosCount(join(dir, f)))).toEqual([2, 2, 2]);
  });

  test("--retain-bytes: a pre-existing file and a symbolic link the template names are neither counted nor touched; a restart retires the earlier run's files", async () => {
    writeFileSync(join(dir, "w-0000.pcap"), Buffer.alloc(1000, 9));
    const target = join(dir, "..", `${dir.split("/").at(-1)}-target`);
    writeFileSync(target, "target");
    symlinkSync(target, join(dir, "w-0001.pcap"));
    try {
      // A file of one packet: 24 + 16 + 100 = 140 bytes; 300 bytes keep two of them.
      const run = async (from: number, count: number) => {
        const out = output({ "rotate-packets": "1", "retain-bytes": "300" }, "w-%N.pcap");
        await out.start(STREAM);
        for (let i = from; i < from + count; i++) out.write(batchAt([DAY + i], i));
        await out.stop();
      };
      await run(0, 5);
      expect(filesIn(dir)).toEqual(["w-0000.pcap", "w-0001.pcap", "w-0005.pcap", "w-0006.pcap"]);
      expect([5, 6].map((n) => Bun.file(join(dir, `w-000${n}.pcap`)).size)).toEqual([140, 140]);
      await run(5, 3);
      expect(filesIn(dir)).toEqual(["w-0000.pcap", "w-0001.pcap", "w-0008.pcap", "w-0009.pcap"]);
      expect(await packetTags(join(dir, "w-0009.pcap"))).toEqual([7]);
      expect(readFileSync(join(dir, "w-0000.pcap"))).toEqual(Buffer.alloc(1000, 9));
      expect(lstatSync(join(dir, "w-0001.pcap")).isSymbolicLink()).toBe(true);
      expect(readFileSync(target, "utf8")).toBe("target");
      expect(logger.lines.filter((l) => l.includes("retention: deleted")).map((l) => /(w-\d+\.pcap)/.exec(l)![1])).toEqual(
        ["w-0002.pcap", "w-0003.pcap", "w-0004.pcap", "w-0005.pcap", "w-0006.pcap", "w-0007.pcap"],
      );
    } finally {
      rmSync(target, { force: true });
    }
  });

  test(".part recovery at start: ours cut after the last complete record, renamed, logged; .part files probe did not write left alone", async () => {
    const first = output({ "rotate-packets": "100" }, "r-%N.pcap");
    await first.start(STREAM);
    first.write(batchAt([DAY, DAY, DAY], 0));
    first.tick(); // nothing due yet: staged records stay in memory until the flush interval
    nowMs += 1000;
    first.tick(); // flush interval passed: written to r-0000.pcap.part
    const part = join(dir, "r-0000.pcap.part");
    const whole = readFileSync(part);
    // Simulate kill -9 mid-write: a torn fourth record (same file, so still the one probe created).
    writeFileSync(part, Buffer.concat([whole, whole.subarray(24, 24 + 50)]));
    // Names the template makes that probe did not write: a file and a link to a file elsewhere.
    writeFileSync(join(dir, "r-0001.pcap.part"), whole.subarray(0, 10));
    const target = join(dir, "..", `${dir.split("/").at(-1)}-target`);
    writeFileSync(target, whole);
    symlinkSync(target, join(dir, "r-0002.pcap.part"));
    writeFileSync(join(dir, "other.pcap.part"), "foreign");

    const second = output({ "rotate-packets": "100" }, "r-%N.pcap");
    try {
      await second.start(STREAM);
      await second.stop();
      expect(filesIn(dir)).toEqual(["other.pcap.part", "r-0000.pcap", "r-0001.pcap.part", "r-0002.pcap.part"]);
      expect(capinfosCount(join(dir, "r-0000.pcap"))).toBe(3);
      expect(await packetTags(join(dir, "r-0000.pcap"))).toEqual([0, 1, 2]);
      expect(logger.lines.some((l) => l.includes("3 complete records kept, 50 bytes of a torn last record cut"))).toBe(true);
      expect(readFileSync(join(dir, "r-0001.pcap.part")).byteLength).toBe(10);
      expect(Buffer.compare(readFileSync(target), whole)).toBe(0);
      expect(lstatSync(join(dir, "r-0002.pcap.part")).isSymbolicLink()).toBe(true);
      const leftAlone = logger.lines.filter((l) => l.includes("that probe did not write"));
      expect(leftAlone).toHaveLength(1);
      expect(leftAlone[0]).toContain("left alone 2 names the template makes that probe did not write: r-0001.pcap.part (file), r-0002.pcap.part (symbolic link)");
    } finally {
      rmSync(target, { force: true });
    }
  });

  test(".part recovery: a .part of ours without a complete header is deleted (logged)", async () => {
    const first = output({ "rotate-packets": "100" }, "h-%N.pcap");
    await first.start(STREAM);
    first.write(batchAt([DAY], 0));
    nowMs += 1000;
    first.tick();
    const part = join(dir, "h-0000.pcap.part");
    writeFileSync(part, readFileSync(part).subarray(0, 10));
    const second = output({ "rotate-packets": "100" }, "h-%N.pcap");
    await second.start(STREAM);
    await second.stop();
    expect(filesIn(dir)).toEqual([]);
    expect(logger.lines.some((l) => l.includes(`deleted ${part}: 10 bytes without a complete file header`))).toBe(true);
  });

  test(".part recovery of pcapng: torn EPB cut, SHB/IDB kept, tshark reads every whole packet", async () => {
    const first = output({ "rotate-packets": "100" }, "rn-%N.pcapng", "pcapng");
    await first.start(STREAM);
    first.write(batchAt([DAY, DAY, DAY, DAY], 0));
    nowMs += 1000;
    first.tick();
    const part = join(dir, "rn-0000.pcapng.part");
    const whole = readFileSync(part);
    // A torn EPB: its first 40 bytes (type, a length far beyond the end, part of the data).
    const torn = Buffer.concat([whole, whole.subarray(whole.byteLength - 132, whole.byteLength - 92)]);
    writeFileSync(part, torn);
    const second = output({ "rotate-packets": "100" }, "rn-%N.pcapng", "pcapng");
    await second.start(STREAM);
    await second.stop();
    expect(filesIn(dir)).toEqual(["rn-0000.pcapng"]);
    expect(readFileSync(join(dir, "rn-0000.pcapng")).byteLength).toBe(whole.byteLength);
    expect(tsharkFields(join(dir, "rn-0000.pcapng"), ["frame.number", "frame.interface_name"])).toEqual(
      [1, 2, 3, 4].map((n) => [String(n), "eth0"]),
    );
  });

  test("an unwritable directory is one clear line at start", async () => {
    const out = output({ "rotate-packets": "1" }, "missing/x-%N.pcap");
    await expect(out.start(STREAM)).rejects.toThrow(/cannot write in .*missing: no such directory \(ENOENT\)/);
  });
});
