// The RPCAP daemon's AUTH decision: null auth only when the operator allows it (-n), passwords
// from probe's users file or (only when the operator accepts the shared capture) the system's
// accounts, one public answer for every failure (CVE-2019-15162), a growing pause per peer
// address that every later AUTH from that address waits out, bounded pending checks per peer
// and overall, and hashing on worker threads (check-scheduler.ts, hash-worker-pool.ts).
import { escapeControlCharacters, peerText, type Logger } from "../../logging/index.ts";
import { RpcapAuthType, RpcapErrorCode } from "../../protocols/rpcap/index.ts";
import { AUTH_FAILED_PUBLIC_MESSAGE, MAX_USERNAME_CHARS, parseAuthSettings, type AuthSettings, type AuthSettingsInput } from "./auth-settings.ts";
import { CheckScheduler } from "./check-scheduler.ts";
import { FailurePauses, peerKey } from "./failure-pauses.ts";
import { HashWorkerPool, type PasswordHasher } from "./hash-worker-pool.ts";
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
  /** Fires when the client has gone: a check still waiting is dropped before it is hashed. */
  signal?: AbortSignal;
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

/** A users file as a {@link PasswordBackend}; hashing on `hasher`'s threads when given. */
export function usersFileBackend(users: UsersFile, hasher?: PasswordHasher): PasswordBackend {
  const verify = hasher ? (password: string, hash: string) => hasher.verifyPassword(password, hash) : undefined;
  return {
    description: `users file ${users.source}`,
    async check(username, password) {
      if (await verifyUserPassword(users, username, password, verify)) return { ok: true };
      // Said only to the log: which of the two it was is exactly what the peer must not learn.
      return { ok: false, reason: users.entries.has(username) ? `wrong password for ${peerText(username)}` : `no user ${peerText(username)} in ${users.source}` };
    },
  };
}

/**
 * The backend when no users file is given and the operator has not accepted that system-account
 * sessions capture with the daemon's rights: every password login fails, with the reason logged.
 * libpcap's rpcapd switches to the authenticated user before capturing; probe's sessions share
 * one capture hub running as the daemon's user, so a password of an unprivileged account would
 * buy root's view of every interface.
 */
export function systemAccountsRefusedBackend(): PasswordBackend {
  return {
    description: "system accounts",
    async check() {
      return { ok: false, reason: SYSTEM_ACCOUNTS_REFUSED_REASON };
    },
  };
}

/** Why system-account logins are refused by default (log and start-up warning). */
export const SYSTEM_ACCOUNTS_REFUSED_REASON =
  "system-account logins are off: sessions would capture with the daemon's rights, not the user's (rpcapd switches to the user); use --users FILE, or 'probe rpcapd --system-accounts-share-capture' to accept the shared capture";

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
  /** Where hashing runs; worker threads sized by the settings unless given. */
  hasher?: PasswordHasher;
}

/** What {@link Authenticator.decide} found before any hashing. */
type Decision = { ok: true; user: string } | { ok: false; reason: string };

/** Decides AUTH requests for the RPCAP daemon; one instance per configuration (reload = new one). */
export class Authenticator {
  private readonly pauses: FailurePauses;
  private readonly scheduler: CheckScheduler;

  constructor(
    readonly settings: AuthSettings,
    readonly backend: PasswordBackend,
    now: () => number = Date.now,
  ) {
    this.pauses = new FailurePauses(settings, now);
    this.scheduler = new CheckScheduler(
      {
        maxPendingChecksPerPeer: settings.maxPendingChecksPerPeer,
        maxPendingChecks: settings.maxPendingChecks,
        concurrentChecks: settings.hashWorkers,
      },
      (key) => this.pauses.remainingPauseMs(key),
      (key) => this.pauses.standing(key),
    );
  }

  /**
   * Validates the settings (zod; throws on a bad field), loads the users file when one is named
   * (throws UsersFileError on a malformed one), and otherwise prepares system-account checks when
   * `systemAccountsShareCapture` is set (warning when the shadow file cannot be read), or refuses
   * every password login with a start-up warning saying why.
   */
  static async create(input: AuthSettingsInput, dependencies: AuthenticatorDependencies = {}): Promise<Authenticator> {
    const settings = parseAuthSettings(input);
    const now = dependencies.now ?? Date.now;
    let backend = dependencies.backend;
    const hasher = () =>
      dependencies.hasher ??
      new HashWorkerPool({ workers: settings.hashWorkers, jobTimeoutMs: settings.hashTimeoutMs, idleWorkerMs: settings.hashWorkerIdleMs });
    if (!backend && settings.usersFile) {
      const { users, warnings } = loadUsersFile(settings.usersFile);
      for (const warning of warnings) dependencies.log?.warn(warning);
      if (users.entries.size === 0) dependencies.log?.warn(`${settings.usersFile} lists no users: password logins will all fail`);
      backend = usersFileBackend(users, hasher());
    }
    if (!backend && !settings.systemAccountsShareCapture) {
      // With NULL authentication (-n, the serve mode on loopback) clients get in without a
      // password, so this is a note, not a warning every operator sees at every start.
      if (settings.nullAuth) dependencies.log?.info(SYSTEM_ACCOUNTS_REFUSED_REASON);
      else dependencies.log?.warn(SYSTEM_ACCOUNTS_REFUSED_REASON);
      backend = systemAccountsRefusedBackend();
    }
    if (!backend) {
      const readable = canReadShadow(settings.shadowPath);
      if (!readable.ok) {
        dependencies.log?.warn(`cannot read ${settings.shadowPath} (${readable.reason}): password logins will fail; run as root or use --users FILE`);
      }
      dependencies.log?.warn("system-account logins share the daemon's capture: an authenticated user captures with the daemon's rights (--system-accounts-share-capture)");
      const pool = hasher();
      backend = systemAccountsBackend({
        passwdPath: settings.passwdPath,
        shadowPath: settings.shadowPath,
        now,
        crypt: (password, setting, libcryptPath) => pool.crypt(password, setting, libcryptPath),
        ...(dependencies.libcryptPath ? { libcryptPath: dependencies.libcryptPath } : {}),
      });
    }
    return new Authenticator(settings, backend, now);
  }

  /** The pause this peer currently owes after its recent failures (0 when none). */
  failurePauseMs(peerAddress: string): number {
    return this.pauses.failurePauseMs(peerAddress);
  }

  /** AUTH requests waiting, pausing or being checked (all peers, and one peer's address). */
  pendingChecks(peerAddress?: string): number {
    return peerAddress === undefined ? this.scheduler.pendingChecks : this.scheduler.pendingFor(peerKey(peerAddress));
  }

  /**
   * Decides one AUTH request. Never throws: an internal error is a failure with its detail.
   * The request first waits, in its address's line, for the pause earlier failures from that
   * address earned (whatever connection they came on), then for a hashing thread. A request
   * beyond the pending bounds is refused at once; one whose `signal` fires while it waits is
   * dropped unhashed.
   */
  async authenticate(request: AuthRequest): Promise<AuthResult> {
    const early = this.decide(request);
    // The outcome is recorded inside the task, so a check that finishes after its client left
    // still counts for the address (the pause is what stops a connect-AUTH-hang-up loop).
    const task = async () => this.record(request, early === "check" ? await this.checkPassword(request) : early);
    const outcome = await this.scheduler.run(peerKey(request.peerAddress), task, {
      needsHashSlot: early === "check",
      ...(request.signal ? { signal: request.signal } : {}),
    });
    switch (outcome.kind) {
      case "done":
        return outcome.value;
      case "failed":
        return this.record(request, { ok: false, reason: `internal error while checking the password: ${escapeControlCharacters(outcome.error.message)}` });
      case "cancelled":
        // Nothing was learnt about the password; the session is closed and sends nothing.
        return this.failure("the client left before its AUTH was checked", this.pauses.remainingPauseMs(request.peerAddress));
      case "refused":
        if (outcome.peerAtFault) return this.record(request, { ok: false, reason: `not checked: ${outcome.reason}` });
        // The overall bound is not this peer's doing: refused, but its pause does not grow.
        return this.failure(`not checked: ${outcome.reason}`, this.pauses.remainingPauseMs(request.peerAddress));
    }
  }

  /** Books a decision against the peer's address and turns it into the result. */
  private record(request: AuthRequest, decision: Decision): AuthResult {
    if (decision.ok) {
      this.pauses.recordSuccess(request.peerAddress);
      return decision;
    }
    const pauseMs = this.pauses.recordFailure(request.peerAddress);
    const failures = this.pauses.failureCount(request.peerAddress);
    return this.failure(`${decision.reason}; failure ${failures} from this address, next attempt read after ${pauseMs} ms`, pauseMs);
  }

  private failure(logDetail: string, pauseMs: number): AuthResult {
    return { ok: false, publicMessage: AUTH_FAILED_PUBLIC_MESSAGE, logDetail, pauseMs, errorCode: RpcapErrorCode.AUTH_FAILED };
  }

  /** Everything decided without hashing; "check" when the password must be hashed. */
  private decide(request: AuthRequest): Decision | "check" {
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
    return "check";
  }

  private async checkPassword(request: AuthRequest): Promise<Decision> {
    try {
      const check = await this.backend.check(request.username, request.password);
      if (check.ok) return { ok: true, user: request.username };
      return { ok: false, reason: escapeControlCharacters(`${this.backend.description}: ${check.reason}`) };
    } catch (error) {
      return { ok: false, reason: `internal error while checking the password: ${escapeControlCharacters((error as Error).message)}` };
    }
  }
}
