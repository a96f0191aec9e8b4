// pcapng codec tables: exact encodes of SHB/IDB/EPB/SPB, decodes in both byte orders, round
// trips, error rows with code and offset (block lengths: CVE-2019-15165), timestamp resolution.
import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/packet/protocol-error.ts";
import {
  EpbDirection,
  InterfaceClock,
  batchLinktypeOfInterface,
  decodePcapngBlock,
  decodePcapngEnhancedPacket,
  decodePcapngInterface,
  decodePcapngSectionHeader,
  encodePcapngEnhancedPacket,
  encodePcapngInterface,
  encodePcapngPacketsFromBatch,
  encodePcapngSectionHeader,
  encodePcapngSimplePacket,
  epbDirectionName,
  linktypeWithFcs,
  pcapngBlockLength,
  pcapngBlockTypeName,
  type PcapngPacket,
} from "../../src/protocols/pcap/index.ts";
import { concat, hex, makeBatch, toHex } from "../support/pcap-codec-helpers.ts";

const SHB_PROBE_LE = `0a0d0d0a 2c000000 4d3c2b1a 0100 0000 ffffffff ffffffff
  0400 0500 70726f62 65000000  0000 0000  2c000000`;
const SHB_PROBE_BE = `0a0d0d0a 0000002c 1a2b3c4d 0001 0000 ffffffff ffffffff
  0004 0005 70726f62 65000000  0000 0000  0000002c`;
const IDB_LO_NANO_LE = `01000000 28000000 0100 0000 00000400
  0200 0200 6c6f0000  0900 0100 09000000  0000 0000  28000000`;
const IDB_MICRO_LE = `01000000 14000000 0100 0000 00000400 14000000`;
// ts 1 s + 2 us = 1000002 us = 0x000f4242; caplen 3, len 5; comment "hi"; flags inbound.
const EPB_LE = `06000000 38000000 00000000 00000000 42420f00 03000000 05000000 aabbcc00
  0100 0200 68690000  0200 0400 01000000  0000 0000  38000000`;
const EPB_BE = `00000006 00000038 00000000 00000000 000f4242 00000003 00000005 aabbcc00
  0001 0002 68690000  0002 0004 00000001  0000 0000  00000038`;

function expectError(fn: () => unknown, code: string, offset: number): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ProtocolError);
  expect({ code: (error as ProtocolError).code, offset: (error as ProtocolError).offset }).toEqual({ code, offset });
}

describe("pcapng exact encode", () => {
  test("SHB with shb_userappl, little-endian", () => {
    expect(toHex(encodePcapngSectionHeader({ userApplication: "probe" }))).toBe(toHex(hex(SHB_PROBE_LE)));
  });
  test("SHB with shb_userappl, big-endian", () => {
    expect(toHex(encodePcapngSectionHeader({ userApplication: "probe", littleEndian: false }))).toBe(toHex(hex(SHB_PROBE_BE)));
  });
  test("SHB without options has no opt_endofopt", () => {
    expect(toHex(encodePcapngSectionHeader())).toBe(toHex(hex("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffff ffffffff 1c000000")));
  });
  test("IDB with if_name and if_tsresol 9 for nano", () => {
    expect(toHex(encodePcapngInterface({ linktype: 1, snaplen: 262144, precision: "nano", name: "lo" }))).toBe(toHex(hex(IDB_LO_NANO_LE)));
  });
  test("IDB for micro writes no if_tsresol (6 is the default)", () => {
    expect(toHex(encodePcapngInterface({ linktype: 1, snaplen: 262144, precision: "micro" }))).toBe(toHex(hex(IDB_MICRO_LE)));
  });
  test("IDB turns classic FCS bits into if_fcslen (bytes)", () => {
    const bytes = encodePcapngInterface({ linktype: linktypeWithFcs(1, 2), snaplen: 0 });
    expect(toHex(bytes)).toBe(toHex(hex("01000000 20000000 0100 0000 00000000 0d00 0100 04000000 0000 0000 20000000")));
    const idb = decodePcapngInterface(bytes, 0, true);
    expect(idb.fcsLengthBytes).toBe(4);
    expect(batchLinktypeOfInterface(idb)).toBe(linktypeWithFcs(1, 2));
  });
  test("IDB refuses reserved linktype bits rather than dropping them", () => {
    expect(() => encodePcapngInterface({ linktype: 0x00010001, snaplen: 0 })).toThrow(RangeError);
  });
  test("EPB with opt_comment and epb_flags, both byte orders", () => {
    const p = { interfaceId: 0, tsSec: 1, tsFrac: 2, len: 5, data: hex("aabbcc"), comments: ["hi"], flags: EpbDirection.INBOUND };
    expect(toHex(encodePcapngEnhancedPacket(p))).toBe(toHex(hex(EPB_LE)));
    expect(toHex(encodePcapngEnhancedPacket({ ...p, littleEndian: false }))).toBe(toHex(hex(EPB_BE)));
  });
  test("SPB", () => {
    expect(toHex(encodePcapngSimplePacket(60, hex("0102030405")))).toBe(
      toHex(hex("03000000 18000000 3c000000 01020304 05000000 18000000")),
    );
  });
  test("nanosecond timestamps past 2^53 units are exact", () => {
    // 4000000000 s + 999999999 ns = 4000000000999999999 ns > 2^53.
    const bytes = encodePcapngEnhancedPacket({ interfaceId: 0, tsSec: 4_000_000_000, tsFrac: 999_999_999, precision: "nano", data: hex("") });
    const p = decodePcapngEnhancedPacket(bytes, 0, true);
    const units = (BigInt(p.timestampHigh) << 32n) | BigInt(p.timestampLow);
    expect(units).toBe(4_000_000_000_999_999_999n);
  });
});

describe("pcapng decode", () => {
  test("SHB little-endian", () => {
    expect(decodePcapngSectionHeader(hex(SHB_PROBE_LE), 0)).toEqual({
      kind: "section-header",
      littleEndian: true,
      versionMajor: 1,
      versionMinor: 0,
      sectionLength: -1n,
      comments: [],
      userApplication: "probe",
      totalLength: 44,
    });
  });
  test("SHB big-endian tells its own byte order", () => {
    const shb = decodePcapngSectionHeader(hex(SHB_PROBE_BE), 0);
    expect(shb.littleEndian).toBe(false);
    expect(shb.userApplication).toBe("probe");
    expect(decodePcapngBlock(hex(SHB_PROBE_BE), 0, true).kind).toBe("section-header");
  });
  test("SHB with hardware, os, comments and a known section length", () => {
    const bytes = encodePcapngSectionHeader({ hardware: "hw", os: "Linux", comments: ["a", "b"] });
    // Patch section_length to 1234.
    new DataView(bytes.buffer).setBigInt64(16, 1234n, true);
    const shb = decodePcapngSectionHeader(bytes, 0);
    expect(shb).toMatchObject({ hardware: "hw", os: "Linux", comments: ["a", "b"], sectionLength: 1234n });
  });
  test("IDB options", () => {
    expect(decodePcapngInterface(hex(IDB_LO_NANO_LE), 0, true)).toEqual({
      kind: "interface-description",
      linktype: 1,
      snaplen: 262144,
      name: "lo",
      tsresol: 9,
      tsoffsetSeconds: 0,
      comments: [],
      totalLength: 40,
    });
  });
  test("IDB description, comment and if_tsoffset round trip", () => {
    const base = encodePcapngInterface({ linktype: 113, snaplen: 96, description: "the card", comments: ["c1"], littleEndian: false });
    const idb = decodePcapngInterface(base, 0, false);
    expect(idb).toMatchObject({ linktype: 113, snaplen: 96, description: "the card", comments: ["c1"], tsresol: 6 });
    // Hand-made IDB with if_tsoffset = -10 s (i64) and if_tsresol 2^-10.
    const bytes = hex(`01000000 28000000 0100 0000 00000000
      0e00 0800 f6ffffff ffffffff  0900 0100 8a000000  28000000`);
    expect(decodePcapngInterface(bytes, 0, true)).toMatchObject({ tsoffsetSeconds: -10, tsresol: 0x8a });
  });
  test("EPB fields, comments and flags in both byte orders", () => {
    for (const [bytes, le] of [
      [EPB_LE, true],
      [EPB_BE, false],
    ] as const) {
      const p = decodePcapngEnhancedPacket(hex(bytes), 0, le);
      expect({ ...p, data: toHex(p.data) }).toEqual({
        kind: "enhanced-packet",
        interfaceId: 0,
        timestampHigh: 0,
        timestampLow: 1_000_002,
        caplen: 3,
        len: 5,
        data: "aabbcc",
        comments: ["hi"],
        flags: 1,
        totalLength: 56,
      });
      expect(epbDirectionName(p.flags!)).toBe("INBOUND");
    }
  });
  test("repeated opt_comment keeps order and UTF-8", () => {
    const bytes = encodePcapngEnhancedPacket({ interfaceId: 3, tsSec: 0, tsFrac: 0, data: hex("00"), comments: ["één", "two", "🐟"] });
    expect(decodePcapngEnhancedPacket(bytes, 0, true)).toMatchObject({ interfaceId: 3, comments: ["één", "two", "🐟"] });
  });
  test("SPB caplen is bounded by len and interface 0's snaplen", () => {
    const spb = encodePcapngSimplePacket(60, hex("0102030405"));
    const full = decodePcapngBlock(spb, 0, true);
    expect(full).toMatchObject({ kind: "simple-packet", len: 60, caplen: 8 });
    expect(decodePcapngBlock(spb, 0, true, { interfaceSnaplen: 5 })).toMatchObject({ caplen: 5 });
    const exact = decodePcapngBlock(encodePcapngSimplePacket(3, hex("010203")), 0, true);
    expect(exact.kind === "simple-packet" && toHex(exact.data)).toBe("010203");
  });
  test("OPB (obsolete packet block) decodes like an EPB", () => {
    const bytes = hex(`02000000 2c000000 0100 0700 00000000 40420f00 04000000 04000000 deadbeef
      0200 0400 02000000 2c000000`);
    expect(decodePcapngBlock(bytes, 0, true)).toMatchObject({ kind: "obsolete-packet", interfaceId: 1, dropsCount: 7, caplen: 4, flags: 2 });
  });
  test("unknown and custom blocks are framed and reported as other", () => {
    const nrb = hex("04000000 10000000 00000000 10000000");
    expect(decodePcapngBlock(nrb, 0, true)).toEqual({ kind: "other", blockType: 4, totalLength: 16 });
    expect(pcapngBlockTypeName(0xbad)).toBe("CUSTOM");
    expect(pcapngBlockTypeName(0x1234)).toBe("block 0x00001234");
  });
});

describe("pcapng round trip from a batch", () => {
  const batch = makeBatch([
    { tsSec: 1_700_000_000, tsFrac: 123_456, data: hex("00112233445566778899") },
    { tsSec: 1_700_000_001, tsFrac: 999_999, len: 1500, data: hex("ff") },
    { tsSec: 0, tsFrac: 0, data: new Uint8Array(0) },
  ]);
  for (const le of [true, false]) {
    for (const precision of ["micro", "nano"] as const) {
      test(`${le ? "LE" : "BE"}, interface ${precision}, with comments and flags on some packets`, () => {
        const bytes = encodePcapngPacketsFromBatch(batch, 2, {
          littleEndian: le,
          precision,
          comments: (i) => (i === 0 ? ["first", "again"] : undefined),
          flags: (i) => (i === 1 ? EpbDirection.OUTBOUND : undefined),
        });
        const clock = new InterfaceClock(precision === "nano" ? 9 : 6);
        const packets: PcapngPacket[] = [];
        for (let at = 0; at < bytes.byteLength; ) {
          const block = decodePcapngBlock(bytes, at, le);
          if (block.kind !== "enhanced-packet") throw new Error(`unexpected ${block.kind}`);
          packets.push(block);
          at += block.totalLength;
        }
        expect(packets.map((p) => p.comments)).toEqual([["first", "again"], [], []]);
        expect(packets.map((p) => p.flags)).toEqual([undefined, 2, undefined]);
        expect(packets.map((p) => [p.interfaceId, p.caplen, p.len, toHex(p.data)])).toEqual([
          [2, 10, 10, "00112233445566778899"],
          [2, 1, 1500, "ff"],
          [2, 0, 0, ""],
        ]);
        const scale = precision === "nano" ? 1000 : 1;
        expect(
          packets.map((p) => {
            const out = { tsSec: 0, tsFrac: 0 };
            expect(clock.split(p.timestampHigh, p.timestampLow, out)).toBe(true);
            return out;
          }),
        ).toEqual([
          { tsSec: 1_700_000_000, tsFrac: 123_456 * scale },
          { tsSec: 1_700_000_001, tsFrac: 999_999 * scale },
          { tsSec: 0, tsFrac: 0 },
        ]);
      });
    }
  }
  test("without extras every EPB is 32 bytes + padded data, no options", () => {
    expect(encodePcapngPacketsFromBatch(batch, 0).byteLength).toBe(32 + 12 + 32 + 4 + 32);
  });
  test("nano batch into a micro interface truncates", () => {
    const nano = makeBatch([{ tsSec: 5, tsFrac: 1_999, data: hex("00") }], 1, "nano");
    const p = decodePcapngEnhancedPacket(encodePcapngPacketsFromBatch(nano, 0, { precision: "micro" }), 0, true);
    expect(p.timestampLow).toBe(5_000_001);
  });
});

describe("InterfaceClock (if_tsresol)", () => {
  const rows: { name: string; tsresol: number; offset?: number; units: bigint; precision: "micro" | "nano"; sec: number; frac: number }[] = [
    { name: "default micro", tsresol: 6, units: 1_795_397_487_093_471n, precision: "micro", sec: 1_795_397_487, frac: 93_471 },
    { name: "nano past 2^53", tsresol: 9, units: 1_795_397_487_093_471_123n, precision: "nano", sec: 1_795_397_487, frac: 93_471_123 },
    { name: "milliseconds become micro", tsresol: 3, units: 1_700_000_000_123n, precision: "micro", sec: 1_700_000_000, frac: 123_000 },
    { name: "seconds", tsresol: 0, units: 42n, precision: "micro", sec: 42, frac: 0 },
    { name: "10^-7 becomes nano", tsresol: 7, units: 17_000_000_001_234_567n, precision: "nano", sec: 1_700_000_000, frac: 123_456_700 },
    { name: "picoseconds truncate to nano", tsresol: 12, units: 12_345_678_901_234_567_890n, precision: "nano", sec: 12_345_678, frac: 901_234_567 },
    { name: "2^-20 (finer than micro) becomes nano", tsresol: 0x80 | 20, units: (1_700_000_000n << 20n) + (1n << 19n), precision: "nano", sec: 1_700_000_000, frac: 500_000_000 },
    { name: "2^-10 becomes micro", tsresol: 0x80 | 10, units: (77n << 10n) + 256n, precision: "micro", sec: 77, frac: 250_000 },
    { name: "if_tsoffset adds seconds", tsresol: 6, offset: 100, units: 5_000_001n, precision: "micro", sec: 105, frac: 1 },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const clock = new InterfaceClock(row.tsresol, row.offset ?? 0);
      expect(clock.precision).toBe(row.precision);
      const out = { tsSec: 0, tsFrac: 0 };
      const ok = clock.split(Number(row.units >> 32n), Number(row.units & 0xffffffffn), out);
      expect(ok).toBe(true);
      expect(out).toEqual({ tsSec: row.sec, tsFrac: row.frac });
    });
  }
  test("seconds past u32 are refused, also after a negative offset takes them below 0", () => {
    const out = { tsSec: 0, tsFrac: 0 };
    expect(new InterfaceClock(6).split(0xffffffff, 0xffffffff, out)).toBe(false);
    expect(new InterfaceClock(0).split(1, 0, out)).toBe(false);
    expect(new InterfaceClock(6, -10).split(0, 5_000_000, out)).toBe(false);
    expect(new InterfaceClock(0x80 | 1).split(0xffffffff, 0xffffffff, out)).toBe(false);
  });
  test("matches BigInt arithmetic on random 64-bit values (seeded)", () => {
    let seed = 12345;
    const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    for (const tsresol of [0, 1, 3, 5, 6, 7, 8, 9]) {
      const clock = new InterfaceClock(tsresol);
      const per = 10n ** BigInt(tsresol);
      const scale = 10n ** BigInt((tsresol <= 6 ? 6 : 9) - tsresol);
      for (let i = 0; i < 2000; i++) {
        const high = next() % (tsresol + 2 < 4 ? 2 : 1 << Math.min(30, tsresol * 3));
        const low = next();
        const units = (BigInt(high) << 32n) | BigInt(low);
        const out = { tsSec: 0, tsFrac: 0 };
        const ok = clock.split(high, low, out);
        const sec = units / per;
        expect(ok).toBe(sec <= 0xffffffffn);
        if (ok) expect([out.tsSec, out.tsFrac]).toEqual([Number(sec), Number((units % per) * scale)]);
      }
    }
  });
});

describe("pcapng error rows", () => {
  const epb = hex(EPB_LE);
  const patched = (bytes: Uint8Array, at: number, value: number, le = true): Uint8Array => {
    const copy = bytes.slice();
    new DataView(copy.buffer).setUint32(at, value, le);
    return copy;
  };
  const rows: { name: string; run: () => unknown; code: string; offset: number }[] = [
    { name: "block length not a multiple of 4", run: () => pcapngBlockLength(patched(epb, 4, 57), 0, true), code: "bad-block-length", offset: 4 },
    { name: "EPB shorter than its fixed fields", run: () => pcapngBlockLength(patched(epb, 4, 28), 0, true), code: "block-too-short", offset: 4 },
    { name: "block shorter than its frame", run: () => pcapngBlockLength(patched(hex("04000000 10000000 00000000 10000000"), 4, 8), 0, true), code: "block-too-short", offset: 4 },
    { name: "block length over the cap (CVE-2019-15165)", run: () => pcapngBlockLength(patched(epb, 4, 0x7ffffff0), 0, true), code: "block-too-large", offset: 4 },
    { name: "cap is configurable", run: () => pcapngBlockLength(epb, 0, true, 52), code: "block-too-large", offset: 4 },
    { name: "fewer than 12 bytes to size a block", run: () => pcapngBlockLength(epb.subarray(0, 11), 0, true), code: "truncated", offset: 0 },
    { name: "block longer than what remains", run: () => decodePcapngEnhancedPacket(epb.subarray(0, 52), 0, true), code: "truncated", offset: 0 },
    { name: "trailing length copy differs", run: () => decodePcapngEnhancedPacket(patched(epb, 52, 60), 0, true), code: "block-length-mismatch", offset: 52 },
    { name: "EPB caplen past its block", run: () => decodePcapngEnhancedPacket(patched(epb, 20, 30), 0, true), code: "caplen-exceeds-block", offset: 20 },
    { name: "EPB caplen > len", run: () => decodePcapngEnhancedPacket(patched(epb, 24, 2), 0, true), code: "caplen-exceeds-len", offset: 20 },
    { name: "option runs past the block", run: () => decodePcapngEnhancedPacket(patched(epb, 32, 0x00400001), 0, true), code: "bad-option-length", offset: 34 },
    { name: "epb_flags of the wrong size", run: () => decodePcapngEnhancedPacket(patched(epb, 40, 0x00020002), 0, true), code: "bad-option-length", offset: 44 },
    { name: "SHB byte-order magic wrong", run: () => decodePcapngSectionHeader(patched(hex(SHB_PROBE_LE), 8, 0x12345678), 0), code: "bad-magic", offset: 8 },
    { name: "not an SHB", run: () => decodePcapngSectionHeader(epb, 0), code: "bad-magic", offset: 0 },
    { name: "SHB version 2.0", run: () => decodePcapngSectionHeader(patched(hex(SHB_PROBE_LE), 12, 2), 0), code: "unsupported-version", offset: 12 },
    { name: "SHB version 1.1", run: () => decodePcapngSectionHeader(patched(hex(SHB_PROBE_LE), 12, 0x00010001), 0), code: "unsupported-version", offset: 12 },
    { name: "if_tsresol of 2 bytes", run: () => decodePcapngInterface(patched(hex(IDB_LO_NANO_LE), 24, 0x00020009), 0, true), code: "bad-option-length", offset: 28 },
    { name: "IDB expected, EPB found", run: () => decodePcapngInterface(epb, 0, true), code: "unexpected-block", offset: 0 },
    { name: "offsets are absolute in the input", run: () => decodePcapngEnhancedPacket(concat(hex("00000000"), patched(epb, 52, 0)), 4, true), code: "block-length-mismatch", offset: 56 },
  ];
  for (const row of rows) {
    test(`${row.name} -> ${row.code} at ${row.offset}`, () => expectError(row.run, row.code, row.offset));
  }
  test("SHB version 1.2 is accepted (old writers; libpcap accepts it too)", () => {
    expect(decodePcapngSectionHeader(patched(hex(SHB_PROBE_LE), 12, 0x00020001), 0).versionMinor).toBe(2);
  });
});

describe("pcapng encoders refuse what does not fit", () => {
  test("a comment over 65535 UTF-8 bytes throws instead of wrapping its u16 length", () => {
    const batch = makeBatch([{ tsSec: 0, tsFrac: 0, data: hex("00") }]);
    const long = "x".repeat(70_000);
    expect(() => encodePcapngPacketsFromBatch(batch, 0, { comments: () => [long] })).toThrow(RangeError);
    expect(() => encodePcapngEnhancedPacket({ interfaceId: 0, tsSec: 0, tsFrac: 0, data: hex("00"), comments: [long] })).toThrow(RangeError);
    expect(() => encodePcapngSectionHeader({ userApplication: long })).toThrow(RangeError);
  });
  test("interface id and caplen > len", () => {
    const batch = makeBatch([{ tsSec: 0, tsFrac: 0, data: hex("00") }]);
    expect(() => encodePcapngPacketsFromBatch(batch, -1)).toThrow(RangeError);
    expect(() => encodePcapngPacketsFromBatch(batch, 2 ** 32)).toThrow(RangeError);
    expect(() => encodePcapngEnhancedPacket({ interfaceId: 0, tsSec: 0, tsFrac: 0, len: 1, data: hex("0000") })).toThrow(RangeError);
  });
});
