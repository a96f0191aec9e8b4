// Per-hook counters: what happened to every packet (passed, dropped, modified), why hooks
// failed, tags by name, time spent, and the rate limiter that keeps hook logging bounded.

/** Failure kinds, as counted and as reported per packet by the runner. */
export const FAILURE_KIND = {
  NONE: 0,
  /** The hook threw (including a caught "stack overflow"). */
  THREW: 1,
  /** The hook returned something that is not a verdict, or a Uint8Array longer than caplen. */
  BAD_VERDICT: 2,
  /** The batch's CPU budget ran out while this packet was being processed. */
  TIMEOUT: 3,
  /** The runtime hit its memory limit while this packet was being processed. */
  OUT_OF_MEMORY: 4,
  /** The driver failed or returned inconsistent data (a hook tampering with the VM's intrinsics, or a bug). */
  INTERNAL: 5,
  /** Not run: the batch stopped early (timeout, out of memory) or the hook is disabled; the policy applied. */
  SKIPPED: 6,
} as const;
export type FailureKind = (typeof FAILURE_KIND)[keyof typeof FAILURE_KIND];

const failureNames = ["none", "threw", "badVerdict", "timeout", "outOfMemory", "internal", "skipped"] as const;

/** Counter name of a failure kind, e.g. FAILURE_KIND.BAD_VERDICT -> "badVerdict". */
export function failureName(kind: FailureKind): (typeof failureNames)[number] {
  return failureNames[kind]!;
}

/** What happened to each input packet. passed + dropped + modified = packets. */
export const PACKET_OUTCOME = { PASSED: 0, DROPPED: 1, MODIFIED: 2 } as const;
export type PacketOutcome = (typeof PACKET_OUTCOME)[keyof typeof PACKET_OUTCOME];

export interface HookFailureCounts {
  threw: number;
  badVerdict: number;
  timeout: number;
  outOfMemory: number;
  internal: number;
}

/** A plain, JSON-friendly copy of one hook's counters. */
export interface HookCountersSnapshot {
  name: string;
  batches: number;
  packets: number;
  passed: number;
  dropped: number;
  modified: number;
  /** Packets tagged, by tag name (no prototype: a tag may be called "__proto__"); at most HOOK_TAG_NAMES_COUNTED names. */
  tagged: Record<string, number>;
  /** Tags whose name came after HOOK_TAG_NAMES_COUNTED other names and has no count of its own. */
  taggedOtherNames: number;
  failures: HookFailureCounts;
  /** Packets that got the failure policy without the hook running (batch stopped early, or hook disabled). */
  skipped: number;
  checksumsFixed: number;
  /** ctx.fixChecksums() requests that could not be honoured for a checksum (truncated, fragment, routing header). */
  checksumsSkipped: number;
  logLines: number;
  logLinesSuppressed: number;
  /** Times the QuickJS context was rebuilt after a timeout, out-of-memory or internal failure (ctx.state lost each time). */
  recreations: number;
  reloads: number;
  reloadFailures: number;
  /** Wall time spent in this hook's stage (copy in, VM, copy out, checksums), nanoseconds. */
  timeNs: number;
  consecutiveFailures: number;
  disabled: boolean;
}

export function emptyCounters(name: string): HookCountersSnapshot {
  return {
    name,
    batches: 0,
    packets: 0,
    passed: 0,
    dropped: 0,
    modified: 0,
    tagged: Object.create(null) as Record<string, number>,
    taggedOtherNames: 0,
    failures: { threw: 0, badVerdict: 0, timeout: 0, outOfMemory: 0, internal: 0 },
    skipped: 0,
    checksumsFixed: 0,
    checksumsSkipped: 0,
    logLines: 0,
    logLinesSuppressed: 0,
    recreations: 0,
    reloads: 0,
    reloadFailures: 0,
    timeNs: 0,
    consecutiveFailures: 0,
    disabled: false,
  };
}

/** Deep copy, so callers cannot change the runner's counters through a snapshot. */
export function copyCounters(counters: HookCountersSnapshot): HookCountersSnapshot {
  return { ...counters, tagged: Object.assign(Object.create(null) as Record<string, number>, counters.tagged), failures: { ...counters.failures } };
}

/**
 * Token bucket: `perSecond` events per second with a burst of the same size. `take()` says
 * whether one more event may go out now; refused events are counted for a later summary.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;
  suppressed = 0;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = perSecond;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.suppressed++;
    return false;
  }
}
