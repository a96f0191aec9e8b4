// The order and bounds of AUTH checks (issue 9): one line per peer address, each check after the
// pause the address owes, at most N hashing at once with one queued entry per peer, requests
// beyond the per-peer and overall bounds refused at once, and a request whose client left dropped
// before its task runs.
import { describe, expect, test } from "bun:test";
import { CheckScheduler, type CheckOutcome } from "../../src/daemon/auth/index.ts";

/** A task the test finishes by hand; `started` tells whether the scheduler ran it. */
function manualTask<T>(value: T) {
  const gate = Promise.withResolvers<void>();
  const task = {
    started: false,
    run: async () => {
      task.started = true;
      await gate.promise;
      return value;
    },
    finish: () => gate.resolve(),
  };
  return task;
}

/** Lets timers of 0 ms and pending promise callbacks run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

const limits = { maxPendingChecksPerPeer: 3, maxPendingChecks: 5, concurrentChecks: 1 };

describe("CheckScheduler", () => {
  test("one peer's requests run one after another, in order", async () => {
    const scheduler = new CheckScheduler(limits, () => 0);
    const first = manualTask("a");
    const second = manualTask("b");
    const firstDone = scheduler.run("198.51.100.1", first.run, { needsHashSlot: true });
    const secondDone = scheduler.run("198.51.100.1", second.run, { needsHashSlot: true });
    await settle();
    expect([first.started, second.started]).toEqual([true, false]);
    first.finish();
    expect(await firstDone).toEqual({ kind: "done", value: "a" });
    await settle();
    expect(second.started).toBe(true);
    second.finish();
    expect(await secondDone).toEqual({ kind: "done", value: "b" });
    expect(scheduler.pendingChecks).toBe(0);
  });

  test("a flooding peer's backlog does not queue ahead of another peer: one entry per peer waits for hashing", async () => {
    const scheduler = new CheckScheduler({ ...limits, maxPendingChecksPerPeer: 3 }, () => 0);
    const flood = [manualTask(1), manualTask(2), manualTask(3)];
    const floodDone = flood.map((t) => scheduler.run("203.0.113.9", t.run, { needsHashSlot: true }));
    const real = manualTask("real");
    const realDone = scheduler.run("192.0.2.5", real.run, { needsHashSlot: true });
    await settle();
    expect(flood.map((t) => t.started)).toEqual([true, false, false]);
    flood[0]!.finish();
    await floodDone[0];
    await settle();
    // The real login is next, not the flood's second request.
    expect(real.started).toBe(true);
    expect(flood[1]!.started).toBe(false);
    real.finish();
    expect(await realDone).toEqual({ kind: "done", value: "real" });
    for (const t of flood) t.finish();
    await Promise.all(floodDone);
  });

  test("beyond the per-peer bound: refused at once, at the peer's fault; beyond the overall bound: refused, not the peer's fault", async () => {
    const scheduler = new CheckScheduler(limits, () => 0);
    const tasks = Array.from({ length: 5 }, (_, i) => manualTask(i));
    const runs = tasks.slice(0, 3).map((t) => scheduler.run("203.0.113.9", t.run, { needsHashSlot: true }));
    const over = await scheduler.run("203.0.113.9", manualTask("x").run, { needsHashSlot: true });
    expect(over.kind).toBe("refused");
    expect(over.kind === "refused" && over.peerAtFault).toBe(true);
    runs.push(scheduler.run("192.0.2.1", tasks[3]!.run, { needsHashSlot: true }));
    runs.push(scheduler.run("192.0.2.2", tasks[4]!.run, { needsHashSlot: true }));
    expect(scheduler.pendingChecks).toBe(5);
    const full = await scheduler.run("192.0.2.3", manualTask("y").run, { needsHashSlot: true });
    expect(full.kind === "refused" && !full.peerAtFault).toBe(true);
    for (const t of tasks) t.finish();
    await Promise.all(runs);
    expect(scheduler.pendingChecks).toBe(0);
  });

  test("a request whose client left is dropped before its task runs; the next one moves up", async () => {
    const scheduler = new CheckScheduler(limits, () => 0);
    const busy = manualTask("busy");
    const busyDone = scheduler.run("192.0.2.1", busy.run, { needsHashSlot: true });
    const abandoned = manualTask("abandoned");
    const gone = new AbortController();
    const abandonedDone = scheduler.run("192.0.2.2", abandoned.run, { needsHashSlot: true, signal: gone.signal });
    const later = manualTask("later");
    const laterDone = scheduler.run("192.0.2.3", later.run, { needsHashSlot: true });
    gone.abort();
    expect(await abandonedDone).toEqual({ kind: "cancelled" });
    busy.finish();
    await busyDone;
    await settle();
    expect(abandoned.started).toBe(false);
    expect(later.started).toBe(true);
    later.finish();
    await laterDone;
  });

  test("the head of a line waits out the pause its peer owes, and may be cancelled while it waits", async () => {
    let owed = 60_000;
    const scheduler = new CheckScheduler(limits, () => owed);
    const paused = manualTask("paused");
    const gone = new AbortController();
    const done = scheduler.run("192.0.2.9", paused.run, { needsHashSlot: false, signal: gone.signal });
    await settle();
    expect(paused.started).toBe(false);
    expect(scheduler.pendingFor("192.0.2.9")).toBe(1);
    gone.abort();
    expect(await done).toEqual({ kind: "cancelled" });
    expect(scheduler.pendingFor("192.0.2.9")).toBe(0);
    owed = 0;
    const free = manualTask("free");
    const freeDone = scheduler.run("192.0.2.9", free.run, { needsHashSlot: false });
    await settle();
    expect(free.started).toBe(true);
    free.finish();
    expect((await freeDone) as CheckOutcome<string>).toEqual({ kind: "done", value: "free" });
  });

  test("a task that throws is a 'failed' outcome and frees its slot", async () => {
    const scheduler = new CheckScheduler(limits, () => 0);
    const outcome = await scheduler.run("192.0.2.1", async () => {
      throw new Error("boom");
    }, { needsHashSlot: true });
    expect(outcome.kind).toBe("failed");
    expect(scheduler.runningChecks).toBe(0);
  });

  test("overall bound reached by peers waiting out pauses: a peer owing nothing takes the place of the one owing most (issue 21)", async () => {
    // Five flooding addresses, each owing a pause for earlier failures: every place is taken.
    const owes = new Map([["203.0.113.1", 1_000], ["203.0.113.2", 30_000], ["203.0.113.3", 4_000], ["203.0.113.4", 2_000], ["203.0.113.5", 8_000]]);
    const scheduler = new CheckScheduler(limits, (key) => owes.get(key) ?? 0);
    const flood = [...owes.keys()].map((key) => ({ key, task: manualTask(key) }));
    const floodDone = flood.map(({ key, task }) => scheduler.run(key, task.run, { needsHashSlot: true }));
    expect(scheduler.pendingChecks).toBe(5);
    const real = manualTask("real");
    const realDone = scheduler.run("192.0.2.5", real.run, { needsHashSlot: true });
    // The one owing 30 s gave its place, refused (not its fault: its pause does not grow).
    expect(await floodDone[1]!).toEqual({
      kind: "refused",
      reason: "5 AUTH requests pending (limit 5); this one, from a peer with more failures or a longer pause owed, gave its place to one standing better",
      peerAtFault: false,
    });
    await settle();
    expect(real.started).toBe(true);
    real.finish();
    expect(await realDone).toEqual({ kind: "done", value: "real" });
    // A peer owing more than every waiting one does not displace anybody.
    const other = new CheckScheduler(limits, (key) => (key === "192.0.2.7" ? 60_000 : 1_000));
    const held = Array.from({ length: 5 }, (_, i) => other.run(`198.51.100.${i}`, manualTask(i).run, { needsHashSlot: true }));
    const late = await other.run("192.0.2.7", manualTask("late").run, { needsHashSlot: true });
    expect(late.kind === "refused" && late.reason).toBe("5 AUTH requests are already pending (limit 5)");
    expect(other.pendingChecks).toBe(5);
    void held;
  });

  test("a peer with fewer failures is hashed first, and takes the place of one with more when every place is taken (issue 21)", async () => {
    // Pauses served (nothing owed): only the failure counts tell the peers apart.
    const failures = new Map([["203.0.113.1", 3], ["203.0.113.2", 1], ["203.0.113.3", 5], ["203.0.113.4", 2]]);
    const scheduler = new CheckScheduler({ ...limits, maxPendingChecks: 5 }, () => 0, (key) => failures.get(key) ?? 0);
    const busy = manualTask("busy");
    const busyDone = scheduler.run("198.51.100.1", busy.run, { needsHashSlot: true });
    const flood = [...failures.keys()].map((key) => ({ key, task: manualTask(key) }));
    const floodDone = flood.map(({ key, task }) => scheduler.run(key, task.run, { needsHashSlot: true }));
    expect(scheduler.pendingChecks).toBe(5);
    // Full: the user (no failures) takes the place of 203.0.113.3 (5 failures).
    const real = manualTask("real");
    const realDone = scheduler.run("192.0.2.5", real.run, { needsHashSlot: true });
    expect((await floodDone[2]!).kind).toBe("refused");
    // When the thread frees, the user goes first although it came last, then 203.0.113.2 (1).
    busy.finish();
    await busyDone;
    await settle();
    expect([real.started, ...flood.map((f) => f.task.started)]).toEqual([true, false, false, false, false]);
    real.finish();
    expect(await realDone).toEqual({ kind: "done", value: "real" });
    await settle();
    expect(flood.map((f) => f.task.started)).toEqual([false, true, false, false]);
    for (const { task } of flood) task.finish();
    await Promise.all(floodDone);
  });

  test("a known address (standing -1) goes ahead of unknown ones (0) waiting for a thread (issue 21)", async () => {
    const scheduler = new CheckScheduler(limits, () => 0, (key) => (key === "192.0.2.5" ? -1 : 0));
    const busy = manualTask("busy");
    const busyDone = scheduler.run("203.0.113.1", busy.run, { needsHashSlot: true });
    const fresh = [manualTask("a"), manualTask("b")];
    const freshDone = fresh.map((t, i) => scheduler.run(`203.0.113.${10 + i}`, t.run, { needsHashSlot: true }));
    const known = manualTask("known");
    const knownDone = scheduler.run("192.0.2.5", known.run, { needsHashSlot: true });
    busy.finish();
    await busyDone;
    await settle();
    expect([known.started, ...fresh.map((t) => t.started)]).toEqual([true, false, false]);
    known.finish();
    await knownDone;
    for (const t of fresh) t.finish();
    await Promise.all(freshDone);
  });
});
