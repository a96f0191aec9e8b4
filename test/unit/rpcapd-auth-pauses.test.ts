// Per-peer pauses after failed AUTH: 1 s (rpcapd's RPCAP_SUSPEND_WRONGAUTH) doubling to a cap,
// counted per address (IPv6 per /64), forgiven one step per quiet period, bounded memory.
// The clock is injected: no test waits or measures time.
import { describe, expect, test } from "bun:test";
import {
  DEFAULT_FAILURE_DECAY_MS,
  DEFAULT_FAILURE_PAUSE_MS,
  DEFAULT_MAX_FAILURE_PAUSE_MS,
  DEFAULT_MAX_TRACKED_PEERS,
  FailurePauses,
  peerKey,
} from "../../src/daemon/auth/index.ts";

const SETTINGS = {
  failurePauseMs: DEFAULT_FAILURE_PAUSE_MS,
  maxFailurePauseMs: DEFAULT_MAX_FAILURE_PAUSE_MS,
  failureDecayMs: DEFAULT_FAILURE_DECAY_MS,
  maxTrackedPeers: DEFAULT_MAX_TRACKED_PEERS,
};

function withClock(settings = SETTINGS) {
  const clock = { now: 1_000_000 };
  return { clock, pauses: new FailurePauses(settings, () => clock.now) };
}

describe("FailurePauses", () => {
  test("defaults start at rpcapd's 1 s and double to the 30 s cap", () => {
    const { pauses } = withClock();
    const seen = Array.from({ length: 8 }, () => pauses.recordFailure("192.0.2.1"));
    expect(seen).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(pauses.failurePauseMs("192.0.2.1")).toBe(30000);
  });

  test("a peer with no failures owes nothing", () => {
    const { pauses } = withClock();
    expect(pauses.failurePauseMs("192.0.2.1")).toBe(0);
    expect(pauses.failureCount("192.0.2.1")).toBe(0);
  });

  test("counted per address: another peer starts from 1 s", () => {
    const { pauses } = withClock();
    pauses.recordFailure("192.0.2.1");
    pauses.recordFailure("192.0.2.1");
    pauses.recordFailure("192.0.2.1");
    expect(pauses.recordFailure("192.0.2.2")).toBe(1000);
    expect(pauses.failurePauseMs("192.0.2.1")).toBe(4000);
  });

  test("IPv4 and its IPv4-mapped IPv6 form are the same peer", () => {
    const { pauses } = withClock();
    pauses.recordFailure("192.0.2.1");
    expect(pauses.recordFailure("::ffff:192.0.2.1")).toBe(2000);
  });

  test("IPv6 peers are counted per /64", () => {
    const { pauses } = withClock();
    pauses.recordFailure("2001:db8:1:2::1");
    expect(pauses.recordFailure("2001:db8:1:2:ffff::9")).toBe(2000);
    expect(pauses.recordFailure("2001:db8:1:3::1")).toBe(1000);
    expect(peerKey("2001:db8:1:2::1")).toBe("20010db800010002/64");
    expect(peerKey("::ffff:10.0.0.1")).toBe("10.0.0.1");
    expect(peerKey("not an address")).toBe("not an address");
  });

  test("one failure is forgiven per quiet decay period", () => {
    const { clock, pauses } = withClock();
    for (let i = 0; i < 4; i++) pauses.recordFailure("192.0.2.1");
    expect(pauses.failureCount("192.0.2.1")).toBe(4);
    clock.now += DEFAULT_FAILURE_DECAY_MS - 1;
    expect(pauses.failureCount("192.0.2.1")).toBe(4);
    clock.now += 1;
    expect(pauses.failureCount("192.0.2.1")).toBe(3);
    expect(pauses.failurePauseMs("192.0.2.1")).toBe(4000);
    // A failure now continues from the decayed count: 3 + 1.
    expect(pauses.recordFailure("192.0.2.1")).toBe(8000);
    clock.now += 10 * DEFAULT_FAILURE_DECAY_MS;
    expect(pauses.failurePauseMs("192.0.2.1")).toBe(0);
    expect(pauses.recordFailure("192.0.2.1")).toBe(1000);
  });

  test("a success forgets the peer", () => {
    const { pauses } = withClock();
    pauses.recordFailure("192.0.2.1");
    pauses.recordFailure("192.0.2.1");
    pauses.recordSuccess("::ffff:192.0.2.1");
    expect(pauses.recordFailure("192.0.2.1")).toBe(1000);
  });

  test("memory is bounded: the least recently failing peer is forgotten first", () => {
    const { pauses } = withClock({ ...SETTINGS, maxTrackedPeers: 3 });
    pauses.recordFailure("10.0.0.1");
    pauses.recordFailure("10.0.0.1");
    pauses.recordFailure("10.0.0.2");
    pauses.recordFailure("10.0.0.3");
    pauses.recordFailure("10.0.0.1"); // now the most recent
    pauses.recordFailure("10.0.0.4"); // evicts 10.0.0.2
    expect(pauses.trackedPeers).toBe(3);
    expect(pauses.failureCount("10.0.0.2")).toBe(0);
    expect(pauses.failureCount("10.0.0.1")).toBe(3);
  });

  test("huge failure counts stay at the cap (no Infinity/NaN)", () => {
    const { pauses } = withClock();
    let last = 0;
    for (let i = 0; i < 2000; i++) last = pauses.recordFailure("192.0.2.1");
    expect(last).toBe(DEFAULT_MAX_FAILURE_PAUSE_MS);
  });

  test("a clock that steps backwards does not forgive", () => {
    const { clock, pauses } = withClock();
    pauses.recordFailure("192.0.2.1");
    pauses.recordFailure("192.0.2.1");
    clock.now -= 10 * DEFAULT_FAILURE_DECAY_MS;
    expect(pauses.failureCount("192.0.2.1")).toBe(2);
  });

  test("standing (issue 21): -1 for an address that logged in and has not failed since, 0 unknown, else its failures; known addresses are bounded", () => {
    const { pauses } = withClock({ ...SETTINGS, maxTrackedPeers: 2 });
    expect(pauses.standing("192.0.2.1")).toBe(0);
    pauses.recordSuccess("192.0.2.1");
    expect(pauses.standing("192.0.2.1")).toBe(-1);
    expect(pauses.standing("::ffff:192.0.2.1")).toBe(-1);
    pauses.recordFailure("192.0.2.1");
    pauses.recordFailure("192.0.2.1");
    expect(pauses.standing("192.0.2.1")).toBe(2);
    pauses.recordSuccess("192.0.2.1");
    pauses.recordSuccess("192.0.2.2");
    pauses.recordSuccess("192.0.2.3"); // the third known address pushes out the least recent
    expect([pauses.standing("192.0.2.1"), pauses.standing("192.0.2.2"), pauses.standing("192.0.2.3")]).toEqual([0, -1, -1]);
  });
});
