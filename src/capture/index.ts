// Packet capture: the CaptureSource interface and its implementations (live capture through Linux's
// packet ring or libpcap, in a worker; file replay; libpcap file reading; synthetic), and filters.
export * from "./capture-source.ts";
export * from "../packet/packet-batch.ts";
export { CaptureError, PERMISSION_ADVICE, type CaptureErrorCode } from "./errors.ts";
export { LiveCaptureSource, DEFAULT_CAPTURE_ENGINE, DEFAULT_SNAPLEN, DEFAULT_BATCH_BYTES, DEFAULT_FLUSH_INTERVAL_MS, BUFFERED_FLUSH_INTERVAL_MS, type LiveCaptureOptions } from "./live-capture-source.ts";
export { FileReplaySource, type FileReplayOptions } from "./file-replay-source.ts";
export { LibpcapFileSource, type LibpcapFileOptions } from "./libpcap-file-source.ts";
export { SyntheticSource, syntheticFrame, type SyntheticOptions } from "./synthetic-source.ts";
export { createBatchFilter, type BatchFilter } from "./packet-filter.ts";
export { combineFilters } from "./combine-filters.ts";
export { chooseDefaultInterface } from "./default-interface.ts";
export type { CaptureEngine } from "./libpcap/pcap-handle.ts";
