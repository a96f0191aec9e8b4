// UnackedAge: how long the oldest unacknowledged record has waited in a reliable RT fifo, for
// the metrics (oldest unacked age). The fifo keeps no times; this keeps a short list of marks
// (the last sequence of a span of appends and when the span began), released as acks arrive.

/**
 * Appends within this many milliseconds share one mark: the age is exact to this resolution
 * and a burst of small batches costs one mark, not one per batch.
 */
export const UNACKED_AGE_RESOLUTION_MS = 1_000;

/**
 * Marks kept at most (16 bytes each): about 9 hours of a client-less spool at one mark a second.
 * Past it the newest mark is extended instead, so ages are over-stated (never under-stated) for
 * records appended after that: the oldest record's age stays exact.
 */
export const MAX_UNACKED_AGE_MARKS = 32_768;

interface Mark {
  /** Highest sequence appended while this mark was the newest. */
  lastSequence: number;
  /** When the first of those records was appended (ms, the clock given). */
  sinceMs: number;
}

export class UnackedAge {
  private readonly marks: Mark[] = [];
  /** Index of the first live mark (marks before it are released; compacted now and then). */
  private head = 0;

  constructor(private readonly clockMs: () => number = Date.now) {}

  /** Records up to `lastSequence` were appended now. */
  appended(lastSequence: number): void {
    const now = this.clockMs();
    const newest = this.marks.length > this.head ? this.marks[this.marks.length - 1] : undefined;
    if (newest && (now - newest.sinceMs < UNACKED_AGE_RESOLUTION_MS || this.marks.length - this.head >= MAX_UNACKED_AGE_MARKS)) {
      newest.lastSequence = Math.max(newest.lastSequence, lastSequence);
      return;
    }
    this.marks.push({ lastSequence, sinceMs: now });
  }

  /** Records already held when the fifo opened (a recovered spool): aged from now. */
  recovered(lastSequence: number): void {
    this.appended(lastSequence);
  }

  /** Everything <= `ackedThrough` is acknowledged or dropped: its marks go. */
  release(ackedThrough: number): void {
    while (this.head < this.marks.length && this.marks[this.head]!.lastSequence <= ackedThrough) this.head++;
    if (this.head > 1024 && this.head * 2 > this.marks.length) {
      this.marks.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Seconds the oldest record above `ackedThrough` (acknowledged or dropped) has waited; 0 if none. */
  ageSeconds(ackedThrough: number): number {
    this.release(ackedThrough);
    const oldest = this.marks[this.head];
    return oldest ? Math.max(0, this.clockMs() - oldest.sinceMs) / 1000 : 0;
  }
}
