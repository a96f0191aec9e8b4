// RPCAP version 0 wire vocabulary, as libpcap's rpcap-protocol.h defines it (checked against
// the-tcpdump-group/libpcap and ../shared/spec/rpcap.md). Every integer is big-endian except
// the byte_order_magic of AUTH_REPLY, written in the server's native order.

/** The only protocol version libpcap 1.10 speaks. */
export const RPCAP_VERSION = 0;
export const RPCAP_MIN_VERSION = 0;
export const RPCAP_MAX_VERSION = 0;

/** struct rpcap_header: ver:u8 type:u8 value:u16 plen:u32. */
export const RPCAP_HEADER_BYTES = 8;
/** struct rpcap_pkthdr: timestamp_sec, timestamp_usec, caplen, len, npkt (all u32). */
export const RPCAP_PKTHDR_BYTES = 20;
/** struct rpcap_sockaddr: a sockaddr_storage-sized record on the wire. */
export const RPCAP_SOCKADDR_BYTES = 128;
/** struct rpcap_findalldevs_if: namelen:u16 desclen:u16 flags:u32 naddr:u16 dummy:u16. */
export const RPCAP_FINDALLDEVS_IF_BYTES = 12;
/** struct rpcap_auth: type:u16 dummy:u16 slen1:u16 slen2:u16. */
export const RPCAP_AUTH_BYTES = 8;
/** struct rpcap_authreply: minvers:u8 maxvers:u8 pad:u16 byte_order_magic:u32. */
export const RPCAP_AUTHREPLY_BYTES = 8;
/** struct rpcap_startcapreq: snaplen:u32 read_timeout:u32 flags:u16 portdata:u16. */
export const RPCAP_STARTCAPREQ_BYTES = 12;
/** struct rpcap_filter: filtertype:u16 dummy:u16 nitems:u32. */
export const RPCAP_FILTER_BYTES = 8;
export const RPCAP_FILTER_INSN_BYTES = 8;
/** struct rpcap_startcapreply: bufsize:i32 portdata:u16 dummy:u16. */
export const RPCAP_STARTCAPREPLY_BYTES = 8;
/** struct rpcap_openreply: linktype:i32 tzoff:i32. */
export const RPCAP_OPENREPLY_BYTES = 8;
/** struct rpcap_stats: ifrecv, ifdrop, krnldrop, svrcapt (u32). */
export const RPCAP_STATS_BYTES = 16;
/** struct rpcap_sampling: method:u8 dummy1:u8 dummy2:u16 value:u32. */
export const RPCAP_SAMPLING_BYTES = 8;

/** 0xa1b2c3d4 in the server's byte order tells the client our endianness. */
export const RPCAP_BYTE_ORDER_MAGIC = 0xa1b2c3d4;

/** Replies are the request's type with this bit set. */
export const RPCAP_REPLY_BIT = 0x80;

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

/** PCAP_ERR_* codes carried in an ERROR message's `value`. */
export const RpcapErrorCode = {
  NETWORK: 1,
  INITTIMEOUT: 2,
  AUTH: 3,
  FINDALLIF: 4,
  NOREMOTEIF: 5,
  OPEN: 6,
  UPDATEFILTER: 7,
  GETSTATS: 8,
  READEX: 9,
  HOSTNOAUTH: 10,
  REMOTEACCEPT: 11,
  STARTCAPTURE: 12,
  ENDCAPTURE: 13,
  RUNTIMETIMEOUT: 14,
  SETSAMPLING: 15,
  WRONGMSG: 16,
  WRONGVER: 17,
  AUTH_FAILED: 18,
  TLS_REQUIRED: 19,
  AUTH_TYPE_NOTSUP: 20,
} as const;

/** RPCAP_STARTCAPREQ_FLAG_*. */
export const StartCapFlag = {
  PROMISC: 0x1,
  DGRAM: 0x2,
  SERVEROPEN: 0x4,
  INBOUND: 0x8,
  OUTBOUND: 0x10,
} as const;

export const RpcapAuthType = { NULL: 0, PWD: 1 } as const;
/** RPCAP_UPDATEFILTER_BPF: the only filter type. */
export const RPCAP_FILTER_TYPE_BPF = 1;
/** PCAP_SAMP_*. */
export const SamplingMethod = { NOSAMP: 0, ONE_EVERY_N: 1, FIRST_AFTER_N_MS: 2 } as const;
/** RPCAP_AF_* as they appear in rpcap_sockaddr.family (IPv6 uses the Windows value). */
export const RpcapAddressFamily = { INET: 2, INET6: 23 } as const;

/** Largest interface name or description we encode or accept (a u16 on the wire; sane far below). */
export const RPCAP_MAX_NAME_BYTES = 1024;
/** Largest username or password in AUTH (rpcapd reads them into small stack buffers). */
export const RPCAP_MAX_AUTH_STRING_BYTES = 256;
/** libpcap's RPCAP_BPF_MAXINSNS: largest program a client may send. */
export const RPCAP_MAX_FILTER_INSTRUCTIONS = 8192;

const typeNames = new Map<number, string>(Object.entries(RpcapMessageType).map(([k, v]) => [v, k]));
const errorNames = new Map<number, string>(Object.entries(RpcapErrorCode).map(([k, v]) => [v, k]));

/** "AUTH_REQ", "STATS_REPLY", or "type 0x55" for logs and error texts. */
export function rpcapMessageName(type: number): string {
  return typeNames.get(type) ?? `type 0x${type.toString(16).padStart(2, "0")}`;
}

export function rpcapErrorName(code: number): string {
  return errorNames.get(code) ?? `error ${code}`;
}

/** The largest payload each request type may declare, checked before its body is awaited. */
export function maxRequestPlen(type: number, globalCap: number): number {
  switch (type) {
    case RpcapMessageType.AUTH_REQ:
      return RPCAP_AUTH_BYTES + 2 * RPCAP_MAX_AUTH_STRING_BYTES;
    case RpcapMessageType.OPEN_REQ:
      return RPCAP_MAX_NAME_BYTES;
    case RpcapMessageType.STARTCAP_REQ:
      return Math.min(globalCap, RPCAP_STARTCAPREQ_BYTES + RPCAP_FILTER_BYTES + RPCAP_MAX_FILTER_INSTRUCTIONS * RPCAP_FILTER_INSN_BYTES);
    case RpcapMessageType.UPDATEFILTER_REQ:
      return Math.min(globalCap, RPCAP_FILTER_BYTES + RPCAP_MAX_FILTER_INSTRUCTIONS * RPCAP_FILTER_INSN_BYTES);
    case RpcapMessageType.SETSAMPLING_REQ:
      return RPCAP_SAMPLING_BYTES;
    case RpcapMessageType.ERROR:
      return Math.min(globalCap, 64 * 1024);
    default:
      // FINDALLIF, CLOSE, STATS, ENDCAP carry nothing; unknown types get a small allowance so
      // their payload can be skipped and answered with an error.
      return Math.min(globalCap, 64 * 1024);
  }
}
