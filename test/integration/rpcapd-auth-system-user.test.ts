// System-account AUTH against a real throwaway user: created with useradd + chpasswd (as root),
// checked through libcrypt for sha512crypt and yescrypt, locked, and given an unsupported `$99$`
// hash (crypt failure must be a plain failure, CVE-2019-15163). The user is always deleted and
// /etc is left byte-for-byte as found (shadow-utils' `-` backup files included).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Authenticator, verifySystemAccount, type AuthResult } from "../../src/daemon/auth/index.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { RpcapAuthType } from "../../src/protocols/rpcap/index.ts";

const ETC_FILES = ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/subuid", "/etc/subgid"];
/** shadow-utils rewrites these backups on every change; we put them back (or remove new ones) afterwards. */
const ETC_BACKUPS = ETC_FILES.map((path) => `${path}-`);

const isRoot = process.getuid?.() === 0;
const hasTools = ["/usr/sbin/useradd", "/usr/sbin/userdel", "/usr/sbin/chpasswd", "/usr/sbin/usermod"].every(existsSync);
const runnable = isRoot && hasTools;

const USER = `probe-auth-test-${crypto.getRandomValues(new Uint8Array(4)).reduce((s, b) => s + b.toString(16).padStart(2, "0"), "")}`;
const PASSWORD = `pw-${crypto.randomUUID()}`;

const snapshot = new Map<string, Buffer>();
let created = false;

function run(argv: string[], stdin?: string): void {
  const result = Bun.spawnSync(argv, { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr.toString()}`);
}

function setPassword(method: string): void {
  run(["/usr/sbin/chpasswd", "-c", method], `${USER}:${PASSWORD}\n`);
}

function shadowHash(): string {
  const line = readFileSync("/etc/shadow", "utf8").split("\n").find((l) => l.startsWith(`${USER}:`));
  return line?.split(":")[1] ?? "";
}

function pwd(username: string, password: string, peerAddress = "127.0.0.1") {
  return { peerAddress, authType: RpcapAuthType.PWD, username, password };
}

function publicPart(result: AuthResult) {
  if (result.ok) return result;
  const { logDetail: _detail, ...rest } = result;
  return rest;
}

// Without root or shadow-utils every test below is reported as skipped (bun test counts it under
// "skip"), never as a pass that tested nothing.
describe.skipIf(!runnable)(`system accounts: a real throwaway user (needs root and shadow-utils${runnable ? "" : "; skipped: not root or no useradd"})`, () => {
  beforeAll(() => {
    for (const path of [...ETC_FILES, ...ETC_BACKUPS]) if (existsSync(path)) snapshot.set(path, readFileSync(path));
    // -r (system account): no subordinate uid/gid ranges and no mail spool to clean up.
    run(["/usr/sbin/useradd", "-r", "-M", "-N", "-s", "/usr/sbin/nologin", USER]);
    created = true;
    setPassword("SHA512");
  });

  afterAll(() => {
    let userdelError: unknown;
    if (created) {
      try {
        run(["/usr/sbin/userdel", USER]);
      } catch (error) {
        userdelError = error;
      }
    }
    const changed = ETC_FILES.filter((path) => snapshot.has(path) && !readFileSync(path).equals(snapshot.get(path)!));
    if (changed.length === 0) {
      // The live files are as found; only the backups still hold our user. Put them back too.
      for (const path of ETC_BACKUPS) {
        const before = snapshot.get(path);
        if (before && !readFileSync(path).equals(before)) writeFileSync(path, before);
        if (!before && existsSync(path)) rmSync(path);
      }
    }
    if (userdelError) throw userdelError;
    expect(changed).toEqual([]);
  });

  test("sha512crypt: right password accepted, wrong refused (libcrypt via bun:ffi)", async () => {
    expect(shadowHash()).toStartWith("$6$");
    expect(await verifySystemAccount(USER, PASSWORD)).toEqual({ ok: true });
    const wrong = await verifySystemAccount(USER, `${PASSWORD}x`);
    expect(wrong.ok).toBe(false);
  });

  test("through the Authenticator: unknown user and wrong password look the same", async () => {
    const auth = await Authenticator.create({ systemAccountsShareCapture: true });
    expect(await auth.authenticate(pwd(USER, PASSWORD))).toEqual({ ok: true, user: USER });
    const wrong = await auth.authenticate(pwd(USER, "nope", "192.0.2.1"));
    const unknown = await auth.authenticate(pwd(`${USER}-x`, "nope", "192.0.2.2"));
    expect(publicPart(wrong)).toEqual(publicPart(unknown));
    expect(wrong.ok).toBe(false);
  });

  test("issue 9: without --system-accounts-share-capture the right password is refused (the capture would not run as the user)", async () => {
    const log = memoryLogger();
    const auth = await Authenticator.create({}, { log });
    const result = await auth.authenticate(pwd(USER, PASSWORD, "192.0.2.4"));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.publicMessage).toBe("Authentication failed");
      expect(result.logDetail).toContain("--system-accounts-share-capture");
    }
    expect(log.lines.some((line) => line.startsWith("warn:") && line.includes("system-account logins are off"))).toBe(true);
  });

  test("with NULL authentication the refusal of system accounts is a note (info), not a warning at every start", async () => {
    const log = memoryLogger();
    await Authenticator.create({ nullAuth: true }, { log });
    expect(log.lines.some((line) => line.startsWith("info:") && line.includes("system-account logins are off"))).toBe(true);
    expect(log.lines.some((line) => line.startsWith("warn:"))).toBe(false);
  });

  test("yescrypt hash set by chpasswd verifies too", async () => {
    setPassword("YESCRYPT");
    expect(shadowHash()).toStartWith("$y$");
    expect(await verifySystemAccount(USER, PASSWORD)).toEqual({ ok: true });
    expect((await verifySystemAccount(USER, "nope")).ok).toBe(false);
  });

  test("a locked account (usermod -L) is refused even with the right password", async () => {
    setPassword("SHA512");
    run(["/usr/sbin/usermod", "-L", USER]);
    expect(shadowHash()).toStartWith("!");
    const result = await verifySystemAccount(USER, PASSWORD);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain("locked");
    run(["/usr/sbin/usermod", "-U", USER]);
    expect(await verifySystemAccount(USER, PASSWORD)).toEqual({ ok: true });
  });

  test("an unsupported $99$ hash makes crypt fail: a plain failure, no crash (CVE-2019-15163)", async () => {
    run(["/usr/sbin/usermod", "-p", "$99$abcdefgh$ijklmnop", USER]);
    expect(shadowHash()).toBe("$99$abcdefgh$ijklmnop");
    const direct = await verifySystemAccount(USER, PASSWORD);
    expect(direct.ok).toBe(false);
    if (!direct.ok) expect(direct.reason).toContain("crypt failed");
    const auth = await Authenticator.create({ systemAccountsShareCapture: true });
    const result = await auth.authenticate(pwd(USER, PASSWORD, "192.0.2.3"));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.publicMessage).toBe("Authentication failed");
  });
});
