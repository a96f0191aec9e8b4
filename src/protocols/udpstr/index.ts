// udpstr: ExtraHop's packed UDP data channel for RPCAP (no sockets here): the wire vocabulary,
// a packer byte-identical to ExtraHop's rpcapd, the reassembler ExtraHop never shipped, and its per-sender table.
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
export {
  addCounters,
  UDPSTR_DEFAULT_MAX_SENDERS,
  UDPSTR_DEFAULT_MAX_SENDERS_PER_ADDRESS,
  UDPSTR_DEFAULT_SENDER_IDLE_MS,
  UDPSTR_SENDER_BATCH_INITIAL_BYTES,
  UDPSTR_SENDER_REPLACE_AFTER_QUIET_MS,
  UDPSTR_SETTLE_AFTER_QUIET_MS,
  UdpstrSenderTable,
  type UdpstrArrival,
  type UdpstrEviction,
  type UdpstrSender,
  type UdpstrSenderTableCounters,
  type UdpstrSenderTableOptions,
} from "./sender-table.ts";
