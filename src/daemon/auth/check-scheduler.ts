// Order and bounds for AUTH checks. Each peer address has one line: its requests are decided
// one after another, each after the pause its earlier failures earned, so a new connection
// from the same address waits like the old one would. At most `concurrentChecks` hash at once,
// and the queue for them holds one request per peer, so a real login waits behind at most one
// check per flooding address, never behind a flood's whole backlog. A request whose client has
// gone is dropped before it costs a hash. Peers that stand better go first (an address that
// logged in before, then unknown ones, then by fewest recent failures): among the requests
// waiting for a hashing thread, the best-standing peer's is hashed next, and when the overall
// bound is reached a newcomer takes the place of a request from a peer standing worse (or as
// well and owing a longer pause), so addresses that keep failing cannot hold every place, or the
// front of the queue, while a real user is turned away.

/** Bounds of {@link CheckScheduler} (see auth-settings.ts for the defaults and their reasons). */
export interface CheckLimits {
  maxPendingChecksPerPeer: number;
  maxPendingChecks: number;
  concurrentChecks: number;
}

/** How a scheduled check ended. */
export type CheckOutcome<T> =
  | { kind: "done"; value: T }
  /** Not run: a bound was reached. `peerAtFault` when it was the peer's own bound. */
  | { kind: "refused"; reason: string; peerAtFault: boolean }
  /** The caller's signal fired first (its client left). A check already hashing runs to its end. */
  | { kind: "cancelled" }
  | { kind: "failed"; error: Error };

interface Job {
  key: string;
  needsHashSlot: boolean;
  task: () => Promise<unknown>;
  state: "waiting" | "pausing" | "ready" | "running";
  pauseTimer: ReturnType<typeof setTimeout> | null;
  settled: boolean;
  resolve(outcome: CheckOutcome<unknown>): void;
  detach(): void;
}

/** Runs checks per peer in order, after each peer's pause, with bounded hashing concurrency. */
export class CheckScheduler {
  private readonly lines = new Map<string, Job[]>();
  private readonly ready: Job[] = [];
  private pending = 0;
  private hashing = 0;

  /**
   * @param remainingPauseMs how long the peer with this key must still wait before its next
   *   check is read (0 when nothing is owed); asked each time a request reaches the head of its line.
   * @param standing where the peer stands, lower first (FailurePauses.standing: -1 for an address
   *   that logged in and has not failed since, 0 unknown, else its recent failures): decides who is
   *   hashed first and who gives up a place when every place is taken.
   */
  constructor(
    private readonly limits: CheckLimits,
    private readonly remainingPauseMs: (key: string) => number,
    private readonly standing: (key: string) => number = () => 0,
  ) {}

  /** Requests waiting, pausing or being checked, over all peers. */
  get pendingChecks(): number {
    return this.pending;
  }

  /** Checks holding a hashing slot right now. */
  get runningChecks(): number {
    return this.hashing;
  }

  /** Requests of this peer key waiting, pausing or being checked. */
  pendingFor(key: string): number {
    return this.lines.get(key)?.length ?? 0;
  }

  /**
   * Runs `task` in this peer's line. `needsHashSlot` is false for decisions that cost no hashing
   * (null auth, refusals by length): they still wait the peer's pause, not for a hashing slot.
   * `task` should not reject; if it does the outcome is `failed`.
   */
  run<T>(key: string, task: () => Promise<T>, options: { needsHashSlot: boolean; signal?: AbortSignal }): Promise<CheckOutcome<T>> {
    const line = this.lines.get(key) ?? [];
    if (line.length >= this.limits.maxPendingChecksPerPeer) {
      return Promise.resolve({ kind: "refused", reason: `${line.length} AUTH requests from this address are already pending (limit ${this.limits.maxPendingChecksPerPeer})`, peerAtFault: true });
    }
    if (this.pending >= this.limits.maxPendingChecks) {
      const victim = this.displaceable(key);
      if (!victim) {
        return Promise.resolve({ kind: "refused", reason: `${this.pending} AUTH requests are already pending (limit ${this.limits.maxPendingChecks})`, peerAtFault: false });
      }
      this.drop(victim, {
        kind: "refused",
        reason: `${this.pending} AUTH requests pending (limit ${this.limits.maxPendingChecks}); this one, from a peer with more failures or a longer pause owed, gave its place to one standing better`,
        peerAtFault: false,
      });
    }
    const signal = options.signal;
    if (signal?.aborted) return Promise.resolve({ kind: "cancelled" });
    const { promise, resolve } = Promise.withResolvers<CheckOutcome<T>>();
    const onAbort = () => this.cancel(job);
    const job: Job = {
      key,
      needsHashSlot: options.needsHashSlot,
      task,
      state: "waiting",
      pauseTimer: null,
      settled: false,
      resolve: (outcome) => {
        if (job.settled) return;
        job.settled = true;
        job.detach();
        resolve(outcome as CheckOutcome<T>);
      },
      detach: () => signal?.removeEventListener("abort", onAbort),
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    line.push(job);
    this.lines.set(key, line);
    this.pending++;
    if (line.length === 1) this.advance(job);
    return promise;
  }

  /** The head of a line: wait out the peer's pause, then queue for hashing (or run at once). */
  private advance(job: Job): void {
    const pauseMs = this.remainingPauseMs(job.key);
    if (pauseMs > 0) {
      job.state = "pausing";
      job.pauseTimer = setTimeout(() => {
        job.pauseTimer = null;
        this.makeReady(job);
      }, pauseMs);
      return;
    }
    this.makeReady(job);
  }

  private makeReady(job: Job): void {
    if (!job.needsHashSlot) {
      this.execute(job);
      return;
    }
    job.state = "ready";
    this.ready.push(job);
    this.pump();
  }

  /** Starts ready checks while threads are free: the best-standing peer first, then FIFO. */
  private pump(): void {
    while (this.hashing < this.limits.concurrentChecks && this.ready.length > 0) {
      let best = 0;
      let bestStanding = this.standing(this.ready[0]!.key);
      for (let i = 1; i < this.ready.length; i++) {
        const standing = this.standing(this.ready[i]!.key);
        if (standing < bestStanding) [best, bestStanding] = [i, standing];
      }
      this.execute(this.ready.splice(best, 1)[0]!);
    }
  }

  private execute(job: Job): void {
    job.state = "running";
    if (job.needsHashSlot) this.hashing++;
    let started: Promise<unknown>;
    try {
      started = job.task();
    } catch (error) {
      started = Promise.reject(error);
    }
    started.then(
      (value) => this.finish(job, { kind: "done", value }),
      (error: unknown) => this.finish(job, { kind: "failed", error: error instanceof Error ? error : new Error(String(error)) }),
    );
  }

  private finish(job: Job, outcome: CheckOutcome<unknown>): void {
    if (job.needsHashSlot) this.hashing--;
    job.resolve(outcome);
    this.remove(job);
    this.pump();
  }

  private cancel(job: Job): void {
    if (job.settled) return;
    if (job.state === "running") {
      // The hash is already on its thread and cannot be taken back; its result still counts
      // (a failure still earns the peer its pause), but the caller need not wait for it.
      job.resolve({ kind: "cancelled" });
      return;
    }
    this.drop(job, { kind: "cancelled" });
  }

  /** Ends a job that is not running with `outcome` and takes it out of its line. */
  private drop(job: Job, outcome: CheckOutcome<unknown>): void {
    if (job.pauseTimer) clearTimeout(job.pauseTimer);
    job.pauseTimer = null;
    const readyIndex = this.ready.indexOf(job);
    if (readyIndex >= 0) this.ready.splice(readyIndex, 1);
    job.resolve(outcome);
    this.remove(job);
  }

  /**
   * The job to give up its place to a request from `key`: the last one waiting in the line of
   * the worst-standing peer (then the longest pause owed), if that peer stands worse than `key`,
   * or as well and owes a longer pause. Jobs already hashing are never chosen.
   */
  private displaceable(key: string): Job | undefined {
    const newcomer = { failures: this.standing(key), owes: this.remainingPauseMs(key) };
    const worse = (a: { failures: number; owes: number }, b: { failures: number; owes: number }) =>
      a.failures > b.failures || (a.failures === b.failures && a.owes > b.owes);
    let best: { job: Job; failures: number; owes: number } | undefined;
    for (const [lineKey, line] of this.lines) {
      const last = line[line.length - 1];
      if (!last || last.state === "running" || last.settled) continue;
      const standing = { failures: this.standing(lineKey), owes: this.remainingPauseMs(lineKey) };
      if (worse(standing, newcomer) && (!best || worse(standing, best))) best = { job: last, ...standing };
    }
    return best?.job;
  }

  /** Takes a job out of its line; when it was the head, the next one moves up. */
  private remove(job: Job): void {
    const line = this.lines.get(job.key);
    if (!line) return;
    const index = line.indexOf(job);
    if (index < 0) return;
    line.splice(index, 1);
    this.pending--;
    if (line.length === 0) {
      this.lines.delete(job.key);
      return;
    }
    if (index === 0) this.advance(line[0]!);
  }
}
