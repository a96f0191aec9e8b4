// The one parser for byte-size flag values (--retain-bytes, --spool-max-bytes, --queue-bytes,
// --sndbuf, ...), so "1G" means the same on every command. SI letters count in powers of 1000
// (as disks, links and tcpdump's -C do), the IEC "i" forms in powers of 1024; a plain number is
// bytes. docs/flags.md holds the table every flag's help points to. The spec files keep bytes.
import { UsageError } from "./usage-error.ts";

/** Multipliers by unit, upper-cased; "B" after a unit is optional ("500MB", "1GiB"). */
const BYTE_SIZE_UNITS: Readonly<Record<string, bigint>> = {
  "": 1n,
  K: 1000n,
  M: 1000n ** 2n,
  G: 1000n ** 3n,
  T: 1000n ** 4n,
  KI: 1024n,
  MI: 1024n ** 2n,
  GI: 1024n ** 3n,
  TI: 1024n ** 4n,
};

/** The example every size error repeats, so the operator sees both families at once. */
const BYTE_SIZE_EXAMPLES = "65536, 500K, 256M, 2G or 1GiB";

/** Bounds a flag may set; without them any size from 0 to Number.MAX_SAFE_INTEGER bytes. */
export interface ByteSizeBounds {
  min?: number;
  max?: number;
}

/**
 * "256M" -> 256000000, "1GiB" -> 1073741824, "65536" -> 65536. Letters are case-insensitive
 * (k = K); a fraction is allowed when the result is whole bytes ("1.5K" but not "0.1KiB").
 * Exact arithmetic (BigInt), so a size beyond Number.MAX_SAFE_INTEGER is refused, never rounded.
 * Every failure is a UsageError of one line naming the flag.
 */
export function parseByteSize(flag: string, text: string, bounds: ByteSizeBounds = {}): number {
  const match = /^(\d+)(?:\.(\d+))?([KMGT]i?)?B?$/i.exec(text);
  if (!match) throw new UsageError(`${flag} wants a size such as ${BYTE_SIZE_EXAMPLES}, not '${text}'`);
  const [, whole, fraction = "", unit = ""] = match;
  const scale = 10n ** BigInt(fraction.length);
  const product = (BigInt(whole!) * scale + BigInt(fraction || "0")) * BYTE_SIZE_UNITS[unit.toUpperCase()]!;
  if (product % scale !== 0n) throw new UsageError(`${flag} ${text} is not a whole number of bytes`);
  const bytes = product / scale;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`${flag} ${text} is too large (at most ${Number.MAX_SAFE_INTEGER} bytes)`);
  const value = Number(bytes);
  const min = bounds.min ?? 0;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  if (value < min || value > max) throw new UsageError(`${flag} must be between ${min} and ${max} bytes, not ${value}`);
  return value;
}

/** parseByteSize for an optional flag: undefined when it was not given. */
export function byteSizeFlag(flag: string, text: string | undefined, bounds: ByteSizeBounds = {}): number | undefined {
  return text === undefined ? undefined : parseByteSize(flag, text, bounds);
}

/**
 * --queue-bytes of rt and pcap-over-ip: below 64 KiB one full batch no longer fits (the spec's
 * schema refuses it too); 1 TiB is far beyond any memory and catches a slipped unit.
 */
export const QUEUE_BYTES_BOUNDS: ByteSizeBounds = { min: 64 * 1024, max: 2 ** 40 };

/** --sndbuf and --rcvbuf: the kernel caps SO_*BUF far lower anyway; 1 GiB refuses a slipped unit. */
export const SOCKET_BUFFER_BOUNDS: ByteSizeBounds = { min: 0, max: 2 ** 30 };
