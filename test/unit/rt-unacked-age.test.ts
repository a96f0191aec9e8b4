// UnackedAge: the oldest unacknowledged record's age from a few marks, released by acks,
// bounded in marks (the newest is extended past the cap: ages over-stated, never under-stated).
import { describe, expect, test } from "bun:test";
import { MAX_UNACKED_AGE_MARKS, UnackedAge, UNACKED_AGE_RESOLUTION_MS } from "../../src/outputs/rt/fifo/unacked-age.ts";

describe("UnackedAge", () => {
  test("the age of the oldest record still held; 0 once everything is acknowledged", () => {
    let now = 10_000;
    const age = new UnackedAge(() => now);
    expect(age.ageSeconds(0)).toBe(0);
    age.appended(5); // records 1..5 at 10 s
    now += 3_000;
    age.appended(9); // 6..9 at 13 s
    now += 2_000;
    expect(age.ageSeconds(0)).toBe(5);
    expect(age.ageSeconds(4)).toBe(5); // record 5 still waits since 10 s
    expect(age.ageSeconds(5)).toBe(2);
    expect(age.ageSeconds(9)).toBe(0);
  });

  test("appends within the resolution share a mark", () => {
    let now = 0;
    const age = new UnackedAge(() => now);
    age.appended(1);
    now += UNACKED_AGE_RESOLUTION_MS - 1;
    age.appended(2);
    now += 10;
    // Record 2 joined record 1's mark: its age is counted from record 1's append.
    expect(age.ageSeconds(0)).toBeCloseTo((UNACKED_AGE_RESOLUTION_MS + 9) / 1000, 5);
    expect(age.ageSeconds(1)).toBeCloseTo((UNACKED_AGE_RESOLUTION_MS + 9) / 1000, 5);
    expect(age.ageSeconds(2)).toBe(0);
  });

  test("past the mark cap the newest mark is extended: the oldest age stays exact", () => {
    let now = 0;
    const age = new UnackedAge(() => now);
    for (let i = 1; i <= MAX_UNACKED_AGE_MARKS + 10; i++) {
      age.appended(i);
      now += UNACKED_AGE_RESOLUTION_MS;
    }
    expect(age.ageSeconds(0)).toBe(now / 1000);
    // Everything after the cap's last mark shares it: over-stated, not lost.
    expect(age.ageSeconds(MAX_UNACKED_AGE_MARKS + 5)).toBe((now - (MAX_UNACKED_AGE_MARKS - 1) * UNACKED_AGE_RESOLUTION_MS) / 1000);
    expect(age.ageSeconds(MAX_UNACKED_AGE_MARKS + 10)).toBe(0);
  });
});
