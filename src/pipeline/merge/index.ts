// Merging: several capture sources (e.g. PCAP-over-IP streams from different hosts) combined
// into one timestamp-ordered stream within a bounded reordering window, as one CaptureSource.
export {
  DEFAULT_MERGE_MAX_HELD_BYTES,
  DEFAULT_MERGE_SOURCE_HIGH_WATER_BYTES,
  DEFAULT_MERGE_WINDOW_MS,
  MERGE_OUTPUT_BATCH_BYTES,
  MergedSource,
  type MergedSourceCounters,
  type MergedSourceOptions,
  type MergedSourceState,
  type MergedSourceStatus,
} from "./stream-merger.ts";
export {
  MAX_MERGE_SOURCES,
  MergeWindow,
  isMergedBatch,
  type MergeWindowCounters,
  type MergeWindowOptions,
  type MergedBatch,
} from "./merge-window.ts";
export { MergeError, type MergeErrorCode } from "./merge-error.ts";
