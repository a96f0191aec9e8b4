// When a rotating output cuts its file: a pure function of the open file's state, the next
// packet's timestamp and the time on an injected clock. No I/O, no timers.
//
// Triggers (any combination; the first that fires names the cut):
//   period    --rotate-period hour|day --rotate-per-period N (WDCap): N slots per UTC hour or day,
//             counted from the period's start, never from when capture started. Slot k of a period
//             starting at P begins at P + floor(k * length / N) whole seconds. Packet timestamps
//             decide: the file is cut before the first packet in a later slot, so a slot without
//             packets makes no file.
//   seconds   -G SECONDS (tcpdump): the wall clock has moved SECONDS since the file opened.
//   interval  --rotate-interval SECONDS (dumpcap -b interval:): the wall clock entered another
//             multiple of SECONDS since the epoch.
//   size      -C MB: the file already holds more than MB * 1,000,000 bytes (tcpdump checks before
//             each packet, so a file ends one packet past the limit; we do the same so the
//             files match tcpdump's byte for byte).
//   packets   --rotate-packets N: the file holds N packets.

export type PeriodUnit = "hour" | "day";

export const PERIOD_SECONDS: Readonly<Record<PeriodUnit, number>> = { hour: 3600, day: 86_400 };

export interface RotationTriggers {
  readonly period?: { readonly unit: PeriodUnit; readonly perPeriod: number };
  /** -G: seconds of wall clock per file. */
  readonly everySeconds?: number;
  /** --rotate-interval: wall-clock-aligned seconds per file. */
  readonly intervalSeconds?: number;
  /** -C in bytes (MB * 1,000,000). */
  readonly maxBytes?: number;
  readonly maxPackets?: number;
}

/** Why a file was closed: a trigger, a loss event, or the end of the output. */
export type CutReason = "period" | "seconds" | "interval" | "size" | "packets" | "loss" | "stop" | "disk";

/** What the policy needs to know about the open file. */
export interface OpenFileState {
  /** Wall clock (seconds) when the file opened. */
  openedAtSec: number;
  /** Period slot of the file's first packet (absolute slot number), when the period trigger is on. */
  periodSlot: number | undefined;
  /** Interval slot of the wall clock when the file opened, when the interval trigger is on. */
  intervalSlot: number | undefined;
  /** Bytes in the file so far, header included. */
  bytes: number;
  packets: number;
}

/**
 * The absolute slot number of `tsSec` (period number * perPeriod + slot in the period).
 * Slot k starts at floor(k * length / N): k is the largest with that <= s, i.e. ceil((s+1)N/L) - 1.
 */
export function periodSlotOf(tsSec: number, period: NonNullable<RotationTriggers["period"]>): number {
  const length = PERIOD_SECONDS[period.unit];
  const periodIndex = Math.floor(tsSec / length);
  const intoPeriod = tsSec - periodIndex * length;
  const slot = Math.ceil(((intoPeriod + 1) * period.perPeriod) / length) - 1;
  return periodIndex * period.perPeriod + slot;
}

/** First second (UTC, since the epoch) of an absolute period slot. */
export function periodSlotStartSec(slot: number, period: NonNullable<RotationTriggers["period"]>): number {
  const length = PERIOD_SECONDS[period.unit];
  const periodIndex = Math.floor(slot / period.perPeriod);
  const k = slot - periodIndex * period.perPeriod;
  return periodIndex * length + Math.floor((k * length) / period.perPeriod);
}

/** State of a file opened now for a packet at `tsSec`. */
export function newFileState(triggers: RotationTriggers, tsSec: number, nowSec: number, headerBytes: number): OpenFileState {
  return {
    openedAtSec: nowSec,
    periodSlot: triggers.period ? periodSlotOf(tsSec, triggers.period) : undefined,
    intervalSlot: triggers.intervalSeconds ? Math.floor(nowSec / triggers.intervalSeconds) : undefined,
    bytes: headerBytes,
    packets: 0,
  };
}

/**
 * The time a new file's name carries: the start of its period slot or interval when those
 * triggers are on (aligned names: 00:00, 06:00...), else the first packet's second.
 */
export function fileNameTimeSec(triggers: RotationTriggers, file: OpenFileState, tsSec: number): number {
  if (triggers.period && file.periodSlot !== undefined) return periodSlotStartSec(file.periodSlot, triggers.period);
  if (triggers.intervalSeconds && file.intervalSlot !== undefined) return file.intervalSlot * triggers.intervalSeconds;
  return tsSec;
}

/** Whether the open file must be closed before a packet at `tsSec` arrives at wall time `nowSec`. */
export function cutBefore(triggers: RotationTriggers, file: OpenFileState, tsSec: number, nowSec: number): CutReason | undefined {
  if (file.packets === 0) return undefined;
  if (triggers.period && periodSlotOf(tsSec, triggers.period) !== file.periodSlot) return "period";
  return dueWithoutPacket(triggers, file, nowSec) ?? cutByContent(triggers, file, tsSec);
}

/**
 * The part of `cutBefore` that depends on the packet and the file's content, not on the clock.
 * Writers read the clock once per batch (it does not move within one) and call this per record.
 */
export function cutByContent(triggers: RotationTriggers, file: OpenFileState, tsSec: number): CutReason | undefined {
  if (file.packets === 0) return undefined;
  if (triggers.period !== undefined && periodSlotOf(tsSec, triggers.period) !== file.periodSlot) return "period";
  if (triggers.maxBytes !== undefined && file.bytes > triggers.maxBytes) return "size";
  if (triggers.maxPackets !== undefined && file.packets >= triggers.maxPackets) return "packets";
  return undefined;
}

/**
 * Whether the open file is due to close at `nowSec` without another packet (-G and
 * --rotate-interval: a quiet link should not keep the last file open as .part for hours).
 */
export function dueWithoutPacket(triggers: RotationTriggers, file: OpenFileState, nowSec: number): CutReason | undefined {
  if (file.packets === 0) return undefined;
  if (triggers.intervalSeconds && Math.floor(nowSec / triggers.intervalSeconds) !== file.intervalSlot) return "interval";
  if (triggers.everySeconds && nowSec - file.openedAtSec >= triggers.everySeconds) return "seconds";
  return undefined;
}

/** True when any trigger is set (otherwise the output writes one file). */
export function hasTriggers(triggers: RotationTriggers): boolean {
  return (
    triggers.period !== undefined ||
    triggers.everySeconds !== undefined ||
    triggers.intervalSeconds !== undefined ||
    triggers.maxBytes !== undefined ||
    triggers.maxPackets !== undefined
  );
}
