// udpstr codec tables: the 8-byte datagram header and the 20-byte rpcap_pkthdr, decoded from
// real ExtraHop bytes, encoded exactly, round-tripped, and rejected with stable codes and offsets.
import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../src/packet/protocol-error.ts";
import {
  UDPSTR_FIRSTHDR_NONE,
  UDPSTR_MIN_MTU_BYTES,
  checkUdpstrPkthdr,
  decodeUdpstrDatagramHeader,
  decodeUdpstrHeader,
  decodeUdpstrPkthdr,
  encodeUdpstrHeader,
  encodeUdpstrPkthdr,
  nextU32,
  u32Distance,
  udpstrMessageName,
} from "../../src/protocols/udpstr/index.ts";
import { loadUdpstrVector } from "../support/udpstr-vectors.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

function expectProtocolError(fn: () => unknown, code: string, offset: number): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  expect((caught as ProtocolError).code).toBe(code);
  expect((caught as ProtocolError).offset).toBe(offset);
}

describe("udpstr header", () => {
  const rows = [
    { name: "first datagram of a stream", bytes: "00 6e 0008 00000000", firsthdridx: 8, seqno: 0 },
    { name: "continuation only (UDPSTR_FIRSTHDR_NONE)", bytes: "00 6e ffff 00000004", firsthdridx: 0xffff, seqno: 4 },
    { name: "largest seqno before the u32 wrap", bytes: "00 6e 0463 ffffffff", firsthdridx: 1123, seqno: 0xffffffff },
  ];
  for (const row of rows) {
    test(`decode and exact encode: ${row.name}`, () => {
      const bytes = hex(row.bytes);
      const header = decodeUdpstrHeader(bytes, 0);
      expect(header).toEqual({ ver: 0, type: 110, firsthdridx: row.firsthdridx, seqno: row.seqno });
      expect(encodeUdpstrHeader(row.firsthdridx, row.seqno)).toEqual(bytes);
    });
  }

  test("decodes at an offset", () => {
    const bytes = hex("ffff 00 6e 0014 01020304");
    expect(decodeUdpstrHeader(bytes, 2)).toEqual({ ver: 0, type: 110, firsthdridx: 20, seqno: 0x01020304 });
  });

  test("every datagram header of the ExtraHop vectors matches the manifest", () => {
    for (const name of ["udpstr-extrahop", "udpstr-extrahop-mtu600", "udpstr-extrahop-mt"]) {
      const vector = loadUdpstrVector(name);
      vector.datagrams.forEach((datagram, i) => {
        const info = vector.datagramInfo[i]!;
        expect(decodeUdpstrDatagramHeader(datagram)).toEqual({ ver: 0, type: 110, firsthdridx: info.firsthdridx, seqno: info.seqno });
        expect(datagram.byteLength).toBe(info.udp_payload_len);
      });
    }
  });

  const errorRows = [
    { name: "empty", bytes: "", code: "truncated", offset: 0 },
    { name: "7 bytes", bytes: "00 6e 0008 000000", code: "truncated", offset: 0 },
    { name: "version 1", bytes: "01 6e 0008 00000000", code: "unsupported-version", offset: 0 },
    { name: "plain RPCAP PACKET (type 7)", bytes: "00 07 0000 00000020", code: "bad-message-type", offset: 1 },
    { name: "type 0", bytes: "00 00 0008 00000000", code: "bad-message-type", offset: 1 },
  ];
  for (const row of errorRows) {
    test(`rejects ${row.name} with ${row.code}`, () => {
      expectProtocolError(() => decodeUdpstrHeader(hex(row.bytes), 0), row.code, row.offset);
    });
  }

  const indexRows = [
    { name: "firsthdridx inside the udpstr header", datagram: "00 6e 0007 00000000 aa", code: "firsthdridx-out-of-range" },
    { name: "firsthdridx 0", datagram: "00 6e 0000 00000000 aa", code: "firsthdridx-out-of-range" },
    { name: "firsthdridx at the end", datagram: "00 6e 0009 00000000 aa", code: "firsthdridx-out-of-range" },
    { name: "firsthdridx past the end", datagram: "00 6e 0400 00000000 aa", code: "firsthdridx-out-of-range" },
    { name: "firsthdridx on a header-only datagram", datagram: "00 6e 0008 00000000", code: "firsthdridx-out-of-range" },
  ];
  for (const row of indexRows) {
    test(`datagram header: ${row.name}`, () => {
      expectProtocolError(() => decodeUdpstrDatagramHeader(hex(row.datagram)), row.code, 2);
    });
  }

  test("datagram header accepts 0xFFFF and the last byte as firsthdridx", () => {
    expect(decodeUdpstrDatagramHeader(hex("00 6e ffff 00000000 aa")).firsthdridx).toBe(UDPSTR_FIRSTHDR_NONE);
    expect(decodeUdpstrDatagramHeader(hex("00 6e 0008 00000000 aa")).firsthdridx).toBe(8);
    expect(decodeUdpstrDatagramHeader(hex("00 6e ffff 00000000")).firsthdridx).toBe(UDPSTR_FIRSTHDR_NONE);
  });

  test("encode refuses values that do not fit", () => {
    expect(() => encodeUdpstrHeader(0x10000, 0)).toThrow(RangeError);
    expect(() => encodeUdpstrHeader(8, 0x1_0000_0000)).toThrow(RangeError);
    expect(() => encodeUdpstrHeader(8, -1)).toThrow(RangeError);
    expect(() => encodeUdpstrHeader(8.5, 0)).toThrow(RangeError);
  });

  test("bounded random bytes: decode returns or throws ProtocolError, nothing else", () => {
    let seed = 12345;
    const random = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 16;
    };
    for (let i = 0; i < 2000; i++) {
      const bytes = new Uint8Array(random() % 24);
      for (let k = 0; k < bytes.length; k++) bytes[k] = random() & 0xff;
      if (i % 3 === 0 && bytes.length >= 2) {
        bytes[0] = 0;
        bytes[1] = 110;
      }
      try {
        const header = decodeUdpstrDatagramHeader(bytes);
        expect(header.type).toBe(110);
      } catch (error) {
        expect(error).toBeInstanceOf(ProtocolError);
      }
    }
  });
});

describe("rpcap_pkthdr as udpstr carries it", () => {
  // npkt 1 of udpstr-extrahop.pcap: frame 22, right after the udpstr header.
  const first = "6b039826 000d3a8c 0000004a 0000004a 00000001";

  test("decodes the first record header of the ExtraHop vector", () => {
    const vector = loadUdpstrVector("udpstr-extrahop");
    const header = decodeUdpstrPkthdr(vector.datagrams[0]!, 8);
    expect(header).toEqual({ tsSec: 1795397670, tsUsec: 866956, caplen: 74, len: 74, npkt: 1 });
    expect(encodeUdpstrPkthdr(header)).toEqual(hex(first));
  });

  test("round trip of extreme values", () => {
    const header = { tsSec: 0xffffffff, tsUsec: 999999, caplen: 0, len: 0xffffffff, npkt: 0xffffffff };
    expect(decodeUdpstrPkthdr(encodeUdpstrPkthdr(header), 0)).toEqual(header);
  });

  test("truncated header", () => {
    expectProtocolError(() => decodeUdpstrPkthdr(hex(first).subarray(0, 19), 0), "truncated", 0);
    expectProtocolError(() => decodeUdpstrPkthdr(hex(first), 4), "truncated", 4);
  });

  const checkRows = [
    { name: "caplen == len", caplen: 100, len: 100, cap: 262144, code: null },
    { name: "caplen < len (snapped)", caplen: 96, len: 1500, cap: 96, code: null },
    { name: "caplen 0", caplen: 0, len: 60, cap: 262144, code: null },
    { name: "caplen > len", caplen: 101, len: 100, cap: 262144, code: "caplen-exceeds-len" },
    { name: "caplen > snaplen cap", caplen: 262145, len: 262145, cap: 262144, code: "caplen-exceeds-snaplen" },
    { name: "absurd caplen", caplen: 0xffffffff, len: 0xffffffff, cap: 262144, code: "caplen-exceeds-snaplen" },
  ];
  for (const row of checkRows) {
    test(`check: ${row.name}`, () => {
      const header = { tsSec: 1, tsUsec: 2, caplen: row.caplen, len: row.len, npkt: 3 };
      if (row.code === null) expect(() => checkUdpstrPkthdr(header, row.cap, 40)).not.toThrow();
      else expectProtocolError(() => checkUdpstrPkthdr(header, row.cap, 40), row.code, 48);
    });
  }
});

describe("wire helpers", () => {
  test("u32 counters wrap explicitly", () => {
    expect(nextU32(0)).toBe(1);
    expect(nextU32(0xffffffff)).toBe(0);
    expect(u32Distance(0, 0xffffffff)).toBe(1);
    expect(u32Distance(5, 7)).toBe(0xfffffffe);
  });

  test("names and the derived minimum MTU", () => {
    expect(udpstrMessageName(110)).toBe("UDPSTR_PACKET");
    expect(udpstrMessageName(7)).toBe("type 0x07");
    expect(UDPSTR_MIN_MTU_BYTES).toBe(37);
  });
});
