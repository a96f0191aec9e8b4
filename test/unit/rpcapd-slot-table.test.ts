// The slot table behind rpcapd's accept path (issue 9): per-address caps (IPv6 counted per /64),
// pressure at more than 3/4 of the slots, eviction of an unauthenticated connection when full
// (issue 21: failed AUTH first, then silent, never one being checked, never an authenticated or
// active one), and a slot kept after AUTH only by a capture running or starting.
import { describe, expect, test } from "bun:test";
import { SessionSlots } from "../../src/daemon/session-slots.ts";

class FakeSession {
  authChecking = false;
  authFailures = 0;
  constructor(public stateName: string) {}
}

function table(overrides: Partial<ConstructorParameters<typeof SessionSlots>[0]> = {}) {
  const clock = { now: 1_000_000 };
  const slots = new SessionSlots<FakeSession>(
    { maxSessions: 4, maxSessionsPerAddress: 2, pressureAuthTimeoutMs: 1_000, idleTimeoutMs: 5_000, ...overrides },
    () => clock.now,
  );
  return { clock, slots };
}

describe("SessionSlots", () => {
  test("per-address cap; IPv4-mapped IPv6 is the same address; an IPv6 /64 is one address", () => {
    const { slots } = table();
    slots.add(new FakeSession("awaiting-auth"), "192.0.2.1", false);
    slots.add(new FakeSession("awaiting-auth"), "::ffff:192.0.2.1", false);
    expect(slots.admit("192.0.2.1").refusal).toContain("limit 2 per address");
    expect(slots.admit("192.0.2.2")).toEqual({});
    slots.add(new FakeSession("awaiting-auth"), "2001:db8:1:2::10", false);
    slots.add(new FakeSession("awaiting-auth"), "2001:db8:1:2::20", false);
    expect(slots.admit("2001:db8:1:2::30").refusal).toContain("per address");
  });

  test("active sessions are not counted per address", () => {
    const { slots } = table();
    for (let i = 0; i < 3; i++) slots.add(new FakeSession("ready"), "192.0.2.9", true);
    expect(slots.countFor("192.0.2.9")).toBe(0);
  });

  test("removing a session frees its address's count", () => {
    const { slots } = table();
    const a = new FakeSession("awaiting-auth");
    slots.add(a, "192.0.2.1", false);
    slots.add(new FakeSession("awaiting-auth"), "192.0.2.1", false);
    slots.remove(a);
    expect(slots.admit("192.0.2.1")).toEqual({});
  });

  test("full: a newcomer evicts at once (no deadline to wait out): the oldest failed-AUTH session, else the oldest silent one", () => {
    const { clock, slots } = table();
    const [ready, silentOld, failedNew, silentNew] = ["ready", "awaiting-auth", "awaiting-auth", "awaiting-auth"].map((state, i) => {
      const session = new FakeSession(state);
      slots.add(session, `192.0.2.${i + 1}`, false);
      clock.now += 100;
      return session;
    }) as [FakeSession, FakeSession, FakeSession, FakeSession];
    failedNew.authFailures = 1;
    // The failed one goes first although the silent one is older; the authenticated one never.
    expect(slots.admit("192.0.2.5").evict).toBe(failedNew);
    failedNew.authChecking = true; // it tries again: a check in progress is not evicted
    expect(slots.admit("192.0.2.5").evict).toBe(silentOld);
    silentOld.authChecking = true;
    expect(slots.admit("192.0.2.5").evict).toBe(silentNew);
    silentNew.stateName = "ready";
    expect(slots.admit("192.0.2.5")).toEqual({ refusal: "4 sessions already (limit 4), none of them evictable" });
    expect(ready.stateName).toBe("ready");
  });

  test("full of active (dialled) unauthenticated sessions: none is evicted for a passive newcomer", () => {
    const { slots } = table();
    for (let i = 0; i < 4; i++) {
      const session = new FakeSession("awaiting-auth");
      session.authFailures = 1;
      slots.add(session, "192.0.2.9", true);
    }
    expect(slots.admit("192.0.2.5").refusal).toContain("none of them evictable");
  });

  test("the short pre-auth deadline applies only under pressure (more than 3/4 taken)", () => {
    const { clock, slots } = table({ maxSessionsPerAddress: 8 });
    const early = new FakeSession("awaiting-auth");
    slots.add(early, "192.0.2.1", false);
    slots.add(new FakeSession("ready"), "192.0.2.1", false);
    slots.add(new FakeSession("ready"), "192.0.2.1", false);
    clock.now += 2_000;
    expect(slots.underPressure).toBe(false);
    expect(slots.sweep()).toEqual([]);
    slots.add(new FakeSession("awaiting-auth"), "192.0.2.1", false);
    expect(slots.underPressure).toBe(true);
    expect(slots.sweep()).toEqual([{ session: early, reason: "pre-auth deadline under pressure" }]);
  });

  test("after AUTH only a capture keeps the slot: running, or a STARTCAP seen", () => {
    const { clock, slots } = table();
    const idle = new FakeSession("awaiting-auth");
    const capturing = new FakeSession("awaiting-auth");
    const starting = new FakeSession("awaiting-auth");
    [idle, capturing, starting].forEach((session, i) => slots.add(session, `192.0.2.${i + 1}`, false));
    idle.stateName = "opened";
    capturing.stateName = "capturing";
    starting.stateName = "ready";
    expect(slots.sweep()).toEqual([]); // sees the logins
    clock.now += 4_000;
    slots.noteCaptureStart(starting);
    clock.now += 1_000;
    expect(slots.sweep()).toEqual([{ session: idle, reason: "no capture within the idle timeout" }]);
  });
});
