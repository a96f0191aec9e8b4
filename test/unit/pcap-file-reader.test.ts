// CaptureFileReader: classic pcap (LE/BE, micro/nano) and pcapng (several interfaces and sections,
// both byte orders) read whole, at every split point and byte by byte; error rows with code and
// file offset; nothing after the first error; bounded random and mutated input.
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { ProtocolError } from "../../src/packet/protocol-error.ts";
import {
  CaptureFileReader,
  EpbDirection,
  encodePcapGlobalHeader,
  encodePcapngEnhancedPacket,
  encodePcapngInterface,
  encodePcapngPacketsFromBatch,
  encodePcapngSectionHeader,
  encodePcapngSimplePacket,
  pcapRecordsFromBatch,
  readCaptureFile,
} from "../../src/protocols/pcap/index.ts";
import type { PacketBatch } from "../../src/packet/packet-batch.ts";
import {
  VECTORS_DIR,
  concat,
  flatten,
  hex,
  makeBatch,
  prng,
  readBytewise,
  readWithSplits,
  toHex,
  type FlatRecord,
} from "../support/pcap-codec-helpers.ts";

const RECORDS = [
  { tsSec: 1_700_000_000, tsFrac: 1, data: hex("000102030405060708090a0b0c0d") },
  { tsSec: 1_700_000_001, tsFrac: 999_999, len: 1514, data: hex("ffeeddcc") },
  { tsSec: 1_700_000_002, tsFrac: 500_000, data: new Uint8Array(0) },
];
const microBatch = makeBatch(RECORDS);
const nanoBatch = makeBatch(
  RECORDS.map((r) => ({ ...r, tsFrac: r.tsFrac * 1000 + 7 })),
  1,
  "nano",
);

function classic(batch: PacketBatch, littleEndian: boolean, snaplen = 65535, linktype = 1): Uint8Array {
  return concat(
    encodePcapGlobalHeader({ linktype, snaplen, precision: batch.precision, littleEndian }),
    pcapRecordsFromBatch(batch, batch.precision, littleEndian),
  );
}

const expectedMicro = flatten([microBatch]);
const expectedNano = flatten([nanoBatch]);

/** A pcapng file with two sections (LE then BE), three interfaces, an NRB, an SPB and an OPB. */
function multiInterfacePcapng(): { bytes: Uint8Array; expected: FlatRecord[] } {
  const eth = (tsSec: number, tsFrac: number, data: string): FlatRecord => ({
    linktype: 1, precision: "micro", tsSec, tsFrac, caplen: data.length / 2, len: data.length / 2, data,
  });
  const bytes = concat(
    encodePcapngSectionHeader({ userApplication: "test" }),
    encodePcapngInterface({ linktype: 1, snaplen: 0, name: "eth0" }),
    encodePcapngEnhancedPacket({ interfaceId: 0, tsSec: 10, tsFrac: 1, data: hex("0a0b0c"), comments: ["c"], flags: EpbDirection.INBOUND }),
    hex("04000000 10000000 00000000 10000000"), // NRB, skipped
    encodePcapngInterface({ linktype: 113, snaplen: 64, precision: "nano", name: "any" }),
    encodePcapngEnhancedPacket({ interfaceId: 0, tsSec: 11, tsFrac: 2, data: hex("0d") }),
    encodePcapngEnhancedPacket({ interfaceId: 1, tsSec: 12, tsFrac: 3, precision: "nano", len: 100, data: hex("1112131415") }),
    encodePcapngEnhancedPacket({ interfaceId: 1, tsSec: 13, tsFrac: 4, precision: "nano", data: hex("16") }),
    encodePcapngEnhancedPacket({ interfaceId: 0, tsSec: 14, tsFrac: 5, data: hex("0e0f") }),
    encodePcapngSimplePacket(9, hex("5051525354")), // interface 0, no timestamp, caplen 8 from padding? no: min(len 9, 8)
    hex("02000000 24000000 0000 0000 00000000 40420f00 02000000 02000000 abcd0000 24000000"), // OPB if 0, 1 s
    hex("0d0d0000 0c000000 0c000000"), // unknown block type, skipped
    encodePcapngSectionHeader({ littleEndian: false }),
    encodePcapngInterface({ linktype: 1, snaplen: 1000, littleEndian: false }),
    encodePcapngEnhancedPacket({ interfaceId: 0, tsSec: 20, tsFrac: 6, data: hex("aabb"), littleEndian: false }),
  );
  const expected: FlatRecord[] = [
    eth(10, 1, "0a0b0c"),
    eth(11, 2, "0d"),
    { linktype: 113, precision: "nano", tsSec: 12, tsFrac: 3, caplen: 5, len: 100, data: "1112131415" },
    { linktype: 113, precision: "nano", tsSec: 13, tsFrac: 4, caplen: 1, len: 1, data: "16" },
    eth(14, 5, "0e0f"),
    { linktype: 1, precision: "micro", tsSec: 0, tsFrac: 0, caplen: 8, len: 9, data: "5051525354000000" },
    eth(1, 0, "abcd"),
    eth(20, 6, "aabb"),
  ];
  return { bytes, expected };
}

const validFiles: { name: string; bytes: Uint8Array; expected: FlatRecord[] }[] = [
  { name: "classic LE micro", bytes: classic(microBatch, true), expected: expectedMicro },
  { name: "classic BE micro", bytes: classic(microBatch, false), expected: expectedMicro },
  { name: "classic LE nano", bytes: classic(nanoBatch, true), expected: expectedNano },
  { name: "classic BE nano", bytes: classic(nanoBatch, false), expected: expectedNano },
  { name: "classic, header only", bytes: classic(microBatch, true).subarray(0, 24), expected: [] },
  { name: "pcapng, two sections, three interfaces, SPB, OPB, skipped blocks", ...multiInterfacePcapng() },
  {
    name: "pcapng from a batch with comments and flags",
    bytes: concat(
      encodePcapngSectionHeader({ userApplication: "probe" }),
      encodePcapngInterface({ linktype: 1, snaplen: 65535, precision: "nano" }),
      encodePcapngPacketsFromBatch(microBatch, 0, { precision: "nano", comments: (i) => [`#${i}`], flags: () => EpbDirection.OUTBOUND }),
    ),
    expected: flatten([{ ...microBatch, bytes: pcapRecordsFromBatch(microBatch, "nano"), precision: "nano" }]),
  },
];

describe("CaptureFileReader: valid files", () => {
  for (const file of validFiles) {
    test(`${file.name}: whole`, () => {
      const r = readWithSplits(file.bytes);
      expect(r.error).toBeUndefined();
      expect(r.records).toEqual(file.expected);
      expect(r.reader.packetCount).toBe(file.expected.length);
    });
    test(`${file.name}: every split point`, () => {
      for (let i = 0; i <= file.bytes.byteLength; i++) {
        const r = readWithSplits(file.bytes, [i]);
        if (r.error) throw new Error(`split at ${i}: ${String(r.error)}`);
        expect(r.records).toEqual(file.expected);
      }
    });
    test(`${file.name}: byte by byte, and with adopted chunks`, () => {
      const r = readBytewise(file.bytes);
      expect(r.error).toBeUndefined();
      expect(r.records).toEqual(file.expected);
      const adopted = readWithSplits(file.bytes, [7, 40, 41], { adoptChunks: true });
      expect(adopted.error).toBeUndefined();
      expect(adopted.records).toEqual(file.expected);
    });
  }

  test("every pair of split points (classic BE and pcapng)", () => {
    for (const file of [validFiles[1]!, validFiles[5]!]) {
      const n = file.bytes.byteLength;
      for (let i = 0; i <= n; i += 3) {
        for (let j = i; j <= n; j += 5) {
          const r = readWithSplits(file.bytes, [i, j]);
          if (r.error) throw new Error(`splits ${i},${j}: ${String(r.error)}`);
          expect(r.records.length).toBe(file.expected.length);
          expect(r.records).toEqual(file.expected);
        }
      }
    }
  });

  test("records larger than the chunks (5000-byte packets fed in chunks of 1 to 7001 bytes)", () => {
    const big = makeBatch(Array.from({ length: 6 }, (_, i) => ({ tsSec: i, tsFrac: i, data: new Uint8Array(5000 + i).map((_, k) => k + i) })));
    const expected = flatten([big]);
    const files = [
      classic(big, true),
      classic(big, false),
      concat(encodePcapngSectionHeader(), encodePcapngInterface({ linktype: 1, snaplen: 0 }), encodePcapngPacketsFromBatch(big, 0, { comments: (i) => [`${i}`] })),
    ];
    for (const file of files) {
      for (const step of [1, 13, 999, 4096, 5016, 7001]) {
        const splits: number[] = [];
        for (let at = step; at < file.byteLength; at += step) splits.push(at);
        for (const adoptChunks of [false, true]) {
          const r = readWithSplits(file, splits, { adoptChunks });
          expect(r.error).toBeUndefined();
          expect(r.records).toEqual(expected);
        }
      }
    }
  });

  test("classic LE: one chunk becomes one batch with no per-record copies (bytes equal the file's records)", () => {
    const file = classic(microBatch, true);
    const r = readWithSplits(file);
    expect(r.batches.length).toBe(1);
    expect(toHex(r.batches[0]!.bytes)).toBe(toHex(microBatch.bytes));
    expect(r.batches[0]!.count).toBe(3);
  });

  test("borrowed chunks are copied: scribbling on a pushed chunk does not change emitted batches", () => {
    const file = classic(microBatch, true);
    const reader = new CaptureFileReader();
    const got: PacketBatch[] = [];
    const chunk = file.slice();
    reader.push(chunk, (b) => got.push(b));
    chunk.fill(0x55);
    reader.end();
    expect(flatten(got)).toEqual(expectedMicro);
  });

  test("adopted chunks are not copied (classic LE batch is a view of the chunk)", () => {
    const file = classic(microBatch, true);
    const reader = new CaptureFileReader({ adoptChunks: true });
    const got: PacketBatch[] = [];
    reader.push(file, (b) => got.push(b));
    reader.end();
    expect(got[0]!.bytes.buffer).toBe(file.buffer);
  });

  test("batches are cut at maxBatchBytes, in classic and pcapng", () => {
    const many = makeBatch(Array.from({ length: 50 }, (_, i) => ({ tsSec: i, tsFrac: i, data: new Uint8Array(100).fill(i) })));
    const expected = flatten([many]);
    const pcap = classic(many, true);
    const r1 = readWithSplits(pcap, [], { maxBatchBytes: 1000 });
    expect(r1.records).toEqual(expected);
    expect(r1.batches.length).toBe(6); // 116-byte records: a batch is cut at 9 (1044 bytes), 50 = 5 * 9 + 5
    for (const b of r1.batches.slice(0, -1)) expect(b.bytes.byteLength).toBeGreaterThanOrEqual(1000);
    const ng = concat(encodePcapngSectionHeader(), encodePcapngInterface({ linktype: 1, snaplen: 0 }), encodePcapngPacketsFromBatch(many, 0));
    const r2 = readWithSplits(ng, [], { maxBatchBytes: 1000 });
    expect(r2.records).toEqual(expected);
    expect(r2.batches.length).toBe(r1.batches.length);
  });

  test("pcapng: runs per linktype/precision, interface list exposed", () => {
    const { bytes } = multiInterfacePcapng();
    const r = readWithSplits(bytes);
    expect(r.batches.map((b) => [b.linktype, b.precision, b.count])).toEqual([
      [1, "micro", 2],
      [113, "nano", 2],
      [1, "micro", 4],
    ]);
    expect(r.reader.format).toBe("pcapng");
    expect(r.reader.interfaces.map((i) => [i.section, i.interfaceId, i.linktype, i.snaplen, i.precision, i.name])).toEqual([
      [0, 0, 1, 0, "micro", "eth0"],
      [0, 1, 113, 64, "nano", "any"],
      [1, 0, 1, 1000, "micro", undefined],
    ]);
    expect([r.reader.linktype, r.reader.snaplen, r.reader.timestampPrecision]).toEqual([1, 0, "micro"]);
  });

  test("classic: header info exposed, FCS bits kept in the batch linktype", () => {
    const r = readWithSplits(classic(microBatch, false, 262144, 0x24000001));
    expect(r.reader.format).toBe("pcap");
    expect(r.reader.pcapHeader).toMatchObject({ littleEndian: false, snaplen: 262144, linktype: 0x24000001 });
    expect(r.batches[0]!.linktype).toBe(0x24000001);
  });

  test("pcapng if_fcslen becomes the classic FCS bits of the batch linktype", () => {
    const bytes = concat(
      encodePcapngSectionHeader(),
      encodePcapngInterface({ linktype: 0x24000001, snaplen: 0 }),
      encodePcapngEnhancedPacket({ interfaceId: 0, tsSec: 0, tsFrac: 0, data: hex("00") }),
    );
    expect(readWithSplits(bytes).batches[0]!.linktype).toBe(0x24000001);
  });
});

/** Sets a u32 in a copy. */
function patch(bytes: Uint8Array, at: number, value: number, le = true): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(at, value, le);
  return copy;
}

const le = classic(microBatch, true); // records at 24 (14 bytes data), 54 (4), 74 (0); ends at 90
const be = classic(microBatch, false);
const ngHead = concat(encodePcapngSectionHeader(), encodePcapngInterface({ linktype: 1, snaplen: 100 })); // SHB 28 + IDB 20
const epb = encodePcapngEnhancedPacket({ interfaceId: 0, tsSec: 1, tsFrac: 0, data: hex("01020304") }); // 36 bytes
const ng = concat(ngHead, epb, epb); // EPBs at 48 and 84, end 120

const errorRows: { name: string; bytes: Uint8Array; code: string; offset: number; before: number; options?: { maxBlockBytes?: number } }[] = [
  { name: "empty file", bytes: new Uint8Array(0), code: "truncated", offset: 0, before: 0 },
  { name: "3 bytes", bytes: le.subarray(0, 3), code: "truncated", offset: 0, before: 0 },
  { name: "bad magic", bytes: hex("7f454c46 02010100 00000000 00000000 00000000 00000000"), code: "bad-magic", offset: 0, before: 0 },
  { name: "pcap header cut short", bytes: le.subarray(0, 20), code: "truncated", offset: 0, before: 0 },
  { name: "pcap version 1", bytes: patch(le, 4, 0x00000001), code: "unsupported-version", offset: 4, before: 0 },
  { name: "ends inside a record header", bytes: le.subarray(0, 60), code: "truncated", offset: 54, before: 1 },
  { name: "ends inside record data", bytes: le.subarray(0, 89), code: "truncated", offset: 74, before: 2 },
  { name: "caplen > snaplen (LE)", bytes: patch(patch(le, 16, 10), 62, 4), code: "caplen-exceeds-snaplen", offset: 32, before: 0 },
  { name: "caplen > snaplen on the 2nd record (BE)", bytes: patch(be, 16, 10, false), code: "caplen-exceeds-snaplen", offset: 32, before: 0 },
  { name: "caplen > len on record 2", bytes: patch(le, 66, 3), code: "caplen-exceeds-len", offset: 62, before: 1 },
  { name: "caplen > len on record 3 (BE)", bytes: patch(patch(be, 82, 1, false), 86, 0, false), code: "caplen-exceeds-len", offset: 82, before: 2 },
  { name: "caplen over the cap when snaplen is 0", bytes: patch(patch(patch(le, 16, 0), 32, 0x01000001), 36, 0x01000001), code: "record-too-large", offset: 32, before: 0 },
  { name: "caplen over a configured cap", bytes: le, code: "record-too-large", offset: 32, before: 0, options: { maxBlockBytes: 10 } },
  { name: "pcapng: first block not an SHB (IDB)", bytes: concat(hex("01000000"), ng.subarray(4)), code: "bad-magic", offset: 0, before: 0 },
  { name: "pcapng: SHB bad byte-order magic", bytes: patch(ng, 8, 0xdeadbeef), code: "bad-magic", offset: 8, before: 0 },
  { name: "pcapng: SHB version 2", bytes: patch(ng, 12, 2), code: "unsupported-version", offset: 12, before: 0 },
  { name: "pcapng: SHB only, cut", bytes: ng.subarray(0, 20), code: "truncated", offset: 0, before: 0 },
  { name: "pcapng: block length not multiple of 4", bytes: patch(ng, 88, 37), code: "bad-block-length", offset: 88, before: 1 },
  { name: "pcapng: block too short", bytes: patch(ng, 88, 16), code: "block-too-short", offset: 88, before: 1 },
  { name: "pcapng: block over the cap (CVE-2019-15165)", bytes: patch(ng, 88, 0xfffffff0), code: "block-too-large", offset: 88, before: 1 },
  { name: "pcapng: trailing length mismatch", bytes: patch(ng, 116, 40), code: "block-length-mismatch", offset: 116, before: 1 },
  { name: "pcapng: file ends inside a block", bytes: ng.subarray(0, 119), code: "truncated", offset: 84, before: 1 },
  { name: "pcapng: unknown interface", bytes: patch(ng, 92, 1), code: "unknown-interface", offset: 92, before: 1 },
  { name: "pcapng: packet before any IDB", bytes: concat(encodePcapngSectionHeader(), epb), code: "unknown-interface", offset: 36, before: 0 },
  { name: "pcapng: SPB before any IDB", bytes: concat(encodePcapngSectionHeader(), encodePcapngSimplePacket(1, hex("00"))), code: "unknown-interface", offset: 28, before: 0 },
  { name: "pcapng: caplen > snaplen", bytes: concat(ngHead, encodePcapngEnhancedPacket({ interfaceId: 0, tsSec: 0, tsFrac: 0, data: new Uint8Array(101) })), code: "caplen-exceeds-snaplen", offset: 68, before: 0 },
  { name: "pcapng: caplen > len", bytes: patch(ng, 108, 3), code: "caplen-exceeds-len", offset: 104, before: 1 },
  { name: "pcapng: caplen past the block", bytes: patch(patch(ng, 104, 8), 108, 8), code: "caplen-exceeds-block", offset: 104, before: 1 },
  { name: "pcapng: bad IDB option", bytes: concat(encodePcapngSectionHeader(), patch(encodePcapngInterface({ linktype: 1, snaplen: 0, name: "x" }), 16, 0x00ff0002)), code: "bad-option-length", offset: 46, before: 0 },
  { name: "pcapng: timestamp past u32 seconds", bytes: concat(ngHead, patch(epb, 12, 0xffffffff)), code: "timestamp-out-of-range", offset: 60, before: 0 },
];

describe("CaptureFileReader: error rows", () => {
  for (const row of errorRows) {
    test(`${row.name} -> ${row.code} at ${row.offset}, ${row.before} packets before, at every split point`, () => {
      for (let i = 0; i <= row.bytes.byteLength; i++) {
        const splits = i === 0 ? [] : [i];
        const r = readWithSplits(row.bytes, splits, row.options);
        if (!(r.error instanceof ProtocolError)) throw new Error(`split ${i}: expected ProtocolError, got ${String(r.error)}`);
        expect({ split: i, code: r.error.code, offset: r.error.offset, before: r.records.length }).toEqual({
          split: i,
          code: row.code,
          offset: row.offset,
          before: row.before,
        });
      }
      const bytewise = readBytewise(row.bytes, row.options);
      expect((bytewise.error as ProtocolError).code).toBe(row.code);
      expect((bytewise.error as ProtocolError).offset).toBe(row.offset);
      expect(bytewise.records.length).toBe(row.before);
    });
  }

  test("a hostile length is refused as soon as its header arrives, before waiting for the body", () => {
    const reader = new CaptureFileReader();
    const head = patch(patch(patch(le, 16, 0), 32, 0x7fffffff), 36, 0x7fffffff).subarray(0, 40);
    expect(() => reader.push(head, () => {})).toThrow(ProtocolError);
    const ngReader = new CaptureFileReader();
    expect(() => ngReader.push(patch(ng, 88, 0x7ffffffc).subarray(0, 96), () => {})).toThrow("exceeds the cap");
  });

  test("after the first error nothing more is emitted and every call throws the same error", () => {
    const reader = new CaptureFileReader();
    const got: PacketBatch[] = [];
    const bad = patch(le, 66, 3);
    let first: unknown;
    try {
      reader.push(bad, (b) => got.push(b));
    } catch (e) {
      first = e;
    }
    expect(got.length).toBe(1);
    expect(got[0]!.count).toBe(1);
    expect(() => reader.push(le.subarray(24), (b) => got.push(b))).toThrow(first as Error);
    expect(() => reader.end()).toThrow(first as Error);
    expect(reader.error).toBe(first);
    expect(got.length).toBe(1);
  });

  test("push after end() throws", () => {
    const reader = new CaptureFileReader();
    reader.push(le, () => {});
    reader.end();
    expect(() => reader.push(le, () => {})).toThrow("after end()");
  });
});

describe("CaptureFileReader: bounded random input", () => {
  function checkNeverCrashes(bytes: Uint8Array, random: () => number): void {
    const splits: number[] = [];
    for (let at = 0; at < bytes.byteLength; ) {
      at += 1 + Math.floor(random() * 40);
      if (at < bytes.byteLength) splits.push(at);
    }
    const r = readWithSplits(bytes, splits, { maxBlockBytes: 4096 });
    if (r.error !== undefined && !(r.error instanceof ProtocolError)) throw r.error;
  }

  test("random bytes after each valid magic, and pure random bytes (seeded, 3000 cases)", () => {
    const random = prng(0xc0ffee);
    const prefixes = [new Uint8Array(0), le.subarray(0, 4), be.subarray(0, 4), le.subarray(0, 24), ng.subarray(0, 4), ng.subarray(0, 48)];
    for (let i = 0; i < 3000; i++) {
      const body = Uint8Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256));
      checkNeverCrashes(concat(prefixes[i % prefixes.length]!, body), random);
    }
  });

  test("valid files with random bytes flipped (seeded, 4000 cases)", () => {
    const random = prng(42);
    const sources = validFiles.map((f) => f.bytes);
    for (let i = 0; i < 4000; i++) {
      const bytes = sources[i % sources.length]!.slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let k = 0; k < flips; k++) bytes[Math.floor(random() * bytes.byteLength)] = Math.floor(random() * 256);
      checkNeverCrashes(bytes, random);
    }
  });
});

describe("CaptureFileReader on the shared vectors (classic pcap LE, tcpdump-written)", () => {
  /** An independent, slow reading of a classic LE micro file: header words and records via DataView. */
  function slowRead(bytes: Uint8Array): FlatRecord[] {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out: FlatRecord[] = [];
    const linktype = dv.getUint32(20, true);
    for (let at = 24; at < bytes.byteLength; ) {
      const caplen = dv.getUint32(at + 8, true);
      out.push({
        linktype,
        precision: "micro",
        tsSec: dv.getUint32(at, true),
        tsFrac: dv.getUint32(at + 4, true),
        caplen,
        len: dv.getUint32(at + 12, true),
        data: toHex(bytes.subarray(at + 16, at + 16 + caplen)),
      });
      at += 16 + caplen;
    }
    return out;
  }

  for (const name of ["rpcap-passive-tcp.pcap", "rpcap-auth-ok-capture.pcap", "udpstr-extrahop-mt.pcap"]) {
    test(`${name}: readCaptureFile and 1 KiB chunks agree with a slow independent read`, async () => {
      const path = resolve(VECTORS_DIR, name);
      const bytes = await Bun.file(path).bytes();
      const expected = slowRead(bytes);
      expect(expected.length).toBeGreaterThan(10);
      const whole = await readCaptureFile(path);
      expect([whole.format, whole.linktype, whole.snaplen, whole.precision]).toEqual(["pcap", 1, 262144, "micro"]);
      expect(flatten(whole.batches)).toEqual(expected);
      const splits: number[] = [];
      for (let i = 1024; i < bytes.byteLength; i += 1024) splits.push(i);
      expect(readWithSplits(bytes, splits).records).toEqual(expected);
    });
  }

  test("readCaptureFile rejects a missing interface and a bad file with ProtocolError", async () => {
    const dir = await import("node:os").then((os) => os.tmpdir());
    const shbOnly = resolve(dir, `probe-pcap-shb-only-${process.pid}.pcapng`);
    await Bun.write(shbOnly, encodePcapngSectionHeader());
    expect(readCaptureFile(shbOnly)).rejects.toMatchObject({ code: "no-interface" });
    const truncated = resolve(dir, `probe-pcap-truncated-${process.pid}.pcap`);
    await Bun.write(truncated, le.subarray(0, 60));
    expect(readCaptureFile(truncated)).rejects.toMatchObject({ code: "truncated", offset: 54 });
  });
});
