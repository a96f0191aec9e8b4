// The slot table behind rpcapd's accept path (issue 9): per-address caps (IPv6 counted per /64),
// pressure at more than 3/4 of the slots, eviction of an overdue pre-auth connection when full,
// and a slot kept after AUTH only by a capture running or starting.
import { describe, expect, test } from "bun:test";
import { SessionSlots } from "../../src/daemon/session-slots.ts";

class FakeSession {
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

  test("full: the oldest pre-auth session past the pressure deadline is evicted; none overdue: refused", () => {
    const { clock, slots } = table();
    const sessions = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"].map((address, i) => {
      const session = new FakeSession(i === 0 ? "ready" : "awaiting-auth");
      slots.add(session, address, false);
      clock.now += 100;
      return session;
    });
    expect(slots.admit("192.0.2.5").refusal).toContain("limit 4");
    clock.now += 1_000;
    expect(slots.admit("192.0.2.5").evict).toBe(sessions[1]!); // the oldest unauthenticated one
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
