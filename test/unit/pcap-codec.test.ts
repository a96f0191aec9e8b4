// Classic pcap codec tables: global and record headers in both byte orders (decode, exact encode,
// round trip, error rows with code and offset) and the batch-to-file helpers.
import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/packet/protocol-error.ts";
import {
  decodePcapGlobalHeader,
  decodePcapRecordHeader,
  encodePcapGlobalHeader,
  encodePcapRecordHeader,
  fcsLengthOf,
  linktypeOf,
  linktypeWithFcs,
  pcapRecordsFromBatch,
  type PcapGlobalHeader,
} from "../../src/protocols/pcap/index.ts";
import { hex, makeBatch, toHex, flatten } from "../support/pcap-codec-helpers.ts";

const headerRows: { name: string; bytes: string; header: PcapGlobalHeader }[] = [
  {
    name: "little-endian micro, Ethernet, snaplen 262144 (the vectors' header)",
    bytes: "d4c3b2a1 0200 0400 00000000 00000000 00000400 01000000",
    header: { littleEndian: true, precision: "micro", versionMajor: 2, versionMinor: 4, thiszone: 0, sigfigs: 0, snaplen: 262144, linktype: 1 },
  },
  {
    name: "little-endian nano",
    bytes: "4d3cb2a1 0200 0400 00000000 00000000 ffff0000 71000000",
    header: { littleEndian: true, precision: "nano", versionMajor: 2, versionMinor: 4, thiszone: 0, sigfigs: 0, snaplen: 65535, linktype: 113 },
  },
  {
    name: "big-endian micro",
    bytes: "a1b2c3d4 0002 0004 00000000 00000000 00000060 00000065",
    header: { littleEndian: false, precision: "micro", versionMajor: 2, versionMinor: 4, thiszone: 0, sigfigs: 0, snaplen: 96, linktype: 101 },
  },
  {
    name: "big-endian nano",
    bytes: "a1b23c4d 0002 0004 00000000 00000000 00040000 00000001",
    header: { littleEndian: false, precision: "nano", versionMajor: 2, versionMinor: 4, thiszone: 0, sigfigs: 0, snaplen: 262144, linktype: 1 },
  },
  {
    name: "FCS bits in the linktype word are kept as-is (4-byte FCS = 2 units, present bit)",
    bytes: "d4c3b2a1 0200 0400 00000000 00000000 00000400 01000024",
    header: { littleEndian: true, precision: "micro", versionMajor: 2, versionMinor: 4, thiszone: 0, sigfigs: 0, snaplen: 262144, linktype: 0x24000001 },
  },
];

describe("pcap global header", () => {
  for (const row of headerRows) {
    test(`decode: ${row.name}`, () => {
      expect(decodePcapGlobalHeader(hex(row.bytes))).toEqual(row.header);
    });
    test(`exact encode: ${row.name}`, () => {
      const h = row.header;
      const bytes = encodePcapGlobalHeader({ linktype: h.linktype, snaplen: h.snaplen, precision: h.precision, littleEndian: h.littleEndian });
      expect(toHex(bytes)).toBe(toHex(hex(row.bytes)));
    });
    test(`round trip: ${row.name}`, () => {
      const h = row.header;
      expect(decodePcapGlobalHeader(encodePcapGlobalHeader({ ...h }))).toEqual(h);
    });
  }

  test("decodes at an offset and ignores trailing bytes", () => {
    const bytes = hex(`eeee ${headerRows[0]!.bytes} ffff`);
    expect(decodePcapGlobalHeader(bytes, 2)).toEqual(headerRows[0]!.header);
  });

  test("FCS helpers split the linktype word (pcap/pcap.h LT_FCS_*)", () => {
    expect(linktypeOf(0x24000001)).toBe(1);
    expect(fcsLengthOf(0x24000001)).toBe(2);
    expect(fcsLengthOf(1)).toBeUndefined();
    expect(linktypeWithFcs(1, 2)).toBe(0x24000001);
    expect(linktypeWithFcs(105, 0)).toBe(0x04000069);
  });

  const errorRows: { name: string; bytes: string; offset?: number; code: string; at: number }[] = [
    { name: "short header", bytes: "d4c3b2a1 0200 0400 00000000", code: "truncated", at: 0 },
    { name: "empty input", bytes: "", code: "truncated", at: 0 },
    { name: "pcapng magic is not a pcap magic", bytes: "0a0d0d0a 1c000000 4d3c2b1a 01000000 ffffffff ffffffff", code: "bad-magic", at: 0 },
    { name: "modified-pcap (Kuznetzov) magic is refused", bytes: "34cdb2a1 0200 0400 00000000 00000000 00000400 01000000", code: "bad-magic", at: 0 },
    { name: "version 1.0 (libpcap refuses too)", bytes: "d4c3b2a1 0100 0000 00000000 00000000 00000400 01000000", code: "unsupported-version", at: 4 },
    { name: "error offset is absolute", bytes: "0000 d4c3b2a1 0300 0400 00000000 00000000 00000400 01000000", offset: 2, code: "unsupported-version", at: 6 },
  ];
  for (const row of errorRows) {
    test(`error: ${row.name} -> ${row.code} at ${row.at}`, () => {
      let error: unknown;
      try {
        decodePcapGlobalHeader(hex(row.bytes), row.offset ?? 0);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ProtocolError);
      expect((error as ProtocolError).code).toBe(row.code);
      expect((error as ProtocolError).offset).toBe(row.at);
    });
  }
});

describe("pcap record header", () => {
  const rows = [
    { name: "little-endian", le: true, bytes: "6f97036b 18419205 4a000000 4a000000", header: { tsSec: 0x6b03976f, tsFrac: 0x05924118, caplen: 74, len: 74 } },
    { name: "big-endian", le: false, bytes: "6b03976f 05924118 00000040 000005dc", header: { tsSec: 0x6b03976f, tsFrac: 0x05924118, caplen: 64, len: 1500 } },
  ];
  for (const row of rows) {
    test(`decode: ${row.name}`, () => {
      expect(decodePcapRecordHeader(hex(row.bytes), 0, row.le)).toEqual(row.header);
    });
    test(`exact encode: ${row.name}`, () => {
      expect(toHex(encodePcapRecordHeader(row.header, row.le))).toBe(toHex(hex(row.bytes)));
    });
  }
  test("truncated record header reports its offset", () => {
    try {
      decodePcapRecordHeader(hex("00 01020304 05060708 090a0b0c 0d0e0f"), 1, true);
      throw new Error("expected a throw");
    } catch (e) {
      expect(e).toBeInstanceOf(ProtocolError);
      expect((e as ProtocolError).code).toBe("truncated");
      expect((e as ProtocolError).offset).toBe(1);
    }
  });
  test("encode refuses values that do not fit u32 instead of narrowing", () => {
    expect(() => encodePcapRecordHeader({ tsSec: 2 ** 32, tsFrac: 0, caplen: 0, len: 0 }, true)).toThrow(RangeError);
    expect(() => encodePcapGlobalHeader({ linktype: -1, snaplen: 0, precision: "micro", littleEndian: true })).toThrow(RangeError);
  });
});

describe("pcapRecordsFromBatch", () => {
  const micro = makeBatch([
    { tsSec: 100, tsFrac: 999_999, data: hex("0102030405") },
    { tsSec: 101, tsFrac: 0, len: 60, data: hex("aa") },
  ]);
  const nano = makeBatch(
    [
      { tsSec: 100, tsFrac: 999_999_999, data: hex("0102030405") },
      { tsSec: 101, tsFrac: 1_999, len: 60, data: hex("aa") },
    ],
    1,
    "nano",
  );

  test("matching precision returns batch.bytes itself (the batch already is LE pcap records)", () => {
    expect(pcapRecordsFromBatch(micro, "micro")).toBe(micro.bytes);
    expect(pcapRecordsFromBatch(nano, "nano")).toBe(nano.bytes);
  });

  test("micro -> nano multiplies ts_frac by 1000 and leaves the batch untouched", () => {
    const before = toHex(micro.bytes);
    const out = pcapRecordsFromBatch(micro, "nano");
    expect(toHex(out)).toBe(
      toHex(hex("64000000 18c69a3b 05000000 05000000 0102030405  65000000 00000000 01000000 3c000000 aa")),
    );
    expect(toHex(micro.bytes)).toBe(before);
  });

  test("nano -> micro truncates", () => {
    const out = pcapRecordsFromBatch(nano, "micro");
    const records = flatten([{ ...nano, bytes: out, precision: "micro" }]);
    expect(records.map((r) => r.tsFrac)).toEqual([999_999, 1]);
  });

  test("big-endian target swaps the four header words", () => {
    const out = pcapRecordsFromBatch(micro, "micro", false);
    expect(toHex(out)).toBe(toHex(hex("00000064 000f423f 00000005 00000005 0102030405  00000065 00000000 00000001 0000003c aa")));
  });

  test("a corrupt micro ts_frac that cannot fit nanoseconds throws instead of wrapping", () => {
    const bad = makeBatch([{ tsSec: 1, tsFrac: 0xffffffff, data: hex("00") }]);
    expect(() => pcapRecordsFromBatch(bad, "nano")).toThrow(RangeError);
  });
});
