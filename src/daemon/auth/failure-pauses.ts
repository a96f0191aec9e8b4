// Per-peer pauses after failed AUTH attempts: 1 s (rpcapd's RPCAP_SUSPEND_WRONGAUTH) doubling
// up to a cap for repeated failures from the same address, forgiven step by step when quiet.
// Pure bookkeeping with an injected clock: the session turns the number into a timer.
import { canonicalAddress } from "./host-list.ts";

/** Bits of an IPv6 peer address that identify one attacker: a /64 is what one host usually gets. */
const IPV6_PEER_PREFIX_HEX_DIGITS = 16;

/** Parameters of {@link FailurePauses}, all in milliseconds except the count. */
export interface FailurePauseSettings {
  failurePauseMs: number;
  maxFailurePauseMs: number;
  failureDecayMs: number;
  maxTrackedPeers: number;
}

interface PeerRecord {
  failures: number;
  lastFailureAt: number;
}

/**
 * The key failures are counted under: an IPv4 address (IPv4-mapped IPv6 folded into it), or the
 * /64 prefix of an IPv6 address, since one IPv6 host can pick any address in its /64 and would
 * otherwise start from a fresh count on every try. Unparseable text is used as it is.
 */
export function peerKey(peerAddress: string): string {
  const canonical = canonicalAddress(peerAddress);
  if (canonical === undefined) return peerAddress;
  if (canonical.includes(".")) return canonical;
  return `${canonical.slice(0, IPV6_PEER_PREFIX_HEX_DIGITS)}/64`;
}

/**
 * Remembers failures per peer. The pause after the n-th failure in a row is
 * `failurePauseMs * 2^(n-1)`, at most `maxFailurePauseMs`; each `failureDecayMs` without a failure
 * forgets one. A success forgets the peer. At most `maxTrackedPeers` are remembered, evicting the
 * one that failed least recently.
 */
export class FailurePauses {
  private readonly peers = new Map<string, PeerRecord>();
  /**
   * Addresses that logged in successfully and have not failed since, least recent first; at most
   * `maxTrackedPeers`. Their AUTH requests go ahead of unknown addresses' (see {@link standing}),
   * so an attacker with fresh addresses cannot queue a known user out.
   */
  private readonly known = new Set<string>();

  constructor(
    private readonly settings: FailurePauseSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** Failures still remembered for this peer after decay. */
  failureCount(peerAddress: string): number {
    const record = this.peers.get(peerKey(peerAddress));
    return record ? this.decayed(record) : 0;
  }

  /**
   * The pause this peer currently owes: what its last failure cost, shrinking as failures are
   * forgiven; 0 for a peer with nothing remembered.
   */
  failurePauseMs(peerAddress: string): number {
    return this.pauseFor(this.failureCount(peerAddress));
  }

  /**
   * How much longer this peer must wait before its next AUTH is checked: the pause its last
   * failure earned, minus the time since; 0 when nothing is owed. Counted per address, so a
   * fresh connection waits exactly as the failed one would have. Accepts an address or a
   * {@link peerKey}.
   */
  remainingPauseMs(peerAddress: string): number {
    const record = this.peers.get(peerKey(peerAddress));
    if (!record) return 0;
    const elapsedMs = Math.max(0, this.now() - record.lastFailureAt);
    return Math.max(0, this.pauseFor(record.failures) - elapsedMs);
  }

  /** Counts one failure and returns the pause the peer must now wait before its next AUTH. */
  recordFailure(peerAddress: string): number {
    const key = peerKey(peerAddress);
    this.known.delete(key);
    const record = this.peers.get(key);
    const failures = (record ? this.decayed(record) : 0) + 1;
    // Delete then set: Map keeps insertion order, so the first key is the least recent failure.
    this.peers.delete(key);
    this.peers.set(key, { failures, lastFailureAt: this.now() });
    while (this.peers.size > this.settings.maxTrackedPeers) {
      const oldest = this.peers.keys().next().value;
      if (oldest === undefined) break;
      this.peers.delete(oldest);
    }
    return this.pauseFor(failures);
  }

  /** Forgets this peer's failures (after a successful AUTH) and remembers it as known. */
  recordSuccess(peerAddress: string): void {
    const key = peerKey(peerAddress);
    this.peers.delete(key);
    this.known.delete(key);
    this.known.add(key);
    while (this.known.size > this.settings.maxTrackedPeers) {
      const oldest = this.known.values().next().value;
      if (oldest === undefined) break;
      this.known.delete(oldest);
    }
  }

  /**
   * Where this peer stands for the AUTH queue, lower first: -1 for an address that logged in
   * and has not failed since, 0 for an unknown one, else its remembered failures. Accepts an
   * address or a {@link peerKey}.
   */
  standing(peerAddress: string): number {
    const failures = this.failureCount(peerAddress);
    if (failures > 0) return failures;
    return this.known.has(peerKey(peerAddress)) ? -1 : 0;
  }

  /** Number of peers remembered (for tests and status). */
  get trackedPeers(): number {
    return this.peers.size;
  }

  private decayed(record: PeerRecord): number {
    const quietMs = Math.max(0, this.now() - record.lastFailureAt);
    return Math.max(0, record.failures - Math.floor(quietMs / this.settings.failureDecayMs));
  }

  private pauseFor(failures: number): number {
    if (failures === 0) return 0;
    // Cap the exponent first: 2 ** 1000 would be Infinity long before the min() applies.
    const doublings = Math.min(failures - 1, 40);
    return Math.min(this.settings.maxFailurePauseMs, this.settings.failurePauseMs * 2 ** doublings);
  }
}
