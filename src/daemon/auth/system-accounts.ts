// Password checks against the machine's own accounts, as libpcap's rpcapd does when it has no
// other source (daemon_AuthUserPwd: getpwnam, getspnam, crypt, strcmp): /etc/passwd and
// /etc/shadow read on each attempt, hashes checked with crypt_r(3) from libcrypt.
import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { peerText } from "../../logging/index.ts";
import { DEFAULT_PASSWD_PATH, DEFAULT_SHADOW_PATH } from "./auth-settings.ts";
import { cryptHash, DEFAULT_LIBCRYPT_PATH, type CryptResult } from "./libcrypt-ffi.ts";

/**
 * Setting hashed for a user that does not exist (or cannot log in) when the shadow file holds no
 * usable hash to borrow: sha512crypt with its default 5000 rounds, shadow-utils' ENCRYPT_METHOD
 * default on Debian. The result is always thrown away.
 */
const FALLBACK_DUMMY_SETTING = "$6$probeauthdummy$";

/** Milliseconds in a day: shadow(5) counts dates in days since 1970-01-01. */
const MS_PER_DAY = 86_400_000;

/** Where the account files are and which libcrypt to use; the defaults are the system's. */
export interface SystemAccountOptions {
  passwdPath?: string;
  shadowPath?: string;
  libcryptPath?: string;
  /** Clock for account expiry (ms since the epoch); tests pin it. */
  now?: () => number;
  /**
   * The hash function: the daemon passes its hashing threads' crypt (hash-worker-pool.ts), so
   * crypt_r never runs on the event loop; {@link cryptHash} (synchronous) when omitted.
   */
  crypt?: (password: string, setting: string, libcryptPath: string) => CryptResult | Promise<CryptResult>;
}

/** Result of a check: the reason is for the operator's log, never for the peer. */
export type AccountCheck = { ok: true } | { ok: false; reason: string };

/** One line of /etc/shadow (shadow(5)): the fields this check reads. */
interface ShadowEntry {
  hash: string;
  /** Account expiry in days since the epoch; undefined when the field is empty. */
  expireDays: number | undefined;
}

function readFields(path: string, minimumFields: number): Map<string, string[]> {
  const table = new Map<string, string[]>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(":");
    // NIS '+'/'-' compat lines and damaged lines name no local account; skip, do not fail.
    if (fields.length < minimumFields || !fields[0] || /^[+-]/.test(fields[0])) continue;
    // getpwnam/getspnam return the first match; keep the first, like them.
    if (!table.has(fields[0])) table.set(fields[0], fields);
  }
  return table;
}

function shadowEntry(fields: string[]): ShadowEntry {
  const expire = fields[7] ?? "";
  return { hash: fields[1] ?? "", expireDays: /^\d+$/.test(expire) ? Number(expire) : undefined };
}

/** A hash crypt can work on: modular-crypt form, not locked ('!'/'*'), not empty. */
function isUsableHash(hash: string): boolean {
  return hash.startsWith("$") && hash.length > 3;
}

/**
 * The setting hashed for users who cannot succeed: another account's real hash (so the work is
 * that of this machine's actual method and cost), or {@link FALLBACK_DUMMY_SETTING}.
 */
function dummySetting(shadow: Map<string, string[]>): string {
  for (const fields of shadow.values()) {
    const hash = fields[1] ?? "";
    if (isUsableHash(hash)) return hash;
  }
  return FALLBACK_DUMMY_SETTING;
}

function equalStrings(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Checks `username`/`password` against the system's accounts. Every failure that depends on the
 * user name (unknown, locked, passwordless, expired) still runs one crypt over a real hash so that
 * its time does not tell names apart (CVE-2019-15162). A crypt failure (NULL or a '*' token, e.g.
 * a `$99$` hash) is a plain failure (CVE-2019-15163). Needs read access to the shadow file (root
 * or group shadow); without it every check fails with that reason in the log.
 *
 * Only the local files are consulted: accounts from LDAP/SSSD via NSS or PAM are not seen, and
 * password ageing (shadow fields 3 to 7) is not enforced, as in rpcapd; account expiry is.
 */
export async function verifySystemAccount(
  username: string,
  password: string,
  options: SystemAccountOptions = {},
): Promise<AccountCheck> {
  const passwdPath = options.passwdPath ?? DEFAULT_PASSWD_PATH;
  const shadowPath = options.shadowPath ?? DEFAULT_SHADOW_PATH;
  const libcryptPath = options.libcryptPath ?? DEFAULT_LIBCRYPT_PATH;
  const now = options.now ?? Date.now;
  const crypt = options.crypt ?? cryptHash;
  let passwd: Map<string, string[]>;
  let shadow: Map<string, string[]>;
  try {
    passwd = readFields(passwdPath, 7);
    shadow = readFields(shadowPath, 2);
  } catch (error) {
    return { ok: false, reason: `cannot read the account files: ${(error as Error).message}` };
  }

  const refuse = async (reason: string): Promise<AccountCheck> => {
    await crypt(password, dummySetting(shadow), libcryptPath);
    return { ok: false, reason };
  };

  const account = passwd.get(username);
  if (!account) return refuse(`no account ${peerText(username)} in ${passwdPath}`);
  const passwdField = account[1] ?? "";
  let entry: ShadowEntry;
  if (passwdField === "x") {
    const fields = shadow.get(username);
    if (!fields) return refuse(`account ${peerText(username)} has no entry in ${shadowPath}`);
    entry = shadowEntry(fields);
  } else {
    // No shadowing: the hash is in /etc/passwd itself (rpcapd's fallback without getspnam).
    entry = { hash: passwdField, expireDays: undefined };
  }
  if (entry.hash === "") return refuse(`account ${peerText(username)} has an empty password hash (passwordless logins are refused)`);
  if (entry.hash.startsWith("!") || entry.hash.startsWith("*")) return refuse(`account ${peerText(username)} is locked`);
  if (entry.expireDays !== undefined && Math.floor(now() / MS_PER_DAY) >= entry.expireDays) {
    return refuse(`account ${peerText(username)} expired (shadow expiry day ${entry.expireDays})`);
  }
  const computed = await crypt(password, entry.hash, libcryptPath);
  if (!computed.ok) return { ok: false, reason: `crypt failed for ${peerText(username)}: ${computed.reason}` };
  if (!equalStrings(computed.hash, entry.hash)) return { ok: false, reason: `wrong password for ${peerText(username)}` };
  return { ok: true };
}

/**
 * Whether the shadow file can be read by this process; the daemon warns at start when it cannot,
 * since then no system account can log in.
 */
export function canReadShadow(shadowPath = DEFAULT_SHADOW_PATH): { ok: true } | { ok: false; reason: string } {
  try {
    readFileSync(shadowPath);
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}
