// RPCAP version 0 wire vocabulary: message types, error codes, flags, sizes, limits and timeouts.
// Sources: the-tcpdump-group/libpcap @f26ae497 rpcap-protocol.h (structs, codes), rpcapd/daemon.c
// (timeouts, RPCAP_BPF_MAXINSNS, PCAP_BUF_SIZE for OPEN), pcap-rpcap.c (client-side checks),
// pcap/pcap.h (PCAP_SAMP_*), Wireshark epan/dissectors/packet-rpcap.c, docs/spec/rpcap.md.
//
// Every integer on the wire is big-endian, with one exception: AUTH_REPLY's byte_order_magic is
// written in the SERVER's native byte order so the client learns whether the server swaps.
//
//   header   0 ver:u8  1 type:u8  2 value:u16  4 plen:u32   then plen bytes of payload

// ---- versions and ports ------------------------------------------------------------------

/** The protocol version every libpcap client and daemon speaks today (rpcap-protocol.h). */
export const RPCAP_VERSION = 0;
/** RPCAP_MIN_VERSION / RPCAP_MAX_VERSION: the range we accept after AUTH and announce in AUTH_REPLY. */
export const RPCAP_MIN_VERSION = 0;
export const RPCAP_MAX_VERSION = 0;

/** RPCAP_VERSION_IS_SUPPORTED(v). AUTH requests must carry version 0 whatever this says. */
export function rpcapVersionIsSupported(ver: number): boolean {
  return ver >= RPCAP_MIN_VERSION && ver <= RPCAP_MAX_VERSION;
}

/** RPCAP_DEFAULT_NETPORT: where a daemon listens in passive mode. */
export const RPCAP_DEFAULT_PORT = 2002;
/** RPCAP_DEFAULT_NETPORT_ACTIVE: where a collector listens for active-mode daemons. */
export const RPCAP_DEFAULT_ACTIVE_PORT = 2003;

// ---- sizes of the fixed structs ------------------------------------------------------------

/** struct rpcap_header: ver:u8 type:u8 value:u16 plen:u32. */
export const RPCAP_HEADER_BYTES = 8;
/** struct rpcap_pkthdr: timestamp_sec, timestamp_usec, caplen, len, npkt (all u32). */
export const RPCAP_PKTHDR_BYTES = 20;
/** struct rpcap_sockaddr: 128 bytes, not the host's sockaddr_storage (Solaris' is 256). */
export const RPCAP_SOCKADDR_BYTES = 128;
/** struct rpcap_findalldevs_ifaddr: addr, netmask, broadaddr, dstaddr. */
export const RPCAP_FINDALLDEVS_IFADDR_BYTES = 4 * RPCAP_SOCKADDR_BYTES;
/** struct rpcap_findalldevs_if: namelen:u16 desclen:u16 flags:u32 naddr:u16 dummy:u16. */
export const RPCAP_FINDALLDEVS_IF_BYTES = 12;
/** struct rpcap_auth: type:u16 dummy:u16 slen1:u16 slen2:u16. */
export const RPCAP_AUTH_BYTES = 8;
/** struct rpcap_authreply: minvers:u8 maxvers:u8 pad:u16 byte_order_magic:u32. */
export const RPCAP_AUTHREPLY_BYTES = 8;
/** struct rpcap_authreply_old: minvers:u8 maxvers:u8 (older daemons; ExtraHop's sends plen 0). */
export const RPCAP_AUTHREPLY_OLD_BYTES = 2;
/** struct rpcap_startcapreq: snaplen:u32 read_timeout:u32 flags:u16 portdata:u16. */
export const RPCAP_STARTCAPREQ_BYTES = 12;
/** struct rpcap_filter: filtertype:u16 dummy:u16 nitems:u32. */
export const RPCAP_FILTER_BYTES = 8;
/** struct rpcap_filterbpf_insn: code:u16 jt:u8 jf:u8 k:i32. */
export const RPCAP_FILTER_INSN_BYTES = 8;
/** struct rpcap_startcapreply: bufsize:i32 portdata:u16 dummy:u16. */
export const RPCAP_STARTCAPREPLY_BYTES = 8;
/** struct rpcap_openreply: linktype:i32 tzoff:i32. */
export const RPCAP_OPENREPLY_BYTES = 8;
/** struct rpcap_stats: ifrecv, ifdrop, krnldrop, svrcapt (u32). */
export const RPCAP_STATS_BYTES = 16;
/** struct rpcap_sampling: method:u8 dummy1:u8 dummy2:u16 value:u32. */
export const RPCAP_SAMPLING_BYTES = 8;

/** RPCAP_BYTE_ORDER_MAGIC as written by a server of the reader's byte order. */
export const RPCAP_BYTE_ORDER_MAGIC = 0xa1b2c3d4;
/** RPCAP_BYTE_ORDER_MAGIC_SWAPPED: the server's byte order is the opposite of the reader's. */
export const RPCAP_BYTE_ORDER_MAGIC_SWAPPED = 0xd4c3b2a1;

// ---- message types -----------------------------------------------------------------------

/** RPCAP_MSG_IS_REPLY: a reply is its request's type with this bit set. */
export const RPCAP_REPLY_BIT = 0x80;

/** RPCAP_MSG_*. */
export const RpcapMessageType = {
  ERROR: 0x01,
  FINDALLIF_REQ: 0x02,
  OPEN_REQ: 0x03,
  STARTCAP_REQ: 0x04,
  UPDATEFILTER_REQ: 0x05,
  CLOSE: 0x06,
  PACKET: 0x07,
  AUTH_REQ: 0x08,
  STATS_REQ: 0x09,
  ENDCAP_REQ: 0x0a,
  SETSAMPLING_REQ: 0x0b,
  FINDALLIF_REPLY: 0x82,
  OPEN_REPLY: 0x83,
  STARTCAP_REPLY: 0x84,
  UPDATEFILTER_REPLY: 0x85,
  AUTH_REPLY: 0x88,
  STATS_REPLY: 0x89,
  ENDCAP_REPLY: 0x8a,
  SETSAMPLING_REPLY: 0x8b,
} as const;
export type RpcapMessageTypeName = keyof typeof RpcapMessageType;

/** True for the *_REPLY types (the reply bit is set). */
export function isRpcapReply(type: number): boolean {
  return (type & RPCAP_REPLY_BIT) !== 0;
}

/** The reply type that answers request `type` (e.g. STATS_REQ -> STATS_REPLY). */
export function rpcapReplyType(type: number): number {
  return type | RPCAP_REPLY_BIT;
}

// ---- error codes -------------------------------------------------------------------------

/** PCAP_ERR_* codes carried in an ERROR message's `value` (all 20 of rpcap-protocol.h). */
export const RpcapErrorCode = {
  /** PCAP_ERR_NETW: network error. */
  NETWORK: 1,
  /** The initial (authentication) timeout expired. */
  INITTIMEOUT: 2,
  /** Generic authentication error (e.g. a malformed AUTH request). */
  AUTH: 3,
  FINDALLIF: 4,
  /** findalldevs worked but there was nothing to list. */
  NOREMOTEIF: 5,
  OPEN: 6,
  UPDATEFILTER: 7,
  GETSTATS: 8,
  READEX: 9,
  /** The host is not allowed to connect (host list). */
  HOSTNOAUTH: 10,
  REMOTEACCEPT: 11,
  STARTCAPTURE: 12,
  ENDCAPTURE: 13,
  /** The run-time (idle) timeout expired. */
  RUNTIMETIMEOUT: 14,
  SETSAMPLING: 15,
  /** A message the peer did not expect or does not know. */
  WRONGMSG: 16,
  /** A version the peer does not support; the ERROR echoes the offending version. */
  WRONGVER: 17,
  /** The user could not be authenticated (one text for every cause: CVE-2019-15162). */
  AUTH_FAILED: 18,
  TLS_REQUIRED: 19,
  AUTH_TYPE_NOTSUP: 20,
} as const;
export type RpcapErrorCodeName = keyof typeof RpcapErrorCode;

// ---- flags and small enumerations --------------------------------------------------------

/** RPCAP_STARTCAPREQ_FLAG_* (a u16 on the wire). */
export const StartCapFlag = {
  PROMISC: 0x1,
  /** DGRAM: the data channel is UDP. */
  DGRAM: 0x2,
  /** SERVEROPEN: the daemon connects to the client's `portdata`. */
  SERVEROPEN: 0x4,
  INBOUND: 0x8,
  OUTBOUND: 0x10,
} as const;
/** Every flag bit defined; others are unknown (libpcap ignores them). */
export const START_CAP_KNOWN_FLAGS = 0x1f;

/** RPCAP_RMTAUTH_*: rpcap_auth.type. */
export const RpcapAuthType = { NULL: 0, PWD: 1 } as const;

/** RPCAP_UPDATEFILTER_BPF: the only filter type. */
export const RPCAP_FILTER_TYPE_BPF = 1;

/** PCAP_SAMP_* (pcap/pcap.h): rpcap_sampling.method. */
export const SamplingMethod = { NOSAMP: 0, ONE_EVERY_N: 1, FIRST_AFTER_N_MS: 2 } as const;

/** RPCAP_AF_* in rpcap_sockaddr.family: 2 everywhere but Haiku; IPv6 uses the Windows value 23. */
export const RpcapAddressFamily = { INET: 2, INET6: 23 } as const;

/**
 * Family values older daemons put on the wire (they copied the host's sockaddr): pcap-rpcap.c
 * rpcap_deseraddr() accepts these as well, and so do we when decoding. We only ever send 2/23.
 */
export const LEGACY_INET_FAMILIES: readonly number[] = [(16 << 8) | 2, 16 << 8];
export const LEGACY_INET6_FAMILIES: readonly number[] = [
  (28 << 8) | 24, // NetBSD, OpenBSD, BSD/OS (big-endian BSD sockaddr_in6 with sin6_len)
  (28 << 8) | 28, // FreeBSD, DragonFly
  (28 << 8) | 30, // Darwin
  28 << 8, // any little-endian BSD
  10, // Linux
  22, // HP-UX
  24, // AIX
  26, // Solaris
];

// ---- limits (every one: unit in the name, a reason, a source) ------------------------------

/**
 * Largest OPEN source name, in bytes: daemon.c reads it into `char source[PCAP_BUF_SIZE+1]`
 * (PCAP_BUF_SIZE = 1024) and refuses longer ones. Also caps interface names and descriptions
 * in FINDALLIF replies (pcap-rpcap.c refuses namelen/desclen >= PCAP_BUF_SIZE + 1).
 */
export const RPCAP_MAX_NAME_BYTES = 1024;
/** OPEN_REQ carries only the source name. */
export const RPCAP_MAX_OPEN_PLEN_BYTES = RPCAP_MAX_NAME_BYTES;

/**
 * Largest username or password in AUTH, in bytes. Ours, not libpcap's (which mallocs slen+1
 * for any u16): real user names are <= 32 bytes on Linux and crypt() inputs far below this,
 * so 256 leaves room while keeping an unauthenticated peer's message small.
 */
export const RPCAP_MAX_AUTH_STRING_BYTES = 256;
/** AUTH_REQ: the fixed part plus the two strings, nothing else (no padding, no NULs). */
export const RPCAP_MAX_AUTH_PLEN_BYTES = RPCAP_AUTH_BYTES + 2 * RPCAP_MAX_AUTH_STRING_BYTES;

/**
 * RPCAP_BPF_MAXINSNS (daemon.c): largest filter a client may send, in instructions. libpcap
 * picked it to keep a filter at 64 KiB (twice Linux's in-kernel limit) and to stop a 32-bit
 * size overflow when computing the program size.
 */
export const RPCAP_MAX_FILTER_INSTRUCTIONS = 8192;
/** UPDATEFILTER_REQ: rpcap_filter + at most 8192 instructions of 8 bytes = 65,544 bytes. */
export const RPCAP_MAX_FILTER_PLEN_BYTES = RPCAP_FILTER_BYTES + RPCAP_MAX_FILTER_INSTRUCTIONS * RPCAP_FILTER_INSN_BYTES;
/** STARTCAP_REQ: rpcap_startcapreq + the largest filter block = 65,556 bytes. */
export const RPCAP_MAX_STARTCAP_PLEN_BYTES = RPCAP_STARTCAPREQ_BYTES + RPCAP_MAX_FILTER_PLEN_BYTES;

/**
 * ERROR text we accept from a peer, in bytes. libpcap keeps only PCAP_ERRBUF_SIZE (256) and
 * discards the rest; a framer cannot discard without buffering, so we bound it generously.
 */
export const RPCAP_MAX_ERROR_PLEN_BYTES = 64 * 1024;

/**
 * What a type with no payload (FINDALLIF_REQ, STATS_REQ, ENDCAP_REQ, CLOSE) or an unknown type
 * may still declare, in bytes: libpcap's daemon discards such payloads and answers, so we let a
 * small one through to be answered with an error instead of cutting the connection.
 */
export const RPCAP_MAX_UNEXPECTED_PLEN_BYTES = 64 * 1024;

/**
 * MAXIMUM_SNAPLEN in libpcap (pcap-int.h): the largest caplen a PACKET message can carry, in
 * bytes. A data-channel reader caps plen at RPCAP_PKTHDR_BYTES + this (or + its snaplen).
 */
export const RPCAP_MAX_SNAPLEN_BYTES = 262144;

/** Default global cap on any control-message payload a daemon accepts, in bytes (configurable). */
export const RPCAP_DEFAULT_MAX_CONTROL_PLEN_BYTES = 128 * 1024;

// ---- timeouts (daemon.c; the config module exposes them as settings) ----------------------

/**
 * RPCAP_TIMEOUT_INIT (daemon.c, 90 s): a connection that has not sent AUTH by then is dropped
 * with PCAP_ERR_INITTIMEOUT, so an idle peer cannot hold a slot forever.
 */
export const RPCAP_TIMEOUT_INIT_MS = 90_000;
/**
 * RPCAP_TIMEOUT_RUNTIME (daemon.c, 180 s): an authenticated client that sends no request
 * while no capture is running is dropped with PCAP_ERR_RUNTIMETIMEOUT.
 */
export const RPCAP_TIMEOUT_RUNTIME_MS = 180_000;
/**
 * RPCAP_SUSPEND_WRONGAUTH (daemon.c, 1 s): the pause after a failed password before the next
 * request is read, against dictionary attacks on one connection (nmap's rpcap-brute).
 */
export const RPCAP_SUSPEND_WRONGAUTH_MS = 1_000;

// ---- per-type plen caps ------------------------------------------------------------------

/**
 * The largest payload request `type` may declare on a daemon's control channel, checked by
 * the framer as soon as the header is in (before the body is awaited), so a 4 GiB plen costs
 * nothing. `globalCapBytes` is the configured ceiling over every type.
 */
export function maxRequestPlen(type: number, globalCapBytes: number): number {
  switch (type) {
    case RpcapMessageType.AUTH_REQ:
      return Math.min(globalCapBytes, RPCAP_MAX_AUTH_PLEN_BYTES);
    case RpcapMessageType.OPEN_REQ:
      return Math.min(globalCapBytes, RPCAP_MAX_OPEN_PLEN_BYTES);
    case RpcapMessageType.STARTCAP_REQ:
      return Math.min(globalCapBytes, RPCAP_MAX_STARTCAP_PLEN_BYTES);
    case RpcapMessageType.UPDATEFILTER_REQ:
      return Math.min(globalCapBytes, RPCAP_MAX_FILTER_PLEN_BYTES);
    case RpcapMessageType.SETSAMPLING_REQ:
      return RPCAP_SAMPLING_BYTES;
    case RpcapMessageType.ERROR:
      return Math.min(globalCapBytes, RPCAP_MAX_ERROR_PLEN_BYTES);
    default:
      return Math.min(globalCapBytes, RPCAP_MAX_UNEXPECTED_PLEN_BYTES);
  }
}

/**
 * The largest payload a reply of `type` may declare on a client's control channel. Only
 * FINDALLIF_REPLY (many interfaces x 512 bytes of addresses each) and ERROR vary; the rest are
 * small fixed structs.
 */
export function maxReplyPlen(type: number, globalCapBytes: number): number {
  switch (type) {
    case RpcapMessageType.FINDALLIF_REPLY:
      return globalCapBytes;
    case RpcapMessageType.ERROR:
      return Math.min(globalCapBytes, RPCAP_MAX_ERROR_PLEN_BYTES);
    default:
      return Math.min(globalCapBytes, RPCAP_MAX_UNEXPECTED_PLEN_BYTES);
  }
}

/**
 * The plen cap of a data channel: PACKET messages up to pkthdr + `maxCaplenBytes`; any other
 * type must be empty (libpcap's client ignores non-PACKET messages on the data channel).
 */
export function maxDataPlen(type: number, maxCaplenBytes = RPCAP_MAX_SNAPLEN_BYTES): number {
  return type === RpcapMessageType.PACKET ? RPCAP_PKTHDR_BYTES + maxCaplenBytes : 0;
}

// ---- names for logs ----------------------------------------------------------------------

function reverse(table: Record<string, number>): Map<number, string> {
  return new Map(Object.entries(table).map(([name, value]) => [value, name]));
}
const typeNames = reverse(RpcapMessageType);
const errorNames = reverse(RpcapErrorCode);
const authTypeNames = reverse(RpcapAuthType);
const samplingNames = reverse(SamplingMethod);
const familyNames = reverse(RpcapAddressFamily);

/** "AUTH_REQ", "STATS_REPLY", or "type 0x55" for logs and error texts. */
export function rpcapMessageName(type: number): string {
  return typeNames.get(type) ?? `type 0x${type.toString(16).padStart(2, "0")}`;
}

/** "AUTH_FAILED", or "error 99". */
export function rpcapErrorName(code: number): string {
  return errorNames.get(code) ?? `error ${code}`;
}

/** "NULL", "PWD", or "auth type 7". */
export function rpcapAuthTypeName(type: number): string {
  return authTypeNames.get(type) ?? `auth type ${type}`;
}

/** "ONE_EVERY_N", or "method 9". */
export function samplingMethodName(method: number): string {
  return samplingNames.get(method) ?? `method ${method}`;
}

/** "INET", "INET6", or "family 10". */
export function rpcapAddressFamilyName(family: number): string {
  return familyNames.get(family) ?? `family ${family}`;
}

/** "PROMISC|DGRAM", "none", with unknown bits as "0x40". */
export function startCapFlagNames(flags: number): string {
  const names = Object.entries(StartCapFlag)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([name]) => name);
  const unknown = flags & ~START_CAP_KNOWN_FLAGS;
  if (unknown) names.push(`0x${unknown.toString(16)}`);
  return names.length ? names.join("|") : "none";
}
