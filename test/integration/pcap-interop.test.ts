// Interop with real tools as judges: files written by our encoders are read by capinfos, tshark
// and tcpdump; files written by editcap, mergecap and tcpdump are read by our reader and
// compared with what tshark and tcpdump say about them. Needs tshark, capinfos, editcap,
// mergecap and tcpdump on PATH (scripts/setup.mjs --test-tools).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { PacketBatch } from "../../src/packet/packet-batch.ts";
import {
  EpbDirection,
  decodePcapngBlock,
  decodePcapngSectionHeader,
  encodePcapGlobalHeader,
  encodePcapngInterface,
  encodePcapngPacketsFromBatch,
  encodePcapngSectionHeader,
  pcapRecordsFromBatch,
  readCaptureFile,
  type PcapngPacket,
} from "../../src/protocols/pcap/index.ts";
import { VECTORS_DIR, concat, flatten, toHex, type FlatRecord } from "../support/pcap-codec-helpers.ts";

const VECTOR = resolve(VECTORS_DIR, "rpcap-passive-tcp.pcap");
let dir = "";
let vectorBatch: PacketBatch;
let vectorRecords: FlatRecord[];

function run(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** tcpdump's full decode with nanosecond epoch times and hex bytes: equal text means equal packets. */
function tcpdumpText(path: string): string {
  return run(["tcpdump", "-r", path, "-nn", "-tt", "--time-stamp-precision=nano", "-xx"]);
}

function tsharkFields(path: string, fields: string[]): string[][] {
  const out = run(["tshark", "-r", path, "-T", "fields", "-E", "separator=/t", ...fields.flatMap((f) => ["-e", f])]);
  // One line per packet; a packet whose fields are all empty gives an empty line, so keep those.
  if (out === "") return [];
  return out
    .replace(/\n$/, "")
    .split("\n")
    .map((l) => l.split("\t"));
}

function capinfos(path: string): string {
  return run(["capinfos", "-M", path]);
}

function write(name: string, ...parts: Uint8Array[]): string {
  const path = join(dir, name);
  writeFileSync(path, concat(...parts));
  return path;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "probe-pcap-interop-"));
  const contents = await readCaptureFile(VECTOR);
  expect(contents.batches.length).toBe(1);
  vectorBatch = contents.batches[0]!;
  vectorRecords = flatten(contents.batches);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("files we write, judged by capinfos, tshark and tcpdump", () => {
  test("classic pcap LE micro: header + batch.bytes is the vector, byte for byte", async () => {
    const path = write("le-micro.pcap", encodePcapGlobalHeader({ linktype: 1, snaplen: 262144, precision: "micro", littleEndian: true }), pcapRecordsFromBatch(vectorBatch, "micro"));
    expect(toHex(await Bun.file(path).bytes())).toBe(toHex(await Bun.file(VECTOR).bytes()));
    expect(capinfos(path)).toMatch(/Number of packets:\s+101\b/);
  });

  test("classic pcap BE nano: tcpdump decodes every packet as in the vector", () => {
    const path = write("be-nano.pcap", encodePcapGlobalHeader({ linktype: 1, snaplen: 262144, precision: "nano", littleEndian: false }), pcapRecordsFromBatch(vectorBatch, "nano", false));
    const info = capinfos(path);
    expect(info).toMatch(/File timestamp precision:\s+nanoseconds \(9\)/);
    expect(info).toMatch(/File encapsulation:\s+ether/);
    expect(info).toMatch(/Number of packets:\s+101\b/);
    expect(tcpdumpText(path)).toBe(tcpdumpText(VECTOR));
  });

  for (const littleEndian of [true, false]) {
    test(`pcapng ${littleEndian ? "LE" : "BE"} with comments and direction flags: tshark shows them, tcpdump decodes the same packets`, () => {
      const comments = (i: number): string[] | undefined => (i % 3 === 0 ? [`hook tag ${i}`, "second"] : i === 1 ? ["ünïcode ✓"] : undefined);
      const flags = (i: number): number | undefined => (i % 2 === 0 ? EpbDirection.INBOUND : i % 5 === 0 ? EpbDirection.OUTBOUND : undefined);
      const path = write(
        `probe-${littleEndian}.pcapng`,
        encodePcapngSectionHeader({ userApplication: "probe", littleEndian }),
        encodePcapngInterface({ linktype: 1, snaplen: 262144, precision: "nano", name: "lo", description: "loopback", littleEndian }),
        encodePcapngPacketsFromBatch(vectorBatch, 0, { comments, flags, precision: "nano", littleEndian }),
      );
      const info = capinfos(path);
      expect(info).toMatch(/File type:\s+pcapng/);
      expect(info).toMatch(/Capture application:\s+probe/);
      expect(info).toMatch(/Name = lo/);
      expect(info).toMatch(/Time precision = nanoseconds \(9\)/);
      expect(info).toMatch(/Number of packets:\s+101\b/);
      const rows = tsharkFields(path, ["frame.len", "frame.cap_len", "frame.comment", "frame.packet_flags_direction"]);
      expect(rows.length).toBe(101);
      rows.forEach((row, i) => {
        const want = vectorRecords[i]!;
        expect([Number(row[0]), Number(row[1])]).toEqual([want.len, want.caplen]);
        expect(row[2] ?? "").toBe((comments(i) ?? []).join(","));
        const f = flags(i);
        expect(row[3] ?? "").toBe(f === undefined ? "" : `0x0000000${f}`);
      });
      expect(tcpdumpText(path)).toBe(tcpdumpText(VECTOR));
    });
  }

  test("pcapng micro interface from a micro batch: tshark times equal the vector's", () => {
    const path = write(
      "micro.pcapng",
      encodePcapngSectionHeader({ userApplication: "probe" }),
      encodePcapngInterface({ linktype: 1, snaplen: 262144 }),
      encodePcapngPacketsFromBatch(vectorBatch, 0),
    );
    expect(tsharkFields(path, ["frame.time_epoch", "frame.len"])).toEqual(tsharkFields(VECTOR, ["frame.time_epoch", "frame.len"]));
  });
});

describe("files tools write, read by our reader", () => {
  const vectorNano = (): FlatRecord[] => vectorRecords.map((r) => ({ ...r, precision: "nano", tsFrac: r.tsFrac * 1000 }));

  test("editcap -F pcapng", async () => {
    const path = join(dir, "editcap.pcapng");
    run(["editcap", "-F", "pcapng", VECTOR, path]);
    const got = await readCaptureFile(path);
    expect([got.format, got.linktype, got.precision]).toEqual(["pcapng", 1, "micro"]);
    expect(flatten(got.batches)).toEqual(vectorRecords);
  });

  test("editcap -F nsecpcap (nanosecond classic pcap)", async () => {
    const path = join(dir, "editcap-nsec.pcap");
    run(["editcap", "-F", "nsecpcap", VECTOR, path]);
    const got = await readCaptureFile(path);
    expect([got.format, got.precision]).toEqual(["pcap", "nano"]);
    expect(flatten(got.batches)).toEqual(vectorNano());
  });

  test("tcpdump -w with --time-stamp-precision=nano", async () => {
    const path = join(dir, "tcpdump-nano.pcap");
    run(["tcpdump", "-r", VECTOR, "--time-stamp-precision=nano", "-w", path]);
    const got = await readCaptureFile(path);
    expect(flatten(got.batches)).toEqual(vectorNano());
  });

  test("mergecap of two pcapng files with different linktypes: two interfaces, runs per linktype, tshark agrees", async () => {
    const ether = join(dir, "ether.pcapng");
    const user0 = join(dir, "user0.pcapng");
    const merged = join(dir, "merged.pcapng");
    run(["editcap", "-F", "pcapng", VECTOR, ether]);
    run(["editcap", "-F", "pcapng", "-T", "user0", VECTOR, user0]);
    run(["mergecap", "-F", "pcapng", "-w", merged, ether, user0]);
    const got = await readCaptureFile(merged, { maxBatchBytes: 4096 });
    expect(got.interfaces.map((i) => i.linktype)).toEqual([1, 147]);
    const records = flatten(got.batches);
    const rows = tsharkFields(merged, ["frame.interface_id", "frame.len", "frame.cap_len", "frame.time_epoch"]);
    expect(records.length).toBe(rows.length);
    expect(rows.length).toBe(202);
    records.forEach((r, i) => {
      const [iface, len, caplen, epoch] = rows[i]!;
      expect([r.linktype, r.len, r.caplen]).toEqual([iface === "0" ? 1 : 147, Number(len), Number(caplen)]);
      expect(`${r.tsSec}.${String(r.tsFrac).padStart(6, "0")}`).toBe(epoch!.replace(/(\.\d{6})\d*$/, "$1"));
    });
    // Both linktypes appear as separate runs.
    expect(new Set(got.batches.map((b) => b.linktype))).toEqual(new Set([1, 147]));
    for (const b of got.batches) expect(b.count).toBeGreaterThan(0);
  });

  test("editcap -a comments: our decoder reads Wireshark-written opt_comment", async () => {
    const path = join(dir, "commented.pcapng");
    run(["editcap", "-F", "pcapng", "-a", "1:first packet", "-a", "3:third", VECTOR, path]);
    const bytes = await Bun.file(path).bytes();
    const shb = decodePcapngSectionHeader(bytes, 0);
    expect(shb.littleEndian).toBe(true);
    const packets: PcapngPacket[] = [];
    for (let at = shb.totalLength; at < bytes.byteLength; ) {
      const block = decodePcapngBlock(bytes, at, shb.littleEndian);
      if (block.kind === "enhanced-packet") packets.push(block);
      at += block.totalLength;
    }
    expect(packets.length).toBe(101);
    expect(packets.map((p) => p.comments.join("|")).slice(0, 4)).toEqual(["first packet", "", "third", ""]);
    expect(tsharkFields(path, ["frame.comment"]).slice(0, 3).map((r) => r[0] ?? "")).toEqual(["first packet", "", "third"]);
  });
});
