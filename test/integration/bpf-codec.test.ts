// The RPCAP wire layout of BPF instructions and the tcpdump text formats: exact encode, decode,
// round trip, error rows with code and offset, every truncation point, bounded random bytes,
// and the real filters libpcap's client sent in rpcap-updatefilter.pcap.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import {
  BPF_WIRE_INSTRUCTION_BYTES,
  BpfFault,
  BpfTextFault,
  decodeBpfInstructions,
  encodeBpfInstructions,
  encodeHostBpfInstructions,
  formatBpfCStyle,
  formatBpfDecimal,
  parseBpfCStyle,
  parseBpfDecimal,
  validateBpfProgram,
  writeBpfInstructions,
  type BpfInstruction,
} from "../../src/packet/bpf/index.ts";
import { ByteWriter } from "../../src/packet/byte-writer.ts";
import { ProtocolError } from "../../src/packet/protocol-error.ts";
import { VECTORS_DIR, prng, readPcap, run } from "../support/bpf-helpers.ts";

const hex = (text: string) => Uint8Array.from(text.replace(/\s+/g, "").match(/../g)!.map((b) => parseInt(b, 16)));

function caught(fn: () => unknown): { code: string; offset: number } {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return { code: error.code, offset: error.offset };
  }
  throw new Error("no error");
}

const rows: [string, BpfInstruction[], string][] = [
  ["ldh [12]", [{ code: 0x28, jt: 0, jf: 0, k: 12 }], "0028 00 00 0000000c"],
  ["jeq #0x86dd jt 0 jf 6", [{ code: 0x15, jt: 0, jf: 6, k: 0x86dd }], "0015 00 06 000086dd"],
  ["ret #262144", [{ code: 0x06, jt: 0, jf: 0, k: 262144 }], "0006 00 00 00040000"],
  ["k with the sign bit (i32 -15 on the wire)", [{ code: 0x05, jt: 0, jf: 0, k: 0xfffffff1 }], "0005 00 00 fffffff1"],
  ["all fields at their maximum", [{ code: 0xffff, jt: 255, jf: 255, k: 0xffffffff }], "ffff ff ff ffffffff"],
  [
    "two instructions back to back",
    [{ code: 0x30, jt: 0, jf: 0, k: 23 }, { code: 0x16, jt: 0, jf: 0, k: 0 }],
    "0030 00 00 00000017 0016 00 00 00000000",
  ],
];

describe("RPCAP wire codec", () => {
  test.each(rows)("%s: exact encode, decode, round trip", (_name, program, wire) => {
    const bytes = hex(wire);
    expect(encodeBpfInstructions(program)).toEqual(bytes);
    expect(decodeBpfInstructions(bytes, 0, program.length)).toEqual(program);
    expect(decodeBpfInstructions(encodeBpfInstructions(program), 0, program.length)).toEqual(program);
  });

  test("decodes at an offset inside a larger message", () => {
    const bytes = hex("aabbccdd 0006 00 00 00000001 ee");
    expect(decodeBpfInstructions(bytes, 4, 1)).toEqual([{ code: 6, jt: 0, jf: 0, k: 1 }]);
  });

  test("writes into a caller-sized writer; a negative i32 k is written as its two's complement", () => {
    const writer = new ByteWriter(2 + 8);
    writer.u16(0x1234, false);
    writeBpfInstructions(writer, [{ code: 5, jt: 0, jf: 0, k: -15 }]);
    expect(writer.finish()).toEqual(hex("1234 0005 00 00 fffffff1"));
  });

  test("encode refuses fields that do not fit instead of narrowing", () => {
    expect(() => encodeBpfInstructions([{ code: 0x10000, jt: 0, jf: 0, k: 0 }])).toThrow(RangeError);
    expect(() => encodeBpfInstructions([{ code: 6, jt: 256, jf: 0, k: 0 }])).toThrow(RangeError);
    expect(() => encodeBpfInstructions([{ code: 6, jt: 0, jf: 0, k: 2 ** 32 }])).toThrow(RangeError);
  });

  test("every truncation point is a 'truncated' error at the start of the instructions", () => {
    const bytes = hex("0028 00 00 0000000c 0006 00 00 00040000");
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(caught(() => decodeBpfInstructions(bytes.subarray(0, cut), 0, 2))).toEqual({ code: "truncated", offset: 0 });
    }
    expect(decodeBpfInstructions(bytes, 0, 2)).toHaveLength(2);
  });

  test("the count is checked against the cap before allocating (a 4 GiB nitems)", () => {
    expect(caught(() => decodeBpfInstructions(new Uint8Array(16), 8, 0xffffffff))).toEqual({
      code: BpfFault.tooManyInstructions,
      offset: 8,
    });
    expect(caught(() => decodeBpfInstructions(new Uint8Array(64), 0, 5, { maxInstructions: 4 }))).toEqual({
      code: BpfFault.tooManyInstructions,
      offset: 0,
    });
    expect(decodeBpfInstructions(new Uint8Array(0), 0, 0)).toEqual([]);
  });

  test("bounded random bytes: decode returns or throws ProtocolError; re-encoding gives the bytes back", () => {
    const random = prng(99);
    for (let n = 0; n < 2000; n++) {
      const bytes = Uint8Array.from({ length: Math.floor(random() * 70) }, () => Math.floor(random() * 256));
      const count = Math.floor(random() * 10);
      let program: BpfInstruction[];
      try {
        program = decodeBpfInstructions(bytes, 0, count);
      } catch (error) {
        expect(error).toBeInstanceOf(ProtocolError);
        expect(count * BPF_WIRE_INSTRUCTION_BYTES).toBeGreaterThan(bytes.length);
        continue;
      }
      expect(encodeBpfInstructions(program)).toEqual(bytes.subarray(0, count * BPF_WIRE_INSTRUCTION_BYTES));
    }
  });
});

describe("real filters from rpcap-updatefilter.pcap (libpcap client -> rpcapd)", () => {
  const file = readPcap(join(VECTORS_DIR, "rpcap-updatefilter.pcap"));
  /** TCP payload of 1-based frame `number` (Ethernet + IPv4 + TCP). */
  const tcpPayload = (number: number): Uint8Array => {
    const data = file.records[number - 1]!.data;
    const ipHeader = (data[14]! & 0x0f) * 4;
    const tcpHeader = (data[14 + ipHeader + 12]! >> 4) * 4;
    return data.subarray(14 + ipHeader + tcpHeader);
  };
  // The client compiled with snaplen 65535 (STARTCAP_REQ snaplen), so -s 65535 here.
  const expected = (expression: string) =>
    parseBpfDecimal(new TextDecoder().decode(run(["tcpdump", "-ddd", "-s", "65535", "-y", "EN10MB", expression])));

  test("STARTCAP_REQ frame 10 carries 'udp port 9999'", () => {
    const payload = tcpPayload(10);
    expect([payload[0], payload[1]]).toEqual([0, 0x04]); // ver 0, STARTCAP
    const header = 8 + 12; // rpcap header, then snaplen/read_timeout/flags/portdata
    const view = new DataView(payload.buffer, payload.byteOffset);
    expect(view.getUint16(header, false)).toBe(1); // filtertype BPF
    const nitems = view.getUint32(header + 4, false);
    const program = decodeBpfInstructions(payload, header + 8, nitems);
    validateBpfProgram(program);
    expect(program).toEqual(expected("udp port 9999"));
  });

  test("UPDATEFILTER_REQ frame 43 carries 'udp port 9997' (20 instructions)", () => {
    const payload = tcpPayload(43);
    expect([payload[0], payload[1]]).toEqual([0, 0x05]); // ver 0, UPDATEFILTER
    const view = new DataView(payload.buffer, payload.byteOffset);
    const nitems = view.getUint32(8 + 4, false);
    expect(nitems).toBe(20);
    const program = decodeBpfInstructions(payload, 16, nitems);
    validateBpfProgram(program);
    expect(program).toEqual(expected("udp port 9997"));
    expect(encodeBpfInstructions(program)).toEqual(payload.subarray(16));
  });
});

describe("text formats", () => {
  const program: BpfInstruction[] = [
    { code: 40, jt: 0, jf: 0, k: 12 },
    { code: 21, jt: 0, jf: 1, k: 2048 },
    { code: 6, jt: 0, jf: 0, k: 4294967295 },
    { code: 6, jt: 0, jf: 0, k: 0 },
  ];
  const decimal = "4\n40 0 0 12\n21 0 1 2048\n6 0 0 4294967295\n6 0 0 0\n";
  const cStyle = "{ 0x28, 0, 0, 0x0000000c },\n{ 0x15, 0, 1, 0x00000800 },\n{ 0x6, 0, 0, 0xffffffff },\n{ 0x6, 0, 0, 0x00000000 },\n";

  test("exact format and parse", () => {
    expect(formatBpfDecimal(program)).toBe(decimal);
    expect(formatBpfCStyle(program)).toBe(cStyle);
    expect(parseBpfDecimal(decimal)).toEqual(program);
    expect(parseBpfCStyle(cStyle)).toEqual(program);
  });

  test("tolerates CRLF, blank lines and surrounding spaces; -dd numbers may be decimal", () => {
    expect(parseBpfDecimal("\r\n 4 \r\n40 0 0 12\r\n\r\n21 0 1 2048\n6 0 0 4294967295\n6 0 0 0")).toEqual(program);
    expect(parseBpfCStyle("{40,0,0,12}\n{ 0x15, 0, 1, 2048 },\n{ 6, 0, 0, 0xFFFFFFFF }\n{ 0x6, 0, 0, 0 },")).toEqual(program);
  });

  const errorRows: [string, () => unknown, string, number][] = [
    ["empty text", () => parseBpfDecimal(""), BpfTextFault.syntax, 0],
    ["count is not a number", () => parseBpfDecimal("x\n6 0 0 0\n"), BpfTextFault.syntax, 0],
    ["fewer lines than the count", () => parseBpfDecimal("2\n6 0 0 0\n"), BpfTextFault.countMismatch, 2],
    ["more lines than the count", () => parseBpfDecimal("1\n6 0 0 0\n6 0 0 1\n"), BpfTextFault.countMismatch, 10],
    ["three fields", () => parseBpfDecimal("1\n6 0 0\n"), BpfTextFault.syntax, 2],
    ["negative k", () => parseBpfDecimal("1\n6 0 0 -1\n"), BpfTextFault.syntax, 2],
    ["jt above u8", () => parseBpfDecimal("1\n21 256 0 0\n"), BpfFault.invalidField, 2],
    ["k above u32", () => parseBpfDecimal("1\n6 0 0 4294967296\n"), BpfFault.invalidField, 2],
    ["count above the cap (checked first)", () => parseBpfDecimal("9999999\n"), BpfFault.tooManyInstructions, 0],
    ["count above a custom cap", () => parseBpfDecimal("3\n6 0 0 0\n6 0 0 0\n6 0 0 0\n", { maxInstructions: 2 }), BpfFault.tooManyInstructions, 0],
    ["-dd: not an initialiser", () => parseBpfCStyle("{ 0x28, 0, 0, 0xc },\nret\n"), BpfTextFault.syntax, 21],
    ["-dd: code above u16", () => parseBpfCStyle("{ 0x10000, 0, 0, 0 },"), BpfFault.invalidField, 0],
    ["-dd: past a custom cap", () => parseBpfCStyle("{ 6, 0, 0, 0 },\n{ 6, 0, 0, 0 },\n", { maxInstructions: 1 }), BpfFault.tooManyInstructions, 16],
  ];
  test.each(errorRows)("error: %s", (_name, fn, code, offset) => {
    expect(caught(fn)).toEqual({ code, offset });
  });
});

describe("encodeHostBpfInstructions (struct sock_filter / bpf_insn for the kernel and libpcap)", () => {
  test("little-endian code and k, jt and jf as bytes, 8 bytes per instruction", () => {
    const bytes = encodeHostBpfInstructions([
      { code: 0x28, jt: 0, jf: 0, k: 12 },
      { code: 0x15, jt: 1, jf: 2, k: 0x800 },
      { code: 0x06, jt: 0, jf: 0, k: 0xffffffff },
    ]);
    expect(Buffer.from(bytes).toString("hex")).toBe("280000000c000000" + "1500010200080000" + "06000000ffffffff");
  });

  test("an empty program still has one (zero) slot to point at", () => {
    expect(Buffer.from(encodeHostBpfInstructions([])).toString("hex")).toBe("0000000000000000");
  });
});
