// libtrace's RT protocol: codes, sizes and limits. Source: LibtraceTeam/libtrace at the commit
// that set version 3.0.22 (lib/rt_protocol.h, lib/libtrace.h.in's libtrace_rt_types_t,
// lib/format_rt.c, lib/format_pcap.c), checked against Debian's libtrace-tools 3.0.22
// (tracepktdump, tracesplit). docs/rt.md lists every quirk found.
//
// Every field is in the host order of the libtrace machine: libtrace copies C structs onto the
// socket. probe speaks little-endian, the order of every machine Debian ships libtrace for
// that matters here (amd64, arm64); a big-endian libtrace client would not interoperate.
//
//   header (12 bytes, rt_header_t with C alignment):
//     0  type      u32   libtrace_rt_types_t (an enum, so 4 bytes)
//     4  length    u16   body bytes after the header
//     6  (pad)     u16   alignment padding: probe writes 0, ignores it on input
//     8  sequence  u32   data sequence number (echoed by ACK in reliable mode)

/** Size of rt_header_t: u32 type, u16 length, 2 bytes padding, u32 sequence. */
export const RT_HEADER_BYTES = 12;
/** The length field is u16: no RT message body is longer. */
export const RT_MAX_BODY_BYTES = 0xffff;
/** libtrace's COLLECTOR_PORT: where `rt:HOST` connects when no port is given. */
export const RT_DEFAULT_PORT = 3435;
/** Sequence numbers are u32 on the wire and wrap explicitly (libtrace's MAX_SEQUENCE is 2^31-1 but it only echoes them). */
export const RT_SEQUENCE_MODULUS = 2 ** 32;

/** libtrace_rt_types_t control messages (below RT_DATA_SIMPLE). */
export const RtType = {
  HELLO: 1,
  START: 2,
  ACK: 3,
  STATUS: 4,
  DUCK: 5,
  END_DATA: 6,
  CLOSE: 7,
  DENY_CONN: 8,
  PAUSE: 9,
  PAUSE_ACK: 10,
  OPTION: 11,
  KEYCHANGE: 12,
  LOSTCONN: 15,
  SERVERSTART: 16,
  CLIENTDROP: 17,
  METADATA: 18,
} as const;

/** Data types are RT_DATA_SIMPLE + format, or RT_DATA_DLT + DLT (pcap records with a struct pcap_pkthdr). */
export const RT_DATA_SIMPLE = 1000;
export const RT_DATA_DLT = 2000;
/** libtrace accepts pcap data only for RT_DATA_DLT < type < RT_DATA_DLT_END (strictly: DLT_NULL, 0, is refused). */
export const RT_DATA_DLT_END = 2999;

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(RtType).map(([k, v]) => [v, k]));

/** Name of an RT type for logs ("ACK", "DATA_DLT+1", "type 77"). */
export function rtTypeName(type: number): string {
  if (TYPE_NAMES[type]) return TYPE_NAMES[type]!;
  if (type > RT_DATA_DLT && type < RT_DATA_DLT_END) return `DATA_DLT+${type - RT_DATA_DLT}`;
  if (type >= RT_DATA_SIMPLE) return `DATA ${type}`;
  return `type ${type}`;
}

/** rt_conn_denied_t, sent as a u32 (an enum) after DENY_CONN. */
export const RtDenyReason = {
  WRAPPER: 1,
  /** "Max connections reached on server": what a reliable server tells a second client. */
  FULL: 2,
  AUTH: 3,
} as const;

/** HELLO body: rt_hello_t { uint8_t reliable } (1 byte, sizeof is 1). */
export const RT_HELLO_BODY_BYTES = 1;
/** DENY_CONN body: rt_deny_conn_t { enum reason } (4 bytes). */
export const RT_DENY_BODY_BYTES = 4;
/** ACK body: rt_ack_t { uint32_t sequence } (4 bytes). */
export const RT_ACK_BODY_BYTES = 4;
/**
 * STATUS body: fifo_info_t { u64 in, out, ack, length, used } (40 bytes). probe appends three
 * u64 of its own (records dropped by the full-fifo policy, full episodes, policy code); libtrace
 * reads `length` bytes and passes STATUS up without looking, so the longer body is harmless
 * (checked with tracesplit and tracepktdump 3.0.22).
 */
export const RT_STATUS_LIBTRACE_BYTES = 40;
export const RT_STATUS_BODY_BYTES = 64;

/**
 * Data body of a pcap-typed message: struct pcap_pkthdr as the 64-bit Linux ABI lays it out
 * (struct timeval of two 8-byte longs, then caplen u32, len u32): 24 bytes, then the packet.
 */
export const RT_PCAP_PKTHDR_BYTES = 24;
/** Longest packet one RT message can carry: the u16 length minus the pcap header. */
export const RT_MAX_CAPLEN = RT_MAX_BODY_BYTES - RT_PCAP_PKTHDR_BYTES;

/**
 * Longest body a client may send us. Clients send START (probe's adds 20 bytes), ACK (4) and
 * CLOSE (0); libtrace's RT_MAX_HDR_SIZE is 256, so anything longer is a broken or hostile peer.
 */
export const RT_MAX_CLIENT_BODY_BYTES = 256;

/**
 * probe's extension, sent only between probes. A probe client puts it in START's body (libtrace
 * sends START with length 0, so a server that sees it knows the client is a probe):
 *   0 magic u32 'PRB1'  4 flags u32 (bit 0: resume point valid)  8 stream id (8 bytes)
 *   16 last sequence written u32
 * The server answers with METADATA (rt_metadata_t: label_len u32, value_len u32, label, value),
 * label "probe.stream", value: stream id (8 bytes), next sequence it sends u32, linktype u32.
 */
export const PROBE_START_MAGIC = 0x31425250; // "PRB1" read as u32le
export const PROBE_START_BODY_BYTES = 20;
export const PROBE_START_FLAG_RESUME = 1;
export const PROBE_STREAM_LABEL = "probe.stream";
export const PROBE_STREAM_VALUE_BYTES = 16;
export const STREAM_ID_BYTES = 8;

/** Codes of the full-fifo policy as STATUS carries them. */
export const SpoolFullPolicyCode = { block: 1, "drop-oldest": 2, "drop-new": 3 } as const;
