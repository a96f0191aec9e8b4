// Userland classic BPF with the semantics of libpcap's bpf_filter() (bpf_filter.c,
// pcapint_filter_with_aux_data at HEAD f26ae497), for per-consumer filters and file replay.
//
// compileBpfMatcher() validates a program once and turns it into one JavaScript function (a
// `for (;;) switch (pc)` over the instructions, straight-line code falling through between jump
// targets), so matching a packet allocates nothing and dispatches only at jumps. The generated
// source is built from fixed text and integers we checked ourselves (validateBpfProgram: every
// field is an integer in range); nothing a peer sends is ever spliced in as text.
//
// Semantics, matching libpcap rather than C's or JavaScript's defaults:
//   * A, X and M[] are u32; arithmetic wraps modulo 2^32 (Math.imul, >>> 0).
//   * A packet load that does not fit in the captured bytes (buflen = caplen) returns 0: reject.
//     The IND forms compute X + k without wrapping, as libpcap's three-part check does.
//   * DIV/MOD by X == 0 returns 0 at run time (by an immediate 0 is refused by the validator).
//   * LSH/RSH by X >= 32 give 0 (libpcap db833b99, 2018); JavaScript's << would shift by X & 31.
//     LSH/RSH by an immediate >= 32 never get here (validator), so `<< k` is exact.
//   * LD|W|LEN and LDX|W|LEN give the wire length, not the captured length.
//   * M[] starts zeroed on every call (libpcap 1.10.7 "Initialize the scratch memory store to 0");
//     the validator also refuses loads before stores, as Linux does.
//   * The result is the RET value as u32: 0 rejects, anything else accepts (and is the snap length).
import {
  BPF_MEMWORDS,
  BpfClass,
  BpfOpcode,
  bpfOpcodeName,
  isConditionalJump,
  isKnownBpfOpcode,
  type BpfInstruction,
  type BpfProgram,
} from "./opcodes.ts";
import { validateBpfProgram, type BpfValidateOptions } from "./validate.ts";

/** Runs a compiled filter over one whole packet; returns the RET value (0 = reject). */
export type BpfMatcher = (packet: Uint8Array, wirelen: number) => number;

/**
 * Runs a compiled filter over the `caplen` bytes at `offset` of `bytes` (a PacketBatch record,
 * say) without making a subarray. The caller guarantees `offset + caplen <= bytes.length`.
 */
export type BpfRecordMatcher = (bytes: Uint8Array, offset: number, caplen: number, wirelen: number) => number;

/**
 * Validates `program` (throws the validator's ProtocolError) and compiles it into a matcher with
 * libpcap's bpf_filter() semantics: `matcher(packet, wirelen)` where `packet` holds the captured
 * bytes (its length is caplen) and `wirelen` is the original length.
 */
export function compileBpfMatcher(program: BpfProgram, options: BpfValidateOptions = {}): BpfMatcher {
  const run = compileBpfRecordMatcher(program, options);
  return (packet, wirelen) => run(packet, 0, packet.length, wirelen);
}

/** Like {@link compileBpfMatcher}, for records inside a larger buffer (no per-packet view). */
export function compileBpfRecordMatcher(program: BpfProgram, options: BpfValidateOptions = {}): BpfRecordMatcher {
  validateBpfProgram(program, options);
  const source = generateMatcherSource(program);
  // The four parameters are the only free names in `source`.
  return new Function("p", "b", "buflen", "wirelen", source) as BpfRecordMatcher;
}

/**
 * The JavaScript body compileBpfRecordMatcher() builds for a VALIDATED program (exported for
 * tests and for reading in a debugger). Parameters: p (bytes), b (offset of the packet in p),
 * buflen (caplen), wirelen.
 */
export function generateMatcherSource(program: BpfProgram): string {
  const targets = new Set<number>([0]);
  const scratch = new Set<number>();
  for (let i = 0; i < program.length; i++) {
    const { code, jt, jf, k } = program[i]!;
    if (code === BpfOpcode.JMP_JA) targets.add(i + 1 + k);
    else if (isConditionalJump(code)) {
      targets.add(i + 1 + jt);
      targets.add(i + 1 + jf);
    }
    if (code === BpfOpcode.LD_MEM || code === BpfOpcode.LDX_MEM || code === BpfOpcode.ST || code === BpfOpcode.STX) {
      scratch.add(k);
    }
  }
  const lines: string[] = ['"use strict";', "wirelen = wirelen >>> 0;", "let A = 0, X = 0, i = 0, pc = 0;"];
  for (const word of [...scratch].sort((x, y) => x - y)) lines.push(`let m${word} = 0;`);
  lines.push("for (;;) switch (pc) {");
  for (let index = 0; index < program.length; index++) {
    if (targets.has(index)) lines.push(`case ${index}:`);
    lines.push(`  ${emitInstruction(program[index]!, index)} // ${index}: ${bpfOpcodeName(program[index]!.code)}`);
  }
  lines.push("default: return 0;", "}");
  return lines.join("\n");
}

/** One instruction as JavaScript; `index` is needed for jump targets. */
function emitInstruction(insn: BpfInstruction, index: number): string {
  const { code, jt, jf } = insn;
  const k = insn.k >>> 0;
  const word = "A = ((p[i] << 24) | (p[i + 1] << 16) | (p[i + 2] << 8) | p[i + 3]) >>> 0;";
  const half = "A = (p[i] << 8) | p[i + 1];";
  switch (code) {
    case BpfOpcode.RET_K:
      return `return ${k};`;
    case BpfOpcode.RET_A:
      return "return A;";
    case BpfOpcode.LD_W_ABS:
      return `if (buflen < ${k + 4}) return 0; i = b + ${k}; ${word}`;
    case BpfOpcode.LD_H_ABS:
      return `if (buflen < ${k + 2}) return 0; i = b + ${k}; ${half}`;
    case BpfOpcode.LD_B_ABS:
      return `if (buflen <= ${k}) return 0; A = p[b + ${k}];`;
    case BpfOpcode.LD_W_IND:
      return `i = X + ${k}; if (i + 4 > buflen) return 0; i += b; ${word}`;
    case BpfOpcode.LD_H_IND:
      return `i = X + ${k}; if (i + 2 > buflen) return 0; i += b; ${half}`;
    case BpfOpcode.LD_B_IND:
      return `i = X + ${k}; if (i >= buflen) return 0; A = p[b + i];`;
    case BpfOpcode.LD_W_LEN:
      return "A = wirelen;";
    case BpfOpcode.LDX_W_LEN:
      return "X = wirelen;";
    case BpfOpcode.LDX_B_MSH:
      return `if (buflen <= ${k}) return 0; X = (p[b + ${k}] & 15) << 2;`;
    case BpfOpcode.LD_IMM:
      return `A = ${k};`;
    case BpfOpcode.LDX_IMM:
      return `X = ${k};`;
    case BpfOpcode.LD_MEM:
      return `A = m${k};`;
    case BpfOpcode.LDX_MEM:
      return `X = m${k};`;
    case BpfOpcode.ST:
      return `m${k} = A;`;
    case BpfOpcode.STX:
      return `m${k} = X;`;
    case BpfOpcode.JMP_JA:
      return k === 0 ? ";" : `pc = ${index + 1 + k}; continue;`;
    case BpfOpcode.ALU_ADD_K:
      return `A = (A + ${k}) >>> 0;`;
    case BpfOpcode.ALU_ADD_X:
      return "A = (A + X) >>> 0;";
    case BpfOpcode.ALU_SUB_K:
      return `A = (A - ${k}) >>> 0;`;
    case BpfOpcode.ALU_SUB_X:
      return "A = (A - X) >>> 0;";
    case BpfOpcode.ALU_MUL_K:
      return `A = Math.imul(A, ${k}) >>> 0;`;
    case BpfOpcode.ALU_MUL_X:
      return "A = Math.imul(A, X) >>> 0;";
    case BpfOpcode.ALU_DIV_K:
      // Both operands are below 2^32, so the rounded double quotient truncates to the exact one.
      return `A = (A / ${k}) >>> 0;`;
    case BpfOpcode.ALU_DIV_X:
      return "if (X === 0) return 0; A = (A / X) >>> 0;";
    case BpfOpcode.ALU_MOD_K:
      return `A = A % ${k};`;
    case BpfOpcode.ALU_MOD_X:
      return "if (X === 0) return 0; A = A % X;";
    case BpfOpcode.ALU_AND_K:
      return `A = (A & ${k}) >>> 0;`;
    case BpfOpcode.ALU_AND_X:
      return "A = (A & X) >>> 0;";
    case BpfOpcode.ALU_OR_K:
      return `A = (A | ${k}) >>> 0;`;
    case BpfOpcode.ALU_OR_X:
      return "A = (A | X) >>> 0;";
    case BpfOpcode.ALU_XOR_K:
      return `A = (A ^ ${k}) >>> 0;`;
    case BpfOpcode.ALU_XOR_X:
      return "A = (A ^ X) >>> 0;";
    case BpfOpcode.ALU_LSH_K:
      return `A = (A << ${k}) >>> 0;`;
    case BpfOpcode.ALU_LSH_X:
      return "A = X < 32 ? (A << X) >>> 0 : 0;";
    case BpfOpcode.ALU_RSH_K:
      return `A = A >>> ${k};`;
    case BpfOpcode.ALU_RSH_X:
      return "A = X < 32 ? A >>> X : 0;";
    case BpfOpcode.ALU_NEG:
      return "A = (0 - A) >>> 0;";
    case BpfOpcode.MISC_TAX:
      return "X = A;";
    case BpfOpcode.MISC_TXA:
      return "A = X;";
    default:
      if (isConditionalJump(code)) return emitConditionalJump(code, index + 1 + jt, index + 1 + jf, index + 1, k);
      // Unreachable for validated programs; generateMatcherSource is only called after validation.
      throw new Error(`cannot compile opcode 0x${code.toString(16)} at ${index}`);
  }
}

function emitConditionalJump(code: number, whenTrue: number, whenFalse: number, next: number, k: number): string {
  const operand = (code & 0x08) !== 0 ? "X" : String(k);
  let condition: string;
  switch (code & 0xf0) {
    case 0x10:
      condition = `A === ${operand}`;
      break;
    case 0x20:
      condition = `A > ${operand}`;
      break;
    case 0x30:
      condition = `A >= ${operand}`;
      break;
    default: // JSET
      condition = `(A & ${operand}) !== 0`;
  }
  if (whenTrue === whenFalse) return whenTrue === next ? ";" : `pc = ${whenTrue}; continue;`;
  if (whenTrue === next) return `if (!(${condition})) { pc = ${whenFalse}; continue; }`;
  if (whenFalse === next) return `if (${condition}) { pc = ${whenTrue}; continue; }`;
  return `if (${condition}) { pc = ${whenTrue}; continue; } pc = ${whenFalse}; continue;`;
}

/**
 * A plain step-by-step interpreter, kept as the readable reference the compiled matcher is
 * tested against (same semantics, much slower). It does not validate: it throws Error on an
 * unknown opcode, a jump out of the program, or more steps than instructions (a backward jump).
 */
export function interpretBpfProgram(program: BpfProgram, packet: Uint8Array, wirelen: number): number {
  const buflen = packet.length;
  const mem = new Uint32Array(BPF_MEMWORDS);
  let a = 0;
  let x = 0;
  let pc = 0;
  wirelen >>>= 0;
  for (let steps = 0; steps <= program.length; steps++) {
    const insn = program[pc];
    if (insn === undefined) throw new Error(`BPF program counter ${pc} is outside the program`);
    const k = insn.k >>> 0;
    pc++;
    const cls = insn.code & 0x07;
    switch (insn.code) {
      case BpfOpcode.RET_K:
        return k;
      case BpfOpcode.RET_A:
        return a;
      case BpfOpcode.LD_W_ABS:
      case BpfOpcode.LD_H_ABS:
      case BpfOpcode.LD_B_ABS:
      case BpfOpcode.LD_W_IND:
      case BpfOpcode.LD_H_IND:
      case BpfOpcode.LD_B_IND: {
        const size = (insn.code & 0x18) === 0 ? 4 : (insn.code & 0x18) === 0x08 ? 2 : 1;
        const at = (insn.code & 0xe0) === 0x40 ? x + k : k;
        if (at + size > buflen) return 0;
        a = 0;
        for (let j = 0; j < size; j++) a = a * 256 + packet[at + j]!;
        continue;
      }
      case BpfOpcode.LD_W_LEN:
        a = wirelen;
        continue;
      case BpfOpcode.LDX_W_LEN:
        x = wirelen;
        continue;
      case BpfOpcode.LDX_B_MSH:
        if (k >= buflen) return 0;
        x = (packet[k]! & 0xf) * 4;
        continue;
      case BpfOpcode.LD_IMM:
        a = k;
        continue;
      case BpfOpcode.LDX_IMM:
        x = k;
        continue;
      case BpfOpcode.LD_MEM:
        a = mem[k]!;
        continue;
      case BpfOpcode.LDX_MEM:
        x = mem[k]!;
        continue;
      case BpfOpcode.ST:
        mem[k] = a;
        continue;
      case BpfOpcode.STX:
        mem[k] = x;
        continue;
      case BpfOpcode.JMP_JA:
        pc += k;
        continue;
      case BpfOpcode.MISC_TAX:
        x = a;
        continue;
      case BpfOpcode.MISC_TXA:
        a = x;
        continue;
      case BpfOpcode.ALU_NEG:
        a = Number((0n - BigInt(a)) & 0xffffffffn);
        continue;
    }
    const operand = (insn.code & 0x08) !== 0 ? x : k;
    if (isKnownBpfOpcode(insn.code) && isConditionalJump(insn.code)) {
      const op = insn.code & 0xf0;
      const taken = op === 0x10 ? a === operand : op === 0x20 ? a > operand : op === 0x30 ? a >= operand : (a & operand) !== 0;
      pc += taken ? insn.jt : insn.jf;
      continue;
    }
    if (cls === BpfClass.ALU && isKnownBpfOpcode(insn.code)) {
      // BigInt keeps this path obviously exact (it is the reference, not the fast path).
      const A = BigInt(a);
      const B = BigInt(operand);
      const MASK = 0xffffffffn;
      switch (insn.code & 0xf0) {
        case 0x00: a = Number((A + B) & MASK); continue;
        case 0x10: a = Number((A - B) & MASK); continue;
        case 0x20: a = Number((A * B) & MASK); continue;
        case 0x30: if (B === 0n) return 0; a = Number(A / B); continue;
        case 0x90: if (B === 0n) return 0; a = Number(A % B); continue;
        case 0x40: a = Number(A | B); continue;
        case 0x50: a = Number(A & B); continue;
        case 0xa0: a = Number(A ^ B); continue;
        case 0x60: a = B >= 32n ? 0 : Number((A << B) & MASK); continue;
        case 0x70: a = B >= 32n ? 0 : Number(A >> B); continue;
      }
    }
    throw new Error(`BPF opcode 0x${insn.code.toString(16)} at ${pc - 1} is not supported`);
  }
  throw new Error("BPF program ran more steps than it has instructions (backward jump?)");
}
