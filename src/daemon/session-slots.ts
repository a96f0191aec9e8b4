// Who holds the daemon's session slots, and for how long. Bookkeeping with an injected clock:
// a cap per peer address beside the overall one, a short pre-auth deadline once the slots are
// filling up, eviction of an unauthenticated connection when they are full (so a redialling
// attacker cannot keep a real user out), and the rule that only a running capture keeps an
// authenticated slot: STATS or FINDALLIF every minute does not.
import { peerKey } from "./auth/index.ts";

/**
 * Share of the slots in use beyond which the daemon is "under pressure": pre-auth connections
 * then get `pressureAuthTimeoutMs` instead of the full auth timeout. At 3/4 full, 16 of 64
 * slots are still free for the real clients the shorter deadline is meant to let in.
 */
export const SLOT_PRESSURE_FRACTION = 0.75;

/** Longest gap between two sweeps of the slot table, in ms: deadlines are enforced this late at most. */
export const MAX_SLOT_SWEEP_INTERVAL_MS = 1_000;

/** Limits of {@link SessionSlots}; the defaults and their reasons are in src/config/rpcapd-config.ts. */
export interface SlotLimits {
  maxSessions: number;
  maxSessionsPerAddress: number;
  /** Deadline for authenticating while under pressure (instead of the session's own auth timeout). */
  pressureAuthTimeoutMs: number;
  /** An authenticated session that has not captured for this long gives its slot back. */
  idleTimeoutMs: number;
}

/** What the slot table needs to see of a session. */
export interface SlotHolder {
  readonly stateName: string;
  /** An AUTH request is being checked: such a session is evicted only as a last resort. */
  readonly authChecking?: boolean;
  /** AUTH requests that failed: such sessions are evicted first. */
  readonly authFailures?: number;
}

/** Why a session is being put out of its slot; the daemon sends `code` with `text`, then closes. */
export interface SlotEviction<S> {
  session: S;
  reason: "pre-auth deadline under pressure" | "no capture within the idle timeout";
}

interface SlotEntry {
  key: string;
  /** Dialled by us (active mode): no per-address cap, never evicted for pressure. */
  active: boolean;
  acceptedAt: number;
  /** Last time the session was seen capturing, starting one, or authenticating. */
  lastProgressAt: number;
  lastState: string;
}

/** The slot table: admission, per-address counts, and the deadlines a sweep enforces. */
export class SessionSlots<S extends SlotHolder> {
  private readonly entries = new Map<S, SlotEntry>();
  private readonly perKey = new Map<string, number>();

  constructor(
    private limits: SlotLimits,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** True once more than {@link SLOT_PRESSURE_FRACTION} of the slots are taken. */
  get underPressure(): boolean {
    return this.entries.size > this.limits.maxSessions * SLOT_PRESSURE_FRACTION;
  }

  /** Sessions from this address (IPv4, or IPv6 /64 as the failure pauses count it). */
  countFor(peerAddress: string): number {
    return this.perKey.get(peerKey(peerAddress)) ?? 0;
  }

  /**
   * Whether a new passive connection from `peerAddress` may have a slot. When every slot is
   * taken, `evict` names the unauthenticated session to put out first (see
   * {@link evictionCandidate}); undefined refusal = yes.
   */
  admit(peerAddress: string): { refusal?: string; evict?: S } {
    const count = this.countFor(peerAddress);
    if (count >= this.limits.maxSessionsPerAddress) {
      return { refusal: `${count} sessions from this address already (limit ${this.limits.maxSessionsPerAddress} per address)` };
    }
    if (this.entries.size < this.limits.maxSessions) return {};
    const victim = this.evictionCandidate();
    if (victim) return { evict: victim };
    return { refusal: `${this.entries.size} sessions already (limit ${this.limits.maxSessions}), none of them evictable` };
  }

  add(session: S, peerAddress: string, active: boolean): void {
    const key = peerKey(peerAddress);
    const at = this.now();
    this.entries.set(session, { key, active, acceptedAt: at, lastProgressAt: at, lastState: session.stateName });
    if (!active) this.perKey.set(key, (this.perKey.get(key) ?? 0) + 1);
  }

  remove(session: S): void {
    const entry = this.entries.get(session);
    if (!entry) return;
    this.entries.delete(session);
    if (entry.active) return;
    const left = (this.perKey.get(entry.key) ?? 1) - 1;
    if (left > 0) this.perKey.set(entry.key, left);
    else this.perKey.delete(entry.key);
  }

  /** A STARTCAP request passed through the framer: the client is starting to use its slot. */
  noteCaptureStart(session: S): void {
    const entry = this.entries.get(session);
    if (entry) entry.lastProgressAt = this.now();
  }

  /** New limits after a reload (existing sessions keep their slots). */
  setLimits(limits: SlotLimits): void {
    this.limits = limits;
  }

  /** How often the daemon should call {@link sweep}. */
  get sweepIntervalMs(): number {
    return Math.max(10, Math.min(MAX_SLOT_SWEEP_INTERVAL_MS, Math.floor(this.limits.pressureAuthTimeoutMs / 4)));
  }

  /** Sessions whose slot is overdue now; the caller tells each why and closes it. */
  sweep(): SlotEviction<S>[] {
    const now = this.now();
    const out: SlotEviction<S>[] = [];
    const pressure = this.underPressure;
    for (const [session, entry] of this.entries) {
      const state = session.stateName;
      if (state === "capturing" || (entry.lastState === "awaiting-auth" && state !== "awaiting-auth")) entry.lastProgressAt = now;
      entry.lastState = state;
      if (state === "closed") continue;
      if (state === "awaiting-auth") {
        if (pressure && !entry.active && now - entry.acceptedAt >= this.limits.pressureAuthTimeoutMs) {
          out.push({ session, reason: "pre-auth deadline under pressure" });
        }
      } else if (state !== "capturing" && now - entry.lastProgressAt >= this.limits.idleTimeoutMs) {
        out.push({ session, reason: "no capture within the idle timeout" });
      }
    }
    return out;
  }

  /**
   * The passive session still awaiting AUTH to put out for a newcomer, oldest first within each
   * rank: one whose AUTH failed (a wrong password, or refused by the check bounds) and is not
   * being checked again; then one that has sent no AUTH yet; never one whose AUTH is being
   * checked now (those are bounded by the authenticator's pending-check limit, 32 by default,
   * below the default 64 slots, so another slot is evictable when only unauthenticated peers
   * hold them).
   * A real client sends AUTH as soon as it connects, so a flood of redialling attackers puts out
   * its own failed connections, not the user's. Authenticated and active sessions are never put
   * out here.
   */
  private evictionCandidate(): S | undefined {
    let failed: { session: S; at: number } | undefined;
    let silent: { session: S; at: number } | undefined;
    for (const [session, entry] of this.entries) {
      if (entry.active || session.stateName !== "awaiting-auth" || session.authChecking) continue;
      const rank = (session.authFailures ?? 0) > 0 ? "failed" : "silent";
      const best = rank === "failed" ? failed : silent;
      if (best && best.at <= entry.acceptedAt) continue;
      if (rank === "failed") failed = { session, at: entry.acceptedAt };
      else silent = { session, at: entry.acceptedAt };
    }
    return (failed ?? silent)?.session;
  }
}
