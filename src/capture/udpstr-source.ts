// UdpstrSource: a udpstr receiver (what `probe forward --udpstr`, `probe rpcapd -t` and
// ExtraHop's rpcapd send) as a CaptureSource. Each sender (source address and port) has its own
// reassembler (src/protocols/udpstr's UdpstrSenderTable), so whatever else reaches the port never
// enters a sender's records or loss figures; with an allow list, strangers are counted and
// dropped. Losses are counted per sender and reported every `reportSeconds` and at the end.
import type { udp } from "bun";
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "./capture-source.ts";
import { setSocketBuffer } from "./libpcap/ffi.ts";
import { MAXIMUM_SNAPLEN } from "../packet/packet-batch.ts";
import type { BpfInstruction } from "../packet/bpf/index.ts";
import type { Logger } from "../logging/index.ts";
import { addressAllowed, type Cidr } from "../net/addresses.ts";
import {
  UdpstrSenderTable,
  type UdpstrEviction,
  type UdpstrReassemblerCounters,
  type UdpstrSender,
  type UdpstrSenderTableCounters,
} from "../protocols/udpstr/index.ts";
import { createBatchFilter, type BatchFilter } from "./packet-filter.ts";

export interface UdpstrSourceOptions {
  host: string;
  port: number;
  /** Link type of the forwarded frames (udpstr does not carry it). */
  linktype: number;
  /** SO_RCVBUF in bytes; 0 = the kernel's default. */
  receiveBufferBytes: number;
  /** Interval of the live loss report; 0 = only the final one. */
  reportSeconds: number;
  /** Senders allowed (--allow); empty = everyone who can reach the port. */
  allow?: readonly Cidr[];
  /** Most senders tracked at once (UDPSTR_DEFAULT_MAX_SENDERS when absent). */
  maxSenders?: number;
  /** Most senders from one address at once (UDPSTR_DEFAULT_MAX_SENDERS_PER_ADDRESS when absent). */
  maxSendersPerAddress?: number;
  /** Seconds without a datagram after which a sender is evicted (UDPSTR_DEFAULT_SENDER_IDLE_MS when absent). */
  senderIdleSeconds?: number;
  filter?: string;
  log: Logger;
}

/**
 * How often the sender table is swept: held datagrams of quiet senders judged, idle senders
 * evicted, and notices that waited for their rate limit written. A second keeps the delay a
 * quiet sender's last records may see close to UDPSTR_SETTLE_AFTER_QUIET_MS.
 */
const SWEEP_INTERVAL_MS = 1_000;

/**
 * Least time between two notices of one kind (strangers refused, senders over the cap, new and
 * evicted senders): a flood from random ports costs one line per kind per interval, with the
 * count of what it stands for.
 */
const NOTICE_INTERVAL_MS = 10_000;

/** Senders named in each live report (the busiest); the rest are summed in one line. */
const LIVE_REPORT_SENDERS_MAX = 8;

/** One line of a stream's counters (a sender's, or several senders' summed). */
export function formatUdpstrReport(c: UdpstrReassemblerCounters): string {
  return (
    `datagrams received ${c.datagramsReceived}, lost ${c.datagramsLost}, late ${c.datagramsLate}, malformed ${c.datagramsMalformed}; ` +
    `records delivered ${c.recordsDelivered}, lost ${c.recordsLost}, malformed ${c.recordsMalformed}` +
    // Resynchronisations whose loss is unknown, and datagrams that broke the sequence alone.
    (c.seqnoJumps + c.npktJumps + c.strayDatagrams > 0
      ? `; seqno jumps ${c.seqnoJumps}, npkt jumps ${c.npktJumps}, stray datagrams ${c.strayDatagrams}`
      : "")
  );
}

/** "udpstr senders: ..." — what reached no sender's stream, and the senders' comings and goings. */
export function formatUdpstrSendersReport(active: number, t: UdpstrSenderTableCounters): string {
  return (
    `udpstr senders: ${active} now, ${t.sendersAdmitted} seen, ${t.sendersEvictedIdle} evicted idle, ${t.sendersReplaced} replaced; ` +
    `datagrams refused: ${t.strangerDatagrams} from strangers (not in --allow), ${t.overCapDatagrams} over the sender cap, ` +
    `${t.unknownMalformedDatagrams} malformed from unknown senders`
  );
}

export function senderName(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Addresses whose allow-list verdict is remembered: a stranger's every datagram asks again, and
 * parsing its address each time costs more than the rest of refusing it. Cleared when full, so
 * random source addresses cannot grow it.
 */
const ALLOW_CACHE_ADDRESSES = 256;

function allowCache(allow: readonly Cidr[]): (address: string) => boolean {
  const verdicts = new Map<string, boolean>();
  return (address) => {
    let verdict = verdicts.get(address);
    if (verdict === undefined) {
      if (verdicts.size >= ALLOW_CACHE_ADDRESSES) verdicts.clear();
      verdict = addressAllowed(address, allow);
      verdicts.set(address, verdict);
    }
    return verdict;
  };
}

/** A kind of notice written at most once per NOTICE_INTERVAL_MS, with the count it stands for. */
class Notice {
  private pending = 0;
  private latest = "";
  private lastWrittenMs = -Infinity;

  constructor(private readonly write: (count: number, latest: string) => void) {}

  note(nowMs: number, latest: string): void {
    this.pending++;
    this.latest = latest;
    this.flush(nowMs);
  }

  flush(nowMs: number, force = false): void {
    if (this.pending === 0 || (!force && nowMs - this.lastWrittenMs < NOTICE_INTERVAL_MS)) return;
    this.write(this.pending, this.latest);
    this.pending = 0;
    this.lastWrittenMs = nowMs;
  }
}

export class UdpstrSource implements CaptureSource {
  readonly description: string;
  readonly senders: UdpstrSenderTable;
  private socket: udp.Socket<"buffer"> | undefined;
  private handlers: CaptureHandlers | undefined;
  private reportTimer: ReturnType<typeof setInterval> | undefined;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private filter: BatchFilter | undefined;
  private takeScheduled = false;
  private delivered = 0;
  private stopped: Promise<CaptureStats> | undefined;
  /** Rate-limited notices, one per kind (see NOTICE_INTERVAL_MS). */
  private readonly notices: { strangers: Notice; overCap: Notice; admitted: Notice; evicted: Notice };

  constructor(private readonly options: UdpstrSourceOptions) {
    this.description = `udpstr ${options.host}:${options.port}`;
    const allow = options.allow ?? [];
    const log = options.log;
    this.senders = new UdpstrSenderTable({
      linktype: options.linktype,
      ...(options.maxSenders !== undefined ? { maxSenders: options.maxSenders } : {}),
      ...(options.maxSendersPerAddress !== undefined ? { maxSendersPerAddress: options.maxSendersPerAddress } : {}),
      ...(options.senderIdleSeconds !== undefined ? { idleMs: options.senderIdleSeconds * 1000 } : {}),
      ...(allow.length > 0 ? { allowed: allowCache(allow) } : {}),
      onEvicted: (sender, why) => this.senderLeft(sender, why),
    });
    this.notices = {
      strangers: new Notice((n, latest) => log.warn(`udpstr: refused ${n} datagram(s) from senders not in --allow (latest ${latest})`)),
      overCap: new Notice((n, latest) =>
        log.warn(
          `udpstr: refused ${n} datagram(s) from new senders: the sender table (${this.senders.maxSenders}, ${this.senders.maxSendersPerAddress} per address) is full of active senders (latest ${latest})`,
        ),
      ),
      admitted: new Notice((n, latest) => log.info(n === 1 ? `udpstr: new sender ${latest}` : `udpstr: ${n} new senders (latest ${latest})`)),
      evicted: new Notice((n, latest) => log.info(n === 1 ? `udpstr: sender ${latest}` : `udpstr: ${n} senders evicted (latest: ${latest})`)),
    };
  }

  /** Every sender's figures summed (those evicted included). */
  get counters(): UdpstrReassemblerCounters {
    return this.senders.totals();
  }

  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    this.handlers = handlers;
    const o = this.options;
    if (o.filter) this.filter = createBatchFilter(o.filter, o.linktype, MAXIMUM_SNAPLEN);
    const socket = await Bun.udpSocket({
      hostname: o.host,
      port: o.port,
      socket: {
        data: (_socket, datagram, port, address) => this.receive(datagram, port, address),
      },
    });
    // Bun exposes the fd at run time (checked on 1.4.4) but not in its types.
    this.socket = socket;
    if (o.receiveBufferBytes > 0) setSocketBuffer((socket as unknown as { fd: number }).fd, "receive", o.receiveBufferBytes);
    o.log.info(`receiving udpstr on ${o.host}:${socket.port}${(o.allow ?? []).length > 0 ? ` from ${(o.allow ?? []).map((c) => c.text).join(", ")} only` : ""}`);
    if (o.reportSeconds > 0) this.reportTimer = setInterval(() => this.liveReport(), o.reportSeconds * 1000);
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    return { linktype: o.linktype, snaplen: MAXIMUM_SNAPLEN, precision: "micro", description: this.description };
  }

  async setFilter(filter: string | readonly BpfInstruction[]): Promise<void> {
    this.filter = createBatchFilter(typeof filter === "string" ? filter : [...filter], this.options.linktype, MAXIMUM_SNAPLEN);
  }

  async stats(): Promise<CaptureStats> {
    return { delivered: this.delivered };
  }

  stop(): Promise<CaptureStats> {
    this.stopped ??= (async () => {
      clearInterval(this.reportTimer);
      clearInterval(this.sweepTimer);
      this.socket?.close();
      this.senders.finish();
      this.deliver();
      const now = performance.now();
      for (const notice of Object.values(this.notices)) notice.flush(now, true);
      this.handlers?.onEnd("stopped");
      return { delivered: this.delivered };
    })();
    return this.stopped;
  }

  /** The exit summary: one line per sender, the evicted ones summed, and the table's line when anything reached no stream. */
  summaryLines(): string[] {
    const active = this.senders.active;
    const t = this.senders.counters;
    const lines = active.map((sender) => this.senderLine(sender));
    const evicted = t.sendersEvictedIdle + t.sendersReplaced;
    if (evicted > 0) lines.push(`udpstr: ${evicted} sender(s) evicted earlier, together: ${formatUdpstrReport(this.senders.retired)}`);
    if (lines.length === 0) lines.push(`udpstr: no sender; ${formatUdpstrReport(this.senders.totals())}`);
    if (this.refusedAnything() || active.length + evicted > 1) lines.push(formatUdpstrSendersReport(active.length, t));
    return lines;
  }

  private receive(datagram: Uint8Array, port: number, address: string): void {
    if (this.stopped) return; // the table is finished: nothing may enter it any more
    const now = performance.now();
    const arrival = this.senders.push(address, port, datagram, now);
    if (typeof arrival === "string") {
      if (arrival === "stranger") this.notices.strangers.note(now, senderName(address, port));
      else if (arrival === "over-cap") this.notices.overCap.note(now, senderName(address, port));
      return;
    }
    if (arrival.reassembler.counters.datagramsReceived === 1) this.notices.admitted.note(now, senderName(address, port));
    // Datagrams arrive one callback each; completed records are cut into one batch per sender
    // per turn of the event loop rather than one per datagram.
    if (!this.takeScheduled && arrival.reassembler.pendingRecords > 0) {
      this.takeScheduled = true;
      setImmediate(() => this.deliver());
    }
  }

  private sweep(): void {
    const now = performance.now();
    this.senders.tick(now);
    for (const notice of Object.values(this.notices)) notice.flush(now);
    this.deliver();
  }

  private liveReport(): void {
    const log = this.options.log;
    const active = [...this.senders.active].sort((a, b) => b.reassembler.counters.datagramsReceived - a.reassembler.counters.datagramsReceived);
    for (const sender of active.slice(0, LIVE_REPORT_SENDERS_MAX)) log.info(this.senderLine(sender));
    if (active.length > LIVE_REPORT_SENDERS_MAX) log.info(`udpstr: ${active.length - LIVE_REPORT_SENDERS_MAX} more sender(s) not shown; all senders together: ${formatUdpstrReport(this.senders.totals())}`);
    if (active.length === 0) log.info(`udpstr: no sender; ${formatUdpstrReport(this.senders.totals())}`);
    if (this.refusedAnything()) log.info(formatUdpstrSendersReport(active.length, this.senders.counters));
  }

  private refusedAnything(): boolean {
    const t = this.senders.counters;
    return t.strangerDatagrams + t.overCapDatagrams + t.unknownMalformedDatagrams > 0 || (this.options.allow ?? []).length > 0;
  }

  private senderLine(sender: UdpstrSender): string {
    const incomplete = sender.incompleteBytes ? `; last record incomplete (${sender.incompleteBytes} bytes)` : "";
    return `udpstr from ${senderName(sender.address, sender.port)}: ${formatUdpstrReport(sender.reassembler.counters)}${incomplete}`;
  }

  /** A sender left the table: its last records go out now; evictions are noticed (rate-limited). */
  private senderLeft(sender: UdpstrSender, why: UdpstrEviction): void {
    this.deliverFrom(sender);
    if (why === "stopped") return;
    const reason = why === "idle" ? `idle ${Math.round(this.senders.idleMs / 1000)} s` : "replaced by a new sender while the table was full";
    this.notices.evicted.note(performance.now(), `${senderName(sender.address, sender.port)} evicted (${reason}): ${formatUdpstrReport(sender.reassembler.counters)}`);
  }

  private deliver(): void {
    this.takeScheduled = false;
    for (const sender of this.senders.active) this.deliverFrom(sender);
  }

  private deliverFrom(sender: UdpstrSender): void {
    const taken = sender.reassembler.take();
    if (!taken) return;
    const batch = this.filter ? this.filter(taken.batch) : taken.batch;
    if (batch.count === 0) return;
    this.delivered += batch.count;
    void this.handlers?.onBatch(batch);
  }
}
