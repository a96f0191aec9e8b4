// Authentication and access control for `probe rpcapd`: the allowed-host list checked before
// AUTH, null/password AUTH against a users file or system accounts, per-address failure pauses,
// bounded pending checks, and password hashing on worker threads.
export {
  AUTH_FAILED_PUBLIC_MESSAGE,
  authSettingsSchema,
  DEFAULT_FAILURE_DECAY_MS,
  DEFAULT_HASH_TIMEOUT_MS,
  DEFAULT_HASH_WORKER_IDLE_MS,
  DEFAULT_HASH_WORKERS,
  DEFAULT_MAX_PENDING_CHECKS,
  DEFAULT_MAX_PENDING_CHECKS_PER_PEER,
  DEFAULT_FAILURE_PAUSE_MS,
  DEFAULT_MAX_FAILURE_PAUSE_MS,
  DEFAULT_MAX_PASSWORD_BYTES,
  DEFAULT_MAX_TRACKED_PEERS,
  DEFAULT_PASSWD_PATH,
  DEFAULT_SHADOW_PATH,
  MAX_USERNAME_CHARS,
  parseAuthSettings,
  type AuthSettings,
  type AuthSettingsInput,
} from "./auth-settings.ts";
export {
  Authenticator,
  NULL_AUTH_USER,
  SYSTEM_ACCOUNTS_REFUSED_REASON,
  systemAccountsBackend,
  systemAccountsRefusedBackend,
  usersFileBackend,
  type AuthenticatorDependencies,
  type AuthRequest,
  type AuthResult,
  type PasswordBackend,
} from "./authenticator.ts";
export { CheckScheduler, type CheckLimits, type CheckOutcome } from "./check-scheduler.ts";
export { FailurePauses, peerKey, type FailurePauseSettings } from "./failure-pauses.ts";
export { HashWorkerPool, type HashWorkerPoolOptions, type PasswordHasher } from "./hash-worker-pool.ts";
export {
  canonicalAddress,
  loadHostList,
  loadHostListFile,
  MAX_HOST_LIST_ENTRIES,
  parseHostList,
  readHostListArgument,
  resolveHostList,
  type HostListArgument,
  type HostList,
  type HostLookup,
  type LoadHostListOptions,
} from "./host-list.ts";
export { cryptHash, DEFAULT_LIBCRYPT_PATH, type CryptResult } from "./libcrypt-ffi.ts";
export { canReadShadow, verifySystemAccount, type AccountCheck, type SystemAccountOptions } from "./system-accounts.ts";
export {
  hashPasswordLine,
  isSupportedPasswordHash,
  loadUsersFile,
  parseUsersFile,
  usernameProblem,
  UsersFileError,
  UsersFileErrorCode,
  verifyUserPassword,
  type PasswordHashCost,
  type UsersFile,
} from "./users-file.ts";
