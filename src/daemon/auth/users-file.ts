// probe's own password file for `probe rpcapd --users FILE`: `user:hash` lines made by
// `probe passwd USER` (argon2id through Bun.password), parsed strictly with line numbers,
// and verified with the same work whether or not the user exists (CVE-2019-15162).
import { readFileSync, statSync } from "node:fs";
import { MAX_USERNAME_CHARS } from "./auth-settings.ts";

/**
 * Hash checked when the user is unknown and the file is empty, so that an unknown name costs
 * one argon2id verification like a known one. It is the hash of 32 random bytes that were
 * thrown away: nothing verifies against it. Parameters are Bun.password's defaults
 * (m=65536 KiB, t=2, p=1), the same `probe passwd` uses.
 */
const UNMATCHABLE_ARGON2ID_HASH =
  "$argon2id$v=19$m=65536,t=2,p=1$ct13gwkw1l/XN5bKjwiDbbDKGXXob0w3UOOI3wOBjmc$Ioc7QTy8A+OhNzspyVn2Rw/+2uUQmo1UCg5SrWF8ew0";

/** PHC strings Bun.password writes for argon2 (RFC 9106 parameters, unpadded base64). */
const ARGON2_HASH_PATTERN = /^\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
/** Modular-crypt bcrypt ($2a$/$2b$/$2y$, two-digit cost, 22 salt + 31 hash characters). */
const BCRYPT_HASH_PATTERN = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;
/** Control characters (C0, DEL) that may not appear in a user name. */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/** Stable codes of {@link UsersFileError}, asserted by tests. */
export const UsersFileErrorCode = {
  MALFORMED_LINE: "malformed-line",
  BAD_USERNAME: "bad-username",
  UNSUPPORTED_HASH: "unsupported-hash",
  DUPLICATE_USER: "duplicate-user",
  UNREADABLE: "unreadable",
} as const;
export type UsersFileErrorCode = (typeof UsersFileErrorCode)[keyof typeof UsersFileErrorCode];

/** A users file the daemon refuses to start with; `line` is 1-based (0 when not about a line). */
export class UsersFileError extends Error {
  override readonly name = "UsersFileError";
  constructor(
    readonly code: UsersFileErrorCode,
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

/** A parsed users file: user name to password hash, in file order. */
export interface UsersFile {
  readonly entries: ReadonlyMap<string, string>;
  /** Where it came from, for log lines ("<memory>" when parsed from text). */
  readonly source: string;
}

/**
 * Why a user name is unacceptable, or undefined when it is fine: 1..64 characters, no ':'
 * (the field separator), no control characters (newline would split the line, NUL would cut
 * the name short in C), and not starting with '#' (that line would read as a comment).
 */
export function usernameProblem(username: string): string | undefined {
  const chars = [...username].length;
  if (chars === 0) return "user name is empty";
  if (chars > MAX_USERNAME_CHARS) return `user name is longer than ${MAX_USERNAME_CHARS} characters`;
  if (username.includes(":")) return "user name contains ':'";
  if (CONTROL_CHARACTER.test(username)) return "user name contains a control character";
  if (username.startsWith("#")) return "user name starts with '#'";
  if (username !== username.trim()) return "user name starts or ends with white space";
  return undefined;
}

/** True for the password hashes the users file accepts (argon2 or bcrypt, as Bun.password writes). */
export function isSupportedPasswordHash(hash: string): boolean {
  return ARGON2_HASH_PATTERN.test(hash) || BCRYPT_HASH_PATTERN.test(hash);
}

/**
 * Parses a users file. Blank lines and lines starting with '#' are skipped; every other line
 * must be `user:hash`. Throws {@link UsersFileError} naming the first bad line.
 */
export function parseUsersFile(text: string, source = "<memory>"): UsersFile {
  const entries = new Map<string, string>();
  const firstLine = new Map<string, number>();
  const lines = text.split("\n");
  lines.forEach((raw, index) => {
    const lineNumber = index + 1;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const colon = trimmed.indexOf(":");
    if (colon < 0) {
      throw new UsersFileError(UsersFileErrorCode.MALFORMED_LINE, `${source}:${lineNumber}: expected 'user:hash'`, lineNumber);
    }
    const username = trimmed.slice(0, colon);
    const hash = trimmed.slice(colon + 1);
    const problem = usernameProblem(username);
    if (problem) throw new UsersFileError(UsersFileErrorCode.BAD_USERNAME, `${source}:${lineNumber}: ${problem}`, lineNumber);
    if (!isSupportedPasswordHash(hash)) {
      throw new UsersFileError(
        UsersFileErrorCode.UNSUPPORTED_HASH,
        `${source}:${lineNumber}: the hash of '${username}' is not an argon2 or bcrypt hash (make one with 'probe passwd ${username}')`,
        lineNumber,
      );
    }
    const earlier = firstLine.get(username);
    if (earlier !== undefined) {
      throw new UsersFileError(
        UsersFileErrorCode.DUPLICATE_USER,
        `${source}:${lineNumber}: user '${username}' is already defined on line ${earlier}`,
        lineNumber,
      );
    }
    firstLine.set(username, lineNumber);
    entries.set(username, hash);
  });
  return Object.freeze({ entries, source });
}

/**
 * Reads and parses a users file. `warnings` carries what the operator should fix but need not
 * stop for: a world-writable file lets any local user add an account.
 */
export function loadUsersFile(path: string): { users: UsersFile; warnings: string[] } {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsersFileError(UsersFileErrorCode.UNREADABLE, `${path}: ${(error as Error).message}`, 0);
  }
  const warnings: string[] = [];
  // S_IWOTH: anyone on the machine could append a line and let themselves in.
  if (mode & 0o002) warnings.push(`${path} is world-writable: any local user can add an account (chmod o-w ${path})`);
  return { users: parseUsersFile(text, path), warnings };
}

/**
 * Checks a password against the users file. An unknown user costs one hash verification like a
 * known one: against the first user's hash (same parameters as the real ones), or a hash nothing
 * matches when the file is empty; its outcome is thrown away. A hash Bun cannot read counts as a
 * mismatch, never an exception. `verify` is Bun.password.verify unless the daemon passes its
 * hashing threads (hash-worker-pool.ts).
 */
export async function verifyUserPassword(
  users: UsersFile,
  username: string,
  password: string,
  verify: (password: string, hash: string) => Promise<boolean> = (p, h) => Bun.password.verify(p, h),
): Promise<boolean> {
  const stored = users.entries.get(username);
  const hash = stored ?? users.entries.values().next().value ?? UNMATCHABLE_ARGON2ID_HASH;
  let matches: boolean;
  try {
    matches = await verify(password, hash);
  } catch {
    matches = false;
  }
  return stored !== undefined && matches;
}

/** Cost knobs for {@link hashPasswordLine}; Bun's defaults (m=65536 KiB, t=2) when omitted. */
export interface PasswordHashCost {
  /** argon2 memory in KiB. */
  memoryCost?: number;
  /** argon2 passes over memory. */
  timeCost?: number;
}

/**
 * A users-file line `user:$argon2id$...` for this user and password. Throws a plain Error when the
 * user name is unacceptable or the password is empty.
 */
export async function hashPasswordLine(username: string, password: string, cost: PasswordHashCost = {}): Promise<string> {
  const problem = usernameProblem(username);
  if (problem) throw new Error(problem);
  if (password.length === 0) throw new Error("password is empty");
  const hash = await Bun.password.hash(password, { algorithm: "argon2id", ...cost });
  return `${username}:${hash}`;
}
