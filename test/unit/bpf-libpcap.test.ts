// libpcap itself as judge: random programs go to libpcap's bpf_validate() and our validator,
// and every program we accept runs through libpcap's bpf_filter(), our compiled matcher and the
// reference interpreter over random packets; the three verdicts must be equal.
// bun:ffi is used here only to reach the judge (probe's own FFI stays in src/capture/libpcap).
import { describe, expect, test } from "bun:test";
import { dlopen, FFIType, ptr } from "bun:ffi";
import {
  BpfFault,
  BpfOpcode as Op,
  compileBpfMatcher,
  interpretBpfProgram,
  validateBpfProgram,
  type BpfInstruction,
} from "../../src/packet/bpf/index.ts";
import { ProtocolError } from "../../src/packet/protocol-error.ts";
import { prng } from "../support/bpf-helpers.ts";

const judge = dlopen(process.env.PROBE_LIBPCAP || "libpcap.so.0.8", {
  bpf_validate: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  bpf_filter: { args: [FFIType.ptr, FFIType.ptr, FFIType.u32, FFIType.u32], returns: FFIType.u32 },
}).symbols;

/** struct bpf_insn[] in host (little-endian) order. */
function native(program: readonly BpfInstruction[]): Uint8Array {
  const out = new Uint8Array(Math.max(1, program.length) * 8);
  const view = new DataView(out.buffer);
  program.forEach((insn, i) => {
    view.setUint16(i * 8, insn.code, true);
    view.setUint8(i * 8 + 2, insn.jt);
    view.setUint8(i * 8 + 3, insn.jf);
    view.setUint32(i * 8 + 4, insn.k >>> 0, true);
  });
  return out;
}

const OPCODES = Object.values(Op) as number[];

/** Faults libpcap's bpf_validate() also catches; the others are where we are stricter on purpose. */
const SHARED_FAULTS = new Set<string>([
  BpfFault.empty, BpfFault.scratchIndex, BpfFault.jumpOutOfRange, BpfFault.noFinalReturn, BpfFault.divisionByZero,
]);

function randomProgram(random: () => number): BpfInstruction[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const length = Math.floor(random() * 14);
  const program: BpfInstruction[] = [];
  for (let i = 0; i < length; i++) {
    const code = random() < 0.92 ? pick(OPCODES) : random() < 0.5 ? Math.floor(random() * 0x100) : Math.floor(random() * 0x10000);
    const k = pick([
      () => Math.floor(random() * 40),
      () => Math.floor(random() * 17),
      () => Math.floor(random() * 2 ** 32),
      () => pick([0, 1, 2, 31, 32, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0xfffff000, 0xffe00000, 0xffdfffff]),
    ])();
    const jt = random() < 0.9 ? Math.floor(random() * 4) : Math.floor(random() * 256);
    const jf = random() < 0.9 ? Math.floor(random() * 4) : Math.floor(random() * 256);
    program.push({ code, jt, jf, k });
  }
  if (random() < 0.85) program.push({ code: random() < 0.5 ? Op.RET_A : Op.RET_K, jt: 0, jf: 0, k: Math.floor(random() * 4) });
  return program;
}

describe("libpcap's bpf_validate() and bpf_filter() as judges", () => {
  test("30000 random programs: we accept only what libpcap accepts, and filter exactly as it does", () => {
    const random = prng(1107);
    const packets = Array.from({ length: 8 }, (_, n) => Uint8Array.from({ length: n * 9 }, () => Math.floor(random() * 256)));
    // A small X makes indirect loads land inside the packets now and then.
    let accepted = 0;
    let stricter = 0;
    let compared = 0;
    for (let n = 0; n < 30000; n++) {
      const program = randomProgram(random);
      const insns = native(program);
      const libpcapAccepts = judge.bpf_validate(ptr(insns), program.length) !== 0;
      let ours: string | undefined;
      try {
        validateBpfProgram(program);
      } catch (error) {
        expect(error).toBeInstanceOf(ProtocolError);
        ours = (error as ProtocolError).code;
      }
      if (ours === undefined) {
        expect({ program, libpcapAccepts }).toEqual({ program, libpcapAccepts: true });
        accepted++;
        const match = compileBpfMatcher(program);
        for (const packet of packets) {
          const wirelen = packet.length + Math.floor(random() * 3000);
          const buffer = packet.length === 0 ? new Uint8Array(1) : packet; // ptr() needs a non-empty buffer
          const expected = judge.bpf_filter(ptr(insns), ptr(buffer), wirelen, packet.length) >>> 0;
          const got = match(packet, wirelen);
          if (got !== expected) expect({ program, packet: [...packet], wirelen, got }).toEqual({ program, packet: [...packet], wirelen, got: expected });
          expect(interpretBpfProgram(program, packet, wirelen)).toBe(expected);
          compared++;
        }
      } else if (SHARED_FAULTS.has(ours)) {
        expect({ program, ours, libpcapAccepts }).toEqual({ program, ours, libpcapAccepts: false });
      } else if (libpcapAccepts) {
        stricter++;
      }
    }
    expect(accepted).toBeGreaterThan(2000);
    expect(compared).toBe(accepted * packets.length);
    expect(stricter).toBeGreaterThan(0); // RET|X, backward ja, shifts >= 32, loads before stores...
  });

  test("hand-picked programs libpcap accepts and we refuse, each for its documented reason", () => {
    const I = (code: number, k = 0, jt = 0, jf = 0): BpfInstruction => ({ code, jt, jf, k });
    const rows: [BpfInstruction[], string][] = [
      [[I(0x0e)], BpfFault.invalidOpcode], // RET|X: bpf_filter() would abort()
      [[I(0x8006)], BpfFault.invalidOpcode], // high byte: bpf_filter() would abort()
      [[I(Op.LD_IMM), I(Op.JMP_JA, 0xffffffff), I(Op.RET_K)], BpfFault.backwardJump],
      [[I(Op.ALU_LSH_K, 32), I(Op.RET_A)], BpfFault.shiftOutOfRange],
      [[I(Op.LD_MEM, 0), I(Op.RET_A)], BpfFault.scratchReadBeforeWrite],
      [[I(Op.LD_B_ABS, 0xfffff000 + 48), I(Op.RET_A)], BpfFault.linuxExtension],
    ];
    for (const [program, code] of rows) {
      expect(judge.bpf_validate(ptr(native(program)), program.length)).not.toBe(0);
      expect(() => validateBpfProgram(program)).toThrow(ProtocolError);
      try {
        validateBpfProgram(program);
      } catch (error) {
        expect((error as ProtocolError).code).toBe(code);
      }
    }
  });
});

describe("filters for link types whose DLT value differs (libpcap's linktype_to_dlt)", () => {
  test("LINKTYPE_RAW (101): 'udp' compiles and matches a raw IPv4 UDP packet, not a TCP one", async () => {
    const { compileFilter, linktypeText } = await import("../../src/capture/libpcap/compile-filter.ts");
    const { interpretBpfProgram: runBpf } = await import("../../src/packet/bpf/interpret.ts");
    const program = compileFilter("udp", 101, 262144);
    // 20-byte IPv4 header, protocol 17 (UDP) or 6 (TCP), then 8 bytes.
    const ipv4 = (protocol: number) => Uint8Array.from([0x45, 0, 0, 28, 0, 0, 0, 0, 64, protocol, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 53, 0, 53, 0, 8, 0, 0]);
    expect(runBpf(program, ipv4(17), 28)).toBeGreaterThan(0);
    expect(runBpf(program, ipv4(6), 28)).toBe(0);
    expect(linktypeText(101)).toContain("RAW");
  });
});
