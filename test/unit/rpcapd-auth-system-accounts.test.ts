// System accounts as rpcapd checks them (daemon_AuthUserPwd): passwd/shadow files written to a
// temporary folder, hashes made by the real libcrypt through bun:ffi. Covers locked, empty,
// expired and unknown accounts, and crypt failures as plain failures (CVE-2019-15163).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cryptHash, verifySystemAccount, type AccountCheck } from "../../src/daemon/auth/index.ts";

const dir = mkdtempSync(join(tmpdir(), "probe-auth-system-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function hashOf(password: string, setting: string): string {
  const result = cryptHash(password, setting);
  if (!result.ok) throw new Error(`test setup: ${result.reason}`);
  return result.hash;
}

const SHA512 = hashOf("sha-pass", "$6$testsalt");
const YESCRYPT = hashOf("yes-pass", "$y$j9T$w0kkO1m8X9NqIkR3ChZot.");
const BCRYPT = hashOf("bf-pass", "$2b$05$abcdefghijklmnopqrstuu");
const DAY_MS = 86_400_000;
/** A fixed "today" for expiry: day 20000 since the epoch (2024-10-04). */
const TODAY = 20_000;

const passwdPath = join(dir, "passwd");
const shadowPath = join(dir, "shadow");
writeFileSync(
  passwdPath,
  [
    "root:x:0:0:root:/root:/bin/bash",
    "sha:x:1000:1000::/home/sha:/bin/sh",
    "yes:x:1001:1001::/home/yes:/bin/sh",
    "bf:x:1002:1002::/home/bf:/bin/sh",
    "locked:x:1003:1003::/:/usr/sbin/nologin",
    "star:x:1004:1004::/:/usr/sbin/nologin",
    "empty:x:1005:1005::/:/bin/sh",
    "expired:x:1006:1006::/:/bin/sh",
    "expires-tomorrow:x:1007:1007::/:/bin/sh",
    "weird:x:1008:1008::/:/bin/sh",
    "noshadow:x:1009:1009::/:/bin/sh",
    `inline:${SHA512}:1010:1010::/:/bin/sh`,
    "+nis:x:::::",
    "broken-line",
    "",
  ].join("\n"),
);
writeFileSync(
  shadowPath,
  [
    "root:*:20228:0:99999:7:::",
    `sha:${SHA512}:20228:0:99999:7:::`,
    `yes:${YESCRYPT}:20228:0:99999:7:::`,
    `bf:${BCRYPT}:20228:0:99999:7:::`,
    `locked:!${SHA512}:20228:0:99999:7:::`,
    "star:*:20228:0:99999:7:::",
    "empty::20228:0:99999:7:::",
    `expired:${SHA512}:20228:0:99999:7::${TODAY}:`,
    `expires-tomorrow:${SHA512}:20228:0:99999:7::${TODAY + 1}:`,
    "weird:$99$abc$def:20228:0:99999:7:::",
    "",
  ].join("\n"),
);

const options = { passwdPath, shadowPath, now: () => TODAY * DAY_MS + 3_600_000 };

function check(user: string, password: string, extra = {}): Promise<AccountCheck> {
  return verifySystemAccount(user, password, { ...options, ...extra });
}

describe("cryptHash (libcrypt through bun:ffi)", () => {
  test("re-hashing with the stored hash as setting reproduces it", () => {
    expect(hashOf("sha-pass", SHA512)).toBe(SHA512);
    expect(SHA512).toStartWith("$6$testsalt$");
    expect(YESCRYPT).toStartWith("$y$j9T$");
    expect(BCRYPT).toStartWith("$2b$05$");
  });

  const failing: [string, string][] = [
    ["unsupported method $99$", "$99$abc$def"],
    ["empty setting", ""],
    ["locked marker", "!$6$x$y"],
    ["garbage", "*"],
    ["malformed yescrypt", "$y$j9T$abcdefghijklmnopqrstuv"],
  ];
  for (const [name, setting] of failing) {
    test(`crypt failure is a value, not a crash: ${name}`, () => {
      const result = cryptHash("pw", setting);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toContain("crypt_r()");
    });
  }

  test("a NUL in the password is refused before reaching C", () => {
    expect(cryptHash("sha-pass\0tail", SHA512)).toEqual({ ok: false, reason: "NUL byte in password or setting" });
  });

  test("a missing libcrypt is a failure value", () => {
    const result = cryptHash("pw", SHA512, "libcrypt-does-not-exist.so.9");
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain("cannot load");
  });
});

describe("verifySystemAccount", () => {
  const rows: [string, string, string, true | string][] = [
    ["sha512crypt, right password", "sha", "sha-pass", true],
    ["yescrypt, right password", "yes", "yes-pass", true],
    ["bcrypt, right password", "bf", "bf-pass", true],
    ["hash kept in /etc/passwd (no shadowing)", "inline", "sha-pass", true],
    ["expiry tomorrow still works today", "expires-tomorrow", "sha-pass", true],
    ["wrong password", "sha", "sha-pasS", 'wrong password for "sha"'],
    ["empty password", "sha", "", 'wrong password for "sha"'],
    ["unknown user", "nobody-here", "sha-pass", 'no account "nobody-here"'],
    ["user name differs in case", "SHA", "sha-pass", 'no account "SHA"'],
    ["locked with '!' (password still right)", "locked", "sha-pass", "is locked"],
    ["'*' (no password login)", "star", "anything", "is locked"],
    ["root with '*'", "root", "", "is locked"],
    ["empty hash: passwordless login refused", "empty", "", "empty password hash"],
    ["expired account (password still right)", "expired", "sha-pass", "expired"],
    ["passwd says x, shadow has no line", "noshadow", "x", "has no entry"],
    ["crypt failure on a $99$ hash (CVE-2019-15163)", "weird", "pw", "crypt failed"],
    ["NUL-truncated password does not verify", "sha", "sha-pass\0junk", "crypt failed"],
    ["NIS compat line is not an account", "+nis", "", "no account"],
    ["damaged line is not an account", "broken-line", "", "no account"],
  ];
  for (const [name, user, password, expected] of rows) {
    test(name, async () => {
      const result = await check(user, password);
      if (expected === true) {
        expect(result).toEqual({ ok: true });
      } else {
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.reason).toContain(expected);
      }
    });
  }

  test("unreadable shadow file is a failure with the reason, not a throw", async () => {
    const result = await check("sha", "sha-pass", { shadowPath: join(dir, "missing-shadow") });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain("cannot read the account files");
  });

  test("missing libcrypt: right password still fails, without throwing", async () => {
    const result = await check("sha", "sha-pass", { libcryptPath: "libcrypt-does-not-exist.so.9" });
    expect(result.ok).toBe(false);
  });
});

describe("same work for every user name (CVE-2019-15162)", () => {
  // Counts crypt calls instead of measuring time: every name-dependent outcome hashes exactly once,
  // with a real hash from the shadow file as setting, so unknown and locked names cost like known.
  for (const [user, password] of [
    ["sha", "wrong"],
    ["sha", "sha-pass"],
    ["nobody-here", "x"],
    ["locked", "x"],
    ["star", "x"],
    ["empty", ""],
    ["expired", "x"],
    ["noshadow", "x"],
  ] as const) {
    test(`'${user}' costs one crypt over a real hash`, async () => {
      const settings: string[] = [];
      const counting: typeof cryptHash = (pw, setting, path) => {
        settings.push(setting);
        return cryptHash(pw, setting, path);
      };
      await check(user, password, { crypt: counting });
      expect(settings).toHaveLength(1);
      expect(settings[0]).toMatch(/^\$(6|y|2b)\$/);
    });
  }
});
