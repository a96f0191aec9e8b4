// BPF programs as text: what `tcpdump -ddd` prints (a count line, then "code jt jf k" in decimal
// per line) and what `tcpdump -dd` prints (C initialisers "{ 0x28, 0, 0, 0x0000000c },").
// Formats follow libpcap's bpf_dump() (bpf_dump.c): "%u\n" then "%u %u %u %u\n" for -ddd,
// "{ 0x%x, %d, %d, 0x%08x },\n" for -dd. Parse errors are ProtocolError with the character
// offset of the start of the offending line.
import { ProtocolError } from "../protocol-error.ts";
import type { BpfInstruction, BpfProgram } from "./opcodes.ts";
import { BpfFault, DEFAULT_BPF_MAX_INSTRUCTIONS } from "./validate.ts";

/** Codes of text parse errors (besides the validator's too-many-instructions / invalid-field). */
export const BpfTextFault = {
  syntax: "bpf-text-syntax",
  countMismatch: "bpf-text-count-mismatch",
} as const;

export interface BpfTextOptions {
  /** Longest program accepted; {@link DEFAULT_BPF_MAX_INSTRUCTIONS} unless set. */
  maxInstructions?: number;
}

interface Line {
  text: string;
  offset: number;
}

/** Non-blank lines with the character offset where each starts. */
function lines(text: string): Line[] {
  const out: Line[] = [];
  let offset = 0;
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() !== "") out.push({ text: line, offset });
    offset += raw.length + 1;
  }
  return out;
}

const DECIMAL_LINE = /^\s*(\d{1,10})\s+(\d{1,10})\s+(\d{1,10})\s+(\d{1,10})\s*$/;
const COUNT_LINE = /^\s*(\d{1,10})\s*$/;
const NUMBER = String.raw`(0[xX][0-9a-fA-F]{1,8}|\d{1,10})`;
const C_LINE = new RegExp(String.raw`^\s*\{\s*${NUMBER}\s*,\s*${NUMBER}\s*,\s*${NUMBER}\s*,\s*${NUMBER}\s*\}\s*,?\s*$`);

/**
 * Parses `tcpdump -ddd` output. The declared count is checked against the cap before any
 * instruction is parsed, and must equal the number of instruction lines. Does not validate.
 */
export function parseBpfDecimal(text: string, options: BpfTextOptions = {}): BpfInstruction[] {
  const maxInstructions = options.maxInstructions ?? DEFAULT_BPF_MAX_INSTRUCTIONS;
  const all = lines(text);
  const head = all[0];
  const countMatch = head === undefined ? null : COUNT_LINE.exec(head.text);
  if (head === undefined || countMatch === null) {
    throw new ProtocolError(BpfTextFault.syntax, "expected the instruction count on the first line", head?.offset ?? 0);
  }
  const count = Number(countMatch[1]);
  if (count > maxInstructions) {
    throw new ProtocolError(
      BpfFault.tooManyInstructions,
      `program declares ${count} instructions, the limit is ${maxInstructions}`,
      head.offset,
    );
  }
  if (all.length - 1 !== count) {
    const at = all[Math.min(all.length - 1, count + 1)]!;
    throw new ProtocolError(
      BpfTextFault.countMismatch,
      `program declares ${count} instructions but has ${all.length - 1}`,
      at.offset,
    );
  }
  return all.slice(1).map((line) => {
    const match = DECIMAL_LINE.exec(line.text);
    if (match === null) throw new ProtocolError(BpfTextFault.syntax, `expected "code jt jf k": ${line.text}`, line.offset);
    return instruction(match, line.offset);
  });
}

/** Parses `tcpdump -dd` output (one C initialiser per line; hex or decimal numbers). Does not validate. */
export function parseBpfCStyle(text: string, options: BpfTextOptions = {}): BpfInstruction[] {
  const maxInstructions = options.maxInstructions ?? DEFAULT_BPF_MAX_INSTRUCTIONS;
  const program: BpfInstruction[] = [];
  for (const line of lines(text)) {
    const match = C_LINE.exec(line.text);
    if (match === null) throw new ProtocolError(BpfTextFault.syntax, `expected "{ code, jt, jf, k },": ${line.text}`, line.offset);
    if (program.length === maxInstructions) {
      throw new ProtocolError(BpfFault.tooManyInstructions, `program has more than ${maxInstructions} instructions`, line.offset);
    }
    program.push(instruction(match, line.offset));
  }
  return program;
}

function instruction(match: RegExpExecArray, offset: number): BpfInstruction {
  const [code, jt, jf, k] = [match[1]!, match[2]!, match[3]!, match[4]!].map(Number) as [number, number, number, number];
  if (code > 0xffff || jt > 0xff || jf > 0xff || k > 0xffffffff) {
    throw new ProtocolError(BpfFault.invalidField, `field out of range in "${match[0].trim()}"`, offset);
  }
  return { code, jt, jf, k };
}

/** The program exactly as `tcpdump -ddd` prints it (count line, decimal fields, trailing newline). */
export function formatBpfDecimal(program: BpfProgram): string {
  let out = `${program.length}\n`;
  for (const { code, jt, jf, k } of program) out += `${code} ${jt} ${jf} ${k >>> 0}\n`;
  return out;
}

/** The program exactly as `tcpdump -dd` prints it. */
export function formatBpfCStyle(program: BpfProgram): string {
  let out = "";
  for (const { code, jt, jf, k } of program) {
    out += `{ 0x${code.toString(16)}, ${jt}, ${jf}, 0x${(k >>> 0).toString(16).padStart(8, "0")} },\n`;
  }
  return out;
}
