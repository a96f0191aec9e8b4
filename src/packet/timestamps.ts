// Timestamp units of packet records: one conversion between microsecond and nanosecond
// fractions, used by every codec and stage that meets both (pcap, pcapng, udpstr, merging).
import type { TimestampPrecision } from "./packet-batch.ts";

export const MICROS_PER_SECOND = 1_000_000;
export const NANOS_PER_SECOND = 1_000_000_000;
export const NANOS_PER_MICRO = 1_000;

/** Fraction units in one second for a precision. */
export function fractionsPerSecond(precision: TimestampPrecision): number {
  return precision === "nano" ? NANOS_PER_SECOND : MICROS_PER_SECOND;
}

/**
 * A sub-second fraction in `from` units expressed in `to` units. Nano → micro truncates
 * (as libpcap does when it writes a microsecond file from a nanosecond capture).
 */
export function convertFraction(frac: number, from: TimestampPrecision, to: TimestampPrecision): number {
  if (from === to) return frac;
  return to === "nano" ? frac * NANOS_PER_MICRO : Math.floor(frac / NANOS_PER_MICRO);
}

/** A record timestamp as nanoseconds since the epoch (a bigint-free number: exact until 2255). */
export function timestampNanos(tsSec: number, tsFrac: number, precision: TimestampPrecision): number {
  return tsSec * NANOS_PER_SECOND + (precision === "nano" ? tsFrac : tsFrac * NANOS_PER_MICRO);
}
