// Reconnect backoff: the wait before the next dial after some consecutive failures, one schedule
// for every client that dials again (the PCAP-over-IP and RT sources, rpcapd's active dialer).
// The wait doubles per failure so a long outage costs a few dials an hour instead of one a
// second; it stops growing at a cap so a peer that comes back is found within one cap; optional
// jitter spreads probes restarted together (a site power cut) so they do not dial a recovering
// peer in lockstep. Pure: callers own their timers and their logging.

/** How a caller's waits grow. */
export interface BackoffSchedule {
  /** The wait after the first failure. */
  readonly initialDelayMs: number;
  /** The longest wait; later failures wait this long. */
  readonly maxDelayMs: number;
  /** Each wait is spread by ±this fraction (0.2: 80 % to 120 %); none when absent or 0. */
  readonly jitterRatio?: number;
}

/** First wait of the remote sources (PCAP-over-IP, RT): a restarted peer is back within a second. */
export const RECONNECT_INITIAL_DELAY_MS = 500;
/** Longest wait of the remote sources: a peer back after an outage is found within 30 s. */
export const RECONNECT_MAX_DELAY_MS = 30_000;
/** The remote sources' schedule: 0.5, 1, 2, 4, 8, 16, 30, 30 ... s, no jitter (one client per peer). */
export const REMOTE_SOURCE_BACKOFF: BackoffSchedule = Object.freeze({ initialDelayMs: RECONNECT_INITIAL_DELAY_MS, maxDelayMs: RECONNECT_MAX_DELAY_MS });

/** Doublings counted at most: 2^30 times any initial wait is past every cap, and 2^n stays exact. */
const MAX_DOUBLINGS = 30;

/**
 * The wait before attempt `failures + 1`, after `failures` >= 1 consecutive failures:
 * min(initial × 2^(failures−1), max), spread by the jitter when there is one, whole ms.
 * `random` returns [0, 1] (Math.random by default; tests pin it).
 */
export function backoffDelayMs(schedule: BackoffSchedule, failures: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(failures - 1, 0), MAX_DOUBLINGS);
  const delayMs = Math.min(schedule.initialDelayMs * 2 ** exponent, schedule.maxDelayMs);
  const jitter = schedule.jitterRatio ?? 0;
  if (jitter === 0) return delayMs;
  return Math.round(delayMs * (1 - jitter + 2 * jitter * random()));
}
