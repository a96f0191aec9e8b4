// Capture files: pure codecs for classic pcap and pcapng (both byte orders), writers that turn
// PacketBatches into file bytes, and a streaming reader that turns files of any size back into batches.
export * from "./wire.ts";
export {
  classifyPcapMagic,
  decodePcapGlobalHeader,
  decodePcapRecordHeader,
  encodePcapGlobalHeader,
  encodePcapRecordHeader,
  pcapRecordsFromBatch,
  type PcapGlobalHeader,
  type PcapGlobalHeaderOptions,
  type PcapRecordHeader,
} from "./pcap-codec.ts";
export {
  InterfaceClock,
  batchLinktypeOfInterface,
  checkPcapngBlockLength,
  checkPcapngBlockTrailer,
  decodePcapngBlock,
  decodePcapngEnhancedPacket,
  decodePcapngInterface,
  decodePcapngSectionHeader,
  encodePcapngEnhancedPacket,
  encodePcapngInterface,
  encodePcapngPacketsFromBatch,
  encodePcapngSectionHeader,
  encodePcapngSimplePacket,
  forEachPcapngOption,
  pcapngBlockLength,
  pcapngSectionByteOrder,
  type BatchPacketOptions,
  type PcapngBlock,
  type PcapngInterface,
  type PcapngInterfaceOptions,
  type PcapngOtherBlock,
  type PcapngPacket,
  type PcapngPacketOptions,
  type PcapngSectionHeader,
  type PcapngSectionHeaderOptions,
  type PcapngSimplePacket,
} from "./pcapng-codec.ts";
export {
  CaptureFileReader,
  DEFAULT_MAX_BATCH_BYTES,
  type CaptureFileFormat,
  type CaptureFileReaderOptions,
  type CaptureInterfaceInfo,
} from "./file-reader.ts";
export { readCaptureBatches, readCaptureFile, streamCaptureFile, type CaptureFileContents } from "./read-capture-file.ts";
export { CaptureFileEncoder, type CaptureFileEncoderOptions, type CaptureFileInterface, type RecordComments } from "./capture-file-encoder.ts";
