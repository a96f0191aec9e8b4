// Settings of the RPCAP daemon's authentication layer: every limit and pause as a named
// constant with its unit and reason, and the zod schema that validates them once at load.
import { z } from "../../config/zod.ts";

/**
 * First pause after a failed AUTH, in ms. libpcap's rpcapd sleeps RPCAP_SUSPEND_WRONGAUTH
 * (1 s, rpcapd/daemon.c) after every failure "so that they can't hammer us with repeated tries";
 * we start from the same second but make it a timer, never a blocking sleep.
 */
export const DEFAULT_FAILURE_PAUSE_MS = 1_000;

/**
 * Ceiling of the per-peer pause, in ms. Doubling from 1 s reaches it after six failures in a row;
 * 30 s turns nmap's rpcap-brute (thousands of guesses a second) into two guesses a minute per
 * address while a mistyped password still costs a person only seconds.
 */
export const DEFAULT_MAX_FAILURE_PAUSE_MS = 30_000;

/**
 * Quiet time, in ms, after which one remembered failure of a peer is forgiven. rpcapd forgot
 * everything when the client reconnected ("the suspension time does not have any effect"); we
 * remember per address and let the count drain one step per minute of silence.
 */
export const DEFAULT_FAILURE_DECAY_MS = 60_000;

/**
 * Most peer addresses whose failures are remembered; the least recently failing is forgotten
 * first. Bounds the memory an attacker rotating source addresses can make us spend.
 */
export const DEFAULT_MAX_TRACKED_PEERS = 4_096;

/**
 * Longest password, in UTF-8 bytes, that is worth hashing; longer ones fail at once. sha512crypt
 * and sha256crypt do work proportional to the password length on every round (the long-password
 * denial of service fixed in Django as CVE-2013-1443); the wire allows 65535 bytes.
 */
export const DEFAULT_MAX_PASSWORD_BYTES = 1_024;

/**
 * AUTH requests of one peer address (IPv4 address or IPv6 /64) that may wait or be checked at
 * once; one more is refused at once and counted as a failure. A libpcap client opens one control
 * connection per capture and authenticates each once, so 4 covers a person with a few Wireshark
 * windows; a flood from one address gets no further than this.
 */
export const DEFAULT_MAX_PENDING_CHECKS_PER_PEER = 4;

/**
 * AUTH requests waiting or being checked across all peers; one more is refused at once (not
 * counted against its peer, whose fault it need not be). Each peer has at most one check queued
 * for a hashing thread at a time, so at 2 threads and ~0.2 s per argon2id check a login waits at
 * most 32 x 0.2 / 2 = 3.2 s even when 32 different addresses flood together.
 */
export const DEFAULT_MAX_PENDING_CHECKS = 32;

/**
 * Threads that hash passwords (argon2id ~0.2 s of CPU and 64 MiB each with Bun's defaults,
 * sha512crypt/yescrypt through crypt_r). Two keep one core free for capture on a two-core host and
 * bound hashing memory to 128 MiB; the event loop never hashes.
 */
export const DEFAULT_HASH_WORKERS = 2;

/**
 * Longest one password check may run on its thread before the thread is ended and the AUTH fails.
 * An honest check takes well under a second (argon2id's default ~0.2 s, yescrypt ~0.05 s); 10 s
 * only catches a hung libcrypt or a hash whose cost parameters are absurd.
 */
export const DEFAULT_HASH_TIMEOUT_MS = 10_000;

/**
 * An idle hashing thread is ended after this long (started again in ~30 ms on the next AUTH), so
 * a daemon that rarely sees logins, or a reload that replaced the authenticator, keeps none.
 */
export const DEFAULT_HASH_WORKER_IDLE_MS = 60_000;

/** Longest user name in characters (code points), for the users file and `probe passwd`. */
export const MAX_USERNAME_CHARS = 64;

/** Where system accounts live (shadow-utils' layout on Linux). */
export const DEFAULT_PASSWD_PATH = "/etc/passwd";
export const DEFAULT_SHADOW_PATH = "/etc/shadow";

/** The one message a peer is told for every failed AUTH (CVE-2019-15162: never say why). */
export const AUTH_FAILED_PUBLIC_MESSAGE = "Authentication failed";

/** Settings of {@link Authenticator}; plain data, validated once with zod. */
export const authSettingsSchema = z
  .object({
    /** rpcapd's -n: accept AUTH type 0 (no credentials). */
    nullAuth: z.boolean().default(false),
    /** `--users FILE` (`user:hash` lines); when absent, system accounts are checked instead. */
    usersFile: z.string().min(1).optional(),
    passwdPath: z.string().min(1).default(DEFAULT_PASSWD_PATH),
    shadowPath: z.string().min(1).default(DEFAULT_SHADOW_PATH),
    failurePauseMs: z.number().int().min(0).max(600_000).default(DEFAULT_FAILURE_PAUSE_MS),
    maxFailurePauseMs: z.number().int().min(0).max(3_600_000).default(DEFAULT_MAX_FAILURE_PAUSE_MS),
    failureDecayMs: z.number().int().min(1).max(86_400_000).default(DEFAULT_FAILURE_DECAY_MS),
    maxTrackedPeers: z.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_TRACKED_PEERS),
    maxPasswordBytes: z.number().int().min(1).max(65_535).default(DEFAULT_MAX_PASSWORD_BYTES),
    maxPendingChecksPerPeer: z.number().int().min(1).max(1_000).default(DEFAULT_MAX_PENDING_CHECKS_PER_PEER),
    maxPendingChecks: z.number().int().min(1).max(100_000).default(DEFAULT_MAX_PENDING_CHECKS),
    hashWorkers: z.number().int().min(1).max(64).default(DEFAULT_HASH_WORKERS),
    hashTimeoutMs: z.number().int().min(100).max(600_000).default(DEFAULT_HASH_TIMEOUT_MS),
    hashWorkerIdleMs: z.number().int().min(100).max(86_400_000).default(DEFAULT_HASH_WORKER_IDLE_MS),
    /**
     * `--system-accounts-share-capture`: accept system-account passwords although the session
     * then captures with the daemon's rights, not that user's (libpcap's rpcapd switches to the
     * user). Off: without a users file, every password login is refused.
     */
    systemAccountsShareCapture: z.boolean().default(false),
  })
  .refine((s) => s.maxFailurePauseMs >= s.failurePauseMs, {
    message: "maxFailurePauseMs must be at least failurePauseMs",
    path: ["maxFailurePauseMs"],
  })
  .refine((s) => s.maxPendingChecks >= s.maxPendingChecksPerPeer, {
    message: "maxPendingChecks must be at least maxPendingChecksPerPeer",
    path: ["maxPendingChecks"],
  });

/** Settings as callers write them (defaults optional). */
export type AuthSettingsInput = z.input<typeof authSettingsSchema>;
/** Settings after validation: every field present, frozen. */
export type AuthSettings = Readonly<z.output<typeof authSettingsSchema>>;

/** Validates and freezes auth settings; throws zod's error naming the bad field. */
export function parseAuthSettings(input: AuthSettingsInput): AuthSettings {
  return Object.freeze(authSettingsSchema.parse(input));
}
