// The RPCAP daemon's AUTH decision: null auth only when the operator allows it (-n), passwords
// from probe's users file or the system's accounts, one public answer for every failure
// (CVE-2019-15162), and a growing per-peer pause the session waits out as a timer.
import type { Logger } from "../../logging/index.ts";
import { RpcapAuthType, RpcapErrorCode } from "../../protocols/rpcap/index.ts";
import { AUTH_FAILED_PUBLIC_MESSAGE, MAX_USERNAME_CHARS, parseAuthSettings, type AuthSettings, type AuthSettingsInput } from "./auth-settings.ts";
import { FailurePauses } from "./failure-pauses.ts";
import { canReadShadow, verifySystemAccount, type AccountCheck, type SystemAccountOptions } from "./system-accounts.ts";
import { loadUsersFile, verifyUserPassword, type UsersFile } from "./users-file.ts";

/** What the session hands over from an AUTH request (see src/daemon/session.ts). */
export interface AuthRequest {
  /** The peer's address as the socket reports it (IPv4, IPv6 or IPv4-mapped IPv6). */
  peerAddress: string;
  /** RPCAP auth type: 0 null, 1 username/password (RpcapAuthType). */
  authType: number;
  username: string;
  password: string;
}

/**
 * The decision. On failure `publicMessage` is what the peer may be told (always
 * "Authentication failed", with RPCAP error `errorCode` 18 AUTH_FAILED), `logDetail` the real
 * reason for the operator, and `pauseMs` how long the session waits before reading this peer's
 * next message.
 */
export type AuthResult =
  | { ok: true; user: string }
  | { ok: false; publicMessage: string; logDetail: string; pauseMs: number; errorCode: typeof RpcapErrorCode.AUTH_FAILED };

/** Where passwords are checked: probe's users file or the system's accounts. */
export interface PasswordBackend {
  /** For log lines, e.g. "users file /etc/probe/users". */
  readonly description: string;
  check(username: string, password: string): Promise<AccountCheck>;
}

/** Name reported for a session that used null authentication (the harness uses the same). */
export const NULL_AUTH_USER = "(null)";

/** A users file as a {@link PasswordBackend}. */
export function usersFileBackend(users: UsersFile): PasswordBackend {
  return {
    description: `users file ${users.source}`,
    async check(username, password) {
      if (await verifyUserPassword(users, username, password)) return { ok: true };
      // Said only to the log: which of the two it was is exactly what the peer must not learn.
      return { ok: false, reason: users.entries.has(username) ? `wrong password for '${username}'` : `no user '${username}' in ${users.source}` };
    },
  };
}

/** The system's /etc/passwd + /etc/shadow as a {@link PasswordBackend}. */
export function systemAccountsBackend(options: SystemAccountOptions = {}): PasswordBackend {
  return {
    description: `system accounts (${options.shadowPath ?? "/etc/shadow"})`,
    check: (username, password) => verifySystemAccount(username, password, options),
  };
}

/** Things the authenticator uses besides its settings; all optional. */
export interface AuthenticatorDependencies {
  /** Load-time warnings (world-writable users file, unreadable shadow file). */
  log?: Pick<Logger, "warn" | "info">;
  /** Clock for pauses and account expiry, ms since the epoch; tests pin it. */
  now?: () => number;
  /** libcrypt to load for system accounts (default libcrypt.so.1). */
  libcryptPath?: string;
  /** Replaces the users file / system accounts (tests). */
  backend?: PasswordBackend;
}

/** Escapes control characters (a peer-chosen name may hold newlines) so a log entry stays one line. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** Decides AUTH requests for the RPCAP daemon; one instance per configuration (reload = new one). */
export class Authenticator {
  private readonly pauses: FailurePauses;

  constructor(
    readonly settings: AuthSettings,
    readonly backend: PasswordBackend,
    now: () => number = Date.now,
  ) {
    this.pauses = new FailurePauses(settings, now);
  }

  /**
   * Validates the settings (zod; throws on a bad field), loads the users file when one is named
   * (throws UsersFileError on a malformed one), and otherwise prepares system-account checks,
   * warning when the shadow file cannot be read.
   */
  static async create(input: AuthSettingsInput, dependencies: AuthenticatorDependencies = {}): Promise<Authenticator> {
    const settings = parseAuthSettings(input);
    const now = dependencies.now ?? Date.now;
    let backend = dependencies.backend;
    if (!backend && settings.usersFile) {
      const { users, warnings } = loadUsersFile(settings.usersFile);
      for (const warning of warnings) dependencies.log?.warn(warning);
      if (users.entries.size === 0) dependencies.log?.warn(`${settings.usersFile} lists no users: password logins will all fail`);
      backend = usersFileBackend(users);
    }
    if (!backend) {
      const readable = canReadShadow(settings.shadowPath);
      if (!readable.ok) {
        dependencies.log?.warn(`cannot read ${settings.shadowPath} (${readable.reason}): password logins will fail; run as root or use --users FILE`);
      }
      backend = systemAccountsBackend({
        passwdPath: settings.passwdPath,
        shadowPath: settings.shadowPath,
        now,
        ...(dependencies.libcryptPath ? { libcryptPath: dependencies.libcryptPath } : {}),
      });
    }
    return new Authenticator(settings, backend, now);
  }

  /** The pause this peer currently owes after its recent failures (0 when none). */
  failurePauseMs(peerAddress: string): number {
    return this.pauses.failurePauseMs(peerAddress);
  }

  /** Decides one AUTH request. Never throws: an internal error is a failure with its detail. */
  async authenticate(request: AuthRequest): Promise<AuthResult> {
    let outcome: { ok: true; user: string } | { ok: false; reason: string };
    try {
      outcome = await this.decide(request);
    } catch (error) {
      outcome = { ok: false, reason: `internal error while checking the password: ${(error as Error).message}` };
    }
    if (outcome.ok) {
      this.pauses.recordSuccess(request.peerAddress);
      return outcome;
    }
    const pauseMs = this.pauses.recordFailure(request.peerAddress);
    const failures = this.pauses.failureCount(request.peerAddress);
    return {
      ok: false,
      publicMessage: AUTH_FAILED_PUBLIC_MESSAGE,
      logDetail: `${outcome.reason}; failure ${failures} from this address, next attempt read after ${pauseMs} ms`,
      pauseMs,
      errorCode: RpcapErrorCode.AUTH_FAILED,
    };
  }

  private async decide(request: AuthRequest): Promise<{ ok: true; user: string } | { ok: false; reason: string }> {
    if (request.authType === RpcapAuthType.NULL) {
      if (this.settings.nullAuth) return { ok: true, user: NULL_AUTH_USER };
      return { ok: false, reason: "null authentication is not permitted (start with -n to allow it)" };
    }
    if (request.authType !== RpcapAuthType.PWD) {
      return { ok: false, reason: `authentication type ${request.authType} is not supported` };
    }
    const passwordBytes = Buffer.byteLength(request.password, "utf8");
    if (passwordBytes > this.settings.maxPasswordBytes) {
      // Refused before hashing: the length is the peer's own choice and says nothing about users.
      return { ok: false, reason: `password of ${passwordBytes} bytes exceeds the ${this.settings.maxPasswordBytes}-byte limit` };
    }
    const usernameChars = [...request.username].length;
    if (usernameChars > MAX_USERNAME_CHARS) {
      // Same reasoning: no account can have such a name (useradd stops at 32, the users file at 64).
      return { ok: false, reason: `user name of ${usernameChars} characters exceeds the ${MAX_USERNAME_CHARS}-character limit` };
    }
    const check = await this.backend.check(request.username, request.password);
    if (check.ok) return { ok: true, user: request.username };
    return { ok: false, reason: printable(`${this.backend.description}: ${check.reason}`) };
  }
}
