// RPCAP codec tables: decode rows, exact encode rows, round trips, error rows (ProtocolError
// code and offset), the PACKET hot-path encoders, and bounded random bytes into every decoder.
// Expected bytes are written by hand from rpcap-protocol.h's structs, not produced by the codec.
import { describe, expect, test } from "bun:test";
import type { PacketBatch } from "../../src/packet/packet-batch.ts";
import {
  AUTH_REPLY_MESSAGE,
  decodeAuthReply,
  decodeAuthRequest,
  decodeDatagram,
  decodeErrorText,
  decodeFilterBlock,
  decodeFindAllIfReply,
  decodeHeader,
  decodeMessage,
  decodeOpenReply,
  decodeOpenRequest,
  decodePacketPayload,
  decodeSamplingRequest,
  decodeStartCapReply,
  decodeStartCapRequest,
  decodeStatsReply,
  decodeUpdateFilterRequest,
  encodeAuthReplyPayload,
  encodeAuthRequest,
  encodeEmptyMessage,
  encodeError,
  encodeFindAllIfReplyPayload,
  encodeHeader,
  encodeMessage,
  encodeOpenReplyPayload,
  encodeOpenRequestPayload,
  encodePacketDatagrams,
  encodePacketMessages,
  encodePacketStream,
  encodePacketStreamInto,
  packetStreamBytes,
  encodeSamplingRequestPayload,
  encodeStartCapReplyPayload,
  encodeStartCapRequestPayload,
  encodeStatsReplyPayload,
  encodeUpdateFilterPayload,
  formatIPv6,
  nextNpkt,
  parseIPv4,
  parseIPv6,
  RpcapFramer,
  RpcapMessageType as T,
  type WireInterface,
} from "../../src/protocols/rpcap/index.ts";
import { batchOf, bytes, expectProtocolError, hex, onlyProtocolErrors, seededBytes } from "../support/rpcap-helpers.ts";

const hostLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const zeros = (n: number) => "00".repeat(n);
/** A 128-byte rpcap_sockaddr in hex: family, port 0, address bytes, zero padding. */
const sockaddr4 = (addrHex: string) => `0002 0000 ${addrHex}` + zeros(128 - 8);
const sockaddr6 = (addrHex: string, scope = "00000000", family = "0017") => `${family} 0000 00000000 ${addrHex} ${scope}` + zeros(128 - 28);

// ---- decode rows -------------------------------------------------------------------------

const STARTCAP_REQ_HEX = "0000ffff 000000fa 0004 9045  0001 0000 00000001  0006 00 00 00040000";
const FILTER_NEG_K_HEX = "0001 0000 00000001 0006 01 02 ffffffff";

const decodeRows: { name: string; decode: (b: Uint8Array) => unknown; hex: string; expected: unknown }[] = [
  { name: "header", decode: (b) => decodeHeader(b), hex: "0088 0000 00000008", expected: { ver: 0, type: 0x88, value: 0, plen: 8 } },
  { name: "header, big value and plen", decode: (b) => decodeHeader(b), hex: "01 82 ffff ffffffff", expected: { ver: 1, type: 0x82, value: 0xffff, plen: 0xffffffff } },
  { name: "AUTH_REQ NULL (tcpdump, libpcap client)", decode: decodeAuthRequest, hex: "0000 0000 0000 0000", expected: { authType: 0, username: "", password: "" } },
  { name: "AUTH_REQ PWD, no padding, no NUL", decode: decodeAuthRequest, hex: "0001 0000 0001 0002 75 7077", expected: { authType: 1, username: "u", password: "pw" } },
  { name: "AUTH_REQ unknown type decodes (daemon answers AUTH_TYPE_NOTSUP)", decode: decodeAuthRequest, hex: "0007 0000 0000 0000", expected: { authType: 7, username: "", password: "" } },
  { name: "AUTH_REPLY libpcap, little-endian server", decode: decodeAuthReply, hex: "00 00 0000 d4c3b2a1", expected: { minvers: 0, maxvers: 0, serverLittleEndian: true } },
  { name: "AUTH_REPLY big-endian server", decode: decodeAuthReply, hex: "00 01 0000 a1b2c3d4", expected: { minvers: 0, maxvers: 1, serverLittleEndian: false } },
  { name: "AUTH_REPLY with extra bytes (ignored like pcap-rpcap.c)", decode: decodeAuthReply, hex: "00 00 0000 d4c3b2a1 ffff", expected: { minvers: 0, maxvers: 0, serverLittleEndian: true } },
  { name: "AUTH_REPLY old, 2 bytes", decode: decodeAuthReply, hex: "00 00", expected: { minvers: 0, maxvers: 0 } },
  { name: "AUTH_REPLY ExtraHop, plen 0", decode: decodeAuthReply, hex: "", expected: { minvers: 0, maxvers: 0 } },
  { name: "OPEN_REQ", decode: decodeOpenRequest, hex: "6c6f", expected: "lo" },
  { name: "OPEN_REQ with a NUL and junk after it", decode: decodeOpenRequest, hex: "6c6f 00 ff", expected: "lo" },
  { name: "OPEN_REPLY", decode: decodeOpenReply, hex: "00000001 00000000", expected: { linktype: 1, tzoff: 0 } },
  { name: "OPEN_REPLY negative linktype", decode: decodeOpenReply, hex: "ffffffff 00000e10", expected: { linktype: -1, tzoff: 3600 } },
  {
    name: "STARTCAP_REQ with a 1-instruction filter",
    decode: decodeStartCapRequest,
    hex: STARTCAP_REQ_HEX,
    expected: { snaplen: 65535, readTimeoutMs: 250, flags: 4, portdata: 36933, filter: { filtertype: 1, program: [{ code: 6, jt: 0, jf: 0, k: 0x40000 }] } },
  },
  { name: "STARTCAP_REPLY", decode: decodeStartCapReply, hex: "00040000 b1b3 0000", expected: { bufsize: 262144, portdata: 45491 } },
  { name: "UPDATEFILTER_REQ empty program (the bpf module refuses it later)", decode: decodeUpdateFilterRequest, hex: "0001 0000 00000000", expected: { filtertype: 1, program: [] } },
  { name: "UPDATEFILTER_REQ k with the high bit set", decode: decodeUpdateFilterRequest, hex: FILTER_NEG_K_HEX, expected: { filtertype: 1, program: [{ code: 6, jt: 1, jf: 2, k: 0xffffffff }] } },
  { name: "STATS_REPLY", decode: decodeStatsReply, hex: "00000028 00000000 00000001 00000014", expected: { ifrecv: 40, ifdrop: 0, krnldrop: 1, svrcapt: 20 } },
  { name: "SETSAMPLING_REQ", decode: decodeSamplingRequest, hex: "01 00 0000 00000002", expected: { method: 1, value: 2 } },
  { name: "ERROR text", decode: decodeErrorText, hex: "41757468", expected: "Auth" },
  { name: "ERROR text with a trailing NUL", decode: decodeErrorText, hex: "41 00", expected: "A" },
  { name: "ERROR empty (rpcapd's swapped-buffer bug, vector rpcap-bad-version)", decode: decodeErrorText, hex: "", expected: "" },
  {
    name: "PACKET",
    decode: (b) => {
      const p = decodePacketPayload(b);
      return { ...p, data: hex(p.data) };
    },
    hex: "00000001 00000002 00000003 00000004 00000005 aabbcc",
    expected: { header: { tsSec: 1, tsUsec: 2, caplen: 3, len: 4, npkt: 5 }, data: "aabbcc" },
  },
  {
    name: "PACKET with bytes after the data (tolerated)",
    decode: (b) => hex(decodePacketPayload(b).data),
    hex: "00000001 00000002 00000001 00000004 00000005 aabbcc",
    expected: "aa",
  },
  {
    name: "FINDALLIF_REPLY with a Linux AF_INET6 (10) from an old daemon (pcap-rpcap.c accepts it)",
    decode: (b) => decodeFindAllIfReply(1, b),
    hex: `0002 0000 00000001 0001 0000 6c6f ${sockaddr6("00000000000000000000000000000001", "00000000", "000a")} ${zeros(128 * 3)}`,
    expected: [{ name: "lo", description: "", flags: 1, addresses: [{ addr: "::1" }] }],
  },
  {
    name: "FINDALLIF_REPLY skips an address of an unknown family",
    decode: (b) => decodeFindAllIfReply(1, b),
    hex: `0002 0000 00000001 0001 0000 6c6f 0063${zeros(126)} ${zeros(128 * 3)}`,
    expected: [{ name: "lo", description: "", flags: 1, addresses: [] }],
  },
];

describe("decode rows", () => {
  for (const row of decodeRows) {
    test(row.name, () => {
      expect(row.decode(bytes(row.hex))).toEqual(row.expected as never);
    });
  }

  test("payload decoders read at an offset inside a larger buffer", () => {
    const buffer = bytes(`ffffffff ${STARTCAP_REQ_HEX} eeee`);
    expect(decodeStartCapRequest(buffer, 4, buffer.byteLength - 2).filter.program).toEqual([{ code: 6, jt: 0, jf: 0, k: 0x40000 }]);
    const message = bytes("ff 0001 0000 00000002 6c6f ee");
    const m = decodeMessage(message, 1, message.byteLength - 1);
    expect(m.header).toEqual({ ver: 0, type: 1, value: 0, plen: 2 });
    expect(hex(m.payload)).toBe("6c6f");
    expect(m.next).toBe(11);
  });

  test("decodeDatagram: one message filling the datagram", () => {
    const d = decodeDatagram(bytes("0007 0000 00000014 00000001 00000002 00000000 00000000 00000001"));
    expect(d.header.type).toBe(T.PACKET);
    expect(decodePacketPayload(d.payload).header.npkt).toBe(1);
  });
});

// ---- exact encode rows --------------------------------------------------------------------

const LO_INTERFACE: WireInterface = { name: "lo", description: "", flags: 0x37, addresses: [{ addr: "127.0.0.1", netmask: "255.0.0.0" }] };
const LO_INTERFACE_HEX = `0002 0000 00000037 0001 0000 6c6f ${sockaddr4("7f000001")} ${sockaddr4("ff000000")} ${zeros(256)}`;
const ETH_INTERFACE: WireInterface = {
  name: "eth0",
  description: "x",
  flags: 22,
  addresses: [{ addr: "fe80::fc:ff:fe00:1", scopeId: 2, netmask: "ffff:ffff:ffff:ffff::", broadaddr: "192.0.2.255", dstaddr: "10.0.0.1" }],
};
const ETH_INTERFACE_HEX =
  `0004 0001 00000016 0001 0000 65746830 78 ` +
  `${sockaddr6("fe8000000000000000fc00fffe000001", "00000002")} ${sockaddr6("ffffffffffffffff0000000000000000")} ${sockaddr4("c00002ff")} ${sockaddr4("0a000001")}`;

const encodeRows: { name: string; encode: () => Uint8Array; hex: string }[] = [
  { name: "header", encode: () => encodeHeader({ ver: 0, type: T.PACKET, value: 0, plen: 28 }), hex: "0007 0000 0000001c" },
  { name: "CLOSE", encode: () => encodeMessage(0, T.CLOSE, 0), hex: "0006 0000 00000000" },
  { name: "ENDCAP_REPLY (pre-encoded)", encode: () => encodeEmptyMessage(T.ENDCAP_REPLY), hex: "008a 0000 00000000" },
  { name: "UPDATEFILTER_REPLY version 1 (not cached)", encode: () => encodeEmptyMessage(T.UPDATEFILTER_REPLY, 1), hex: "0185 0000 00000000" },
  { name: "ERROR echoes the version, text without NUL", encode: () => encodeError(1, 17, "x"), hex: "01 01 0011 00000001 78" },
  { name: "AUTH_REQ NULL", encode: () => encodeAuthRequest({ authType: 0, username: "", password: "" }), hex: "0000 0000 0000 0000" },
  { name: "AUTH_REQ PWD", encode: () => encodeAuthRequest({ authType: 1, username: "u", password: "pw" }), hex: "0001 0000 0001 0002 75 7077" },
  {
    name: "AUTH_REPLY: byte_order_magic in this host's order",
    encode: () => encodeAuthReplyPayload(0, 0),
    hex: hostLittleEndian ? "00 00 0000 d4c3b2a1" : "00 00 0000 a1b2c3d4",
  },
  { name: "AUTH_REPLY message, encoded once", encode: () => AUTH_REPLY_MESSAGE, hex: `0088 0000 00000008 00 00 0000 ${hostLittleEndian ? "d4c3b2a1" : "a1b2c3d4"}` },
  { name: "OPEN_REQ", encode: () => encodeOpenRequestPayload("lo"), hex: "6c6f" },
  { name: "OPEN_REPLY", encode: () => encodeOpenReplyPayload(1, 0), hex: "00000001 00000000" },
  { name: "OPEN_REPLY negative", encode: () => encodeOpenReplyPayload(-1, 3600), hex: "ffffffff 00000e10" },
  {
    name: "STARTCAP_REQ",
    encode: () => encodeStartCapRequestPayload({ snaplen: 65535, readTimeoutMs: 250, flags: 4, portdata: 36933, program: [{ code: 6, jt: 0, jf: 0, k: 0x40000 }] }),
    hex: STARTCAP_REQ_HEX,
  },
  { name: "STARTCAP_REPLY", encode: () => encodeStartCapReplyPayload(262144, 45491), hex: "00040000 b1b3 0000" },
  { name: "UPDATEFILTER_REQ, negative k as i32", encode: () => encodeUpdateFilterPayload([{ code: 6, jt: 1, jf: 2, k: -1 }]), hex: FILTER_NEG_K_HEX },
  { name: "STATS_REPLY", encode: () => encodeStatsReplyPayload({ ifrecv: 40, ifdrop: 0, krnldrop: 1, svrcapt: 20 }), hex: "00000028 00000000 00000001 00000014" },
  { name: "STATS_REPLY counters wrap at 2^32", encode: () => encodeStatsReplyPayload({ ifrecv: 2 ** 32 + 5, ifdrop: 0, krnldrop: 0, svrcapt: 2 ** 32 }), hex: "00000005 00000000 00000000 00000000" },
  { name: "SETSAMPLING_REQ", encode: () => encodeSamplingRequestPayload(1, 2), hex: "01 00 0000 00000002" },
  { name: "FINDALLIF_REPLY, IPv4 with netmask", encode: () => encodeFindAllIfReplyPayload([LO_INTERFACE]), hex: LO_INTERFACE_HEX },
  { name: "FINDALLIF_REPLY, IPv6 with scope id, all four addresses", encode: () => encodeFindAllIfReplyPayload([ETH_INTERFACE]), hex: ETH_INTERFACE_HEX },
  { name: "FINDALLIF_REPLY, no interfaces", encode: () => encodeFindAllIfReplyPayload([]), hex: "" },
];

describe("exact encode rows", () => {
  for (const row of encodeRows) {
    test(row.name, () => {
      expect(hex(row.encode())).toBe(hex(bytes(row.hex)));
    });
  }

  test("fixed messages are encoded once and shared", () => {
    expect(encodeEmptyMessage(T.CLOSE)).toBe(encodeEmptyMessage(T.CLOSE));
    expect(encodeEmptyMessage(T.CLOSE, 1)).not.toBe(encodeEmptyMessage(T.CLOSE, 1));
  });

  test("encoders refuse values that do not fit instead of narrowing", () => {
    expect(() => encodeHeader({ ver: 0, type: 7, value: 0, plen: 2 ** 32 })).toThrow(RangeError);
    expect(() => encodeMessage(256, 1, 0)).toThrow(RangeError);
    expect(() => encodeError(0, 70000, "x")).toThrow(RangeError);
    expect(() => encodeAuthRequest({ authType: 1, username: "u".repeat(257), password: "" })).toThrow(RangeError);
    expect(() => encodeOpenRequestPayload("")).toThrow(RangeError);
    expect(() => encodeOpenRequestPayload("x".repeat(1025))).toThrow(RangeError);
    expect(() => encodeUpdateFilterPayload(new Array(8193).fill({ code: 6, jt: 0, jf: 0, k: 0 }))).toThrow(RangeError);
    expect(() => encodeStartCapReplyPayload(2 ** 31, 0)).toThrow(RangeError);
    expect(() => encodeFindAllIfReplyPayload([{ name: "x".repeat(1025), description: "", flags: 0, addresses: [] }])).toThrow(RangeError);
    for (const bad of ["1.2.3", "256.1.1.1", "1.2.3.4.5", "a.b.c.d", ""]) expect(() => parseIPv4(bad)).toThrow(RangeError);
    for (const bad of ["1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "::g"]) expect(() => parseIPv6(bad)).toThrow(RangeError);
  });

  test("IPv6 text: RFC 5952 output, embedded IPv4 input", () => {
    expect(hex(parseIPv6("::ffff:192.0.2.1"))).toBe("00000000000000000000ffffc0000201");
    expect(formatIPv6(parseIPv6("2001:db8:0:0:1:0:0:1"))).toBe("2001:db8::1:0:0:1");
    expect(formatIPv6(parseIPv6("2001:db8:0:1:1:1:1:1"))).toBe("2001:db8:0:1:1:1:1:1");
    expect(formatIPv6(parseIPv6("::"))).toBe("::");
    expect(formatIPv6(parseIPv6("1::"))).toBe("1::");
  });
});

describe("round trips", () => {
  test("decode(encode(x)) for every encode row that has a decoder", () => {
    expect(decodeFindAllIfReply(2, encodeFindAllIfReplyPayload([LO_INTERFACE, ETH_INTERFACE]))).toEqual([LO_INTERFACE, ETH_INTERFACE]);
    const req = { snaplen: 1, readTimeoutMs: 2, flags: 0x1f, portdata: 65535, program: [{ code: 0x15, jt: 3, jf: 4, k: 0x7fffffff }] };
    const decoded = decodeStartCapRequest(encodeStartCapRequestPayload(req));
    expect({ ...decoded, program: decoded.filter.program }).toEqual({ ...req, filter: decoded.filter });
    expect(decodeAuthRequest(encodeAuthRequest({ authType: 1, username: "ünï", password: "p" }))).toEqual({ authType: 1, username: "ünï", password: "p" });
    expect(decodeAuthReply(encodeAuthReplyPayload(0, 0))).toEqual({ minvers: 0, maxvers: 0, serverLittleEndian: hostLittleEndian });
  });

  test("encode(decode(bytes)) gives the bytes back for every decode row with an encoder", () => {
    const again: [string, (b: Uint8Array) => Uint8Array][] = [
      ["0001 0000 0001 0002 75 7077", (b) => encodeAuthRequest(decodeAuthRequest(b))],
      [STARTCAP_REQ_HEX, (b) => {
        const r = decodeStartCapRequest(b);
        return encodeStartCapRequestPayload({ ...r, program: r.filter.program });
      }],
      [FILTER_NEG_K_HEX, (b) => encodeUpdateFilterPayload(decodeUpdateFilterRequest(b).program)],
      ["00040000 b1b3 0000", (b) => {
        const r = decodeStartCapReply(b);
        return encodeStartCapReplyPayload(r.bufsize, r.portdata);
      }],
      ["ffffffff 00000e10", (b) => {
        const r = decodeOpenReply(b);
        return encodeOpenReplyPayload(r.linktype, r.tzoff);
      }],
      ["00000028 00000000 00000001 00000014", (b) => encodeStatsReplyPayload(decodeStatsReply(b))],
      ["01 00 0000 00000002", (b) => {
        const r = decodeSamplingRequest(b);
        return encodeSamplingRequestPayload(r.method, r.value);
      }],
      [LO_INTERFACE_HEX + ETH_INTERFACE_HEX, (b) => encodeFindAllIfReplyPayload(decodeFindAllIfReply(2, b))],
    ];
    for (const [h, fn] of again) expect(hex(fn(bytes(h)))).toBe(hex(bytes(h)));
  });
});

// ---- error rows ---------------------------------------------------------------------------

const errorRows: { name: string; run: () => unknown; code: string; offset: number }[] = [
  { name: "header cut in value", run: () => decodeHeader(bytes("0008")), code: "truncated", offset: 2 },
  { name: "header at an offset, cut in plen", run: () => decodeHeader(bytes("ffff 0008 0000 0000"), 2), code: "truncated", offset: 6 },
  { name: "message plen past the end", run: () => decodeMessage(bytes("0007 0000 00000010 aabb")), code: "truncated", offset: 4 },
  { name: "datagram plen disagrees with its size", run: () => decodeDatagram(bytes("0007 0000 00000001")), code: "plen-mismatch", offset: 4 },
  { name: "AUTH cut in dummy", run: () => decodeAuthRequest(bytes("0001 00")), code: "truncated", offset: 2 },
  { name: "AUTH strings longer than the payload", run: () => decodeAuthRequest(bytes("0001 0000 0005 0005 6162")), code: "truncated", offset: 4 },
  { name: "AUTH strings longer than the payload, at an offset", run: () => decodeAuthRequest(bytes("ffff 0001 0000 0005 0005 6162"), 2), code: "truncated", offset: 6 },
  { name: "AUTH username over the cap", run: () => decodeAuthRequest(bytes("0001 0000 0101 0001")), code: "auth-string-too-long", offset: 4 },
  { name: "AUTH password over the cap", run: () => decodeAuthRequest(bytes("0001 0000 0001 0101")), code: "auth-string-too-long", offset: 6 },
  { name: "AUTH bytes after the strings (CVE-2019-15161 class)", run: () => decodeAuthRequest(bytes("0001 0000 0001 0001 616263")), code: "trailing-bytes", offset: 4 },
  { name: "AUTH_REPLY of 1 byte", run: () => decodeAuthReply(bytes("00")), code: "truncated", offset: 0 },
  { name: "AUTH_REPLY of 5 bytes", run: () => decodeAuthReply(bytes("0000 0000 d4")), code: "truncated", offset: 0 },
  { name: "AUTH_REPLY minvers > maxvers", run: () => decodeAuthReply(bytes("0100")), code: "bad-version-range", offset: 0 },
  { name: "AUTH_REPLY bogus magic", run: () => decodeAuthReply(bytes("0000 0000 12345678")), code: "bad-byte-order-magic", offset: 4 },
  { name: "OPEN empty", run: () => decodeOpenRequest(new Uint8Array(0)), code: "empty-source", offset: 0 },
  { name: "OPEN over PCAP_BUF_SIZE", run: () => decodeOpenRequest(new Uint8Array(1025).fill(0x61)), code: "source-too-long", offset: 0 },
  { name: "OPEN_REPLY short", run: () => decodeOpenReply(bytes("000000")), code: "truncated", offset: 0 },
  { name: "filter type 2", run: () => decodeFilterBlock(bytes("0002 0000 00000000"), 0), code: "unknown-filter-type", offset: 0 },
  { name: "filter over 8192 instructions, refused before allocating", run: () => decodeFilterBlock(bytes("0001 0000 00002001"), 0), code: "filter-too-long", offset: 4 },
  { name: "filter nitems 0xffffffff", run: () => decodeFilterBlock(bytes("0001 0000 ffffffff"), 0), code: "filter-too-long", offset: 4 },
  { name: "filter nitems more than follows", run: () => decodeFilterBlock(bytes("0001 0000 00000002 0006000000000000"), 0), code: "filter-length-mismatch", offset: 4 },
  { name: "filter with a trailing byte", run: () => decodeFilterBlock(bytes("0001 0000 00000000 00"), 0), code: "filter-length-mismatch", offset: 4 },
  { name: "filter header cut", run: () => decodeFilterBlock(bytes("0001 0000 0000"), 0), code: "truncated", offset: 4 },
  { name: "STARTCAP cut in portdata", run: () => decodeStartCapRequest(bytes("0000ffff 000000fa 0000")), code: "truncated", offset: 10 },
  { name: "STARTCAP without a filter block", run: () => decodeStartCapRequest(bytes("0000ffff 000000fa 0000 0000")), code: "truncated", offset: 12 },
  { name: "STARTCAP filter length mismatch, offset in the payload", run: () => decodeStartCapRequest(bytes("0000ffff 000000fa 0000 0000 0001 0000 00000002 0006000000000000")), code: "filter-length-mismatch", offset: 16 },
  { name: "STARTCAP_REPLY cut in dummy", run: () => decodeStartCapReply(bytes("00040000 b1b3")), code: "truncated", offset: 6 },
  { name: "STATS_REPLY short", run: () => decodeStatsReply(bytes("00000028 00000000")), code: "truncated", offset: 8 },
  { name: "SETSAMPLING short", run: () => decodeSamplingRequest(bytes("01 00 00")), code: "truncated", offset: 1 },
  { name: "PACKET header cut", run: () => decodePacketPayload(bytes("0000")), code: "truncated", offset: 0 },
  { name: "PACKET caplen > plen - 20", run: () => decodePacketPayload(bytes("00000000 00000000 00000010 00000010 00000001 aabb")), code: "caplen-exceeds-plen", offset: 8 },
  { name: "PACKET caplen > plen - 20 by one (libpcap's client only checks caplen <= plen)", run: () => decodePacketPayload(bytes("00000000 00000000 00000003 00000003 00000001 aabb")), code: "caplen-exceeds-plen", offset: 8 },
  { name: "PACKET caplen > len", run: () => decodePacketPayload(bytes("00000000 00000000 00000002 00000001 00000001 aabb")), code: "caplen-exceeds-len", offset: 8 },
  { name: "PACKET caplen > snaplen", run: () => decodePacketPayload(bytes("00000000 00000000 00000002 00000002 00000001 aabb"), 0, 22, 1), code: "caplen-exceeds-snaplen", offset: 8 },
  { name: "FINDALLIF count larger than the payload could hold", run: () => decodeFindAllIfReply(1000, bytes(LO_INTERFACE_HEX)), code: "truncated", offset: 0 },
  { name: "FINDALLIF name over PCAP_BUF_SIZE", run: () => decodeFindAllIfReply(1, bytes("0401 0000 00000000 0000 0000")), code: "name-too-long", offset: 0 },
  { name: "FINDALLIF description over PCAP_BUF_SIZE", run: () => decodeFindAllIfReply(1, bytes("0000 0401 00000000 0000 0000")), code: "name-too-long", offset: 2 },
  { name: "FINDALLIF naddr more than follows", run: () => decodeFindAllIfReply(1, bytes("0002 0000 00000000 0001 0000 6c6f")), code: "truncated", offset: 14 },
  { name: "FINDALLIF second interface cut, at an offset", run: () => decodeFindAllIfReply(2, bytes(`eeee ${LO_INTERFACE_HEX} 0002 0000 0000`), 2), code: "truncated", offset: 2 + 526 + 4 },
];

describe("error rows", () => {
  for (const row of errorRows) {
    test(`${row.name} -> ${row.code} @${row.offset}`, () => {
      expectProtocolError(row.run, row.code, row.offset);
    });
  }
});

// ---- PACKET encoders (data-channel hot path) ---------------------------------------------

describe("PACKET messages from a PacketBatch", () => {
  const nanoBatch = () => batchOf([[10, 5_000_123, 60, [1, 2, 3]], [11, 7_000, 4, [9]]], "nano");
  const MSG1 = "0007 0000 00000017  0000000a 00001388 00000003 0000003c ffffffff 010203";
  const MSG2 = "0007 0000 00000015  0000000b 00000007 00000001 00000004 00000000 09";

  test("one buffer, exact bytes; npkt wraps from 2^32-1 to 0; nanoseconds become microseconds", () => {
    expect(hex(encodePacketStream(nanoBatch(), 0xffffffff))).toBe(hex(bytes(MSG1 + MSG2)));
  });

  test("datagrams: one message each, subarrays of one allocation", () => {
    const datagrams = encodePacketDatagrams(nanoBatch(), 0xffffffff);
    expect(datagrams.map(hex)).toEqual([hex(bytes(MSG1)), hex(bytes(MSG2))]);
    expect(datagrams[0]!.buffer).toBe(datagrams[1]!.buffer);
    expect(decodeDatagram(datagrams[1]!).header.plen).toBe(21);
  });

  test("encodePacketStreamInto: the same bytes at the start of a reused buffer; a buffer too small is refused", () => {
    const scratch = new Uint8Array(100).fill(0xee);
    const first = encodePacketStreamInto(nanoBatch(), 0xffffffff, scratch);
    expect(first.buffer).toBe(scratch.buffer);
    expect(hex(first)).toBe(hex(bytes(MSG1 + MSG2)));
    expect(packetStreamBytes(nanoBatch())).toBe(60);
    const second = encodePacketStreamInto(batchOf([[1, 999_999, 1, [0xaa]]]), 1, scratch, 1);
    expect(hex(second)).toBe(hex(bytes("0107 0000 00000015 00000001 000f423f 00000001 00000001 00000001 aa")));
    expect(() => encodePacketStreamInto(nanoBatch(), 1, new Uint8Array(59))).toThrow(RangeError);
  });

  test("encodePacketMessages: stream plus message ends", () => {
    const { bytes: out, ends } = encodePacketMessages(nanoBatch(), 7, 0);
    expect(Array.from(ends)).toEqual([31, 60]);
    expect(out.byteLength).toBe(60);
  });

  test("microsecond batches keep ts_usec; version goes in byte 0", () => {
    const out = encodePacketStream(batchOf([[1, 999_999, 1, [0xaa]]]), 1, 1);
    expect(hex(out)).toBe(hex(bytes("0107 0000 00000015 00000001 000f423f 00000001 00000001 00000001 aa")));
  });

  test("an empty batch encodes to nothing", () => {
    const empty: PacketBatch = { bytes: new Uint8Array(0), count: 0, linktype: 1, precision: "micro" };
    expect(encodePacketStream(empty, 1).byteLength).toBe(0);
    expect(encodePacketDatagrams(empty, 1)).toEqual([]);
  });

  test("bad input is a RangeError, never a silent wrap", () => {
    const good = nanoBatch();
    expect(() => encodePacketStream(good, 2 ** 32)).toThrow(RangeError);
    expect(() => encodePacketStream(good, -1)).toThrow(RangeError);
    expect(() => encodePacketStream({ ...good, count: 3 }, 1)).toThrow(RangeError);
    expect(() => encodePacketStream({ ...good, count: 1 }, 1)).toThrow(RangeError); // bytes left over
  });

  test("nextNpkt wraps explicitly", () => {
    expect(nextNpkt(0xffffffff, 1)).toBe(0);
    expect(nextNpkt(0xfffffffe, 3)).toBe(1);
    expect(nextNpkt(1, 20)).toBe(21);
  });

  test("random batches survive encode -> frame -> decode", () => {
    const random = seededBytes(42);
    for (let round = 0; round < 50; round++) {
      const packets: [number, number, number, number[]][] = [];
      const sizes = random(1 + (random(1)[0]! % 16));
      for (const s of sizes) packets.push([round, s * 1000, s * 6 + 1, Array.from(random(s * 6))]);
      const batch = batchOf(packets);
      const messages = new RpcapFramer(() => 1 << 20).push(encodePacketStream(batch, round));
      expect(messages.length).toBe(packets.length);
      messages.forEach((m, i) => {
        const { header, data } = decodePacketPayload(m.payload);
        expect(header).toEqual({ tsSec: round, tsUsec: packets[i]![1], caplen: packets[i]![3].length, len: packets[i]![2], npkt: round + i });
        expect(Array.from(data)).toEqual(packets[i]![3]);
      });
    }
  });
});

// ---- bounded random bytes ----------------------------------------------------------------

describe("bounded random bytes: every decoder throws only ProtocolError", () => {
  const decoders: [string, (b: Uint8Array, offset: number) => unknown][] = [
    ["header", (b, o) => decodeHeader(b, o)],
    ["message", (b, o) => decodeMessage(b, o)],
    ["datagram", (b) => decodeDatagram(b)],
    ["auth request", (b, o) => decodeAuthRequest(b, o)],
    ["auth reply", (b, o) => decodeAuthReply(b, o)],
    ["findallif reply", (b, o) => decodeFindAllIfReply(b[0]! & 3, b, o)],
    ["open request", (b, o) => decodeOpenRequest(b, o)],
    ["open reply", (b, o) => decodeOpenReply(b, o)],
    ["startcap request", (b, o) => decodeStartCapRequest(b, o)],
    ["startcap reply", (b, o) => decodeStartCapReply(b, o)],
    ["filter block", (b, o) => decodeFilterBlock(b, o)],
    ["stats reply", (b, o) => decodeStatsReply(b, o)],
    ["sampling request", (b, o) => decodeSamplingRequest(b, o)],
    ["packet", (b, o) => decodePacketPayload(b, o)],
    ["error text", (b, o) => decodeErrorText(b, o)],
  ];
  for (const [name, decode] of decoders) {
    test(name, () => {
      const random = seededBytes(name.length * 7919);
      for (let i = 0; i < 1500; i++) {
        const b = random(random(1)[0]! % 96);
        // Bias some inputs toward plausible lengths so the deeper checks run too.
        if (b.byteLength > 8 && i % 3 === 0) b[4] = b[5] = b[6] = 0;
        const offset = b.byteLength ? random(1)[0]! % (b.byteLength + 1) : 0;
        onlyProtocolErrors(() => decode(b, offset));
      }
    });
  }
});
