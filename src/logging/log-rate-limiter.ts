// Repeated log lines are rate limited: under fuzzing the daemon once wrote 21 MB of logs in
// 10 minutes, one warning per malformed message. Lines are grouped by a key (the message
// with numbers and quoted peer text blanked, so "session 12: bad OPEN" and "session 13: bad
// OPEN" are one kind); each kind may print `linesPerInterval` lines per interval, then its
// lines are counted and one "suppressed K similar lines" summary follows when the interval ends.

export interface LogRateLimit {
  /** Lines of one kind printed per interval before the rest are counted instead. */
  linesPerInterval: number;
  /** Lines of all kinds together per interval (a flood of many kinds); the rest are counted. */
  totalLinesPerInterval: number;
  intervalMs: number;
}

/**
 * 20 lines of one kind per 10 s: enough to see every step of a few sessions going wrong, at
 * most ~2 lines/s of one kind when a peer floods. 500 lines of all kinds per 10 s: ~50
 * lines/s, a few MB in 10 minutes at worst (the fuzzing run that wrote 21 MB printed ~300/s).
 */
export const DEFAULT_LOG_RATE_LIMIT: LogRateLimit = Object.freeze({ linesPerInterval: 20, totalLinesPerInterval: 500, intervalMs: 10_000 });

/**
 * Kinds tracked per interval. A peer that makes every line a new kind fills the table; then
 * new kinds share one overflow bucket, so the table (and the output) stays bounded.
 */
export const MAX_LOG_KINDS_PER_INTERVAL = 1024;

const OVERFLOW_KEY = "(other kinds)";
const OVER_TOTAL_KEY = "(over the total)";

/** The kind of a line: digits and quoted text blanked (peerText's quoting makes this exact). */
export function logKeyOf(level: string, message: string): string {
  return `${level} ${message.replace(/"(?:[^"\\]|\\.)*"(?:\.\.\.\(\+\d+ chars\))?/g, '""').replace(/\d+/g, "#")}`;
}

type Kind = { printed: number; suppressed: number; level: string; sample: string };

/** Decides per line whether it prints; reports suppressed counts through `summary`. */
export class LogRateLimiter {
  private kinds = new Map<string, Kind>();
  private printedInInterval = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly limit: LogRateLimit,
    private readonly summary: (level: string, message: string) => void,
  ) {}

  /** True when the line may be printed now. */
  admit(level: string, message: string): boolean {
    let key = logKeyOf(level, message);
    let kind = this.kinds.get(key);
    if (!kind && this.kinds.size >= MAX_LOG_KINDS_PER_INTERVAL) {
      key = OVERFLOW_KEY;
      kind = this.kinds.get(key);
    }
    if (!kind) {
      kind = { printed: 0, suppressed: 0, level, sample: message };
      this.kinds.set(key, kind);
      this.arm();
    }
    if (kind.printed < this.limit.linesPerInterval && this.printedInInterval < this.limit.totalLinesPerInterval) {
      kind.printed++;
      this.printedInInterval++;
      return true;
    }
    if (kind.printed < this.limit.linesPerInterval) {
      // Its own kind still had room: the total stopped it, and says so apart.
      let total = this.kinds.get(OVER_TOTAL_KEY);
      if (!total) this.kinds.set(OVER_TOTAL_KEY, (total = { printed: 0, suppressed: 0, level, sample: message }));
      total.suppressed++;
      return false;
    }
    kind.suppressed++;
    return false;
  }

  /** Ends the interval now: prints the summaries (also called when the logger closes). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const kinds = this.kinds;
    this.kinds = new Map();
    this.printedInInterval = 0;
    for (const [key, kind] of kinds) {
      if (kind.suppressed === 0) continue;
      const like = key === OVERFLOW_KEY ? "lines of other kinds" : key === OVER_TOTAL_KEY ? `lines over the limit of ${this.limit.totalLinesPerInterval} in all` : "similar lines";
      this.summary(kind.level, `suppressed ${kind.suppressed} ${like} in ${this.limit.intervalMs} ms, like: ${kind.sample}`);
    }
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), this.limit.intervalMs);
    // A pending summary must not keep a finished command alive.
    (this.timer as { unref?: () => void }).unref?.();
  }
}
