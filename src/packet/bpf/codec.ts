// BPF instructions in the RPCAP wire layout (struct rpcap_filterbpf_insn, rpcap-protocol.h):
// 8 bytes each, big-endian, back to back after the filter header that the RPCAP codec owns.
//
//   offset 0  code:u16   offset 2  jt:u8   offset 3  jf:u8   offset 4  k:i32 (kept here as u32)
//
// Pure functions over bytes; decoders throw ProtocolError with the byte offset.
import { ByteReader } from "../byte-reader.ts";
import { ByteWriter } from "../byte-writer.ts";
import { ProtocolError } from "../protocol-error.ts";
import type { BpfInstruction, BpfProgram } from "./opcodes.ts";
import { BpfFault, DEFAULT_BPF_MAX_INSTRUCTIONS } from "./validate.ts";

/** Size of one instruction on the RPCAP wire (and of struct bpf_insn). */
export const BPF_WIRE_INSTRUCTION_BYTES = 8;

const BIG_ENDIAN = false;
const LITTLE_ENDIAN = true;

export interface BpfDecodeOptions {
  /** Cap checked BEFORE anything is allocated; {@link DEFAULT_BPF_MAX_INSTRUCTIONS} unless set. */
  maxInstructions?: number;
}

/**
 * Decodes `count` instructions starting at byte `offset` of `bytes`. Checks `count` against the
 * cap ("bpf-too-many-instructions") and against the bytes that remain ("truncated") before
 * allocating. Decoding does not validate; call validateBpfProgram() on the result.
 */
export function decodeBpfInstructions(
  bytes: Uint8Array,
  offset: number,
  count: number,
  options: BpfDecodeOptions = {},
): BpfInstruction[] {
  const maxInstructions = options.maxInstructions ?? DEFAULT_BPF_MAX_INSTRUCTIONS;
  if (!Number.isInteger(count) || count < 0 || count > maxInstructions) {
    throw new ProtocolError(
      BpfFault.tooManyInstructions,
      `filter declares ${count} instructions, the limit is ${maxInstructions}`,
      offset,
    );
  }
  const reader = new ByteReader(bytes, offset);
  reader.need(count * BPF_WIRE_INSTRUCTION_BYTES, `${count} BPF instructions`);
  const program: BpfInstruction[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const code = reader.u16(BIG_ENDIAN, "bpf code");
    const jt = reader.u8("bpf jt");
    const jf = reader.u8("bpf jf");
    const k = reader.u32(BIG_ENDIAN, "bpf k"); // i32 on the wire; the same 32 bits as a u32
    program[i] = { code, jt, jf, k };
  }
  return program;
}

/** Bytes {@link writeBpfInstructions} writes for `program`. */
export function bpfWireSize(program: BpfProgram): number {
  return program.length * BPF_WIRE_INSTRUCTION_BYTES;
}

/**
 * Writes `program` into a writer the caller sized (e.g. the RPCAP codec's whole message).
 * Throws RangeError on a field that does not fit (ByteWriter never narrows silently); `k` may be
 * given as a u32 or as a negative i32 (then written as its two's complement).
 */
export function writeBpfInstructions(writer: ByteWriter, program: BpfProgram): void {
  for (const insn of program) {
    writer.u16(insn.code, BIG_ENDIAN).u8(insn.jt).u8(insn.jf);
    if (insn.k < 0) writer.i32(insn.k, BIG_ENDIAN);
    else writer.u32(insn.k, BIG_ENDIAN);
  }
}

/** The wire bytes of `program` alone (8 bytes per instruction, big-endian). */
export function encodeBpfInstructions(program: BpfProgram): Uint8Array {
  const writer = new ByteWriter(bpfWireSize(program));
  writeBpfInstructions(writer, program);
  return writer.finish();
}

/**
 * `program` as the in-memory array the kernel and libpcap read (struct sock_filter, struct
 * bpf_insn: the same 8-byte layout) in little-endian host order, for SO_ATTACH_FILTER and
 * pcap_setfilter. At least one slot: an empty array would have no address to point at.
 */
export function encodeHostBpfInstructions(program: BpfProgram): Uint8Array {
  const writer = new ByteWriter(Math.max(1, program.length) * BPF_WIRE_INSTRUCTION_BYTES);
  for (const insn of program) {
    writer.u16(insn.code, LITTLE_ENDIAN).u8(insn.jt).u8(insn.jf).u32(insn.k >>> 0, LITTLE_ENDIAN);
  }
  if (program.length === 0) writer.u32(0, LITTLE_ENDIAN).u32(0, LITTLE_ENDIAN);
  return writer.finish();
}
