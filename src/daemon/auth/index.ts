// Authentication and access control for `probe rpcapd`: the allowed-host list checked before
// AUTH, null/password AUTH against a users file or system accounts, and per-peer failure pauses.
export {
  AUTH_FAILED_PUBLIC_MESSAGE,
  authSettingsSchema,
  DEFAULT_FAILURE_DECAY_MS,
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
  systemAccountsBackend,
  usersFileBackend,
  type AuthenticatorDependencies,
  type AuthRequest,
  type AuthResult,
  type PasswordBackend,
} from "./authenticator.ts";
export { FailurePauses, peerKey, type FailurePauseSettings } from "./failure-pauses.ts";
export {
  canonicalAddress,
  loadHostList,
  loadHostListFile,
  MAX_HOST_LIST_ENTRIES,
  parseHostList,
  resolveHostList,
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
