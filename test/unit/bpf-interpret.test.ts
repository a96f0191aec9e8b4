// The matcher's semantics, row by row, with values worked out by hand from libpcap's
// bpf_filter(): u32 wrapping, unsigned compares, shifts by X >= 32, division by X == 0,
// out-of-bounds loads, big-endian loads, wire length. Each row runs the compiled matcher and
// the reference interpreter.
import { describe, expect, test } from "bun:test";
import {
  BpfOpcode as Op,
  compileBpfMatcher,
  compileBpfRecordMatcher,
  generateMatcherSource,
  interpretBpfProgram,
  type BpfInstruction,
  type BpfProgram,
} from "../../src/packet/bpf/index.ts";

const I = (code: number, k = 0, jt = 0, jf = 0): BpfInstruction => ({ code, jt, jf, k });
const RET_A = I(Op.RET_A);
/** A = a, X = x, then `ops`, then ret a. */
const calc = (a: number, x: number, ...ops: BpfInstruction[]): BpfProgram => [I(Op.LD_IMM, a), I(Op.LDX_IMM, x), ...ops, RET_A];

const PACKET = Uint8Array.from([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x45, 0xff]); // 10 bytes

const rows: [string, BpfProgram, number, Uint8Array?, number?][] = [
  ["add wraps", calc(0xffffffff, 0, I(Op.ALU_ADD_K, 2)), 1],
  ["add X wraps", calc(0xfffffffe, 5, I(Op.ALU_ADD_X)), 3],
  ["sub wraps", calc(1, 0, I(Op.ALU_SUB_K, 2)), 0xffffffff],
  ["sub X", calc(10, 3, I(Op.ALU_SUB_X)), 7],
  ["mul wraps (low 32 bits)", calc(0x10000, 0, I(Op.ALU_MUL_K, 0x10001)), 0x10000],
  ["mul X: 0xffffffff^2 = 1 mod 2^32", calc(0xffffffff, 0xffffffff, I(Op.ALU_MUL_X)), 1],
  ["div unsigned", calc(0xffffffff, 0, I(Op.ALU_DIV_K, 3)), 0x55555555],
  ["div truncates", calc(7, 2, I(Op.ALU_DIV_X)), 3],
  ["div of the largest by the largest - 1", calc(0xffffffff, 0xfffffffe, I(Op.ALU_DIV_X)), 1],
  ["div by X == 0 returns 0 at once", [I(Op.LD_IMM, 9), I(Op.LDX_IMM, 0), I(Op.ALU_DIV_X), I(Op.RET_K, 5)], 0],
  ["mod by X == 0 returns 0 at once", [I(Op.LD_IMM, 9), I(Op.LDX_IMM, 0), I(Op.ALU_MOD_X), I(Op.RET_K, 5)], 0],
  ["mod unsigned", calc(0xfffffffe, 0, I(Op.ALU_MOD_K, 0xffffffff)), 0xfffffffe],
  ["mod X", calc(100, 7, I(Op.ALU_MOD_X)), 2],
  ["and keeps u32", calc(0xf0f0f0f0, 0, I(Op.ALU_AND_K, 0x80000000)), 0x80000000],
  ["and X", calc(0xff00ff00, 0x0ff00ff0, I(Op.ALU_AND_X)), 0x0f000f00],
  ["or keeps u32", calc(0x80000000, 0, I(Op.ALU_OR_K, 1)), 0x80000001],
  ["or X", calc(0x80000000, 0x7fffffff, I(Op.ALU_OR_X)), 0xffffffff],
  ["xor", calc(0xf0f0f0f0, 0, I(Op.ALU_XOR_K, 0xffffffff)), 0x0f0f0f0f],
  ["xor X", calc(0xffffffff, 0xffffffff, I(Op.ALU_XOR_X)), 0],
  ["lsh 31", calc(1, 0, I(Op.ALU_LSH_K, 31)), 0x80000000],
  ["lsh drops high bits", calc(0xffffffff, 0, I(Op.ALU_LSH_K, 4)), 0xfffffff0],
  ["rsh is unsigned", calc(0x80000000, 0, I(Op.ALU_RSH_K, 31)), 1],
  ["lsh X 31", calc(3, 31, I(Op.ALU_LSH_X)), 0x80000000],
  ["lsh X 32 gives 0 (libpcap db833b99; JS << would shift by 0)", calc(3, 32, I(Op.ALU_LSH_X)), 0],
  ["lsh X 33 gives 0 (JS << would shift by 1)", calc(3, 33, I(Op.ALU_LSH_X)), 0],
  ["rsh X 32 gives 0", calc(0xffffffff, 32, I(Op.ALU_RSH_X)), 0],
  ["rsh X 0xffffffff gives 0", calc(0xffffffff, 0xffffffff, I(Op.ALU_RSH_X)), 0],
  ["rsh X 4", calc(0xffffffff, 4, I(Op.ALU_RSH_X)), 0x0fffffff],
  ["neg 0", calc(0, 0, I(Op.ALU_NEG)), 0],
  ["neg 1", calc(1, 0, I(Op.ALU_NEG)), 0xffffffff],
  ["neg 0x80000000", calc(0x80000000, 0, I(Op.ALU_NEG)), 0x80000000],
  ["tax then txa", [I(Op.LD_IMM, 77), I(Op.MISC_TAX), I(Op.LD_IMM, 1), I(Op.MISC_TXA), RET_A], 77],
  ["ret k keeps u32", [I(Op.RET_K, 0xffffffff)], 0xffffffff],
  // Unsigned comparisons: a signed compare would get these wrong.
  ["jgt is unsigned", [I(Op.LD_IMM, 0x80000000), I(Op.JMP_JGT_K, 1, 0, 1), I(Op.RET_K, 1), I(Op.RET_K, 2)], 1],
  ["jge X equal", [I(Op.LD_IMM, 5), I(Op.LDX_IMM, 5), I(Op.JMP_JGE_X, 0, 0, 1), I(Op.RET_K, 1), I(Op.RET_K, 2)], 1],
  ["jgt X is unsigned", [I(Op.LD_IMM, 1), I(Op.LDX_IMM, 0xffffffff), I(Op.JMP_JGT_X, 0, 0, 1), I(Op.RET_K, 1), I(Op.RET_K, 2)], 2],
  ["jeq X", [I(Op.LD_IMM, 0xffffffff), I(Op.LDX_IMM, 0xffffffff), I(Op.JMP_JEQ_X, 0, 1, 0), I(Op.RET_K, 1), I(Op.RET_K, 2)], 2],
  ["jset high bit", [I(Op.LD_IMM, 0x80000000), I(Op.JMP_JSET_K, 0x80000000, 1, 0), I(Op.RET_K, 1), I(Op.RET_K, 2)], 2],
  ["jset X no common bit", [I(Op.LD_IMM, 0xf0), I(Op.LDX_IMM, 0x0f), I(Op.JMP_JSET_X, 0, 1, 0), I(Op.RET_K, 1), I(Op.RET_K, 2)], 1],
  ["ja skips", [I(Op.JMP_JA, 1), I(Op.RET_K, 1), I(Op.RET_K, 2)], 2],
  ["both targets equal", [I(Op.JMP_JEQ_K, 0, 1, 1), I(Op.RET_K, 1), I(Op.RET_K, 2)], 2],
  // Packet loads: big-endian, bounds against caplen (the packet's length).
  ["ld [1] is big-endian", [I(Op.LD_W_ABS, 1), RET_A], 0x3456789a],
  ["ld [6] is the last word that fits", [I(Op.LD_W_ABS, 6), RET_A], 0xdef045ff],
  ["ld [4] may exceed 2^31", [I(Op.LD_W_ABS, 4), RET_A], 0x9abcdef0],
  ["ld [7] runs past caplen: reject", [I(Op.LD_W_ABS, 7), I(Op.RET_K, 1)], 0],
  ["ld [0xffdfffff] (largest allowed k) does not wrap", [I(Op.LD_W_ABS, 0xffdfffff), I(Op.RET_K, 1)], 0],
  ["ldh [8]", [I(Op.LD_H_ABS, 8), RET_A], 0x45ff],
  ["ldh [9] past caplen", [I(Op.LD_H_ABS, 9), I(Op.RET_K, 1)], 0],
  ["ldb [9]", [I(Op.LD_B_ABS, 9), RET_A], 0xff],
  ["ldb [10] past caplen", [I(Op.LD_B_ABS, 10), I(Op.RET_K, 1)], 0],
  ["ld [x + 2]", [I(Op.LDX_IMM, 2), I(Op.LD_W_IND, 2), RET_A], 0x9abcdef0],
  ["ld [x + 3] past caplen", [I(Op.LDX_IMM, 3), I(Op.LD_W_IND, 4), I(Op.RET_K, 1)], 0],
  ["ldh [x + k] with X + k wrapping in u32 still rejects", [I(Op.LDX_IMM, 0xffffffff), I(Op.LD_H_IND, 2), I(Op.RET_K, 1)], 0],
  ["ldb [x + k] with X + k = 2^32 rejects", [I(Op.LDX_IMM, 0x200001), I(Op.LD_B_IND, 0xffdfffff), I(Op.RET_K, 1)], 0],
  ["ldb [x + 8]", [I(Op.LDX_IMM, 1), I(Op.LD_B_IND, 8), RET_A], 0xff],
  ["ldh [x + 8]", [I(Op.LDX_IMM, 0), I(Op.LD_H_IND, 8), RET_A], 0x45ff],
  ["ldxb 4*([8]&0xf)", [I(Op.LDX_B_MSH, 8), I(Op.MISC_TXA), RET_A], 20],
  ["ldxb 4*([10]&0xf) past caplen", [I(Op.LDX_B_MSH, 10), I(Op.RET_K, 1)], 0],
  ["ld #len is the wire length", [I(Op.LD_W_LEN), RET_A], 1500, PACKET, 1500],
  ["ldx #len is the wire length", [I(Op.LDX_W_LEN), I(Op.MISC_TXA), RET_A], 0xffffffff, PACKET, 0xffffffff],
  ["empty packet: any load rejects", [I(Op.LD_B_ABS, 0), I(Op.RET_K, 1)], 0, new Uint8Array(0), 60],
  // Scratch memory.
  [
    "st / stx / ld M / ldx M over words 0 and 15",
    [I(Op.LD_IMM, 11), I(Op.ST, 15), I(Op.LDX_IMM, 22), I(Op.STX, 0), I(Op.LD_MEM, 0), I(Op.LDX_MEM, 15), I(Op.ALU_ADD_X), RET_A],
    33,
  ],
];

describe("bpf_filter() semantics", () => {
  test.each(rows)("%s", (_name, program, expected, packet = PACKET, wirelen = packet.length) => {
    expect(compileBpfMatcher(program)(packet, wirelen)).toBe(expected);
    expect(interpretBpfProgram(program, packet, wirelen)).toBe(expected);
  });

  test("the record matcher reads only its slice of the buffer", () => {
    const program = [I(Op.LD_B_ABS, 2), I(Op.RET_A)];
    const match = compileBpfRecordMatcher(program);
    const buffer = Uint8Array.from([9, 9, 9, 1, 2, 3, 4]);
    expect(match(buffer, 3, 3, 3)).toBe(3);
    expect(match(buffer, 3, 2, 3)).toBe(0); // caplen 2: [2] is past it although the buffer goes on
  });

  test("matchers share no state between calls", () => {
    const program = [I(Op.LD_W_LEN), I(Op.ST, 4), I(Op.LD_MEM, 4), RET_A];
    const match = compileBpfMatcher(program);
    const other = compileBpfMatcher(program);
    expect(match(PACKET, 100)).toBe(100);
    expect(other(PACKET, 7)).toBe(7);
    expect(match(PACKET, 8)).toBe(8);
  });

  test("the generated source holds only the fixed text and the program's integers", () => {
    const source = generateMatcherSource([I(Op.LD_H_ABS, 12), I(Op.JMP_JEQ_K, 0x800, 0, 1), I(Op.RET_K, 262144), I(Op.RET_K, 0)]);
    expect(source).toContain("if (buflen < 14) return 0;");
    expect(source).toContain("if (!(A === 2048)) { pc = 3; continue; }");
    expect(source).toContain("return 262144;");
  });

  test("a program at the 8192-instruction cap compiles and runs every instruction", () => {
    // 4095 x (add #1; jeq #0xffffffff jt +1: never taken), then ret a: A counts the adds.
    const program: BpfInstruction[] = [];
    const pairs = 4095;
    for (let n = 0; n < pairs; n++) {
      program.push(I(Op.ALU_ADD_K, 1), I(Op.JMP_JEQ_K, 0xffffffff, 1, 0));
    }
    program.push(I(Op.RET_A), I(Op.RET_K, 0));
    expect(program).toHaveLength(8192);
    const match = compileBpfMatcher(program);
    expect(match(PACKET, 10)).toBe(pairs);
    expect(interpretBpfProgram(program, PACKET, 10)).toBe(pairs);
  });

  test("compileBpfMatcher validates first", () => {
    expect(() => compileBpfMatcher([I(Op.JMP_JA, 0xffffffff), I(Op.RET_K, 0)])).toThrow("backwards");
  });
});
