// The AUTH decision: null auth only with -n, passwords from a users file or system accounts,
// one public answer for every failure (CVE-2019-15162), per-peer pauses, settings checked by zod.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memoryLogger } from "../../src/logging/index.ts";
import { RpcapAuthType, RpcapErrorCode } from "../../src/protocols/rpcap/index.ts";
import {
  AUTH_FAILED_PUBLIC_MESSAGE,
  Authenticator,
  authSettingsSchema,
  hashPasswordLine,
  NULL_AUTH_USER,
  UsersFileError,
  UsersFileErrorCode,
  type AuthRequest,
  type AuthResult,
  type PasswordBackend,
} from "../../src/daemon/auth/index.ts";

const CHEAP = { memoryCost: 256, timeCost: 1 } as const;
const dir = mkdtempSync(join(tmpdir(), "probe-auth-authenticator-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const usersFile = join(dir, "users");
writeFileSync(usersFile, `# test users\n${await hashPasswordLine("alice", "s3cret", CHEAP)}\n${await hashPasswordLine("bob", "hunter2", CHEAP)}\n`);
chmodSync(usersFile, 0o600);

function pwd(peerAddress: string, username: string, password: string): AuthRequest {
  return { peerAddress, authType: RpcapAuthType.PWD, username, password };
}

function failure(result: AuthResult) {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
  return result;
}

/** A backend that records calls; accepts one user. */
function fakeBackend(): PasswordBackend & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    description: "fake accounts",
    async check(username, password) {
      calls.push(username);
      return username === "carol" && password === "pw" ? { ok: true } : { ok: false, reason: `nope for '${username}'` };
    },
  };
}

describe("password auth against a users file", () => {
  test("right password: ok with the user name", async () => {
    const auth = await Authenticator.create({ usersFile });
    expect(await auth.authenticate(pwd("192.0.2.1", "alice", "s3cret"))).toEqual({ ok: true, user: "alice" });
    expect(await auth.authenticate(pwd("192.0.2.1", "bob", "hunter2"))).toEqual({ ok: true, user: "bob" });
  });

  test("unknown user and wrong password look the same to the peer (CVE-2019-15162)", async () => {
    const auth = await Authenticator.create({ usersFile });
    const wrong = failure(await auth.authenticate(pwd("192.0.2.10", "alice", "guess")));
    const unknown = failure(await auth.authenticate(pwd("192.0.2.11", "mallory", "guess")));
    const { logDetail: wrongDetail, ...wrongPublic } = wrong;
    const { logDetail: unknownDetail, ...unknownPublic } = unknown;
    expect(wrongPublic).toEqual(unknownPublic);
    expect(wrongPublic).toEqual({ ok: false, publicMessage: "Authentication failed", pauseMs: 1000, errorCode: RpcapErrorCode.AUTH_FAILED });
    expect(RpcapErrorCode.AUTH_FAILED).toBe(18);
    // The operator still learns which it was.
    expect(wrongDetail).toContain('wrong password for "alice"');
    expect(unknownDetail).toContain('no user "mallory"');
  });

  test("a malformed users file stops creation with its line number", async () => {
    const bad = join(dir, "bad-users");
    writeFileSync(bad, `${await hashPasswordLine("alice", "x", CHEAP)}\nbob:plaintext\n`);
    try {
      await Authenticator.create({ usersFile: bad });
      throw new Error("created");
    } catch (error) {
      expect(error).toBeInstanceOf(UsersFileError);
      expect((error as UsersFileError).code).toBe(UsersFileErrorCode.UNSUPPORTED_HASH);
      expect((error as UsersFileError).line).toBe(2);
    }
  });

  test("a world-writable users file loads with a warning in the log", async () => {
    const open = join(dir, "open-users");
    writeFileSync(open, await hashPasswordLine("alice", "x", CHEAP));
    chmodSync(open, 0o666);
    const log = memoryLogger();
    await Authenticator.create({ usersFile: open }, { log });
    expect(log.lines.some((line) => line.startsWith("warn:") && line.includes("world-writable"))).toBe(true);
  });
});

describe("null authentication (rpcapd -n)", () => {
  test("refused without -n, with the same public answer and a pause", async () => {
    const auth = await Authenticator.create({ usersFile });
    const result = failure(await auth.authenticate({ peerAddress: "192.0.2.1", authType: RpcapAuthType.NULL, username: "", password: "" }));
    expect(result.publicMessage).toBe(AUTH_FAILED_PUBLIC_MESSAGE);
    expect(result.pauseMs).toBe(1000);
    expect(result.logDetail).toContain("null authentication is not permitted");
  });

  test("allowed with -n", async () => {
    const auth = await Authenticator.create({ usersFile, nullAuth: true });
    expect(await auth.authenticate({ peerAddress: "192.0.2.1", authType: RpcapAuthType.NULL, username: "", password: "" })).toEqual({
      ok: true,
      user: NULL_AUTH_USER,
    });
  });

  test("-n does not let a wrong password through", async () => {
    const auth = await Authenticator.create({ usersFile, nullAuth: true });
    expect((await auth.authenticate(pwd("192.0.2.1", "alice", "guess"))).ok).toBe(false);
  });
});

describe("requests refused before any password check", () => {
  const cases: [string, AuthRequest, string][] = [
    ["unsupported auth type", { peerAddress: "192.0.2.1", authType: 7, username: "carol", password: "pw" }, "authentication type 7"],
    ["password over the byte cap", pwd("192.0.2.1", "carol", "é".repeat(513)), "1026 bytes exceeds the 1024-byte limit"],
    ["user name over 64 characters", pwd("192.0.2.1", "c".repeat(65), "pw"), "65 characters exceeds"],
  ];
  for (const [name, request, detail] of cases) {
    test(name, async () => {
      const backend = fakeBackend();
      const auth = await Authenticator.create({}, { backend });
      const result = failure(await auth.authenticate(request));
      expect(result.publicMessage).toBe(AUTH_FAILED_PUBLIC_MESSAGE);
      expect(result.logDetail).toContain(detail);
      expect(backend.calls).toEqual([]);
    });
  }

  test("a password exactly at the cap is checked", async () => {
    const backend = fakeBackend();
    const auth = await Authenticator.create({ maxPasswordBytes: 4 }, { backend });
    await auth.authenticate(pwd("192.0.2.1", "carol", "abcd"));
    expect(backend.calls).toEqual(["carol"]);
  });
});

describe("failures never throw and never leak", () => {
  test("a backend that throws becomes a plain failure", async () => {
    const backend: PasswordBackend = {
      description: "exploding",
      check: async () => {
        throw new Error("boom");
      },
    };
    const auth = await Authenticator.create({}, { backend });
    const result = failure(await auth.authenticate(pwd("192.0.2.1", "carol", "pw")));
    expect(result.publicMessage).toBe(AUTH_FAILED_PUBLIC_MESSAGE);
    expect(result.logDetail).toContain("internal error");
    expect(result.logDetail).toContain("boom");
  });

  test("control characters in a user name are escaped in the log detail", async () => {
    const auth = await Authenticator.create({}, { backend: fakeBackend() });
    const result = failure(await auth.authenticate(pwd("192.0.2.1", "eve\nFAKE LOG LINE", "pw")));
    expect(result.logDetail).not.toContain("\n");
    expect(result.logDetail).toContain("eve\\nFAKE LOG LINE");
  });
});

describe("per-peer pauses", () => {
  test("grow with repeated failures from one address and are per address", async () => {
    const clock = { now: 5_000_000 };
    const auth = await Authenticator.create({}, { backend: fakeBackend(), now: () => clock.now });
    const pauses: number[] = [];
    for (let i = 0; i < 4; i++) {
      pauses.push(failure(await auth.authenticate(pwd("198.51.100.7", "carol", "bad"))).pauseMs);
      // The next AUTH from this address is held until the pause is over; let the clock get there.
      clock.now += pauses.at(-1)!;
    }
    expect(pauses).toEqual([1000, 2000, 4000, 8000]);
    clock.now -= 8000;
    expect(auth.failurePauseMs("198.51.100.7")).toBe(8000);
    expect(auth.failurePauseMs("::ffff:198.51.100.7")).toBe(8000);
    expect(failure(await auth.authenticate(pwd("198.51.100.8", "carol", "bad"))).pauseMs).toBe(1000);
    expect(auth.failurePauseMs("198.51.100.9")).toBe(0);
  });

  test("a success resets the address; decay forgives with time", async () => {
    const clock = { now: 5_000_000 };
    const auth = await Authenticator.create({ failureDecayMs: 10_000 }, { backend: fakeBackend(), now: () => clock.now });
    const attempt = async (password: string) => {
      const result = await auth.authenticate(pwd("198.51.100.7", "carol", password));
      if (!result.ok) clock.now += result.pauseMs; // wait out the pause before the next AUTH
      return result;
    };
    await attempt("bad");
    await attempt("bad");
    expect((await attempt("pw")).ok).toBe(true);
    expect(auth.failurePauseMs("198.51.100.7")).toBe(0);
    await attempt("bad");
    await attempt("bad");
    clock.now -= 2000;
    clock.now += 10_000;
    expect(auth.failurePauseMs("198.51.100.7")).toBe(1000);
    clock.now += 10_000;
    expect(auth.failurePauseMs("198.51.100.7")).toBe(0);
  });

  test("configured base and cap", async () => {
    const auth = await Authenticator.create({ failurePauseMs: 200, maxFailurePauseMs: 500 }, { backend: fakeBackend() });
    const pauses: number[] = [];
    for (let i = 0; i < 4; i++) pauses.push(failure(await auth.authenticate(pwd("203.0.113.1", "x", "y"))).pauseMs);
    expect(pauses).toEqual([200, 400, 500, 500]);
  });
});

describe("settings (zod)", () => {
  test("defaults", () => {
    expect(authSettingsSchema.parse({})).toEqual({
      nullAuth: false,
      passwdPath: "/etc/passwd",
      shadowPath: "/etc/shadow",
      failurePauseMs: 1000,
      maxFailurePauseMs: 30000,
      failureDecayMs: 60000,
      maxTrackedPeers: 4096,
      maxPasswordBytes: 1024,
      maxPendingChecksPerPeer: 4,
      maxPendingChecks: 32,
      hashWorkers: 2,
      hashTimeoutMs: 10000,
      hashWorkerIdleMs: 60000,
      systemAccountsShareCapture: false,
    });
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ["negative pause", { failurePauseMs: -1 }, "failurePauseMs"],
    ["cap below the first pause", { failurePauseMs: 5000, maxFailurePauseMs: 1000 }, "maxFailurePauseMs"],
    ["fractional decay", { failureDecayMs: 1.5 }, "failureDecayMs"],
    ["zero tracked peers", { maxTrackedPeers: 0 }, "maxTrackedPeers"],
    ["null auth as a string", { nullAuth: "yes" }, "nullAuth"],
    ["empty users file path", { usersFile: "" }, "usersFile"],
  ];
  for (const [name, input, field] of bad) {
    test(`refused: ${name}`, async () => {
      const result = authSettingsSchema.safeParse(input);
      expect(result.success).toBe(false);
      expect(result.error?.issues.map((i) => i.path.join("."))).toContain(field);
      await expect(Authenticator.create(input as never)).rejects.toThrow();
    });
  }
});

describe("system accounts when no users file is given", () => {
  test("an unreadable shadow file is a load warning and every login fails", async () => {
    const log = memoryLogger();
    const auth = await Authenticator.create({ shadowPath: join(dir, "no-shadow"), systemAccountsShareCapture: true }, { log });
    expect(auth.backend.description).toContain("system accounts");
    expect(log.lines.some((line) => line.includes("cannot read") && line.includes("no-shadow"))).toBe(true);
    const result = failure(await auth.authenticate(pwd("192.0.2.1", "root", "x")));
    expect(result.logDetail).toContain("cannot read the account files");
  });
});
