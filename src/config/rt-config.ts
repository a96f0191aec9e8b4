// Defaults and bounds of the RT output (src/pipeline/spec.ts rtOutputSchema; `probe rt` flags).

/** Reliable fifo cap by default: 256 MiB, minutes of a busy link, small enough for any probe host. */
export const DEFAULT_RT_FIFO_BYTES = 256 * 1024 * 1024;
/** Unreliable per-client bound: ~2 s of 100 Mbit/s. */
export const DEFAULT_RT_QUEUE_BYTES = 32 * 1024 * 1024;
/** Smallest fifo: a few of the largest records (24 + 16 + 262144 bytes) must fit. */
export const MIN_RT_FIFO_BYTES = 1024 * 1024;
