// Wire vocabulary of udpstr, ExtraHop's packed UDP data channel for RPCAP.
// Sources: ExtraHop/rpcapd @9b0a405, winpcap/wpcap/libpcap/pcap-remote.h (struct
// rpcap_udpstr_header, UDPSTR_FIRSTHDR_NONE, RPCAP_MSG_UDPSTR_PACKET) and
// winpcap/wpcap/libpcap/rpcapd/daemon.c (daemon_udpstr_write/flush, daemon_build_udp);
// docs/spec/udpstr.md; the udpstr vectors in test/fixtures/vectors (test/fixtures/README.md).
//
// Every integer is big-endian. Each UDP datagram is
//
//   offset 0  ver:u8 (0)  type:u8 (110)  firsthdridx:u16  seqno:u32
//   offset 8  a slice of one continuous byte stream, up to the MTU in total
//
// and the stream is a run of records with no per-record rpcap_header:
//
//   record    ts_sec:u32  ts_usec:u32  caplen:u32  len:u32  npkt:u32   (struct rpcap_pkthdr)
//             caplen bytes of packet data
//
// firsthdridx is the offset, from the start of the datagram, of the first record header that
// BEGINS in it (so >= 8), or 0xFFFF when none does. seqno starts at 0 and grows by one per
// datagram; npkt grows by one per forwarded packet and starts at 1 (daemon_build_udp does
// `++pcap_dispatched`). Both are u32 counters that wrap.

/** udpstr_header.ver: the RPCAP protocol version, always 0 (pcap-remote.h RPCAP_VERSION). */
export const UDPSTR_VERSION = 0;

/** udpstr_header.type: RPCAP_MSG_UDPSTR_PACKET (pcap-remote.h), an ExtraHop-only message type. */
export const UDPSTR_MESSAGE_TYPE = 110;

/** struct rpcap_udpstr_header: ver:u8 type:u8 firsthdridx:u16 seqno:u32. */
export const UDPSTR_HEADER_BYTES = 8;

/** struct rpcap_pkthdr: ts_sec, ts_usec, caplen, len, npkt, all u32 (same struct as RPCAP). */
export const UDPSTR_PKTHDR_BYTES = 20;

/** firsthdridx when no record header begins in the datagram (UDPSTR_FIRSTHDR_NONE = UINT16_MAX). */
export const UDPSTR_FIRSTHDR_NONE = 0xffff;

/**
 * ExtraHop's `-t` default: a 1500-byte Ethernet MTU minus 20 IPv4 and 8 UDP header bytes, so
 * a full datagram never needs IP fragmentation (rpcapd.c `.udp_mtu = 1472`).
 */
export const UDPSTR_DEFAULT_MTU_BYTES = 1472;

/**
 * ExtraHop clamps `-t` to this (rpcapd.c `if (udp_mtu > 65000) udp_mtu = 65000`). It also keeps
 * every real firsthdridx below UDPSTR_FIRSTHDR_NONE, and under the 65507-byte UDP/IPv4 limit.
 */
export const UDPSTR_MAX_MTU_BYTES = 65000;

/**
 * ExtraHop starts a new datagram once fewer than this many bytes are left in the current one
 * (daemon.c tests `iov_len >= udp_mtu - sizeof(rpcap_udpstr_header) - sizeof(rpcap_pkthdr)`,
 * where iov_len already includes the 8-byte header). Because the buffered length is kept
 * below `mtu - 28` between records, the next 20-byte record header always fits whole.
 */
export const UDPSTR_FLUSH_THRESHOLD_BYTES = UDPSTR_HEADER_BYTES + UDPSTR_PKTHDR_BYTES;

/**
 * Smallest MTU we accept. ExtraHop has no lower bound (it computes `udp_mtu - 28` in unsigned
 * arithmetic, which wraps below 28). Its algorithm needs an empty datagram (8 bytes) to be below
 * the flush threshold, `8 < mtu - 28`, so that a record header plus at least one data byte fits
 * before a cut: 37 is the least MTU for which every invariant of daemon_udpstr_write holds.
 */
export const UDPSTR_MIN_MTU_BYTES = UDPSTR_FLUSH_THRESHOLD_BYTES + UDPSTR_HEADER_BYTES + 1;

/**
 * ExtraHop gathers a datagram with writev() from `ex_iovec iov[32]`, iov[0] being the udpstr
 * header. The array size limits how many records one datagram can hold, so short datagrams
 * appear when many tiny packets are buffered; the packer reproduces it (see IovLayout).
 */
export const UDPSTR_IOV_SLOTS = 32;

/**
 * How ExtraHop's daemon lays records into iovec slots, which decides when a datagram is cut
 * because the iovec array is full.
 *
 * - SINGLE_THREADED (the default, `single_threaded = 1`): the pcap callback passes the pkthdr
 *   and the packet data as two slots; before adding a record it flushes if 30 or more slots
 *   are in use (`iov_count >= ARRAY_SIZE(iov) - 2`), so at most 15 records share a datagram.
 * - SEND_THREAD (`-c`, a capture thread and a send thread joined by a ring): pkthdr and data
 *   are contiguous in the ring and take one slot; the datagram is flushed when all 32 slots
 *   are used, so at most 31 records share a datagram.
 */
export const IovLayout = {
  SINGLE_THREADED: "single-threaded",
  SEND_THREAD: "send-thread",
  /**
   * Not ExtraHop's: no slot limit, so tiny packets fill datagrams to the MTU (within ~1% of the
   * ideal count). The datagrams are valid udpstr for any receiver; `probe forward` uses it,
   * while `probe rpcapd -t` keeps SINGLE_THREADED to be byte-identical to ExtraHop's daemon.
   */
  DENSE: "dense",
} as const;
export type IovLayout = (typeof IovLayout)[keyof typeof IovLayout];

/**
 * Largest caplen the reassembler accepts in a record header before allocating for it: libpcap's
 * MAXIMUM_SNAPLEN (pcap-int.h), the most any capture can hand to rpcapd. Anything larger is a
 * corrupt or hostile header, not a packet.
 */
export const UDPSTR_DEFAULT_MAX_CAPLEN_BYTES = 262144;

/**
 * A datagram whose seqno is at most this many behind the next expected one is "late"
 * (reordered or duplicated on the path) and is dropped. One further behind is not reordering:
 * the sender restarted its sequence (a new capture starts again at 0) or the seqno is garbage,
 * and treating it as late would drop every datagram until the old seqno came round again. 1024
 * datagrams is about 1.5 MB at the default MTU, far more than any path reorders.
 */
export const UDPSTR_LATE_WINDOW_DATAGRAMS = 1024;

/**
 * Largest seqno jump ahead counted as datagrams lost. A bigger jump is not believed: a few
 * forged or corrupt datagrams with far-ahead seqnos once made a report claim 57,505,270,103
 * lost datagrams (issue 9). Such a jump is a resynchronisation counted apart (seqnoJumps), with
 * the loss unknown. 65,536 datagrams is about 96 MiB at the default MTU, 0.8 s of a saturated
 * 1 Gb/s link: an outage longer than that is reported as a jump, not as a number.
 */
export const UDPSTR_MAX_SEQNO_GAP_DATAGRAMS = 65536;

/** Seqno and npkt are u32 counters; differences are taken modulo 2^32. */
export const U32_MODULUS = 0x1_0000_0000;
/** A modular difference at or above this is "behind" rather than "ahead" (serial arithmetic, RFC 1982). */
export const U32_HALF_RANGE = 0x8000_0000;

/** seqno + 1, wrapping at 2^32 like ExtraHop's `uint32_t udp_seqno++`. */
export function nextU32(value: number): number {
  return (value + 1) >>> 0;
}

/** (a - b) modulo 2^32: how far `a` is ahead of `b` on a wrapping u32 counter. */
export function u32Distance(a: number, b: number): number {
  return (a - b) >>> 0;
}

const messageTypeNames = new Map<number, string>([[UDPSTR_MESSAGE_TYPE, "UDPSTR_PACKET"]]);

/** "UDPSTR_PACKET", or "type 0x07" for anything else, for logs and error texts. */
export function udpstrMessageName(type: number): string {
  return messageTypeNames.get(type) ?? `type 0x${type.toString(16).padStart(2, "0")}`;
}

/** Microseconds per second: the wire carries ts_usec, batches may carry nanoseconds. */
export { MICROS_PER_SECOND, NANOS_PER_MICRO } from "../../packet/timestamps.ts";
