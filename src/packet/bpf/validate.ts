// The BPF validator: every program from a peer passes here before it is installed with
// pcap_setfilter() or run by the userland matcher. It throws ProtocolError(code, message, index).
//
// What it enforces, and where each rule comes from:
//   * libpcap bpf_validate() (bpf_filter.c, pcapint_validate_filter at HEAD f26ae497):
//     non-empty; LD/LDX/ST/STX MEM index < 16; ALU op known; DIV/MOD by immediate 0;
//     jumps inside the program; last instruction is RET.
//   * Linux bpf_check_classic() (net/core/filter.c), stricter in four ways we adopt:
//     the full 16-bit opcode must be in the allowed table (libpcap only checks class/mode/op
//     bits and then abort()s in bpf_filter() on e.g. RET|X); LSH/RSH by an immediate >= 32;
//     JA may only go forward (libpcap userland sign-extends k to allow "ip6 protochain");
//     a scratch word must be stored on every path before it is loaded (check_load_and_stores).
//   * The libpcap 1.10.7 fixes listed in docs/spec/rpcap.md: invalid opcode
//     (CVE-2026-31911), scratch index > 15 (CVE-2026-0799), running off the end or jumping outside
//     the program (CVE-2026-31912), backward `ja` looping forever (CVE-2026-6554), division or
//     modulo by an immediate zero (CVE-2026-6244). (Those ids come from the spec; libpcap's CHANGES
//     at f26ae497 does not list them, so they are cited as the spec gives them.)
//   * Linux extensions (loads at k >= SKF_LL_OFF) are refused: the kernel would read ancillary or
//     header-relative data while libpcap's userland fallback returns 0, so one program would
//     filter two ways depending on where it ran. libpcap only emits them for live Linux handles,
//     never for pcap_open_dead()/remote handles, so RPCAP clients do not send them.
//
// Consequence worth knowing: "ip6 protochain N" compiles to a backward `ja`; libpcap's rpcapd
// accepts it and filters it in userland, probe refuses it (the spec asks for forward-only jumps).
import { ProtocolError } from "../protocol-error.ts";
import {
  BPF_MEMWORDS,
  BpfClass,
  BpfOpcode,
  SKF_AD_OFF,
  SKF_LL_OFF,
  bpfOpcodeName,
  isConditionalJump,
  isKnownBpfOpcode,
  type BpfProgram,
} from "./opcodes.ts";

/**
 * Default cap on program length: RPCAP_BPF_MAXINSNS in libpcap's rpcapd/daemon.c (8192, so a
 * program is at most 64 KiB; "twice the in-kernel limit for Linux"). It holds for programs run
 * in userland (this package's matcher). The Linux kernel itself takes at most BPF_MAXINSNS =
 * 4096: given more, libpcap warns "Kernel filter failed" on stderr and filters in userland, so a
 * live capture refuses 4097..8192 before pcap_setfilter() (src/capture/libpcap/pcap-handle.ts).
 */
export const DEFAULT_BPF_MAX_INSTRUCTIONS = 8192;

/** Linux's in-kernel limit (BPF_MAXINSNS, include/uapi/linux/bpf_common.h): the most a live capture's filter may have. */
export const LINUX_BPF_MAXINSNS = 4096;

/**
 * Why a live capture's kernel filter of `instructions` (plus `added` instructions the capture
 * engine puts in front) cannot be attached, or undefined when it fits. The kernel refuses more
 * than BPF_MAXINSNS; libpcap then filters in userland after a "Kernel filter failed" warning,
 * so both engines refuse such a program up front with this message (`what` names it).
 */
export function kernelFilterLengthProblem(instructions: number, what: string, added = 0): string | undefined {
  if (instructions > LINUX_BPF_MAXINSNS) {
    return `${what} has ${instructions} instructions; the Linux kernel filters at most ${LINUX_BPF_MAXINSNS} (BPF_MAXINSNS)`;
  }
  if (instructions + added > LINUX_BPF_MAXINSNS) {
    return `${what} has ${instructions} instructions; with the ${added} the ring engine adds to keep packet direction here, ` +
      `it passes the Linux kernel's ${LINUX_BPF_MAXINSNS} (BPF_MAXINSNS): shorten it or use --capture-engine libpcap`;
  }
  return undefined;
}

/** Stable codes of the faults the validator reports (tests and logs rely on them). */
export const BpfFault = {
  empty: "bpf-empty-program",
  tooManyInstructions: "bpf-too-many-instructions",
  invalidField: "bpf-invalid-field",
  invalidOpcode: "bpf-invalid-opcode",
  scratchIndex: "bpf-scratch-index-out-of-range",
  scratchReadBeforeWrite: "bpf-scratch-read-before-write",
  jumpOutOfRange: "bpf-jump-out-of-range",
  backwardJump: "bpf-backward-jump",
  noFinalReturn: "bpf-no-final-return",
  divisionByZero: "bpf-division-by-zero",
  shiftOutOfRange: "bpf-shift-out-of-range",
  linuxExtension: "bpf-linux-extension",
} as const;

export type BpfFaultCode = (typeof BpfFault)[keyof typeof BpfFault];

export interface BpfValidateOptions {
  /** Longest program accepted; {@link DEFAULT_BPF_MAX_INSTRUCTIONS} unless set. */
  maxInstructions?: number;
}

/**
 * Throws ProtocolError unless `program` is safe to install and to interpret. The error's
 * `offset` is the INDEX of the offending instruction (not a byte offset: on the RPCAP wire the
 * instruction starts at `firstInstructionByte + 8 * index`); for a too-long program it is the
 * cap, the index of the first instruction over it. Never reads past `maxInstructions` entries.
 */
export function validateBpfProgram(program: BpfProgram, options: BpfValidateOptions = {}): void {
  const maxInstructions = options.maxInstructions ?? DEFAULT_BPF_MAX_INSTRUCTIONS;
  if (!Number.isInteger(maxInstructions) || maxInstructions < 1) {
    throw new RangeError(`maxInstructions must be a positive integer, got ${maxInstructions}`);
  }
  const length = program.length;
  if (length === 0) throw new ProtocolError(BpfFault.empty, "BPF program has no instructions", 0);
  if (length > maxInstructions) {
    throw new ProtocolError(
      BpfFault.tooManyInstructions,
      `BPF program has ${length} instructions, more than the limit of ${maxInstructions}`,
      maxInstructions,
    );
  }

  for (let index = 0; index < length; index++) {
    const insn = program[index];
    if (insn === null || typeof insn !== "object") {
      throw new ProtocolError(BpfFault.invalidField, `instruction ${index} is missing`, index);
    }
    const { code, jt, jf, k } = insn;
    if (!isUint(code, 0xffff) || !isUint(jt, 0xff) || !isUint(jf, 0xff) || !isUint(k, 0xffffffff)) {
      throw new ProtocolError(
        BpfFault.invalidField,
        `instruction ${index}: fields out of range (code ${code}, jt ${jt}, jf ${jf}, k ${k})`,
        index,
      );
    }
    if (!isKnownBpfOpcode(code)) {
      throw new ProtocolError(BpfFault.invalidOpcode, `instruction ${index}: invalid opcode 0x${code.toString(16)}`, index);
    }
    checkInstruction(program, index, code, jt, jf, k);
  }

  const last = program[length - 1]!.code;
  if ((last & 0x07) !== BpfClass.RET) {
    throw new ProtocolError(
      BpfFault.noFinalReturn,
      `last instruction (${length - 1}) is ${bpfOpcodeName(last)}, not RET: the program can run off its end`,
      length - 1,
    );
  }
  checkScratchStoredBeforeLoad(program);
}

/** Per-opcode rules; `code` is already known to be in the allowed table. */
function checkInstruction(program: BpfProgram, index: number, code: number, jt: number, jf: number, k: number): void {
  const length = program.length;
  switch (code) {
    case BpfOpcode.LD_MEM:
    case BpfOpcode.LDX_MEM:
    case BpfOpcode.ST:
    case BpfOpcode.STX:
      if (k >= BPF_MEMWORDS) {
        throw new ProtocolError(
          BpfFault.scratchIndex,
          `instruction ${index}: ${bpfOpcodeName(code)} scratch index ${k} is not below ${BPF_MEMWORDS}`,
          index,
        );
      }
      return;
    case BpfOpcode.ALU_DIV_K:
    case BpfOpcode.ALU_MOD_K:
      if (k === 0) {
        throw new ProtocolError(BpfFault.divisionByZero, `instruction ${index}: ${bpfOpcodeName(code)} by immediate 0`, index);
      }
      return;
    case BpfOpcode.ALU_LSH_K:
    case BpfOpcode.ALU_RSH_K:
      // C leaves a shift by >= the width undefined (x86 masks it, libpcap has no check for the
      // K form); Linux refuses it, so do we, and the interpreter never meets one.
      if (k >= 32) {
        throw new ProtocolError(BpfFault.shiftOutOfRange, `instruction ${index}: ${bpfOpcodeName(code)} by ${k} (>= 32)`, index);
      }
      return;
    case BpfOpcode.LD_W_ABS:
    case BpfOpcode.LD_H_ABS:
    case BpfOpcode.LD_B_ABS:
    case BpfOpcode.LD_W_IND:
    case BpfOpcode.LD_H_IND:
    case BpfOpcode.LD_B_IND:
    case BpfOpcode.LDX_B_MSH:
      if (k >= SKF_LL_OFF) {
        const what = k >= SKF_AD_OFF ? "ancillary-data (SKF_AD_*)" : "header-relative (SKF_NET_OFF/SKF_LL_OFF)";
        throw new ProtocolError(
          BpfFault.linuxExtension,
          `instruction ${index}: ${bpfOpcodeName(code)} at 0x${k.toString(16)} is a Linux ${what} load, not supported`,
          index,
        );
      }
      return;
    case BpfOpcode.JMP_JA: {
      if (k >= 0x80000000) {
        // libpcap's interpreter sign-extends k ("ip6 protochain"); as a u32 it would be a jump far
        // past the end. Either way it is not a forward jump within the program.
        throw new ProtocolError(
          BpfFault.backwardJump,
          `instruction ${index}: ja by ${k | 0} jumps backwards (classic BPF must only jump forward)`,
          index,
        );
      }
      if (index + 1 + k >= length) {
        throw new ProtocolError(
          BpfFault.jumpOutOfRange,
          `instruction ${index}: ja lands at ${index + 1 + k}, past the last instruction ${length - 1}`,
          index,
        );
      }
      return;
    }
    default:
      if (isConditionalJump(code) && (index + 1 + jt >= length || index + 1 + jf >= length)) {
        throw new ProtocolError(
          BpfFault.jumpOutOfRange,
          `instruction ${index}: ${bpfOpcodeName(code)} targets ${index + 1 + jt}/${index + 1 + jf}, past the last instruction ${length - 1}`,
          index,
        );
      }
  }
}

/**
 * Linux's check_load_and_stores(), reproduced so that every program we accept also loads in the
 * kernel: a LD/LDX MEM must read a word that every path reaching it has stored. Forward-only
 * jumps make one pass enough. Kept exactly as the kernel does it, including that the state
 * after a RET flows into the next instruction (conservative, can only reject more).
 * Requires the per-instruction checks to have passed (indices and targets in range).
 */
function checkScratchStoredBeforeLoad(program: BpfProgram): void {
  const ALL_WORDS = 0xffff;
  const length = program.length;
  const masks = new Uint16Array(length).fill(ALL_WORDS);
  let valid = 0;
  for (let index = 0; index < length; index++) {
    const { code, jt, jf, k } = program[index]!;
    valid &= masks[index]!;
    if (code === BpfOpcode.ST || code === BpfOpcode.STX) {
      valid |= 1 << k;
    } else if (code === BpfOpcode.LD_MEM || code === BpfOpcode.LDX_MEM) {
      if ((valid & (1 << k)) === 0) {
        throw new ProtocolError(
          BpfFault.scratchReadBeforeWrite,
          `instruction ${index}: ${bpfOpcodeName(code)} reads M[${k}] before every path has stored it`,
          index,
        );
      }
    } else if (code === BpfOpcode.JMP_JA) {
      const target = index + 1 + k;
      masks[target] = masks[target]! & valid;
      valid = ALL_WORDS;
    } else if (isConditionalJump(code)) {
      const whenTrue = index + 1 + jt;
      const whenFalse = index + 1 + jf;
      masks[whenTrue] = masks[whenTrue]! & valid;
      masks[whenFalse] = masks[whenFalse]! & valid;
      valid = ALL_WORDS;
    }
  }
}

function isUint(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}
