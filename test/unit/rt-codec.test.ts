// RT codec, framer and server session: exact encodings of the fixed messages (checked against
// what libtrace 3.0.22 sends and accepts, docs/rt.md), data round trip, error rows with codes
// and offsets, every split point, the body cap before waiting, and bounded random bytes.
import { describe, expect, test } from "bun:test";
import { PacketBatchBuilder } from "../../src/packet/packet-batch.ts";
import { ProtocolError } from "../../src/packet/protocol-error.ts";
import {
  decodeAck,
  decodeHeader,
  decodePcapData,
  decodeStart,
  decodeStatus,
  decodeStreamAnnounce,
  encodeAck,
  encodeDataMessages,
  encodeDeny,
  encodeStart,
  encodeStatus,
  encodeStreamAnnounce,
  END_DATA,
  HELLO_RELIABLE,
  HELLO_UNRELIABLE,
  RT_MAX_CAPLEN,
  RtFramer,
  RtServerSession,
  RtType,
  sequenceDistance,
  type RtMessage,
} from "../../src/protocols/rt/index.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("fixed messages", () => {
  test("HELLO, END_DATA, DENY, ACK encode exactly (type u32le, length u16le, pad, sequence u32le)", () => {
    expect(hex(HELLO_RELIABLE)).toBe("01000000" + "0100" + "0000" + "00000000" + "01");
    expect(hex(HELLO_UNRELIABLE)).toBe("010000000100000000000000" + "00");
    expect(hex(END_DATA)).toBe("060000000000000000000000");
    expect(hex(encodeDeny(2))).toBe("080000000400000000000000" + "02000000");
    expect(hex(encodeAck(0x01020304))).toBe("030000000400000000000000" + "04030201");
  });

  test("libtrace 3.0.22's ACK as tracesplit sent it decodes (recorded: body sequence 1)", () => {
    const recorded = Buffer.from("030000000400000000000000" + "01000000", "hex");
    const header = decodeHeader(recorded);
    expect(header).toEqual({ type: RtType.ACK, length: 4, sequence: 0 });
    expect(decodeAck(recorded.subarray(12))).toBe(1);
  });

  test("libtrace's START carries stack garbage in sequence and padding: decodes as an empty START", () => {
    const recorded = Buffer.from("0200000000000000206a1568", "hex");
    expect(decodeHeader(recorded)).toEqual({ type: RtType.START, length: 0, sequence: 0x68156a20 });
    expect(decodeStart(new Uint8Array(0))).toBeUndefined();
  });

  test("STATUS: 40 libtrace bytes then probe's three counters; round trip", () => {
    const status = { in: 1, out: 2, ack: 3, length: 4, used: 5, droppedRecords: 6, fullEpisodes: 7, policy: 3 };
    const message = encodeStatus(status);
    expect(decodeHeader(message)).toEqual({ type: RtType.STATUS, length: 64, sequence: 0 });
    expect(decodeStatus(message.subarray(12))).toEqual(status);
    expect(decodeStatus(message.subarray(12, 52))).toEqual({ ...status, droppedRecords: 0, fullEpisodes: 0, policy: 0 });
  });

  test("probe START extension and stream announce round trip", () => {
    const streamId = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    const start = encodeStart({ streamId, lastSequence: 42 });
    expect(decodeStart(start.subarray(12))).toEqual({ streamId, lastSequence: 42 });
    expect(decodeStart(encodeStart({}).subarray(12))).toEqual({});
    const announce = encodeStreamAnnounce(streamId, 7, 1);
    expect(decodeHeader(announce).type).toBe(RtType.METADATA);
    expect(decodeStreamAnnounce(announce.subarray(12))).toEqual({ streamId, nextSequence: 7, linktype: 1 });
  });
});

describe("data messages", () => {
  function batch(sizes: number[], precision: "micro" | "nano" = "micro") {
    const builder = new PacketBatchBuilder(1, precision);
    sizes.forEach((size, i) => builder.push(1_700_000_000 + i, precision === "nano" ? 123_456_789 : 123_456, size + 4, new Uint8Array(size).fill(i + 1)));
    return builder.take()!;
  }

  test("records become DATA_DLT+linktype with a 24-byte pcap_pkthdr, sequences from the first", () => {
    const b = batch([60, 1]);
    const { bytes, truncated } = encodeDataMessages(b.bytes, b.count, 2001, "micro", 0xffffffff);
    expect(truncated).toBe(0);
    const first = decodeHeader(bytes);
    expect(first).toEqual({ type: 2001, length: 84, sequence: 0xffffffff });
    const data = decodePcapData(bytes.subarray(12, 12 + 84), 262144);
    expect(data).toEqual({ tsSec: 1_700_000_000, tsUsec: 123_456, caplen: 60, len: 64, dataOffset: 24 });
    expect(hex(bytes.subarray(12 + 24, 12 + 84))).toBe("01".repeat(60));
    // The sequence wraps explicitly at 2^32.
    expect(decodeHeader(bytes, 96).sequence).toBe(0);
  });

  test("nanosecond batches become microseconds; packets over 65511 bytes are cut and counted", () => {
    const b = batch([70_000], "nano");
    const { bytes, truncated } = encodeDataMessages(b.bytes, b.count, 2001, "nano", 5);
    expect(truncated).toBe(1);
    const header = decodeHeader(bytes);
    expect(header.length).toBe(65535);
    const data = decodePcapData(bytes.subarray(12), 262144);
    expect(data.caplen).toBe(RT_MAX_CAPLEN);
    expect(data.len).toBe(70_004);
    expect(data.tsUsec).toBe(123_456);
  });

  const body = (fields: { sec?: bigint; usec?: bigint; caplen?: number; len?: number }, dataBytes = 4) => {
    const out = new Uint8Array(24 + dataBytes);
    const v = new DataView(out.buffer);
    v.setBigInt64(0, fields.sec ?? 1n, true);
    v.setBigInt64(8, fields.usec ?? 0n, true);
    v.setUint32(16, fields.caplen ?? dataBytes, true);
    v.setUint32(20, fields.len ?? dataBytes, true);
    return out;
  };
  test.each([
    ["short body", new Uint8Array(10), "truncated", 0],
    ["negative tv_sec", body({ sec: -1n }), "bad-timestamp", 0],
    ["tv_usec of a second", body({ usec: 1_000_000n }), "bad-timestamp", 8],
    ["caplen beyond the body", body({ caplen: 5 }), "caplen-mismatch", 16],
    ["caplen over len", body({ len: 3 }), "caplen-exceeds-len", 16],
  ] as const)("pcap data error: %s", (_name, bytes, code, offset) => {
    try {
      decodePcapData(bytes, 262144);
      throw new Error("decoded");
    } catch (error) {
      expect(error).toBeInstanceOf(ProtocolError);
      expect((error as ProtocolError).code).toBe(code);
      expect((error as ProtocolError).offset).toBe(offset);
    }
  });

  test("caplen over the snaplen is refused", () => {
    expect(() => decodePcapData(body({}, 100), 64)).toThrow(expect.objectContaining({ code: "caplen-exceeds-snaplen" }));
  });

  test("sequence distance is serial arithmetic on u32", () => {
    expect(sequenceDistance(1, 0xffffffff)).toBe(2);
    expect(sequenceDistance(0xffffffff, 1)).toBe(-2);
    expect(sequenceDistance(7, 7)).toBe(0);
  });
});

describe("framer", () => {
  const stream = new Uint8Array([...HELLO_RELIABLE, ...encodeStatus({ in: 1, out: 1, ack: 1, length: 1, used: 1, droppedRecords: 0, fullEpisodes: 0, policy: 1 }), ...encodeAck(9), ...END_DATA]);
  const summary = (ms: RtMessage[]) => ms.map((m) => [m.type, m.length, m.sequence, hex(m.body)]);
  const whole = summary(new RtFramer(() => 256).push(stream));

  test("every split point gives the same messages", () => {
    expect(whole.map((m) => m[0])).toEqual([RtType.HELLO, RtType.STATUS, RtType.ACK, RtType.END_DATA]);
    for (let cut = 0; cut <= stream.byteLength; cut++) {
      const framer = new RtFramer(() => 256);
      const got = [...summary(framer.push(stream.subarray(0, cut))), ...summary(framer.push(stream.subarray(cut)))];
      expect(got).toEqual(whole);
    }
  });

  test("a body over the cap fails as soon as the header is in, with the offset of the length", () => {
    const framer = new RtFramer(() => 256);
    const header = new Uint8Array(12);
    new DataView(header.buffer).setUint32(0, RtType.ACK, true);
    new DataView(header.buffer).setUint16(4, 0xffff, true);
    expect(() => framer.push(new Uint8Array([...END_DATA, ...header]))).toThrow(expect.objectContaining({ code: "length-too-large", offset: 16 }));
    // Nothing after the first error.
    expect(() => framer.push(END_DATA)).toThrow(expect.objectContaining({ code: "length-too-large" }));
  });

  test("bounded random bytes only ever give messages or ProtocolError", () => {
    let seed = 1;
    const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let round = 0; round < 300; round++) {
      const bytes = Uint8Array.from({ length: next() % 400 }, () => next() & 0xff);
      const framer = new RtFramer(() => 256);
      const session = new RtServerSession();
      try {
        for (const m of framer.push(bytes)) session.handle(m);
      } catch (error) {
        expect(error).toBeInstanceOf(ProtocolError);
      }
    }
  });
});

describe("server session", () => {
  const message = (bytes: Uint8Array) => new RtFramer(() => 256).push(bytes)[0]!;
  test("START then ACKs; CLOSE closes", () => {
    const s = new RtServerSession();
    expect(s.handle(message(encodeStart()))).toEqual({ kind: "start", probe: undefined });
    expect(s.handle(message(encodeAck(5)))).toEqual({ kind: "ack", sequence: 5 });
    expect(s.handle(message(new Uint8Array([7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])))).toEqual({ kind: "close", reason: "client sent CLOSE" });
    expect(s.state.kind).toBe("closed");
  });
  test.each([
    ["ACK before START", [encodeAck(1)], "ack-before-start"],
    ["START twice", [encodeStart(), encodeStart()], "start-twice"],
    ["a server's message from a client", [HELLO_RELIABLE], "unexpected-type"],
    ["ACK with a short body", [encodeStart(), Uint8Array.of(3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 2)], "bad-ack"],
  ] as const)("%s closes with a code", (_name, messages, code) => {
    const s = new RtServerSession();
    let last;
    for (const m of messages) last = s.handle(message(m as Uint8Array));
    expect(last).toMatchObject({ kind: "close", reason: code });
  });
});
