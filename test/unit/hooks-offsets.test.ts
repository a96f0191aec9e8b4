// Host-side layer decoding and checksum fixing: decode tables for each link type and
// encapsulation, every truncation point, bounded random bytes, and checksum recomputation
// judged against an independent implementation and RFC 1071's worked example.
import { describe, expect, test } from "bun:test";
import { CHECKSUM_OUTCOME, decodeOffsets, fixChecksums, internetChecksum, LINKTYPE } from "../../src/hooks/index.ts";
import { concat, ipv4Frame, ipv6Frame, referenceChecksums } from "../support/hooks-helpers.ts";

const udp4 = ipv4Frame({ protocol: "udp", srcPort: 5353, dstPort: 53, payload: Uint8Array.from([1, 2, 3, 4]) });
const tcp4 = ipv4Frame({ protocol: "tcp", srcPort: 40000, dstPort: 443, payload: Uint8Array.from([9, 9]) });

describe("decodeOffsets", () => {
  const rows: [string, Uint8Array, number, Partial<ReturnType<typeof decodeOffsets>>][] = [
    ["Ethernet IPv4 UDP", udp4, LINKTYPE.ETHERNET, { etherType: 0x0800, vlanCount: 0, l3Offset: 14, ipVersion: 4, protocol: 17, l4Offset: 34, payloadOffset: 42, srcPort: 5353, dstPort: 53, l3End: 46, l3Flags: 0 }],
    ["Ethernet IPv4 TCP", tcp4, LINKTYPE.ETHERNET, { l3Offset: 14, protocol: 6, l4Offset: 34, payloadOffset: 54, srcPort: 40000, dstPort: 443, tcpFlags: 0x18 }],
    ["802.1Q", ipv4Frame({ protocol: "udp", srcPort: 1, dstPort: 2, payload: new Uint8Array(1), vlans: [{ tpid: 0x8100, vid: 0x2064 }] }), LINKTYPE.ETHERNET, { vlanCount: 1, vlanId: 0x064, l3Offset: 18, l4Offset: 38, payloadOffset: 46 }],
    ["802.1ad + 802.1Q", ipv4Frame({ protocol: "udp", srcPort: 1, dstPort: 2, payload: new Uint8Array(1), vlans: [{ tpid: 0x88a8, vid: 100 }, { tpid: 0x8100, vid: 200 }] }), LINKTYPE.ETHERNET, { vlanCount: 2, vlanId: 100, l3Offset: 22, l4Offset: 42 }],
    ["IPv6 UDP", ipv6Frame({ protocol: "udp", srcPort: 7, dstPort: 9, payload: new Uint8Array(3) }), LINKTYPE.ETHERNET, { etherType: 0x86dd, l3Offset: 14, ipVersion: 6, protocol: 17, l4Offset: 54, payloadOffset: 62, l3End: 65 }],
    ["IPv6 hop-by-hop + dest opts + TCP", ipv6Frame({ protocol: "tcp", srcPort: 7, dstPort: 9, payload: new Uint8Array(0), extensions: [{ type: 0, bytes: new Uint8Array(8) }, { type: 60, bytes: Uint8Array.from([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) }] }), LINKTYPE.ETHERNET, { protocol: 6, l4Offset: 14 + 40 + 8 + 16, payloadOffset: 14 + 40 + 24 + 20, l3Flags: 0 }],
    ["IPv6 routing header flagged", ipv6Frame({ protocol: "udp", srcPort: 7, dstPort: 9, payload: new Uint8Array(0), extensions: [{ type: 43, bytes: new Uint8Array(8) }] }), LINKTYPE.ETHERNET, { protocol: 17, l4Offset: 62, l3Flags: 2 }],
    ["IPv6 non-first fragment: no L4", ipv6Frame({ protocol: "udp", srcPort: 7, dstPort: 9, payload: new Uint8Array(0), extensions: [{ type: 44, bytes: Uint8Array.from([0, 0, 0, 8, 0, 0, 0, 1]) }] }), LINKTYPE.ETHERNET, { protocol: 17, l4Offset: -1, srcPort: -1, l3Flags: 1 }],
    ["raw IPv4 (LINKTYPE_RAW)", udp4.subarray(14), LINKTYPE.RAW, { etherType: -1, l3Offset: 0, l4Offset: 20, payloadOffset: 28 }],
    ["LINKTYPE_IPV6", ipv6Frame({ protocol: "udp", srcPort: 7, dstPort: 9, payload: new Uint8Array(0) }).subarray(14), LINKTYPE.IPV6, { l3Offset: 0, ipVersion: 6, l4Offset: 40 }],
    ["Linux cooked (SLL)", concat(Uint8Array.from([0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 8, 0]), udp4.subarray(14)), LINKTYPE.LINUX_SLL, { l3Offset: 16, l4Offset: 36 }],
    ["Linux cooked v2 (SLL2)", concat(Uint8Array.from([8, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]), udp4.subarray(14)), LINKTYPE.LINUX_SLL2, { l3Offset: 20, l4Offset: 40 }],
    ["BSD loopback (NULL, little-endian AF_INET)", concat(Uint8Array.from([2, 0, 0, 0]), udp4.subarray(14)), LINKTYPE.NULL, { l3Offset: 4, l4Offset: 24 }],
    ["ARP: no L3 offsets", concat(udp4.subarray(0, 12), Uint8Array.from([8, 6]), new Uint8Array(28)), LINKTYPE.ETHERNET, { etherType: 0x0806, ipVersion: 0, l3Offset: -1, flowHash: 0 }],
    ["802.3 length field: no L3", concat(udp4.subarray(0, 12), Uint8Array.from([0, 46]), new Uint8Array(46)), LINKTYPE.ETHERNET, { etherType: 46, l3Offset: -1 }],
  ];
  for (const [name, frame, linktype, expected] of rows) {
    test(name, () => {
      expect(decodeOffsets(frame, linktype)).toMatchObject(expected);
    });
  }

  test("IPv4 fragments: first has ports and is flagged, later ones have no L4", () => {
    const first = udp4.slice();
    first[14 + 6] = 0x20; // MF
    expect(decodeOffsets(first, 1)).toMatchObject({ l3Flags: 1, l4Offset: 34, srcPort: 5353 });
    const later = udp4.slice();
    later[14 + 7] = 0x10; // offset 16 * 8
    expect(decodeOffsets(later, 1)).toMatchObject({ l3Flags: 1, l4Offset: -1, srcPort: -1, protocol: 17 });
  });

  test("every truncation of a VLAN TCP frame decodes without throwing, fields only as far as bytes go", () => {
    const frame = ipv4Frame({ protocol: "tcp", srcPort: 1, dstPort: 2, payload: new Uint8Array(5), vlans: [{ tpid: 0x8100, vid: 5 }] });
    for (let cut = 0; cut <= frame.length; cut++) {
      const o = decodeOffsets(frame.subarray(0, cut), 1);
      expect(o.l3Offset === -1 || cut >= 18 + 20).toBe(true);
      expect(o.l4Offset === -1 || cut >= 38 + 20).toBe(true);
      expect(o.payloadOffset === -1 || o.payloadOffset <= cut).toBe(true);
      if (cut >= 58) expect(o.srcPort).toBe(1);
    }
  });

  test("bounded random bytes never throw and offsets stay inside the data", () => {
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
    for (let n = 0; n < 3000; n++) {
      const data = Uint8Array.from({ length: n % 120 }, rand);
      if (data.length > 14 && n % 2 === 0) data[12] = 0x08, data[13] = 0, data[14] = 0x45;
      for (const lt of [0, 1, 101, 108, 113, 228, 229, 276, 999]) {
        const o = decodeOffsets(data, lt);
        for (const f of [o.l3Offset, o.l4Offset, o.payloadOffset]) expect(f <= data.length).toBe(true);
      }
    }
  });

  test("flowHash is the same in both directions and differs between flows", () => {
    const ab = ipv4Frame({ protocol: "udp", srcPort: 1000, dstPort: 2000, payload: new Uint8Array(1) });
    const ba = ipv4Frame({ protocol: "udp", srcPort: 2000, dstPort: 1000, src: [192, 168, 7, 9], dst: [10, 1, 2, 3], payload: new Uint8Array(1) });
    const other = ipv4Frame({ protocol: "udp", srcPort: 1001, dstPort: 2000, payload: new Uint8Array(1) });
    expect(decodeOffsets(ab, 1).flowHash).toBe(decodeOffsets(ba, 1).flowHash);
    expect(decodeOffsets(ab, 1).flowHash).not.toBe(decodeOffsets(other, 1).flowHash);
  });
});

describe("checksums", () => {
  test("RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2, checksum 220d", () => {
    expect(internetChecksum(Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]))).toBe(0x220d);
  });

  const frames: [string, Uint8Array][] = [
    ["IPv4 UDP", udp4],
    ["IPv4 TCP odd length", ipv4Frame({ protocol: "tcp", srcPort: 1, dstPort: 2, payload: Uint8Array.from([1, 2, 3]) })],
    ["IPv4 UDP in VLAN", ipv4Frame({ protocol: "udp", srcPort: 1, dstPort: 2, payload: Uint8Array.from([5]), vlans: [{ tpid: 0x8100, vid: 1 }] })],
    ["IPv4 UDP with Ethernet padding", ipv4Frame({ protocol: "udp", srcPort: 1, dstPort: 2, payload: Uint8Array.from([5]), padTo: 60 })],
    ["IPv6 UDP", ipv6Frame({ protocol: "udp", srcPort: 7, dstPort: 9, payload: Uint8Array.from([1, 2, 3]) })],
    ["IPv6 TCP behind hop-by-hop", ipv6Frame({ protocol: "tcp", srcPort: 7, dstPort: 9, payload: Uint8Array.from([1]), extensions: [{ type: 0, bytes: new Uint8Array(8) }] })],
  ];
  for (const [name, frame] of frames) {
    test(`${name}: zeroed checksums are restored exactly`, () => {
      const broken = frame.slice();
      const o = decodeOffsets(frame, 1);
      if (o.ipVersion === 4) broken[o.l3Offset + 10] = broken[o.l3Offset + 11] = 0x5a;
      const at = o.l4Offset + (o.protocol === 6 ? 16 : 6);
      broken[at] = 0x12;
      broken[at + 1] = 0x34;
      const result = fixChecksums(broken, 1);
      expect(Buffer.from(broken).toString("hex")).toBe(Buffer.from(frame).toString("hex"));
      expect(result).toEqual({ ipv4Header: o.ipVersion === 4 ? CHECKSUM_OUTCOME.FIXED : CHECKSUM_OUTCOME.NONE, transport: CHECKSUM_OUTCOME.FIXED });
    });
  }

  test("edited addresses: the result matches an independent implementation", () => {
    const f = tcp4.slice();
    f[14 + 15] = 0;
    f[14 + 19] = 77;
    const expected = referenceChecksums(f);
    fixChecksums(f, 1);
    expect(Buffer.from(f).toString("hex")).toBe(Buffer.from(expected).toString("hex"));
  });

  test("skipped cases: UDP/IPv4 checksum 0 stays 0; truncated; fragment; routing header; non-IP", () => {
    const noChecksum = udp4.slice();
    noChecksum[40] = noChecksum[41] = 0;
    expect(fixChecksums(noChecksum, 1)).toEqual({ ipv4Header: "fixed", transport: "disabled" });
    expect(noChecksum[40]! | noChecksum[41]!).toBe(0);
    expect(fixChecksums(udp4.slice(0, udp4.length - 1), 1).transport).toBe("truncated");
    const fragment = udp4.slice();
    fragment[14 + 6] = 0x20;
    expect(fixChecksums(fragment, 1).transport).toBe("fragment");
    const routed = ipv6Frame({ protocol: "udp", srcPort: 7, dstPort: 9, payload: new Uint8Array(0), extensions: [{ type: 43, bytes: new Uint8Array(8) }] });
    expect(fixChecksums(routed, 1).transport).toBe("routing-header");
    expect(fixChecksums(new Uint8Array(60), 1)).toEqual({ ipv4Header: "none", transport: "none" });
  });

  test("a computed UDP checksum of 0 is sent as 0xffff (RFC 768)", () => {
    // Search a payload whose checksum comes out 0, then check the field is ffff.
    for (let x = 0; x < 0x10000; x++) {
      const f = ipv4Frame({ protocol: "udp", srcPort: 1, dstPort: 2, payload: Uint8Array.from([x >> 8, x & 0xff]) });
      if (f[40] === 0xff && f[41] === 0xff) {
        f[40] = f[41] = 0x11;
        fixChecksums(f, 1);
        expect([f[40], f[41]]).toEqual([0xff, 0xff]);
        return;
      }
    }
    throw new Error("no payload with a zero checksum found");
  });
});
