// udpstr reassembler: the receiver ExtraHop never shipped. Datagrams in arrival order in,
// complete records out as a little-endian PacketBatch (microsecond timestamps) plus their npkt.
// Pure: no sockets, timers, logging or Bun APIs. Never throws for anything a peer sends.
//
// Rules (docs/spec/udpstr.md "Receiver rules"):
// - seqno must grow by one per datagram (u32, wrapping). A jump ahead is a loss of that many
//   datagrams; a seqno a little behind is a late (reordered or duplicated) datagram and is
//   dropped; one far behind (UDPSTR_LATE_WINDOW_DATAGRAMS) means the sender restarted its
//   sequence. After a loss or a restart the record in progress is dropped and reading resumes at
//   the firsthdridx of the next datagram that has one.
// - In sync, every datagram's firsthdridx must equal where our own parse says the next record
//   header begins (0xFFFF when none does). A disagreement means corrupt or forged data: the
//   record in progress is dropped and reading resumes at the datagram's firsthdridx.
// - Every record header is checked (caplen <= len, caplen <= the snaplen cap) before anything is
//   allocated for it; a bad one is skipped with the rest of its datagram, like a loss.
// - Records lost inside a gap cannot be seen, but npkt grows by exactly one per forwarded packet
//   (ExtraHop daemon_build_udp: `npkt = ++pcap_dispatched`), so after any discontinuity the npkt
//   of the first header read again tells how many were lost: recordsLost += npkt - lastNpkt - 1,
//   where lastNpkt is the last record whose header we read (delivered, or cut and counted then).
// - What a jump may claim is bounded, so forged datagrams cannot inflate the loss report: a
//   seqno jump beyond UDPSTR_MAX_SEQNO_GAP_DATAGRAMS, and an npkt gap larger than the lost
//   datagrams could have held (records per datagram from the largest datagram seen, 20 bytes
//   a record at least), are resynchronisations counted apart (seqnoJumps, npktJumps).
// - A datagram that breaks the sequence (any seqno but the expected one that is not a late
//   one) is held, copied, without touching the stream, until the next datagram judges it: if
//   that one goes on from it (1..UDPSTR_LATE_WINDOW_DATAGRAMS ahead of it), the break was
//   real (a loss, a restart) and the held datagram is read; if the old sequence goes on, the
//   held one was a stray (forged, corrupt, or another stream's) and is dropped whole: the
//   stream in progress and its loss figures are as if it had never come. A datagram one
//   ahead held while the expected one arrives is simply reordered: both are read, in order.
// - The first datagram of a stream more than the late window past firstSeqno is a receiver
//   that joined mid-stream: nothing before it is claimed lost.
import { PacketBatchBuilder, type PacketBatch } from "../../packet/packet-batch.ts";
import { ProtocolError } from "../../packet/protocol-error.ts";
import { checkUdpstrPkthdr, decodeUdpstrDatagramHeader, decodeUdpstrPkthdr, type UdpstrPkthdr } from "./codec.ts";
import {
  U32_HALF_RANGE,
  UDPSTR_DEFAULT_MAX_CAPLEN_BYTES,
  UDPSTR_FIRSTHDR_NONE,
  UDPSTR_HEADER_BYTES,
  UDPSTR_LATE_WINDOW_DATAGRAMS,
  UDPSTR_MAX_SEQNO_GAP_DATAGRAMS,
  UDPSTR_PKTHDR_BYTES,
  nextU32,
  u32Distance,
} from "./wire.ts";

/** How a UdpstrReassembler is set up. */
export interface UdpstrReassemblerOptions {
  /** LINKTYPE_* of the records (from the RPCAP OPEN_REPLY); stamped on every batch. */
  linktype: number;
  /** Snaplen the capture was started with; a record with a larger caplen is malformed. */
  snaplen?: number;
  /** Absolute caplen cap whatever the snaplen (default UDPSTR_DEFAULT_MAX_CAPLEN_BYTES). */
  maxCaplenBytes?: number;
  /** seqno of the first datagram of the stream; ExtraHop starts at 0. */
  firstSeqno?: number;
  /** npkt of the first record of the stream; ExtraHop (and libpcap's rpcapd) start at 1. */
  firstNpkt?: number;
  /**
   * Where complete records go (must be microsecond precision). Default: a builder of our own.
   * Take batches through take() so the npkt list stays aligned with the records.
   */
  builder?: PacketBatchBuilder;
}

/** What happened to the datagrams and records seen so far. All counts only grow. */
export interface UdpstrReassemblerCounters {
  /** Every datagram handed to push(), good or bad. */
  datagramsReceived: number;
  /** Datagrams missing from seqno gaps (sum of the gap sizes). */
  datagramsLost: number;
  /** Datagrams that arrived behind the expected seqno (reordered or duplicated) and were dropped. */
  datagramsLate: number;
  /** Datagrams with an unusable header (short, ver != 0, type != 110, firsthdridx outside the datagram); skipped. */
  datagramsMalformed: number;
  /** Times the seqno jumped far behind (a restarted sequence); reading resynchronised. */
  sequenceRestarts: number;
  /** Times the seqno jumped further ahead than UDPSTR_MAX_SEQNO_GAP_DATAGRAMS: resynchronised, loss unknown (not in datagramsLost). */
  seqnoJumps: number;
  /** Times an npkt gap was larger than the lost datagrams could hold: not counted in recordsLost. */
  npktJumps: number;
  /** Datagrams that broke the sequence while the old sequence went on right after: dropped whole, their claimed loss not counted. */
  strayDatagrams: number;
  /** Datagrams whose firsthdridx disagreed with the record boundaries already known; resynchronised. */
  firsthdrMismatches: number;
  /** Complete records handed out. */
  recordsDelivered: number;
  /**
   * Records known to be lost: each record cut by a loss, a mismatch or the end of the stream,
   * plus those wholly inside lost datagrams, counted from the npkt gap at resynchronisation.
   */
  recordsLost: number;
  /** Record headers with impossible lengths (caplen > len or > the cap); skipped with the rest of their datagram. */
  recordsMalformed: number;
  /** Stream bytes thrown away while out of step (before a firsthdridx, or in 0xFFFF datagrams). */
  bytesSkipped: number;
}

/** Complete records taken out of the reassembler: the batch and each record's npkt, same order. */
export interface UdpstrRecords {
  batch: PacketBatch;
  npkts: Uint32Array;
}

/** The record still in progress when the stream ended (finish()). */
export interface UdpstrIncompleteRecord {
  /** Its header, or null when only part of the 20-byte header arrived. */
  header: UdpstrPkthdr | null;
  /** Data bytes received (of header.caplen), or header bytes received when header is null. */
  bytesReceived: number;
  /** Those bytes (owned copy). */
  bytes: Uint8Array;
}

/** A datagram held until the next one shows whether the sequence really jumped to it. */
interface HeldDatagram {
  seqno: number;
  firsthdridx: number;
  /** Owned copy. */
  bytes: Uint8Array;
}

type Phase =
  /** In step; the next stream byte begins a record header. */
  | "boundary"
  /** In step; part of a record header is buffered in headerBuf. */
  | "header"
  /** In step; the record `current` is being filled. */
  | "data"
  /** Out of step after a loss or bad data; waiting for a datagram with a firsthdridx. */
  | "lost";

/** Every counter of a reassembler at zero (a new stream, or the sum of streams that are gone). */
export function zeroReassemblerCounters(): UdpstrReassemblerCounters {
  return {
    datagramsReceived: 0,
    datagramsLost: 0,
    datagramsLate: 0,
    datagramsMalformed: 0,
    sequenceRestarts: 0,
    seqnoJumps: 0,
    npktJumps: 0,
    strayDatagrams: 0,
    firsthdrMismatches: 0,
    recordsDelivered: 0,
    recordsLost: 0,
    recordsMalformed: 0,
    bytesSkipped: 0,
  };
}

/**
 * Reassembles one udpstr stream. Feed datagrams in arrival order with push() (the bytes are
 * borrowed for the call only: whatever is kept is copied), collect complete records with take(),
 * and call finish() at the end. Peer faults are counted in `counters` (the last one is kept in
 * `lastError` for the log), never thrown.
 */
export class UdpstrReassembler {
  readonly counters: UdpstrReassemblerCounters = zeroReassemblerCounters();
  /** The most recent peer fault, for logging; null when there has been none. */
  lastError: ProtocolError | null = null;

  private readonly builder: PacketBatchBuilder;
  private readonly maxCaplen: number;
  private npkts: number[] = [];
  private expectedSeqno: number;
  private phase: Phase = "boundary";
  /** npkt of the last record whose header was read; null when unknown (after a restart). */
  private lastNpkt: number | null;
  /** A discontinuity happened: the next header read counts the records lost in it. */
  private lossPending = false;
  /** Datagrams lost since lossPending was set: bounds the npkt gap that may be believed. */
  private gapDatagrams = 0;
  /** Largest datagram seen, for the most records one datagram can carry. */
  private largestDatagramBytes = UDPSTR_HEADER_BYTES;
  /**
   * A datagram that broke the sequence, copied and not yet read: the next datagram tells
   * whether the stream really jumped to it or it was a stray (see the rules at the top).
   */
  private held: HeldDatagram | undefined;
  /** Some datagram has been read: before that, a far jump is joining a stream, not a loss. */
  private started = false;
  private finished = false;

  /** Part of a record header that straddles datagrams (ExtraHop never splits one; others may). */
  private readonly headerBuf = new Uint8Array(UDPSTR_PKTHDR_BYTES);
  private headerHave = 0;
  /** The record being filled, its data so far in dataBuf (grown on demand up to the caplen cap). */
  private current: UdpstrPkthdr | null = null;
  private dataBuf = new Uint8Array(0);
  private dataHave = 0;

  constructor(options: UdpstrReassemblerOptions) {
    const cap = options.maxCaplenBytes ?? UDPSTR_DEFAULT_MAX_CAPLEN_BYTES;
    this.maxCaplen = options.snaplen === undefined ? cap : Math.min(cap, options.snaplen);
    this.expectedSeqno = (options.firstSeqno ?? 0) >>> 0;
    this.lastNpkt = ((options.firstNpkt ?? 1) - 1) >>> 0; // u32: firstNpkt 0 means "last was 2^32-1"
    this.builder = options.builder ?? new PacketBatchBuilder(options.linktype, "micro");
    if (this.builder.precision !== "micro") throw new RangeError("udpstr records carry microseconds: the builder must be micro");
  }

  /** Records delivered and not yet taken. */
  get pendingRecords(): number {
    return this.npkts.length;
  }

  /**
   * Handles one datagram (borrowed: valid for this call only). Complete records are appended to
   * the batch being built; nothing a peer sends makes this throw.
   */
  push(datagram: Uint8Array): void {
    if (this.finished) throw new Error("UdpstrReassembler.push() after finish()");
    this.counters.datagramsReceived++;
    let firsthdridx: number;
    let seqno: number;
    try {
      ({ firsthdridx, seqno } = decodeUdpstrDatagramHeader(datagram));
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      // Skipped without touching the seqno state: if it took a real seqno, the next good
      // datagram shows the gap and the loss rules apply.
      this.counters.datagramsMalformed++;
      this.lastError = error;
      return;
    }

    const held = this.held;
    if (seqno === this.expectedSeqno) {
      this.held = undefined;
      this.read(datagram, seqno, firsthdridx);
      if (held) {
        // One ahead and now next: reordered by one, read in order. Anything else held while the
        // old sequence went on was a stray; it never touched the stream.
        if (held.seqno === this.expectedSeqno) this.read(held.bytes, held.seqno, held.firsthdridx);
        else this.counters.strayDatagrams++;
      }
      return;
    }
    if (held) {
      const beyondHeld = u32Distance(seqno, held.seqno);
      if (beyondHeld >= 1 && beyondHeld <= UDPSTR_LATE_WINDOW_DATAGRAMS) {
        // The stream goes on from the held datagram: the jump to it was real.
        this.held = undefined;
        this.jumpTo(held);
        if (seqno === this.expectedSeqno) {
          this.read(datagram, seqno, firsthdridx);
          return;
        }
      }
    }
    const behind = u32Distance(this.expectedSeqno, seqno);
    if (behind >= 1 && behind <= UDPSTR_LATE_WINDOW_DATAGRAMS) {
      // Its slot was already counted as lost when a later datagram was read, so its bytes cannot
      // be placed. Dropped, state (and any held datagram) untouched.
      this.counters.datagramsLate++;
      return;
    }
    // A new break in the sequence: held until the next datagram judges it. A datagram held
    // before it was not followed by its own sequence: a stray.
    if (this.held) this.counters.strayDatagrams++;
    this.held = { seqno, firsthdridx, bytes: datagram.slice() }; // owned: the datagram is borrowed
  }

  /**
   * Judges a held datagram that nothing came after to confirm or refute (the sender went quiet,
   * or the stream ended): read when it is a plausible break, a loss of at most
   * UDPSTR_LATE_WINDOW_DATAGRAMS or a new sequence starting within that of 0, or when nothing
   * of the stream was read yet (a first datagram has no stream to spoil); otherwise a stray.
   * The caller (the receiver's timer, finish()) decides when a sender counts as quiet.
   */
  settle(): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    const ahead = u32Distance(held.seqno, this.expectedSeqno);
    const plausible = !this.started || (ahead >= 1 && ahead <= UDPSTR_LATE_WINDOW_DATAGRAMS) || held.seqno <= UDPSTR_LATE_WINDOW_DATAGRAMS;
    if (plausible) this.jumpTo(held);
    else this.counters.strayDatagrams++;
  }

  /** True while a datagram that broke the sequence waits to be judged (see settle()). */
  get holding(): boolean {
    return this.held !== undefined;
  }

  /** The sequence really jumped to `held`: count what the jump lost, then read it. */
  private jumpTo(held: HeldDatagram): void {
    const ahead = u32Distance(held.seqno, this.expectedSeqno);
    this.loseStep();
    if (!this.started && ahead > UDPSTR_LATE_WINDOW_DATAGRAMS) {
      // Joined a stream in its middle: what came before was never ours to lose.
      this.lastNpkt = null;
      this.lossPending = false;
    } else if (ahead < U32_HALF_RANGE) {
      if (ahead <= UDPSTR_MAX_SEQNO_GAP_DATAGRAMS) {
        this.counters.datagramsLost += ahead;
        this.gapDatagrams += ahead;
      } else {
        // Too far ahead to believe: resynchronise on it, loss unknown, npkt counting restarts.
        this.counters.seqnoJumps++;
        this.lastNpkt = null;
        this.lossPending = false;
      }
    } else {
      this.counters.sequenceRestarts++;
      this.lastNpkt = null; // a new sequence numbers its records afresh
      this.lossPending = false;
    }
    this.read(held.bytes, held.seqno, held.firsthdridx);
  }

  /** Reads one datagram that is next in the sequence. */
  private read(datagram: Uint8Array, seqno: number, firsthdridx: number): void {
    this.started = true;
    if (datagram.byteLength > this.largestDatagramBytes) this.largestDatagramBytes = datagram.byteLength;
    this.expectedSeqno = nextU32(seqno); // u32 seqno wraps explicitly
    this.consume(datagram, firsthdridx);
  }

  /** The records delivered since the last take(), or null when there are none. */
  take(): UdpstrRecords | null {
    const batch = this.builder.take();
    if (batch === null) return null;
    const npkts = Uint32Array.from(this.npkts);
    this.npkts = [];
    return { batch, npkts };
  }

  /**
   * Ends the stream: the record still in progress, if any, is reported and counted as lost.
   * push() may not be called afterwards; take() may.
   */
  finish(): UdpstrIncompleteRecord | null {
    if (this.finished) return null;
    // A held datagram nothing came after to judge.
    this.settle();
    this.finished = true;
    let incomplete: UdpstrIncompleteRecord | null = null;
    if (this.phase === "data" && this.current) {
      incomplete = { header: this.current, bytesReceived: this.dataHave, bytes: this.dataBuf.slice(0, this.dataHave) };
    } else if (this.phase === "header") {
      incomplete = { header: null, bytesReceived: this.headerHave, bytes: this.headerBuf.slice(0, this.headerHave) };
    }
    if (incomplete) this.counters.recordsLost++;
    this.phase = "lost";
    this.current = null;
    return incomplete;
  }

  /** A discontinuity: drop the record in progress and wait for a firsthdridx. */
  private loseStep(): void {
    if (this.phase === "data" && this.current) {
      // Its header was read, so it is counted here and npkt counting resumes after it.
      this.counters.recordsLost++;
      this.lastNpkt = this.current.npkt;
    }
    // A half-read header has an unknown npkt: the npkt gap at resynchronisation includes it.
    this.current = null;
    this.dataHave = 0;
    this.headerHave = 0;
    this.phase = "lost";
    if (!this.lossPending) this.gapDatagrams = 0;
    this.lossPending = true;
  }

  /** Where our own parse says the first record header begins in `datagram` (0xFFFF: none). */
  private expectedFirsthdr(datagram: Uint8Array): number {
    const end = datagram.byteLength;
    let at: number;
    if (this.phase === "boundary") {
      at = UDPSTR_HEADER_BYTES;
    } else if (this.phase === "data" && this.current) {
      at = UDPSTR_HEADER_BYTES + (this.current.caplen - this.dataHave);
    } else {
      // "header": finish the header in our heads to learn caplen (bytes 8..11 of rpcap_pkthdr).
      const need = UDPSTR_PKTHDR_BYTES - this.headerHave;
      if (UDPSTR_HEADER_BYTES + need > end) return UDPSTR_FIRSTHDR_NONE;
      const byteAt = (i: number): number =>
        i < this.headerHave ? (this.headerBuf[i] ?? 0) : (datagram[UDPSTR_HEADER_BYTES + i - this.headerHave] ?? 0);
      const caplen = ((byteAt(8) << 24) | (byteAt(9) << 16) | (byteAt(10) << 8) | byteAt(11)) >>> 0;
      at = UDPSTR_HEADER_BYTES + need + caplen;
    }
    return at < end ? at : UDPSTR_FIRSTHDR_NONE;
  }

  /** Reads the stream bytes of one in-order datagram. */
  private consume(datagram: Uint8Array, firsthdridx: number): void {
    const end = datagram.byteLength;
    let p = UDPSTR_HEADER_BYTES;
    if (this.phase !== "lost" && this.expectedFirsthdr(datagram) !== firsthdridx) {
      this.counters.firsthdrMismatches++;
      this.lastError = new ProtocolError(
        "firsthdridx-mismatch",
        `firsthdridx ${firsthdridx} where the record boundaries say ${this.expectedFirsthdr(datagram)}`,
        2,
      );
      this.loseStep();
    }
    if (this.phase === "lost") {
      if (firsthdridx === UDPSTR_FIRSTHDR_NONE) {
        this.counters.bytesSkipped += end - p;
        return;
      }
      this.counters.bytesSkipped += firsthdridx - p;
      p = firsthdridx;
      this.phase = "boundary";
    }

    while (p < end) {
      if (this.phase === "boundary") {
        if (end - p >= UDPSTR_PKTHDR_BYTES) {
          const header = decodeUdpstrPkthdr(datagram, p);
          if (!this.startRecord(header, p)) return this.skipRest(end - p - UDPSTR_PKTHDR_BYTES);
          p += UDPSTR_PKTHDR_BYTES;
        } else {
          this.headerBuf.set(datagram.subarray(p, end));
          this.headerHave = end - p;
          this.phase = "header";
          p = end;
        }
      } else if (this.phase === "header") {
        const take = Math.min(UDPSTR_PKTHDR_BYTES - this.headerHave, end - p);
        this.headerBuf.set(datagram.subarray(p, p + take), this.headerHave);
        this.headerHave += take;
        p += take;
        if (this.headerHave === UDPSTR_PKTHDR_BYTES) {
          this.headerHave = 0;
          const header = decodeUdpstrPkthdr(this.headerBuf, 0);
          if (!this.startRecord(header, p - UDPSTR_PKTHDR_BYTES)) return this.skipRest(end - p);
        }
      } else if (this.phase === "data" && this.current) {
        const record = this.current;
        const take = Math.min(record.caplen - this.dataHave, end - p);
        if (this.dataHave === 0 && take === record.caplen) {
          this.deliver(record, datagram.subarray(p, p + take)); // whole record in one datagram: no staging copy
        } else {
          if (this.dataHave === 0) this.reserveStaging(record.caplen);
          this.dataBuf.set(datagram.subarray(p, p + take), this.dataHave);
          this.dataHave += take;
          if (this.dataHave === record.caplen) this.deliver(record, this.dataBuf.subarray(0, record.caplen));
        }
        p += take;
      } else {
        return; // unreachable: "lost" was handled above
      }
    }
  }

  /**
   * Checks a header and makes it the current record; false (and counted) when it is malformed.
   * `offset` is where the header began in the datagram, for the error.
   */
  private startRecord(header: UdpstrPkthdr, offset: number): boolean {
    try {
      checkUdpstrPkthdr(header, this.maxCaplen, offset);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.counters.recordsMalformed++;
      this.lastError = error;
      this.loseStep();
      return false;
    }
    if (this.lossPending && this.lastNpkt !== null) {
      const distance = u32Distance(header.npkt, this.lastNpkt);
      // npkt wraps at 2^32; a distance "behind" (or 0) cannot count losses, so none are added.
      // The lost datagrams (and the one being read) held at most this many records.
      const recordsPerDatagram = Math.floor((this.largestDatagramBytes - UDPSTR_HEADER_BYTES) / UDPSTR_PKTHDR_BYTES) + 1;
      const believable = (this.gapDatagrams + 1) * recordsPerDatagram;
      if (distance >= 1 && distance < U32_HALF_RANGE) {
        if (distance - 1 <= believable) this.counters.recordsLost += distance - 1;
        else this.counters.npktJumps++;
      }
    }
    this.lossPending = false;
    this.gapDatagrams = 0;
    this.lastNpkt = header.npkt;
    this.current = header;
    this.dataHave = 0;
    this.phase = "data";
    if (header.caplen === 0) this.deliver(header, this.dataBuf.subarray(0, 0));
    return true;
  }

  private deliver(header: UdpstrPkthdr, data: Uint8Array): void {
    this.builder.push(header.tsSec, header.tsUsec, header.len, data); // copies the data
    this.npkts.push(header.npkt);
    this.counters.recordsDelivered++;
    this.current = null;
    this.dataHave = 0;
    this.phase = "boundary";
  }

  /**
   * Makes room to stage a record that straddles datagrams. caplen was checked against the cap
   * before this, so the buffer never grows past maxCaplen; it is kept and reused.
   */
  private reserveStaging(caplen: number): void {
    if (caplen <= this.dataBuf.byteLength) return;
    this.dataBuf = new Uint8Array(Math.min(this.maxCaplen, Math.max(caplen, this.dataBuf.byteLength * 2)));
  }

  private skipRest(count: number): void {
    this.counters.bytesSkipped += Math.max(0, count);
  }
}
