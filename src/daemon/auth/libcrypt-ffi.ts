// The one bun:ffi binding outside src/capture/libpcap: crypt_r(3) from the system's libcrypt,
// to check passwords of system accounts the way libpcap's rpcapd does (daemon_AuthUserPwd).
//
// STYLE.md keeps bun:ffi under src/capture/libpcap because native handles there need one owner.
// This binding is different in kind: a system library for password checks, not capture. It holds
// no handles and no memory across calls (the crypt_data buffer is allocated per call), and no
// pure-JS code can reproduce yescrypt/sha512crypt/bcrypt exactly as /etc/shadow expects, so
// calling the library that wrote those hashes is the safe choice. Only system-accounts.ts uses it.
import { CString, dlopen, FFIType, type Pointer } from "bun:ffi";

/** libxcrypt's soname on Debian 11+ and most current Linux distributions (package libcrypt1). */
export const DEFAULT_LIBCRYPT_PATH = "libcrypt.so.1";

/**
 * Bytes handed to crypt_r as its `struct crypt_data`. libxcrypt's struct is 32768 bytes; the
 * older glibc libcrypt's was 131232 bytes. 256 KiB covers both with room, and it is zeroed per
 * call because both libraries require `initialized` (or the whole struct) to be zero at first use.
 */
const CRYPT_DATA_BYTES = 256 * 1024;

/** Outcome of one crypt call: the computed hash, or why there is none (for the log only). */
export type CryptResult = { ok: true; hash: string } | { ok: false; reason: string };

type LibcryptSymbols = {
  crypt_r: (phrase: Uint8Array, setting: Uint8Array, data: Uint8Array) => Pointer | null;
};

const loaded = new Map<string, LibcryptSymbols | Error>();

/**
 * Opens libcrypt once per path. The cache holds the loaded library (never released: process-wide
 * and read-only) or the error, so a missing library is reported on every attempt without retrying
 * dlopen for every AUTH.
 */
function libcrypt(path: string): LibcryptSymbols | Error {
  const cached = loaded.get(path);
  if (cached) return cached;
  let result: LibcryptSymbols | Error;
  try {
    const lib = dlopen(path, {
      // char *crypt_r(const char *phrase, const char *setting, struct crypt_data *data);
      crypt_r: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.ptr },
    });
    result = lib.symbols as unknown as LibcryptSymbols;
  } catch (error) {
    result = new Error(`cannot load ${path}: ${(error as Error).message}`);
  }
  loaded.set(path, result);
  return result;
}

function cString(text: string): Uint8Array {
  return new TextEncoder().encode(`${text}\0`);
}

/**
 * Hashes `password` with `setting` (a full stored hash works as the setting) through crypt_r.
 * Never throws: a NULL return (glibc, or libxcrypt built with failure-null) and libxcrypt's
 * failure tokens ("*0", "*1": unsupported or malformed setting) both come back as `ok: false`,
 * which is exactly the case that crashed rpcapd before libpcap 1.9.1 (CVE-2019-15163).
 */
export function cryptHash(password: string, setting: string, libcryptPath = DEFAULT_LIBCRYPT_PATH): CryptResult {
  // A NUL would silently cut the C string short: "abc\0anything" must not verify as "abc".
  if (password.includes("\0") || setting.includes("\0")) return { ok: false, reason: "NUL byte in password or setting" };
  const lib = libcrypt(libcryptPath);
  if (lib instanceof Error) return { ok: false, reason: lib.message };
  const data = new Uint8Array(CRYPT_DATA_BYTES);
  let pointer: Pointer | null;
  try {
    pointer = lib.crypt_r(cString(password), cString(setting), data);
  } catch (error) {
    return { ok: false, reason: `crypt_r() threw: ${(error as Error).message}` };
  }
  if (!pointer) return { ok: false, reason: "crypt_r() returned NULL (unsupported or malformed hash setting)" };
  // The result lives inside `data`; copy it out as a string before `data` can be collected.
  const hash = new CString(pointer).toString();
  if (hash.startsWith("*")) return { ok: false, reason: `crypt_r() returned the failure token '${hash}' (unsupported or malformed hash setting)` };
  return { ok: true, hash };
}
