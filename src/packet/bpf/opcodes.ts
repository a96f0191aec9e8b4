// Classic BPF vocabulary: the instruction type, the opcode field layout of pcap/bpf.h, the
// exact set of opcodes probe accepts, and the Linux socket-filter constants the validator needs.
//
// Instruction (struct bpf_insn, pcap/bpf.h):  code:u16  jt:u8  jf:u8  k:u32
// Opcode fields (pcap/bpf.h):
//   class = code & 0x07   LD LDX ST STX ALU JMP RET MISC
//   size  = code & 0x18   W (4 bytes) H (2) B (1)              for LD/LDX
//   mode  = code & 0xe0   IMM ABS IND MEM LEN MSH              for LD/LDX
//   op    = code & 0xf0   ADD SUB ... / JA JEQ JGT JGE JSET    for ALU/JMP
//   src   = code & 0x08   K (the k field) or X (the index register)
//   rval  = code & 0x18   K or A                               for RET
//
// Sources: the-tcpdump-group/libpcap pcap/bpf.h and bpf_filter.c (HEAD f26ae497), Linux
// net/core/filter.c chk_code_allowed() / bpf_check_classic(), include/uapi/linux/filter.h.

/** One classic BPF instruction as RPCAP, `tcpdump -ddd` and struct bpf_insn carry it; `k` is a u32. */
export type BpfInstruction = { code: number; jt: number; jf: number; k: number };

/** A classic BPF program: instructions run from index 0; every path must end in a RET. */
export type BpfProgram = readonly BpfInstruction[];

/** Instruction classes, `code & 0x07` (pcap/bpf.h). */
export const BpfClass = { LD: 0x00, LDX: 0x01, ST: 0x02, STX: 0x03, ALU: 0x04, JMP: 0x05, RET: 0x06, MISC: 0x07 } as const;
/** Load sizes, `code & 0x18`. */
export const BpfSize = { W: 0x00, H: 0x08, B: 0x10 } as const;
/** Load modes, `code & 0xe0`. */
export const BpfMode = { IMM: 0x00, ABS: 0x20, IND: 0x40, MEM: 0x60, LEN: 0x80, MSH: 0xa0 } as const;
/** ALU operations, `code & 0xf0`. MOD and XOR came later than the others but every libpcap since 1.6 and Linux since 3.7/3.8 has them. */
export const BpfAluOp = {
  ADD: 0x00, SUB: 0x10, MUL: 0x20, DIV: 0x30, OR: 0x40, AND: 0x50, LSH: 0x60, RSH: 0x70, NEG: 0x80, MOD: 0x90, XOR: 0xa0,
} as const;
/** Jump operations, `code & 0xf0`. */
export const BpfJmpOp = { JA: 0x00, JEQ: 0x10, JGT: 0x20, JGE: 0x30, JSET: 0x40 } as const;
/** Operand source, `code & 0x08`: the k field or the X register. */
export const BpfSrc = { K: 0x00, X: 0x08 } as const;
/** RET operand, `code & 0x18`: the k field or the accumulator. (BPF_X is not valid for RET: libpcap 9db8ee21.) */
export const BpfRval = { K: 0x00, A: 0x10 } as const;
/** MISC operations, `code & 0xf8`. */
export const BpfMiscOp = { TAX: 0x00, TXA: 0x80 } as const;

/** Number of 32-bit scratch memory words M[0..15] (BPF_MEMWORDS in pcap/bpf.h and linux/filter.h). */
export const BPF_MEMWORDS = 16;

/**
 * Linux socket-filter magic offsets (include/uapi/linux/filter.h), as the u32 values that appear
 * in `k`. An absolute load at `k >= SKF_AD_OFF` reads ancillary data (protocol, ifindex, VLAN tag,
 * ...) in the kernel; `SKF_LL_OFF <= k < SKF_AD_OFF` reads relative to the link-layer or network
 * header. libpcap's userland interpreter treats all of them as out-of-bounds loads (returns 0),
 * so the same program would filter differently in the kernel and in userland.
 */
export const SKF_AD_OFF = 0xfffff000; // -0x1000
export const SKF_NET_OFF = 0xfff00000; // -0x100000
export const SKF_LL_OFF = 0xffe00000; // -0x200000
/** SKF_AD_OFF + SKF_AD_PKTTYPE (linux/filter.h): an absolute word load here puts skb->pkt_type in A. */
export const SKF_AD_PKTTYPE = (SKF_AD_OFF + 4) >>> 0;

/**
 * Every opcode probe accepts, by name. This is exactly the set both libpcap's bpf_filter() has a
 * case for and Linux's chk_code_allowed() lists (the two sets are equal). libpcap's own
 * bpf_validate() only looks at the class/mode/op bits, so it passes codes like RET|X (0x0e) or
 * 0x8006 that its interpreter then reaches as `default: abort()`; matching the full 16-bit code
 * against this table closes that gap.
 */
export const BpfOpcode = {
  LD_IMM: 0x00,
  LD_W_ABS: 0x20,
  LD_H_ABS: 0x28,
  LD_B_ABS: 0x30,
  LD_W_IND: 0x40,
  LD_H_IND: 0x48,
  LD_B_IND: 0x50,
  LD_MEM: 0x60,
  LD_W_LEN: 0x80,
  LDX_IMM: 0x01,
  LDX_MEM: 0x61,
  LDX_W_LEN: 0x81,
  LDX_B_MSH: 0xb1,
  ST: 0x02,
  STX: 0x03,
  ALU_ADD_K: 0x04,
  ALU_ADD_X: 0x0c,
  ALU_SUB_K: 0x14,
  ALU_SUB_X: 0x1c,
  ALU_MUL_K: 0x24,
  ALU_MUL_X: 0x2c,
  ALU_DIV_K: 0x34,
  ALU_DIV_X: 0x3c,
  ALU_OR_K: 0x44,
  ALU_OR_X: 0x4c,
  ALU_AND_K: 0x54,
  ALU_AND_X: 0x5c,
  ALU_LSH_K: 0x64,
  ALU_LSH_X: 0x6c,
  ALU_RSH_K: 0x74,
  ALU_RSH_X: 0x7c,
  ALU_NEG: 0x84,
  ALU_MOD_K: 0x94,
  ALU_MOD_X: 0x9c,
  ALU_XOR_K: 0xa4,
  ALU_XOR_X: 0xac,
  JMP_JA: 0x05,
  JMP_JEQ_K: 0x15,
  JMP_JEQ_X: 0x1d,
  JMP_JGT_K: 0x25,
  JMP_JGT_X: 0x2d,
  JMP_JGE_K: 0x35,
  JMP_JGE_X: 0x3d,
  JMP_JSET_K: 0x45,
  JMP_JSET_X: 0x4d,
  RET_K: 0x06,
  RET_A: 0x16,
  MISC_TAX: 0x07,
  MISC_TXA: 0x87,
} as const;

export type BpfOpcodeName = keyof typeof BpfOpcode;

const opcodeNames = new Map<number, BpfOpcodeName>(
  (Object.entries(BpfOpcode) as [BpfOpcodeName, number][]).map(([name, code]) => [code, name]),
);

/** True when `code` is one of the opcodes in {@link BpfOpcode}. */
export function isKnownBpfOpcode(code: number): boolean {
  return opcodeNames.has(code);
}

/** Name of an opcode for logs, e.g. "LD_H_ABS"; unknown codes print as "unknown(0x8006)". */
export function bpfOpcodeName(code: number): string {
  return opcodeNames.get(code) ?? `unknown(0x${code.toString(16)})`;
}

/** True for the conditional jumps (JEQ/JGT/JGE/JSET with K or X), whose targets are jt and jf. */
export function isConditionalJump(code: number): boolean {
  return (code & 0x07) === BpfClass.JMP && (code & 0xf0) !== BpfJmpOp.JA;
}
