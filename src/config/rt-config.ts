// Defaults and bounds of the RT output (src/pipeline/spec.ts rtOutputSchema; `probe rt` flags).

/** Reliable fifo cap by default: 256 MiB, minutes of a busy link, small enough for any probe host. */
export const DEFAULT_RT_FIFO_BYTES = 256 * 1024 * 1024;
/** Unreliable per-client bound: ~2 s of 100 Mbit/s. */
export const DEFAULT_RT_QUEUE_BYTES = 32 * 1024 * 1024;
/**
 * Reliable: a client with records sent and none acknowledged for this long is closed, which frees
 * the one reliable slot. libtrace acknowledges each message as it reads it and probe's rt:// input
 * after each write, so 30 s without an ACK while data is outstanding is a client that stopped
 * reading or acknowledging (a quiet stream with nothing outstanding never times out). Long enough
 * for a receiver whose disk stalls for a few seconds.
 */
export const DEFAULT_RT_ACK_TIMEOUT_MS = 30_000;
/** Smallest fifo: a few of the largest records (24 + 16 + 262144 bytes) must fit. */
export const MIN_RT_FIFO_BYTES = 1024 * 1024;
