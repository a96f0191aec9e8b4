// Settings of the RPCAP daemon's authentication layer: every limit and pause as a named
// constant with its unit and reason, and the zod schema that validates them once at load.
import { z } from "zod";

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
  })
  .refine((s) => s.maxFailurePauseMs >= s.failurePauseMs, {
    message: "maxFailurePauseMs must be at least failurePauseMs",
    path: ["maxFailurePauseMs"],
  });

/** Settings as callers write them (defaults optional). */
export type AuthSettingsInput = z.input<typeof authSettingsSchema>;
/** Settings after validation: every field present, frozen. */
export type AuthSettings = Readonly<z.output<typeof authSettingsSchema>>;

/** Validates and freezes auth settings; throws zod's error naming the bad field. */
export function parseAuthSettings(input: AuthSettingsInput): AuthSettings {
  return Object.freeze(authSettingsSchema.parse(input));
}
