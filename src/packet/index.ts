// The packet model every other folder imports: PacketBatch (records laid out as little-endian
// classic pcap records), timestamps, the byte reader/writer and ProtocolError, and pure BPF.
export * from "./packet-batch.ts";
export * from "./timestamps.ts";
export { ByteReader } from "./byte-reader.ts";
export { ByteWriter } from "./byte-writer.ts";
export { ProtocolError } from "./protocol-error.ts";
export { ProbeError, ExitStatus, exitStatusOf, asUserFacing, type ProbeErrorCategory } from "./probe-error.ts";
