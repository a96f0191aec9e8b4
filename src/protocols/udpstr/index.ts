// udpstr: ExtraHop's packed UDP data channel for RPCAP (no sockets here): the wire vocabulary,
// a packer byte-identical to ExtraHop's rpcapd, and the reassembler ExtraHop never shipped.
export * from "./wire.ts";
export {
  checkUdpstrPkthdr,
  decodeUdpstrDatagramHeader,
  decodeUdpstrHeader,
  decodeUdpstrPkthdr,
  encodeUdpstrHeader,
  encodeUdpstrPkthdr,
  writeUdpstrHeader,
  writeUdpstrPkthdr,
  type UdpstrHeader,
  type UdpstrPkthdr,
} from "./codec.ts";
export { UdpstrPacker, type UdpstrPackerOptions } from "./packer.ts";
export {
  UdpstrReassembler,
  type UdpstrIncompleteRecord,
  type UdpstrReassemblerCounters,
  type UdpstrReassemblerOptions,
  type UdpstrRecords,
} from "./reassembler.ts";
