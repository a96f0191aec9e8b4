// The udpstr receiver's senders: one reassembler per sender, so that datagrams from anyone else
// who reaches the port never enter another sender's records or loss figures. Pure: no sockets,
// timers or logging; the caller passes the time and the allow check.
//
// A sender is its source address and source port. The udpstr header (ver, type, firsthdridx,
// seqno) carries no stream identity of its own, and each ExtraHop rpcapd session and each
// `probe forward` sends from one UDP socket, so the source port is the stream: a forwarder that
// restarts comes from a new port and is a new sender (the old one goes idle and is evicted).
//
// The table is bounded (maxSenders) so random source ports cannot grow memory: each sender
// holds at most one staged record (the caplen cap) and one held datagram. A datagram from an
// unknown sender takes a slot only when its udpstr header decodes; random bytes do not.
import { PacketBatchBuilder } from "../../packet/packet-batch.ts";
import { ProtocolError } from "../../packet/protocol-error.ts";
import { decodeUdpstrDatagramHeader } from "./codec.ts";
import { UdpstrReassembler, zeroReassemblerCounters, type UdpstrReassemblerCounters } from "./reassembler.ts";
import { UDPSTR_HEADER_BYTES, UDPSTR_MESSAGE_TYPE, UDPSTR_VERSION } from "./wire.ts";

/**
 * Default bound on senders tracked at once. A collector gathers the streams of a handful of
 * probes; 64 leaves room for many while bounding the worst case (each sender may stage one
 * record of up to 256 KiB, hold one datagram of up to 64 KiB and build a batch from
 * UDPSTR_SENDER_BATCH_INITIAL_BYTES) to about 24 MiB.
 */
export const UDPSTR_DEFAULT_MAX_SENDERS = 64;

/**
 * First size of each sender's batch buffer (it grows while a busy sender's records wait for the
 * next turn of the event loop, and starts again at this size after each take). The builder's own
 * 256 KiB default, times 64 senders a flood of random ports keeps replacing, was 16 MiB of
 * buffers mostly empty.
 */
export const UDPSTR_SENDER_BATCH_INITIAL_BYTES = 64 * 1024;

/**
 * Default bound on senders from one address. A probe host runs a forwarder or rpcapd session
 * per interface, a few at most; 16 leaves room for those while one host cycling source ports
 * can hold only a quarter of the table, so senders from other addresses still find room.
 */
export const UDPSTR_DEFAULT_MAX_SENDERS_PER_ADDRESS = 16;

/**
 * Default time after a sender's last datagram when it is evicted (its record in progress is
 * counted lost, its figures kept in the retired total). A forwarder sends at least one datagram
 * per forwarded packet, so a minute of silence is a stream that ended, or a stranger's port.
 */
export const UDPSTR_DEFAULT_SENDER_IDLE_MS = 60_000;

/**
 * When the table is full, a new sender may take the slot of the sender quiet the longest if
 * that one has been quiet at least this long (or never delivered a record). Shorter than the
 * idle eviction so that a burst of one-datagram senders (random source ports) cannot lock a
 * forwarder that starts later out for a whole idle period, longer than any pause of a busy
 * stream; a replaced sender that comes back is a new sender that joins its stream mid-way.
 */
export const UDPSTR_SENDER_REPLACE_AFTER_QUIET_MS = 2_000;

/**
 * A sender quiet this long has its held datagram (one that broke its sequence, waiting for the
 * next datagram to confirm it) judged on its own (UdpstrReassembler.settle()): a stream that goes
 * quiet right after a loss delivers its last records within about this delay.
 */
export const UDPSTR_SETTLE_AFTER_QUIET_MS = 1_000;

/** One sender and its stream. */
export interface UdpstrSender {
  readonly address: string;
  readonly port: number;
  readonly reassembler: UdpstrReassembler;
  readonly firstSeenMs: number;
  lastSeenMs: number;
  /** Bytes of the record in progress when the stream ended (evicted or finished), 0 when none. */
  incompleteBytes: number;
}

/** Why a sender left the table. */
export type UdpstrEviction = "idle" | "replaced" | "stopped";

/** What the table did with datagrams that reached no sender's stream, and with senders. */
export interface UdpstrSenderTableCounters {
  /** Datagrams from addresses outside the allow list: dropped before any parsing. */
  strangerDatagrams: number;
  /** Datagrams from no known sender whose udpstr header does not decode: dropped, no slot taken. */
  unknownMalformedDatagrams: number;
  /** Datagrams from new senders refused because the table, or their address's share of it, was full of active senders. */
  overCapDatagrams: number;
  /** Senders ever admitted. */
  sendersAdmitted: number;
  /** Senders evicted after idleMs without a datagram. */
  sendersEvictedIdle: number;
  /** Senders that gave their slot to a new one while the table was full. */
  sendersReplaced: number;
}

export interface UdpstrSenderTableOptions {
  linktype: number;
  /** Most senders at once (default UDPSTR_DEFAULT_MAX_SENDERS). */
  maxSenders?: number;
  /** Most senders from one address at once (default UDPSTR_DEFAULT_MAX_SENDERS_PER_ADDRESS, at most maxSenders). */
  maxSendersPerAddress?: number;
  /** Idle eviction (default UDPSTR_DEFAULT_SENDER_IDLE_MS). */
  idleMs?: number;
  /** The allow list: false means a stranger. Absent: everyone who can reach the port. */
  allowed?: (address: string) => boolean;
  /**
   * Called when a sender leaves the table, after its reassembler has been finished: the caller
   * takes its last records and may log its final figures.
   */
  onEvicted?: (sender: UdpstrSender, why: UdpstrEviction) => void;
}

/** How push() placed a datagram. */
export type UdpstrArrival = UdpstrSender | "stranger" | "malformed" | "over-cap";

/** Senders by address and port, each with its own reassembler; see the top of this file. */
export class UdpstrSenderTable {
  readonly counters: UdpstrSenderTableCounters = {
    strangerDatagrams: 0,
    unknownMalformedDatagrams: 0,
    overCapDatagrams: 0,
    sendersAdmitted: 0,
    sendersEvictedIdle: 0,
    sendersReplaced: 0,
  };
  /** The summed figures of every sender evicted (idle or replaced); finish() keeps the others listed. */
  readonly retired: UdpstrReassemblerCounters = zeroReassemblerCounters();
  readonly maxSenders: number;
  readonly maxSendersPerAddress: number;
  readonly idleMs: number;
  private readonly senders = new Map<string, UdpstrSender>();
  /** Senders in the table per address (entries removed at 0, so bounded by the table). */
  private readonly perAddress = new Map<string, number>();
  private finished = false;

  constructor(private readonly options: UdpstrSenderTableOptions) {
    this.maxSenders = options.maxSenders ?? UDPSTR_DEFAULT_MAX_SENDERS;
    this.maxSendersPerAddress = Math.min(this.maxSenders, options.maxSendersPerAddress ?? UDPSTR_DEFAULT_MAX_SENDERS_PER_ADDRESS);
    this.idleMs = options.idleMs ?? UDPSTR_DEFAULT_SENDER_IDLE_MS;
    if (!Number.isInteger(this.maxSenders) || this.maxSenders < 1) throw new RangeError("maxSenders must be a positive integer");
    if (!Number.isInteger(this.maxSendersPerAddress) || this.maxSendersPerAddress < 1) throw new RangeError("maxSendersPerAddress must be a positive integer");
  }

  /** Senders in the table now, in order of arrival. */
  get active(): readonly UdpstrSender[] {
    return [...this.senders.values()];
  }

  get size(): number {
    return this.senders.size;
  }

  /**
   * Places one datagram (borrowed for the call) from `address`:`port` at `nowMs`: into its
   * sender's stream, admitting the sender if there is room, or counted apart. Never throws for
   * anything a peer sends.
   */
  push(address: string, port: number, datagram: Uint8Array, nowMs: number): UdpstrArrival {
    if (this.finished) throw new Error("UdpstrSenderTable.push() after finish()");
    const key = `${address}|${port}`;
    let sender = this.senders.get(key);
    if (!sender) {
      if (this.options.allowed && !this.options.allowed(address)) {
        this.counters.strangerDatagrams++;
        return "stranger";
      }
      // Random bytes fail on ver/type at once: those are counted without building an error (a
      // flood of them from random ports is the common case); the rest go through the decoder.
      let decodes = datagram.byteLength >= UDPSTR_HEADER_BYTES && datagram[0] === UDPSTR_VERSION && datagram[1] === UDPSTR_MESSAGE_TYPE;
      if (decodes) {
        try {
          decodeUdpstrDatagramHeader(datagram);
        } catch (error) {
          if (!(error instanceof ProtocolError)) throw error;
          decodes = false;
        }
      }
      if (!decodes) {
        this.counters.unknownMalformedDatagrams++;
        return "malformed";
      }
      // The address's share first, then the whole table: each frees a slot of its own scope.
      const fromAddress = this.perAddress.get(address) ?? 0;
      if (
        (fromAddress >= this.maxSendersPerAddress && !this.makeRoom(nowMs, address)) ||
        (this.senders.size >= this.maxSenders && !this.makeRoom(nowMs, undefined))
      ) {
        this.counters.overCapDatagrams++;
        return "over-cap";
      }
      const builder = new PacketBatchBuilder(this.options.linktype, "micro", UDPSTR_SENDER_BATCH_INITIAL_BYTES);
      sender = { address, port, reassembler: new UdpstrReassembler({ linktype: this.options.linktype, builder }), firstSeenMs: nowMs, lastSeenMs: nowMs, incompleteBytes: 0 };
      this.senders.set(key, sender);
      this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
      this.counters.sendersAdmitted++;
    }
    sender.lastSeenMs = nowMs;
    sender.reassembler.push(datagram);
    return sender;
  }

  /**
   * The periodic pass (the caller's timer, about once a second): judges the held datagram of
   * senders quiet for UDPSTR_SETTLE_AFTER_QUIET_MS and evicts senders idle for idleMs.
   */
  tick(nowMs: number): void {
    if (this.finished) return;
    for (const [key, sender] of this.senders) {
      const quietMs = nowMs - sender.lastSeenMs;
      if (quietMs >= this.idleMs) {
        this.counters.sendersEvictedIdle++;
        this.evict(key, sender, "idle");
      } else if (quietMs >= UDPSTR_SETTLE_AFTER_QUIET_MS && sender.reassembler.holding) {
        sender.reassembler.settle();
      }
    }
  }

  /**
   * Ends every sender's stream (each goes through onEvicted with "stopped") and keeps them listed
   * in `active` with their final figures. push() may not be called afterwards.
   */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    for (const sender of this.senders.values()) {
      sender.incompleteBytes = sender.reassembler.finish()?.bytesReceived ?? 0;
      this.options.onEvicted?.(sender, "stopped");
    }
  }

  /** The retired total plus every sender still listed: what all senders together did. */
  totals(): UdpstrReassemblerCounters {
    const sum = { ...this.retired };
    for (const sender of this.senders.values()) addCounters(sum, sender.reassembler.counters);
    return sum;
  }

  /**
   * Frees one slot for a new sender when the table (or, given `address`, that address's share) is
   * full: the sender quiet the longest among those that never delivered a record, else the one
   * quiet the longest if it has been quiet UDPSTR_SENDER_REPLACE_AFTER_QUIET_MS. False when every
   * sender in scope is active: the newcomer is refused.
   */
  private makeRoom(nowMs: number, address: string | undefined): boolean {
    let quietest: [string, UdpstrSender] | undefined;
    let quietestSilent: [string, UdpstrSender] | undefined;
    for (const entry of this.senders) {
      const sender = entry[1];
      if (address !== undefined && sender.address !== address) continue;
      if (!quietest || sender.lastSeenMs < quietest[1].lastSeenMs) quietest = entry;
      if (sender.reassembler.counters.recordsDelivered === 0 && (!quietestSilent || sender.lastSeenMs < quietestSilent[1].lastSeenMs)) quietestSilent = entry;
    }
    const victim = quietestSilent ?? (quietest && nowMs - quietest[1].lastSeenMs >= UDPSTR_SENDER_REPLACE_AFTER_QUIET_MS ? quietest : undefined);
    if (!victim) return false;
    this.counters.sendersReplaced++;
    this.evict(victim[0], victim[1], "replaced");
    return true;
  }

  private evict(key: string, sender: UdpstrSender, why: Exclude<UdpstrEviction, "stopped">): void {
    this.senders.delete(key);
    const left = (this.perAddress.get(sender.address) ?? 1) - 1;
    if (left > 0) this.perAddress.set(sender.address, left);
    else this.perAddress.delete(sender.address);
    sender.incompleteBytes = sender.reassembler.finish()?.bytesReceived ?? 0;
    addCounters(this.retired, sender.reassembler.counters);
    this.options.onEvicted?.(sender, why);
  }
}

/** into += from, field by field. */
export function addCounters(into: UdpstrReassemblerCounters, from: Readonly<UdpstrReassemblerCounters>): void {
  for (const key of Object.keys(into) as (keyof UdpstrReassemblerCounters)[]) into[key] += from[key];
}
