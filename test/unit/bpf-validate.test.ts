// The validator: one hand-built program per fault (code and instruction index asserted), the
// programs it must accept, and bounded random programs (rejected with a ProtocolError, or run
// to completion by both interpreters with the same answer).
import { describe, expect, test } from "bun:test";
import {
  BpfFault,
  BpfOpcode as Op,
  DEFAULT_BPF_MAX_INSTRUCTIONS,
  compileBpfMatcher,
  interpretBpfProgram,
  validateBpfProgram,
  type BpfInstruction,
  type BpfProgram,
} from "../../src/packet/bpf/index.ts";
import { ProtocolError } from "../../src/packet/protocol-error.ts";
import { prng } from "../support/bpf-helpers.ts";

const I = (code: number, k = 0, jt = 0, jf = 0): BpfInstruction => ({ code, jt, jf, k });
const RET0 = I(Op.RET_K, 0);
const RET1 = I(Op.RET_K, 1);

function fault(program: BpfProgram, options?: { maxInstructions?: number }): { code: string; offset: number } {
  try {
    validateBpfProgram(program, options);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return { code: error.code, offset: error.offset };
  }
  throw new Error("program was accepted");
}

const faultRows: [string, BpfProgram, string, number][] = [
  ["empty program", [], BpfFault.empty, 0],
  // Field ranges: the type is loose, the wire is not.
  ["code above u16", [I(0x10006)], BpfFault.invalidField, 0],
  ["jt above u8", [I(Op.LD_IMM), I(Op.JMP_JEQ_K, 0, 256, 0), RET0], BpfFault.invalidField, 1],
  ["negative jf", [I(Op.LD_IMM), I(Op.JMP_JEQ_K, 0, 0, -1), RET0], BpfFault.invalidField, 1],
  ["k above u32", [I(Op.LD_IMM, 2 ** 32), RET0], BpfFault.invalidField, 0],
  ["negative k (use the u32 form)", [I(Op.LD_IMM, -1), RET0], BpfFault.invalidField, 0],
  ["fractional k", [I(Op.LD_IMM, 1.5), RET0], BpfFault.invalidField, 0],
  ["NaN code", [I(Number.NaN), RET0], BpfFault.invalidField, 0],
  ["a hole in the array", [I(Op.LD_IMM), undefined as unknown as BpfInstruction, RET0], BpfFault.invalidField, 1],
  // CVE-2026-31911: opcodes bpf_validate() lets through by class but bpf_filter() abort()s on.
  ["RET|X 0x0e (not valid for RET, libpcap 9db8ee21)", [I(0x0e)], BpfFault.invalidOpcode, 0],
  ["RET with rval 0x18", [I(0x1e)], BpfFault.invalidOpcode, 0],
  ["upper byte set 0x8006 (BSD/OS bit)", [I(0x8006)], BpfFault.invalidOpcode, 0],
  ["LD|H|IMM 0x08 (size bits on IMM)", [I(0x08), RET0], BpfFault.invalidOpcode, 0],
  ["LD size 0x18 (reserved)", [I(0x38), RET0], BpfFault.invalidOpcode, 0],
  ["LD mode 0xc0 (reserved, BPF_RND on OpenBSD)", [I(0xc0), RET0], BpfFault.invalidOpcode, 0],
  ["LD mode 0xe0 (reserved)", [I(0xe0), RET0], BpfFault.invalidOpcode, 0],
  ["LD|B|MSH 0xb0 (MSH is LDX only)", [I(0xb0), RET0], BpfFault.invalidOpcode, 0],
  ["LDX|W|ABS 0x21", [I(0x21), RET0], BpfFault.invalidOpcode, 0],
  ["LDX|H|MSH 0xa9", [I(0xa9), RET0], BpfFault.invalidOpcode, 0],
  ["LD|H|LEN 0x88", [I(0x88), RET0], BpfFault.invalidOpcode, 0],
  ["ST with mode bits 0x62", [I(0x62), RET0], BpfFault.invalidOpcode, 0],
  ["ALU op 0xb0 (reserved)", [I(0xb4, 1), RET0], BpfFault.invalidOpcode, 0],
  ["ALU NEG|X 0x8c", [I(0x8c), RET0], BpfFault.invalidOpcode, 0],
  ["JMP op 0x50 (reserved, BSD/OS)", [I(0x55, 0, 0, 0), RET0], BpfFault.invalidOpcode, 0],
  ["JA|X 0x0d", [I(0x0d), RET0], BpfFault.invalidOpcode, 0],
  ["MISC 0x0f", [I(0x0f), RET0], BpfFault.invalidOpcode, 0],
  ["MISC COP 0x27", [I(0x27), RET0], BpfFault.invalidOpcode, 0],
  ["bad opcode after good ones", [I(Op.LD_IMM), I(Op.MISC_TAX), I(0xff), RET0], BpfFault.invalidOpcode, 2],
  // CVE-2026-0799: scratch memory index above 15.
  ["LD MEM 16", [I(Op.ST, 0), I(Op.LD_MEM, 16), RET0], BpfFault.scratchIndex, 1],
  ["LDX MEM 16", [I(Op.LDX_MEM, 16), RET0], BpfFault.scratchIndex, 0],
  ["ST 16", [I(Op.ST, 16), RET0], BpfFault.scratchIndex, 0],
  ["STX 0xffffffff", [I(Op.STX, 0xffffffff), RET0], BpfFault.scratchIndex, 0],
  // Linux check_load_and_stores(): a word must be stored on every path before it is loaded.
  ["LD MEM before any ST", [I(Op.LD_MEM, 3), I(Op.RET_A)], BpfFault.scratchReadBeforeWrite, 0],
  ["LDX MEM of another word", [I(Op.ST, 1), I(Op.LDX_MEM, 2), RET0], BpfFault.scratchReadBeforeWrite, 1],
  [
    "ST on one branch only",
    [I(Op.LD_W_LEN), I(Op.JMP_JEQ_K, 60, 0, 1), I(Op.ST, 0), I(Op.LD_MEM, 0), I(Op.RET_A)],
    BpfFault.scratchReadBeforeWrite,
    3,
  ],
  // CVE-2026-31912: running off the end, jumping outside the program.
  ["ja to one past the end", [I(Op.JMP_JA, 1), RET0], BpfFault.jumpOutOfRange, 0],
  ["ja far forward", [I(Op.JMP_JA, 0x7fffffff), RET0], BpfFault.jumpOutOfRange, 0],
  ["jeq jt past the end", [I(Op.LD_IMM), I(Op.JMP_JEQ_K, 0, 2, 0), RET0, RET1], BpfFault.jumpOutOfRange, 1],
  ["jgt jf past the end", [I(Op.LD_IMM), I(Op.JMP_JGT_X, 0, 0, 255), RET0], BpfFault.jumpOutOfRange, 1],
  ["jset as the last instruction", [I(Op.LD_IMM), I(Op.JMP_JSET_K, 1, 0, 0)], BpfFault.jumpOutOfRange, 1],
  ["last instruction is not RET", [I(Op.LD_IMM, 1)], BpfFault.noFinalReturn, 0],
  ["unreachable non-RET tail", [RET1, I(Op.LD_IMM, 1)], BpfFault.noFinalReturn, 1],
  // CVE-2026-6554: a backward ja (k read as negative) loops forever.
  ["ja -1 (to itself)", [I(Op.LD_IMM), I(Op.JMP_JA, 0xffffffff), RET0], BpfFault.backwardJump, 1],
  ["ja -2 (to the previous)", [I(Op.LD_IMM), I(Op.JMP_JA, 0xfffffffe), RET0], BpfFault.backwardJump, 1],
  ["ja with only the sign bit", [I(Op.JMP_JA, 0x80000000), RET0], BpfFault.backwardJump, 0],
  // CVE-2026-6244: division or modulo by an immediate zero.
  ["div by immediate 0", [I(Op.LD_IMM, 5), I(Op.ALU_DIV_K, 0), I(Op.RET_A)], BpfFault.divisionByZero, 1],
  ["mod by immediate 0", [I(Op.LD_IMM, 5), I(Op.ALU_MOD_K, 0), I(Op.RET_A)], BpfFault.divisionByZero, 1],
  // Linux: shift by an immediate >= 32 (undefined in C).
  ["lsh by 32", [I(Op.ALU_LSH_K, 32), I(Op.RET_A)], BpfFault.shiftOutOfRange, 0],
  ["rsh by 0xffffffff", [I(Op.ALU_RSH_K, 0xffffffff), I(Op.RET_A)], BpfFault.shiftOutOfRange, 0],
  // Linux extensions and negative offsets: kernel and userland would disagree.
  ["ldb [SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT]", [I(Op.LD_B_ABS, 0xfffff000 + 48), I(Op.RET_A)], BpfFault.linuxExtension, 0],
  ["ldh [SKF_AD_OFF] (protocol)", [I(Op.LD_H_ABS, 0xfffff000), I(Op.RET_A)], BpfFault.linuxExtension, 0],
  ["ld [SKF_NET_OFF + 12]", [I(Op.LD_W_ABS, 0xfff00000 + 12), I(Op.RET_A)], BpfFault.linuxExtension, 0],
  ["ldh [x + SKF_LL_OFF]", [I(Op.LD_H_IND, 0xffe00000), I(Op.RET_A)], BpfFault.linuxExtension, 0],
  ["ldxb 4*([SKF_AD_OFF]&0xf)", [I(Op.LDX_B_MSH, 0xfffff000), I(Op.RET_A)], BpfFault.linuxExtension, 0],
  // The first fault in instruction order wins.
  ["two faults: the first is reported", [I(Op.ALU_DIV_K, 0), I(Op.ST, 99), RET0], BpfFault.divisionByZero, 0],
];

describe("validateBpfProgram fault rows", () => {
  test.each(faultRows)("%s", (_name, program, code, offset) => {
    expect(fault(program)).toEqual({ code, offset });
  });

  test("too many instructions: the offset is the cap (default 8192 = rpcapd's RPCAP_BPF_MAXINSNS)", () => {
    expect(DEFAULT_BPF_MAX_INSTRUCTIONS).toBe(8192);
    const atCap = Array.from({ length: 8192 }, () => RET0);
    validateBpfProgram(atCap);
    expect(fault([...atCap, RET0])).toEqual({ code: BpfFault.tooManyInstructions, offset: 8192 });
    expect(fault([RET0, RET0, RET0], { maxInstructions: 2 })).toEqual({ code: BpfFault.tooManyInstructions, offset: 2 });
  });

  test("a bad cap is a programming error, not a peer's fault", () => {
    expect(() => validateBpfProgram([RET0], { maxInstructions: 0 })).toThrow(RangeError);
  });
});

describe("validateBpfProgram accepts", () => {
  const accepted: [string, BpfProgram][] = [
    ["a lone ret #0", [RET0]],
    ["ret a", [I(Op.RET_A)]],
    ["ja 0 (next)", [I(Op.JMP_JA, 0), RET0]],
    ["ja to the last instruction", [I(Op.JMP_JA, 2), RET0, RET0, RET1]],
    ["jeq with both targets on the last", [I(Op.LD_IMM), I(Op.JMP_JEQ_K, 0, 1, 1), RET0, RET1]],
    ["lsh by 31", [I(Op.ALU_LSH_K, 31), I(Op.RET_A)]],
    ["div and mod by 1", [I(Op.ALU_DIV_K, 1), I(Op.ALU_MOD_K, 1), I(Op.RET_A)]],
    ["scratch words 0 and 15", [I(Op.ST, 0), I(Op.STX, 15), I(Op.LD_MEM, 15), I(Op.LDX_MEM, 0), I(Op.RET_A)]],
    [
      "ST on both branches",
      [I(Op.LD_W_LEN), I(Op.JMP_JEQ_K, 60, 0, 2), I(Op.ST, 0), I(Op.JMP_JA, 1), I(Op.ST, 0), I(Op.LD_MEM, 0), I(Op.RET_A)],
    ],
    ["ld [0xffdfffff] (huge but plain: fails at run time)", [I(Op.LD_W_ABS, 0xffdfffff), I(Op.RET_A)]],
    ["every opcode in the table", everyOpcode()],
  ];
  test.each(accepted)("%s", (_name, program) => {
    validateBpfProgram(program);
    compileBpfMatcher(program)(new Uint8Array(64), 64);
  });
});

/** A straight-line program using each allowed opcode once, legally. */
function everyOpcode(): BpfInstruction[] {
  const body: BpfInstruction[] = [I(Op.ST, 0), I(Op.STX, 1)];
  for (const [name, code] of Object.entries(Op)) {
    if (name.startsWith("RET") || code === Op.ST || code === Op.STX) continue;
    if (name.startsWith("JMP")) body.push(I(code, 0, 0, 0));
    else if (code === Op.LD_MEM || code === Op.LDX_MEM) body.push(I(code, 1));
    else if (name.endsWith("_K") && name.startsWith("ALU")) body.push(I(code, 3));
    else body.push(I(code, 2));
  }
  return [...body, I(Op.RET_A), I(Op.RET_K, 7)];
}

// ---- random programs -----------------------------------------------------------------------

const OPCODES = Object.values(Op) as number[];

/** Random programs biased towards validity (legal opcodes, small jumps, a final RET) plus noise. */
function randomProgram(random: () => number): BpfInstruction[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const length = 1 + Math.floor(random() * 12);
  const program: BpfInstruction[] = [];
  for (let i = 0; i < length; i++) {
    const code = random() < 0.9 ? pick(OPCODES) : Math.floor(random() * 0x10000);
    const k = pick([
      () => Math.floor(random() * 64),
      () => Math.floor(random() * 18),
      () => Math.floor(random() * 40),
      () => Math.floor(random() * 2 ** 32),
      () => pick([0, 1, 31, 32, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffff000, 0xffe00000]),
    ])();
    const jt = random() < 0.9 ? Math.floor(random() * 4) : Math.floor(random() * 256);
    const jf = random() < 0.9 ? Math.floor(random() * 4) : Math.floor(random() * 256);
    program.push({ code, jt, jf, k });
  }
  if (random() < 0.8) program.push(I(random() < 0.5 ? Op.RET_A : Op.RET_K, Math.floor(random() * 3)));
  return program;
}

describe("bounded random programs", () => {
  test("each is refused with a ProtocolError, or runs, terminates and agrees with the reference", () => {
    const random = prng(20260801);
    const packets = Array.from({ length: 6 }, (_, n) => Uint8Array.from({ length: n * 13 }, () => Math.floor(random() * 256)));
    const codes = new Set<string>(Object.values(BpfFault));
    let accepted = 0;
    const seen = new Set<string>();
    for (let n = 0; n < 20000; n++) {
      const program = randomProgram(random);
      let match;
      try {
        match = compileBpfMatcher(program);
      } catch (error) {
        expect(error).toBeInstanceOf(ProtocolError);
        const { code, offset } = error as ProtocolError;
        expect(codes.has(code)).toBe(true);
        expect(offset).toBeGreaterThanOrEqual(0);
        expect(offset).toBeLessThan(program.length);
        seen.add(code);
        continue;
      }
      accepted++;
      for (const packet of packets) {
        const wirelen = packet.length + Math.floor(random() * 100);
        const verdict = match(packet, wirelen);
        expect(Number.isInteger(verdict) && verdict >= 0 && verdict <= 0xffffffff).toBe(true);
        expect(verdict).toBe(interpretBpfProgram(program, packet, wirelen));
      }
    }
    // The generator must exercise both outcomes and most fault kinds, or the test proves little.
    expect(accepted).toBeGreaterThan(1000);
    for (const code of [
      BpfFault.invalidOpcode, BpfFault.scratchIndex, BpfFault.scratchReadBeforeWrite, BpfFault.jumpOutOfRange,
      BpfFault.backwardJump, BpfFault.noFinalReturn, BpfFault.divisionByZero, BpfFault.shiftOutOfRange, BpfFault.linuxExtension,
    ]) expect(seen).toContain(code);
  });
});
