// Users file for `probe rpcapd --users`: parsing rows (good, malformed, duplicate), user-name
// rules, hash/verify round trip, and unknown users doing the same work as known ones.
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  hashPasswordLine,
  isSupportedPasswordHash,
  loadUsersFile,
  parseUsersFile,
  usernameProblem,
  UsersFileError,
  UsersFileErrorCode,
  verifyUserPassword,
} from "../../src/daemon/auth/index.ts";

/** Cheap argon2id for tests (256 KiB, one pass); production uses Bun's defaults. */
const CHEAP = { memoryCost: 256, timeCost: 1 } as const;
const ARGON = "$argon2id$v=19$m=65536,t=2,p=1$ct13gwkw1l/XN5bKjwiDbbDKGXXob0w3UOOI3wOBjmc$Ioc7QTy8A+OhNzspyVn2Rw/+2uUQmo1UCg5SrWF8ew0";
const BCRYPT = "$2b$04$kQdeP5xAAsXYhTYtcaOHEev8etblvLhO6p4egbgHL1xMB5K5yltP.";

const dir = mkdtempSync(join(tmpdir(), "probe-auth-users-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("parseUsersFile: good rows", () => {
  const rows: [string, string, Record<string, string>][] = [
    ["empty file", "", {}],
    ["comments and blank lines only", "# users\n\n   \n# more\n", {}],
    ["one argon2id user", `alice:${ARGON}\n`, { alice: ARGON }],
    ["bcrypt accepted (Bun.password.verify reads it)", `bob:${BCRYPT}`, { bob: BCRYPT }],
    ["CRLF line ends", `alice:${ARGON}\r\nbob:${BCRYPT}\r\n`, { alice: ARGON, bob: BCRYPT }],
    ["surrounding white space trimmed", `  alice:${ARGON}  \n`, { alice: ARGON }],
    ["non-ASCII name", `jürgen:${ARGON}`, { "jürgen": ARGON }],
    ["two users, comment between", `alice:${ARGON}\n# bob below\nbob:${BCRYPT}\n`, { alice: ARGON, bob: BCRYPT }],
  ];
  for (const [name, text, expected] of rows) {
    test(name, () => {
      const users = parseUsersFile(text, "users");
      expect(Object.fromEntries(users.entries)).toEqual(expected);
      expect(users.source).toBe("users");
    });
  }
});

describe("parseUsersFile: error rows name the line", () => {
  const rows: [string, string, UsersFileErrorCode, number][] = [
    ["no colon", "alice\n", UsersFileErrorCode.MALFORMED_LINE, 1],
    ["empty user name", `:${ARGON}`, UsersFileErrorCode.BAD_USERNAME, 1],
    ["65-character user name", `${"a".repeat(65)}:${ARGON}`, UsersFileErrorCode.BAD_USERNAME, 1],
    ["control character in name", `al\u0001ice:${ARGON}`, UsersFileErrorCode.BAD_USERNAME, 1],
    ["plain-text password", "# x\n\nalice:hunter2\n", UsersFileErrorCode.UNSUPPORTED_HASH, 3],
    ["empty hash", "alice:", UsersFileErrorCode.UNSUPPORTED_HASH, 1],
    ["sha512crypt hash (system format, not ours)", "alice:$6$salt$abc", UsersFileErrorCode.UNSUPPORTED_HASH, 1],
    ["argon2 hash with a colon tail", `alice:${ARGON}:extra`, UsersFileErrorCode.UNSUPPORTED_HASH, 1],
    ["truncated argon2 hash", `alice:${ARGON.slice(0, 40)}`, UsersFileErrorCode.UNSUPPORTED_HASH, 1],
    ["duplicate user", `alice:${ARGON}\nbob:${BCRYPT}\nalice:${BCRYPT}\n`, UsersFileErrorCode.DUPLICATE_USER, 3],
  ];
  for (const [name, text, code, line] of rows) {
    test(name, () => {
      let caught: unknown;
      try {
        parseUsersFile(text, "users.txt");
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(UsersFileError);
      const error = caught as UsersFileError;
      expect(error.code).toBe(code);
      expect(error.line).toBe(line);
      expect(error.message).toStartWith(`users.txt:${line}: `);
    });
  }
  test("duplicate message points at the first definition", () => {
    expect(() => parseUsersFile(`alice:${ARGON}\n\nalice:${ARGON}`)).toThrow("already defined on line 1");
  });
});

describe("usernameProblem", () => {
  const rows: [string, string | undefined][] = [
    ["alice", undefined],
    ["a", undefined],
    ["a".repeat(64), undefined],
    ["é".repeat(64), undefined],
    ["", "user name is empty"],
    ["a".repeat(65), "user name is longer than 64 characters"],
    ["a:b", "user name contains ':'"],
    ["a\nb", "user name contains a control character"],
    ["a\u0000b", "user name contains a control character"],
    ["#root", "user name starts with '#'"],
    [" alice", "user name starts or ends with white space"],
  ];
  for (const [name, problem] of rows) test(JSON.stringify(name).slice(0, 30), () => expect(usernameProblem(name)).toBe(problem));
});

describe("hashes", () => {
  test("hashPasswordLine makes a parseable argon2id line that verifies", async () => {
    const line = await hashPasswordLine("alice", "correct horse", CHEAP);
    expect(line).toStartWith("alice:$argon2id$");
    const users = parseUsersFile(`${line}\n`);
    expect(await verifyUserPassword(users, "alice", "correct horse")).toBe(true);
    expect(await verifyUserPassword(users, "alice", "correct horsE")).toBe(false);
    expect(await verifyUserPassword(users, "alice", "")).toBe(false);
    expect(await verifyUserPassword(users, "Alice", "correct horse")).toBe(false);
  });

  test("default cost is Bun's argon2id defaults", async () => {
    const line = await hashPasswordLine("bob", "pw");
    expect(line).toMatch(/^bob:\$argon2id\$v=19\$m=65536,t=2,p=1\$/);
    expect(isSupportedPasswordHash(line.slice(4))).toBe(true);
  });

  test("hashPasswordLine refuses bad names and empty passwords", async () => {
    await expect(hashPasswordLine("a:b", "pw", CHEAP)).rejects.toThrow("contains ':'");
    await expect(hashPasswordLine("alice", "", CHEAP)).rejects.toThrow("password is empty");
  });

  test("an unknown user with another user's password is refused (the dummy check's result is discarded)", async () => {
    const users = parseUsersFile(`${await hashPasswordLine("alice", "s3cret", CHEAP)}\n`);
    expect(await verifyUserPassword(users, "mallory", "s3cret")).toBe(false);
  });

  test("an unknown user costs one verification, against a real user's hash (CVE-2019-15162)", async () => {
    const alice = (await hashPasswordLine("alice", "s3cret", CHEAP)).slice("alice:".length);
    const users = parseUsersFile(`alice:${alice}\n`);
    const spy = spyOn(Bun.password, "verify");
    try {
      await verifyUserPassword(users, "mallory", "guess");
      await verifyUserPassword(users, "alice", "guess");
      expect(spy.mock.calls.map((call) => call[1])).toEqual([alice, alice]);
    } finally {
      spy.mockRestore();
    }
  });

  test("an empty users file refuses everyone without throwing", async () => {
    expect(await verifyUserPassword(parseUsersFile(""), "alice", "anything")).toBe(false);
  });

  test("bcrypt lines verify too", async () => {
    const hash = await Bun.password.hash("pw", { algorithm: "bcrypt", cost: 4 });
    const users = parseUsersFile(`carol:${hash}`);
    expect(await verifyUserPassword(users, "carol", "pw")).toBe(true);
    expect(await verifyUserPassword(users, "carol", "pW")).toBe(false);
  });
});

describe("loadUsersFile", () => {
  test("reads a file; a world-writable one loads with a warning", async () => {
    const path = join(dir, "users");
    writeFileSync(path, `${await hashPasswordLine("alice", "pw", CHEAP)}\n`);
    chmodSync(path, 0o600);
    expect(loadUsersFile(path).warnings).toEqual([]);
    expect(loadUsersFile(path).users.entries.has("alice")).toBe(true);
    chmodSync(path, 0o666);
    const { warnings } = loadUsersFile(path);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("world-writable");
  });

  test("a missing file is an 'unreadable' error", () => {
    try {
      loadUsersFile(join(dir, "nope"));
      throw new Error("no error");
    } catch (error) {
      expect(error).toBeInstanceOf(UsersFileError);
      expect((error as UsersFileError).code).toBe(UsersFileErrorCode.UNREADABLE);
    }
  });
});
