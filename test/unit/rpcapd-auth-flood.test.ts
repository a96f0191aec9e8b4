// Issue 9, "Authentication": an AUTH flood must not stall real logins. Abandoned AUTHs are not
// hashed, one address's backlog is bounded and refused beyond it, a real login from another
// address is checked while the flood goes on, the failure pause belongs to the address (a new
// connection waits it out too, whatever the cause of the failure), and crypt_r for system accounts
// runs off the event loop. Real argon2id (cheap parameters) on the real hashing threads.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Authenticator, cryptHash, hashPasswordLine, HashWorkerPool, type AuthRequest, type PasswordBackend, type PasswordHasher } from "../../src/daemon/auth/index.ts";
import { RpcapAuthType } from "../../src/protocols/rpcap/index.ts";

const dir = mkdtempSync(join(tmpdir(), "probe-auth-flood-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const usersFile = join(dir, "users");
writeFileSync(usersFile, `${await hashPasswordLine("alice", "s3cret", { memoryCost: 4096, timeCost: 2 })}\n`);
chmodSync(usersFile, 0o600);

function pwd(peerAddress: string, username: string, password: string, signal?: AbortSignal): AuthRequest {
  return { peerAddress, authType: RpcapAuthType.PWD, username, password, ...(signal ? { signal } : {}) };
}

/** The real hashing threads, counting the hashes they are asked for. */
function countingHasher(): PasswordHasher & { hashes: number; pool: HashWorkerPool } {
  const pool = new HashWorkerPool({ workers: 2, jobTimeoutMs: 10_000, idleWorkerMs: 1_000 });
  const hasher = {
    hashes: 0,
    pool,
    verifyPassword: (password: string, hash: string) => {
      hasher.hashes++;
      return pool.verifyPassword(password, hash);
    },
    crypt: (password: string, setting: string, libcryptPath: string) => {
      hasher.hashes++;
      return pool.crypt(password, setting, libcryptPath);
    },
  };
  return hasher;
}

/** Lets timers and promise callbacks run. */
const settle = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));

describe("AUTH flood (issue 9)", () => {
  test("100 abandoned AUTHs from one address: at most the per-address bound is kept, the rest refused at once, none hashed after its client left", async () => {
    const hasher = countingHasher();
    // Long pauses: the flood's failures keep its later requests waiting, never hashing.
    const auth = await Authenticator.create({ usersFile, failurePauseMs: 60_000, maxFailurePauseMs: 60_000 }, { hasher });
    const clients = Array.from({ length: 100 }, () => new AbortController());
    const results = clients.map((client) => auth.authenticate(pwd("203.0.113.66", "alice", "guess", client.signal)));
    // Every request beyond the per-address bound (4) is answered at once, without hashing.
    const refusedAtOnce = await Promise.all(results.slice(4));
    expect(refusedAtOnce.every((r) => !r.ok && r.logDetail.includes("already pending"))).toBe(true);
    expect(auth.pendingChecks("203.0.113.66")).toBe(4);
    // The clients leave: their checks are dropped.
    for (const client of clients) client.abort();
    await Promise.all(results);
    await settle(300);
    // Only the first request reached a hashing thread before its client left.
    expect(hasher.hashes).toBeLessThanOrEqual(1);
    expect(auth.pendingChecks()).toBe(0);
    hasher.pool.close();
  });

  test("a real login from another address succeeds while one address floods, and is not queued behind the flood", async () => {
    const hasher = countingHasher();
    const auth = await Authenticator.create({ usersFile, failurePauseMs: 50, maxFailurePauseMs: 200 }, { hasher });
    let flooding = true;
    let floodRequests = 0;
    const attacker = (async () => {
      // Bounded: at most 200 requests or until the real login is done.
      while (flooding && floodRequests < 200) {
        const batch = Array.from({ length: 8 }, () => auth.authenticate(pwd("203.0.113.66", "alice", "guess")));
        floodRequests += batch.length;
        await Promise.all(batch);
      }
    })();
    await settle(50);
    expect(auth.pendingChecks("203.0.113.66")).toBeGreaterThan(0);
    const hashesBefore = hasher.hashes;
    const real = await auth.authenticate(pwd("192.0.2.10", "alice", "s3cret"));
    const hashesForReal = hasher.hashes - hashesBefore;
    flooding = false;
    await attacker;
    expect(real).toEqual({ ok: true, user: "alice" });
    // Waited behind at most one flood check per hashing thread, plus its own.
    expect(hashesForReal).toBeLessThanOrEqual(3);
    // The flood never had more than the per-address bound pending.
    expect(auth.pendingChecks()).toBe(0);
    hasher.pool.close();
  });

  test("the failure pause belongs to the address: a new connection's AUTH waits it out instead of being checked at once", async () => {
    const calls: string[] = [];
    const backend: PasswordBackend = {
      description: "counting accounts",
      async check(username, password) {
        calls.push(username);
        return username === "carol" && password === "pw" ? { ok: true } : { ok: false, reason: "nope" };
      },
    };
    const auth = await Authenticator.create({ failurePauseMs: 60_000, maxFailurePauseMs: 60_000 }, { backend });
    const first = await auth.authenticate(pwd("198.51.100.7", "carol", "bad"));
    expect(first.ok).toBe(false);
    expect(calls).toEqual(["carol"]);
    // "Another connection" from the same address (IPv4-mapped form, as a dual-stack socket reports it).
    const client = new AbortController();
    const second = auth.authenticate(pwd("::ffff:198.51.100.7", "carol", "pw", client.signal));
    await settle();
    expect(calls).toEqual(["carol"]); // not checked while the address owes its pause
    expect(auth.pendingChecks("198.51.100.7")).toBe(1);
    client.abort();
    const result = await second;
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.logDetail).toContain("left before");
    // Another address is not held up.
    expect((await auth.authenticate(pwd("198.51.100.8", "carol", "pw"))).ok).toBe(true);
  });

  test("a check already hashing when its client leaves still counts its failure for the address", async () => {
    const gate = Promise.withResolvers<void>();
    let started = false;
    const backend: PasswordBackend = {
      description: "slow accounts",
      async check() {
        started = true;
        await gate.promise;
        return { ok: false, reason: "nope" };
      },
    };
    const auth = await Authenticator.create({ failurePauseMs: 5_000, maxFailurePauseMs: 5_000 }, { backend });
    const client = new AbortController();
    const result = auth.authenticate(pwd("198.51.100.9", "carol", "bad", client.signal));
    await settle();
    expect(started).toBe(true);
    client.abort();
    const answer = await result;
    expect(answer.ok).toBe(false);
    if (!answer.ok) expect(answer.logDetail).toContain("left before");
    expect(auth.failurePauseMs("198.51.100.9")).toBe(0);
    gate.resolve();
    await settle();
    expect(auth.pendingChecks()).toBe(0);
    expect(auth.failurePauseMs("198.51.100.9")).toBe(5_000);
  });

  test("every failure cause earns the address the same pause (null auth refused, oversized password, wrong password)", async () => {
    const clock = { now: 1_000_000 };
    const backend: PasswordBackend = { description: "none", check: async () => ({ ok: false, reason: "nope" }) };
    const auth = await Authenticator.create({ failurePauseMs: 1000, maxFailurePauseMs: 1000 }, { backend, now: () => clock.now });
    const causes: AuthRequest[] = [
      { peerAddress: "192.0.2.20", authType: RpcapAuthType.NULL, username: "", password: "" },
      pwd("192.0.2.21", "carol", "x".repeat(5000)),
      pwd("192.0.2.22", "carol", "bad"),
    ];
    for (const request of causes) {
      const result = await auth.authenticate(request);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.pauseMs).toBe(1000);
      expect(auth.failurePauseMs(request.peerAddress)).toBe(1000);
    }
  });

  test("system accounts: crypt_r runs on a hashing thread, so the event loop keeps turning during a check", async () => {
    // A deliberately slow sha512crypt (many rounds) so the check spans many event-loop turns.
    const setting = "$6$rounds=400000$probeflood$";
    const made = cryptHash("pw", setting);
    if (!made.ok) throw new Error(made.reason);
    const passwd = join(dir, "passwd");
    const shadow = join(dir, "shadow");
    writeFileSync(passwd, "carol:x:1000:1000::/home/carol:/bin/sh\n");
    writeFileSync(shadow, `carol:${made.hash}:19000:0:99999:7:::\n`);
    const hasher = countingHasher();
    const auth = await Authenticator.create({ passwdPath: passwd, shadowPath: shadow, systemAccountsShareCapture: true }, { hasher });
    let turns = 0;
    let checking = true;
    const tick = () => {
      turns++;
      if (checking) setImmediate(tick);
    };
    setImmediate(tick);
    const result = await auth.authenticate(pwd("192.0.2.30", "carol", "pw"));
    checking = false;
    expect(result).toEqual({ ok: true, user: "carol" });
    expect(hasher.hashes).toBe(1);
    expect(turns).toBeGreaterThan(1);
    hasher.pool.close();
  });
});
