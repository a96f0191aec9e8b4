// ActiveDialer: one active-mode collector (rpcapd -a) dialled until it answers, redialled
// when its connection ends. Exactly one attempt or one timer exists at any time: the old
// code let both the connect-error handler and the close handler schedule a retry, so
// retries doubled after every outage (126 warnings in 3.5 min, 4 sessions at once).
// Failures back off exponentially with jitter up to a cap; an outage logs one line when it
// starts and one when the collector answers again, the attempts in between only at debug.
import { backoffDelayMs } from "../net/reconnect-backoff.ts";
import type { Logger } from "../logging/index.ts";

/**
 * The delay grows to at most this many times the base retry (--active retry, 30 s by
 * default like libpcap's RPCAP_ACTIVE_WAIT: at most 4 min), so a collector that comes back
 * is reached within minutes while a long outage costs a few dials an hour.
 */
export const ACTIVE_RETRY_MAX_FACTOR = 8;
/**
 * Each delay is spread ±20 %, so probes restarted together (a site power cut) do not dial a
 * recovering collector in lockstep.
 */
export const ACTIVE_RETRY_JITTER_RATIO = 0.2;

/** The delay before attempt `failures + 1`, for `failures` >= 1 consecutive failures. */
export function activeRetryDelayMs(baseMs: number, failures: number, random: () => number = Math.random): number {
  return backoffDelayMs({ initialDelayMs: baseMs, maxDelayMs: baseMs * ACTIVE_RETRY_MAX_FACTOR, jitterRatio: ACTIVE_RETRY_JITTER_RATIO }, failures, random);
}

/** What the daemon reports back about one connection attempt; each is acted on once. */
export interface DialEvents {
  /** TCP connected: the session starts. */
  opened(): void;
  /** The attempt failed before connecting. */
  failed(error: Error): void;
  /** A connection that had opened has ended. */
  closed(): void;
}

export interface ActiveDialerOptions {
  /** Base delay between attempts, in ms (doubles per failure up to ACTIVE_RETRY_MAX_FACTOR times). */
  retryMs: number;
  log: Logger;
  /** Starts one attempt; the daemon calls the events as they happen (duplicates are ignored). */
  dial(events: DialEvents): void;
  random?: () => number;
}

type DialState =
  | { kind: "waiting"; timer: ReturnType<typeof setTimeout> | null }
  | { kind: "dialing"; attempt: number }
  | { kind: "connected"; attempt: number }
  | { kind: "stopped" };

export class ActiveDialer {
  private state: DialState = { kind: "waiting", timer: null };
  private failures = 0;
  private outageStartedAt = 0;
  private attempts = 0;

  constructor(readonly key: string, private readonly options: ActiveDialerOptions) {}

  start(): void {
    if (this.state.kind === "waiting" && this.state.timer === null) this.dial();
  }

  /** No more attempts; a live connection is left to its session. Idempotent. */
  stop(): void {
    if (this.state.kind === "waiting" && this.state.timer) clearTimeout(this.state.timer);
    this.state = { kind: "stopped" };
  }

  private dial(): void {
    const attempt = ++this.attempts;
    this.state = { kind: "dialing", attempt };
    const current = () => this.state.kind !== "stopped" && "attempt" in this.state && this.state.attempt === attempt;
    this.options.dial({
      opened: () => {
        if (!current() || this.state.kind !== "dialing") return;
        this.state = { kind: "connected", attempt };
        if (this.failures > 0) {
          const seconds = ((Date.now() - this.outageStartedAt) / 1000).toFixed(1);
          this.options.log.info(`collector ${this.key} reachable again after ${this.failures} failed attempt(s) over ${seconds} s`);
        } else {
          this.options.log.info(`connected to collector ${this.key}`);
        }
        this.failures = 0;
      },
      failed: (error) => {
        if (!current() || this.state.kind !== "dialing") return;
        this.failures++;
        const reason = (error as { code?: string }).code ?? error.message;
        if (this.failures === 1) {
          this.outageStartedAt = Date.now();
          this.options.log.warn(
            `cannot reach collector ${this.key}: ${reason}; retrying every ${this.options.retryMs} ms, backing off to ${this.options.retryMs * ACTIVE_RETRY_MAX_FACTOR} ms (one line when it answers again)`,
          );
        } else {
          this.options.log.debug(`collector ${this.key}: attempt ${this.failures + 1} failed: ${reason}`);
        }
        this.wait(activeRetryDelayMs(this.options.retryMs, this.failures, this.options.random));
      },
      closed: () => {
        if (!current() || this.state.kind !== "connected") return;
        this.options.log.info(`connection to collector ${this.key} ended; redialling in ${this.options.retryMs} ms`);
        this.wait(activeRetryDelayMs(this.options.retryMs, 1, this.options.random));
      },
    });
  }

  private wait(delayMs: number): void {
    const timer = setTimeout(() => {
      if (this.state.kind === "waiting" && this.state.timer === timer) this.dial();
    }, delayMs);
    this.state = { kind: "waiting", timer };
  }
}
