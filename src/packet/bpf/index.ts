// Classic BPF for probe: validate programs that peers send (RPCAP STARTCAP/UPDATEFILTER) before
// they reach libpcap, and run them in userland with libpcap's bpf_filter() semantics.
export {
  BPF_MEMWORDS,
  BpfAluOp,
  BpfClass,
  BpfJmpOp,
  BpfMiscOp,
  BpfMode,
  BpfOpcode,
  BpfRval,
  BpfSize,
  BpfSrc,
  SKF_AD_OFF,
  SKF_AD_PKTTYPE,
  SKF_LL_OFF,
  SKF_NET_OFF,
  bpfOpcodeName,
  isKnownBpfOpcode,
  type BpfInstruction,
  type BpfOpcodeName,
  type BpfProgram,
} from "./opcodes.ts";
export {
  BpfFault,
  DEFAULT_BPF_MAX_INSTRUCTIONS,
  LINUX_BPF_MAXINSNS,
  kernelFilterLengthProblem,
  validateBpfProgram,
  type BpfFaultCode,
  type BpfValidateOptions,
} from "./validate.ts";
export {
  compileBpfMatcher,
  compileBpfRecordMatcher,
  generateMatcherSource,
  interpretBpfProgram,
  type BpfMatcher,
  type BpfRecordMatcher,
} from "./interpret.ts";
export {
  BPF_WIRE_INSTRUCTION_BYTES,
  bpfWireSize,
  decodeBpfInstructions,
  encodeBpfInstructions,
  encodeHostBpfInstructions,
  writeBpfInstructions,
  type BpfDecodeOptions,
} from "./codec.ts";
export {
  BpfTextFault,
  formatBpfCStyle,
  formatBpfDecimal,
  parseBpfCStyle,
  parseBpfDecimal,
  type BpfTextOptions,
} from "./text.ts";
