// Pure RPCAP encoders and decoders: no sockets, timers, logging or Bun APIs. Wire maps follow
// rpcap-protocol.h (libpcap @f26ae497); client-side checks mirror pcap-rpcap.c, daemon-side
// ones rpcapd/daemon.c, and where those are lax (noted at each place) we are stricter.
//
//   header        0 ver:u8  1 type:u8  2 value:u16  4 plen:u32      then plen bytes of payload
//   AUTH_REQ      type:u16 dummy:u16 slen1:u16 slen2:u16 username[slen1] password[slen2]
//   AUTH_REPLY    minvers:u8 maxvers:u8 pad:u16 byte_order_magic:u32 (server order) | 2 | 0 bytes
//   FINDALLIF_REP value = interface count; per interface:
//                 namelen:u16 desclen:u16 flags:u32 naddr:u16 dummy:u16 name desc
//                 naddr x (addr, netmask, broadaddr, dstaddr), 128-byte rpcap_sockaddr each
//   OPEN_REQ      source name, no NUL              OPEN_REPLY  linktype:i32 tzoff:i32
//   STARTCAP_REQ  snaplen:u32 read_timeout:u32 flags:u16 portdata:u16 + filter block
//   STARTCAP_REP  bufsize:i32 portdata:u16 dummy:u16
//   filter block  filtertype:u16 (1) dummy:u16 nitems:u32 + nitems x (code:u16 jt:u8 jf:u8 k:i32)
//   STATS_REPLY   ifrecv:u32 ifdrop:u32 krnldrop:u32 svrcapt:u32
//   SETSAMPLING   method:u8 dummy1:u8 dummy2:u16 value:u32
//   ERROR         value = PCAP_ERR_* code; payload = text, no NUL
//   PACKET        ts_sec:u32 ts_usec:u32 caplen:u32 len:u32 npkt:u32 + caplen bytes
//
// Payload decoders take (bytes, offset = 0, end = bytes.byteLength): the payload is
// bytes[offset, end), and a ProtocolError's offset is an index into `bytes`. Results that hold
// bytes (PACKET data) are views of the input (borrowed); strings are copies.
import { decodeBpfInstructions, writeBpfInstructions, type BpfInstruction } from "../../packet/bpf/index.ts";
import { BATCH_RECORD_HEADER_BYTES, type PacketBatch } from "../../packet/packet-batch.ts";
import { ByteReader } from "../../packet/byte-reader.ts";
import { ByteWriter } from "../../packet/byte-writer.ts";
import { ProtocolError } from "../../packet/protocol-error.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../../net/ip-address.ts";

export { formatIPv6, parseIPv4, parseIPv6 };
import {
  LEGACY_INET6_FAMILIES,
  LEGACY_INET_FAMILIES,
  RPCAP_AUTH_BYTES,
  RPCAP_AUTHREPLY_BYTES,
  RPCAP_AUTHREPLY_OLD_BYTES,
  RPCAP_BYTE_ORDER_MAGIC,
  RPCAP_BYTE_ORDER_MAGIC_SWAPPED,
  RPCAP_FILTER_BYTES,
  RPCAP_FILTER_INSN_BYTES,
  RPCAP_FILTER_TYPE_BPF,
  RPCAP_FINDALLDEVS_IF_BYTES,
  RPCAP_FINDALLDEVS_IFADDR_BYTES,
  RPCAP_HEADER_BYTES,
  RPCAP_MAX_AUTH_STRING_BYTES,
  RPCAP_MAX_FILTER_INSTRUCTIONS,
  RPCAP_MAX_NAME_BYTES,
  RPCAP_MAX_VERSION,
  RPCAP_MIN_VERSION,
  RPCAP_OPENREPLY_BYTES,
  RPCAP_PKTHDR_BYTES,
  RPCAP_SAMPLING_BYTES,
  RPCAP_SOCKADDR_BYTES,
  RPCAP_STARTCAPREPLY_BYTES,
  RPCAP_STARTCAPREQ_BYTES,
  RPCAP_STATS_BYTES,
  RPCAP_VERSION,
  RpcapAddressFamily,
  RpcapAuthType,
  RpcapMessageType,
} from "./wire.ts";

/** Every RPCAP integer is big-endian (the one exception is handled in the AUTH_REPLY codec). */
const BE = false;

/** Whether this host is little-endian: decides how AUTH_REPLY writes byte_order_magic. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const utf8 = new TextEncoder();
/** Non-fatal: names and texts from peers are shown, not trusted; bad sequences become U+FFFD. */
const utf8Text = new TextDecoder();

// ---- header and whole messages -----------------------------------------------------------

/** struct rpcap_header, decoded. */
export interface RpcapHeader {
  ver: number;
  type: number;
  value: number;
  plen: number;
}

/** One framed message. */
export interface RpcapMessage {
  header: RpcapHeader;
  /** Owned when it comes from RpcapFramer (a copy of the socket bytes); a view from decodeMessage. */
  payload: Uint8Array;
}

/** Decodes the 8-byte header alone (it carries no payload checks: the framer caps plen). */
export function decodeHeader(bytes: Uint8Array, offset = 0): RpcapHeader {
  const r = new ByteReader(bytes, offset);
  return { ver: r.u8("ver"), type: r.u8("type"), value: r.u16(BE, "value"), plen: r.u32(BE, "plen") };
}

/** The 8 header bytes; throws RangeError if a field does not fit its wire width. */
export function encodeHeader(header: RpcapHeader): Uint8Array {
  const w = new ByteWriter(RPCAP_HEADER_BYTES);
  writeHeader(w, header.ver, header.type, header.value, header.plen);
  return w.finish();
}

function writeHeader(w: ByteWriter, ver: number, type: number, value: number, plen: number): void {
  w.u8(ver).u8(type).u16(value, BE).u32(plen, BE);
}

/** A whole message: header + payload, one allocation. */
export function encodeMessage(ver: number, type: number, value: number, payload?: Uint8Array): Uint8Array {
  const plen = payload?.byteLength ?? 0;
  const w = new ByteWriter(RPCAP_HEADER_BYTES + plen);
  writeHeader(w, ver, type, value, plen);
  if (payload) w.raw(payload);
  return w.finish();
}

/**
 * One message at `offset` of a buffer that holds it whole (a UDP datagram, a test vector):
 * header plus a borrowed view of its payload, and where the next message starts.
 * Throws "truncated" when plen runs past `end`.
 */
export function decodeMessage(bytes: Uint8Array, offset = 0, end = bytes.byteLength): RpcapMessage & { next: number } {
  const header = decodeHeader(bytes.subarray(0, end), offset);
  const start = offset + RPCAP_HEADER_BYTES;
  if (header.plen > end - start) {
    throw new ProtocolError("truncated", `plen ${header.plen} but ${end - start} bytes follow the header`, offset + 4);
  }
  return { header, payload: bytes.subarray(start, start + header.plen), next: start + header.plen };
}

/**
 * A UDP data-channel datagram: exactly one message, so plen must be the datagram's length
 * minus 8 (rpcapd sends one message per datagram; Wireshark's heuristic requires it too).
 */
export function decodeDatagram(datagram: Uint8Array): RpcapMessage {
  const header = decodeHeader(datagram, 0);
  if (header.plen !== datagram.byteLength - RPCAP_HEADER_BYTES) {
    throw new ProtocolError("plen-mismatch", `datagram of ${datagram.byteLength} bytes declares plen ${header.plen}`, 4);
  }
  return { header, payload: datagram.subarray(RPCAP_HEADER_BYTES) };
}

/** Rejects a payload whose size is not exactly what a fixed-size message needs (CVE-2019-15161 class). */
export function expectPlen(type: string, payload: Uint8Array, expected: number): void {
  if (payload.byteLength !== expected) {
    throw new ProtocolError("bad-plen", `${type} with ${payload.byteLength} payload bytes; expected ${expected}`, 4);
  }
}

// ---- fixed messages, encoded once at load ------------------------------------------------

/** Payloads of replies that carry nothing, encoded once. */
export const EMPTY_PAYLOAD = new Uint8Array(0);

const emptyMessagesV0 = new Map<number, Uint8Array>(
  [
    RpcapMessageType.FINDALLIF_REQ,
    RpcapMessageType.CLOSE,
    RpcapMessageType.STATS_REQ,
    RpcapMessageType.ENDCAP_REQ,
    RpcapMessageType.UPDATEFILTER_REPLY,
    RpcapMessageType.ENDCAP_REPLY,
    RpcapMessageType.SETSAMPLING_REPLY,
  ].map((type) => [type, encodeMessage(RPCAP_VERSION, type, 0)]),
);

/**
 * A message with no payload (CLOSE, ENDCAP_REPLY, ...). Version-0 ones are pre-encoded and
 * shared: callers hand them to a socket and must not modify them.
 */
export function encodeEmptyMessage(type: number, ver = RPCAP_VERSION, value = 0): Uint8Array {
  if (ver === RPCAP_VERSION && value === 0) {
    const cached = emptyMessagesV0.get(type);
    if (cached) return cached;
  }
  return encodeMessage(ver, type, value);
}

// ---- ERROR -------------------------------------------------------------------------------

/** ERROR: value = PCAP_ERR_* code, payload = the text without NUL (rpcap_senderror). */
export function encodeError(ver: number, code: number, text: string): Uint8Array {
  return encodeMessage(ver, RpcapMessageType.ERROR, code, utf8.encode(text));
}

/** The text of an ERROR payload; a trailing NUL some old daemons send is dropped. */
export function decodeErrorText(bytes: Uint8Array, offset = 0, end = bytes.byteLength): string {
  let stop = end;
  while (stop > offset && bytes[stop - 1] === 0) stop--;
  return utf8Text.decode(bytes.subarray(offset, stop));
}

// ---- AUTH --------------------------------------------------------------------------------

export interface AuthRequest {
  /** RpcapAuthType: 0 NULL, 1 PWD; others are decoded so the daemon can answer AUTH_TYPE_NOTSUP. */
  authType: number;
  username: string;
  password: string;
}

/**
 * AUTH_REQ payload. slen1 and slen2 must each be within RPCAP_MAX_AUTH_STRING_BYTES, and the
 * payload must be exactly 8 + slen1 + slen2 bytes: libpcap's client never pads or NUL-terminates
 * (vector rpcap-auth-fail: plen 26 = 8 + 8 + 10). libpcap's daemon discards extra bytes; we
 * refuse them (CVE-2019-15161 came from lengths that disagreed). dummy is not checked (libpcap
 * ignores it). For NULL auth the strings, if any, are skipped and returned empty.
 */
export function decodeAuthRequest(bytes: Uint8Array, offset = 0, end = bytes.byteLength): AuthRequest {
  const r = new ByteReader(bytes, offset, end);
  const authType = r.u16(BE, "auth type");
  r.skip(2, "auth dummy");
  const slen1 = r.u16(BE, "slen1");
  const slen2 = r.u16(BE, "slen2");
  if (slen1 > RPCAP_MAX_AUTH_STRING_BYTES || slen2 > RPCAP_MAX_AUTH_STRING_BYTES) {
    const at = slen1 > RPCAP_MAX_AUTH_STRING_BYTES ? offset + 4 : offset + 6;
    throw new ProtocolError("auth-string-too-long", `username or password longer than ${RPCAP_MAX_AUTH_STRING_BYTES} bytes`, at);
  }
  const declared = RPCAP_AUTH_BYTES + slen1 + slen2;
  if (declared !== end - offset) {
    throw new ProtocolError(
      declared > end - offset ? "truncated" : "trailing-bytes",
      `AUTH declares ${slen1}+${slen2} string bytes; the payload holds ${end - offset - RPCAP_AUTH_BYTES}`,
      offset + 4,
    );
  }
  if (authType === RpcapAuthType.NULL) return { authType, username: "", password: "" };
  const username = utf8Text.decode(r.bytesView(slen1, "username"));
  const password = utf8Text.decode(r.bytesView(slen2, "password"));
  return { authType, username, password };
}

/** AUTH_REQ payload; RangeError when a string exceeds RPCAP_MAX_AUTH_STRING_BYTES. */
export function encodeAuthRequest(request: AuthRequest): Uint8Array {
  const user = utf8.encode(request.username);
  const pass = utf8.encode(request.password);
  if (user.byteLength > RPCAP_MAX_AUTH_STRING_BYTES || pass.byteLength > RPCAP_MAX_AUTH_STRING_BYTES) {
    throw new RangeError(`username or password over ${RPCAP_MAX_AUTH_STRING_BYTES} bytes`);
  }
  const w = new ByteWriter(RPCAP_AUTH_BYTES + user.byteLength + pass.byteLength);
  w.u16(request.authType, BE).zeros(2).u16(user.byteLength, BE).u16(pass.byteLength, BE).raw(user).raw(pass);
  return w.finish();
}

/**
 * AUTH_REPLY payload: the version range and byte_order_magic in THIS host's order, as
 * daemon.c writes `authreply->byte_order_magic = RPCAP_BYTE_ORDER_MAGIC` without htonl.
 */
export function encodeAuthReplyPayload(minvers: number, maxvers: number): Uint8Array {
  const w = new ByteWriter(RPCAP_AUTHREPLY_BYTES);
  w.u8(minvers).u8(maxvers).zeros(2).u32(RPCAP_BYTE_ORDER_MAGIC, HOST_IS_LITTLE_ENDIAN);
  return w.finish();
}

/** Our AUTH_REPLY (version 0, our range), encoded once. Shared: do not modify. */
export const AUTH_REPLY_MESSAGE = encodeMessage(
  RPCAP_VERSION,
  RpcapMessageType.AUTH_REPLY,
  0,
  encodeAuthReplyPayload(RPCAP_MIN_VERSION, RPCAP_MAX_VERSION),
);

export interface AuthReply {
  minvers: number;
  maxvers: number;
  /** The server's byte order; undefined when an old server did not say (plen 0 or 2). */
  serverLittleEndian?: boolean;
}

/**
 * AUTH_REPLY payload, as pcap-rpcap.c reads it: 0 bytes = an old server, version 0 only
 * (ExtraHop's rpcapd); exactly 2 = rpcap_authreply_old; 3..7 = too short; 8 or more = the
 * full reply (extra bytes ignored, as libpcap discards them). minvers > maxvers is refused.
 */
export function decodeAuthReply(bytes: Uint8Array, offset = 0, end = bytes.byteLength): AuthReply {
  const size = end - offset;
  if (size === 0) return { minvers: 0, maxvers: 0 };
  if (size !== RPCAP_AUTHREPLY_OLD_BYTES && size < RPCAP_AUTHREPLY_BYTES) {
    throw new ProtocolError("truncated", `AUTH_REPLY of ${size} bytes (0, 2 or at least 8 expected)`, offset);
  }
  const r = new ByteReader(bytes, offset, end);
  const minvers = r.u8("minvers");
  const maxvers = r.u8("maxvers");
  if (minvers > maxvers) {
    throw new ProtocolError("bad-version-range", `server minvers ${minvers} > maxvers ${maxvers}`, offset);
  }
  if (size === RPCAP_AUTHREPLY_OLD_BYTES) return { minvers, maxvers };
  r.skip(2, "pad");
  const magicBE = r.u32(BE, "byte_order_magic");
  if (magicBE === RPCAP_BYTE_ORDER_MAGIC) return { minvers, maxvers, serverLittleEndian: false };
  if (magicBE === RPCAP_BYTE_ORDER_MAGIC_SWAPPED) return { minvers, maxvers, serverLittleEndian: true };
  throw new ProtocolError("bad-byte-order-magic", `AUTH_REPLY byte_order_magic 0x${magicBE.toString(16)}`, offset + 4);
}

// ---- FINDALLIF ---------------------------------------------------------------------------

/** One address of an interface; addresses are text ("192.0.2.1", "fe80::1"). */
export interface WireAddress {
  addr: string;
  /** sin6_scope_id of an IPv6 address (the interface index of a link-local one); absent when 0. */
  scopeId?: number;
  netmask?: string;
  broadaddr?: string;
  dstaddr?: string;
}

/** One entry of a FINDALLIF reply. */
export interface WireInterface {
  name: string;
  description: string;
  /** PCAP_IF_* flags (a u32 on the wire). */
  flags: number;
  addresses: WireAddress[];
}

/**
 * FINDALLIF_REPLY payload (the header's value carries `interfaces.length`). Names and
 * descriptions over RPCAP_MAX_NAME_BYTES and malformed address texts throw RangeError
 * (caller bugs); the size is computed first and the bytes written once.
 */
export function encodeFindAllIfReplyPayload(interfaces: readonly WireInterface[]): Uint8Array {
  const encoded = interfaces.map((i) => ({ i, name: utf8.encode(i.name), desc: utf8.encode(i.description) }));
  let size = 0;
  for (const e of encoded) {
    if (e.name.byteLength > RPCAP_MAX_NAME_BYTES || e.desc.byteLength > RPCAP_MAX_NAME_BYTES) {
      throw new RangeError(`interface name or description over ${RPCAP_MAX_NAME_BYTES} bytes`);
    }
    size += RPCAP_FINDALLDEVS_IF_BYTES + e.name.byteLength + e.desc.byteLength + e.i.addresses.length * RPCAP_FINDALLDEVS_IFADDR_BYTES;
  }
  const w = new ByteWriter(size);
  for (const { i, name, desc } of encoded) {
    w.u16(name.byteLength, BE).u16(desc.byteLength, BE).u32(i.flags >>> 0, BE).u16(i.addresses.length, BE).zeros(2);
    w.raw(name).raw(desc);
    for (const a of i.addresses) {
      writeSockaddr(w, a.addr, a.scopeId ?? 0);
      writeSockaddr(w, a.netmask, 0);
      writeSockaddr(w, a.broadaddr, 0);
      writeSockaddr(w, a.dstaddr, 0);
    }
  }
  return w.finish();
}

/**
 * FINDALLIF_REPLY payload with `count` interfaces (the header's value). The count is bounded
 * by the payload size before anything is allocated, each name and description by
 * RPCAP_MAX_NAME_BYTES (pcap-rpcap.c does the same), each address block by what remains.
 * Addresses of unknown families are skipped, as libpcap does; bytes after the last interface
 * are ignored (libpcap discards them).
 */
export function decodeFindAllIfReply(count: number, bytes: Uint8Array, offset = 0, end = bytes.byteLength): WireInterface[] {
  if (count * RPCAP_FINDALLDEVS_IF_BYTES > end - offset) {
    throw new ProtocolError("truncated", `FINDALLIF_REPLY declares ${count} interfaces in ${end - offset} bytes`, offset);
  }
  const r = new ByteReader(bytes, offset, end);
  const out: WireInterface[] = [];
  for (let n = 0; n < count; n++) {
    const at = r.offset;
    const namelen = r.u16(BE, "namelen");
    const desclen = r.u16(BE, "desclen");
    const flags = r.u32(BE, "flags");
    const naddr = r.u16(BE, "naddr");
    r.skip(2, "dummy");
    if (namelen > RPCAP_MAX_NAME_BYTES || desclen > RPCAP_MAX_NAME_BYTES) {
      throw new ProtocolError("name-too-long", `interface name or description of ${Math.max(namelen, desclen)} bytes`, namelen > RPCAP_MAX_NAME_BYTES ? at : at + 2);
    }
    const name = utf8Text.decode(r.bytesView(namelen, "interface name"));
    const description = utf8Text.decode(r.bytesView(desclen, "interface description"));
    r.need(naddr * RPCAP_FINDALLDEVS_IFADDR_BYTES, `${naddr} addresses`);
    const addresses: WireAddress[] = [];
    for (let a = 0; a < naddr; a++) {
      const first = readSockaddr(r);
      const netmask = readSockaddr(r);
      const broadaddr = readSockaddr(r);
      const dstaddr = readSockaddr(r);
      if (first === undefined) continue; // a family we do not know: pcap-rpcap.c skips it too
      const entry: WireAddress = { addr: first.text };
      if (first.scopeId) entry.scopeId = first.scopeId;
      if (netmask) entry.netmask = netmask.text;
      if (broadaddr) entry.broadaddr = broadaddr.text;
      if (dstaddr) entry.dstaddr = dstaddr.text;
      addresses.push(entry);
    }
    out.push({ name, description, flags, addresses });
  }
  return out;
}

/**
 * rpcap_sockaddr: family:u16 (2 or 23), then the sockaddr_in (port:u16 addr:4 zero:8) or
 * sockaddr_in6 (port:u16 flowinfo:u32 addr:16 scope_id:u32) layout, zero-padded to 128.
 * An absent address is 128 zero bytes (family 0).
 */
function writeSockaddr(w: ByteWriter, text: string | undefined, scopeId: number): void {
  const start = w.offset;
  if (text !== undefined) {
    if (text.includes(":")) w.u16(RpcapAddressFamily.INET6, BE).u16(0, BE).u32(0, BE).raw(parseIPv6(text)).u32(scopeId, BE);
    else w.u16(RpcapAddressFamily.INET, BE).u16(0, BE).raw(parseIPv4(text));
  }
  w.zeros(RPCAP_SOCKADDR_BYTES - (w.offset - start));
}

function readSockaddr(r: ByteReader): { text: string; scopeId: number } | undefined {
  const start = r.offset;
  r.need(RPCAP_SOCKADDR_BYTES, "sockaddr");
  const family = r.u16(BE, "sockaddr family");
  let result: { text: string; scopeId: number } | undefined;
  if (family === RpcapAddressFamily.INET || LEGACY_INET_FAMILIES.includes(family)) {
    r.skip(2, "port");
    result = { text: formatIPv4(r.bytesView(4, "IPv4 address")), scopeId: 0 };
  } else if (family === RpcapAddressFamily.INET6 || LEGACY_INET6_FAMILIES.includes(family)) {
    r.skip(6, "port and flowinfo");
    const text = formatIPv6(r.bytesView(16, "IPv6 address"));
    result = { text, scopeId: r.u32(BE, "scope_id") };
  }
  r.offset = start + RPCAP_SOCKADDR_BYTES;
  return result;
}

// ---- OPEN --------------------------------------------------------------------------------

/**
 * OPEN_REQ payload: the source name. Empty and over-long (> PCAP_BUF_SIZE, daemon.c) names are
 * refused; libpcap's client sends no NUL, but one at the end (and anything after it) is cut
 * off, as the C daemon's string handling would.
 */
export function decodeOpenRequest(bytes: Uint8Array, offset = 0, end = bytes.byteLength): string {
  if (end === offset) throw new ProtocolError("empty-source", "OPEN names no source", offset);
  if (end - offset > RPCAP_MAX_NAME_BYTES) {
    throw new ProtocolError("source-too-long", `OPEN source of ${end - offset} bytes; at most ${RPCAP_MAX_NAME_BYTES}`, offset);
  }
  const payload = bytes.subarray(offset, end);
  const nul = payload.indexOf(0);
  return utf8Text.decode(nul < 0 ? payload : payload.subarray(0, nul));
}

/** OPEN_REQ payload; RangeError for an empty or over-long name. */
export function encodeOpenRequestPayload(source: string): Uint8Array {
  const bytes = utf8.encode(source);
  if (bytes.byteLength === 0 || bytes.byteLength > RPCAP_MAX_NAME_BYTES) {
    throw new RangeError(`OPEN source must be 1..${RPCAP_MAX_NAME_BYTES} bytes`);
  }
  return bytes;
}

/** OPEN_REPLY payload: the DLT/LINKTYPE and tzoff (always 0 in libpcap). */
export function encodeOpenReplyPayload(linktype: number, tzoff = 0): Uint8Array {
  return new ByteWriter(RPCAP_OPENREPLY_BYTES).i32(linktype, BE).i32(tzoff, BE).finish();
}

export function decodeOpenReply(bytes: Uint8Array, offset = 0, end = bytes.byteLength): { linktype: number; tzoff: number } {
  const r = new ByteReader(bytes, offset, end);
  return { linktype: r.i32(BE, "linktype"), tzoff: r.i32(BE, "tzoff") };
}

// ---- filter block (STARTCAP, UPDATEFILTER) ----------------------------------------------

export interface FilterBlock {
  /** Always RPCAP_FILTER_TYPE_BPF (others are refused). */
  filtertype: number;
  /** The instructions as sent; NOT validated here (src/capture/bpf validateBpfProgram does that). */
  program: BpfInstruction[];
}

/**
 * rpcap_filter + nitems instructions at `offset`, running to `end`. Checked before any
 * allocation: filtertype must be BPF, nitems <= RPCAP_BPF_MAXINSNS (daemon.c), and nitems * 8
 * must be exactly what remains (extra bytes are the CVE-2019-15161 pattern).
 */
export function decodeFilterBlock(bytes: Uint8Array, offset: number, end = bytes.byteLength): FilterBlock {
  const r = new ByteReader(bytes, offset, end);
  const filtertype = r.u16(BE, "filtertype");
  r.skip(2, "filter dummy");
  const nitems = r.u32(BE, "nitems");
  if (filtertype !== RPCAP_FILTER_TYPE_BPF) {
    throw new ProtocolError("unknown-filter-type", `filter type ${filtertype} (only 1, BPF, exists)`, offset);
  }
  if (nitems > RPCAP_MAX_FILTER_INSTRUCTIONS) {
    throw new ProtocolError("filter-too-long", `filter of ${nitems} instructions; the limit is ${RPCAP_MAX_FILTER_INSTRUCTIONS}`, offset + 4);
  }
  if (nitems * RPCAP_FILTER_INSN_BYTES !== r.remaining) {
    throw new ProtocolError(
      "filter-length-mismatch",
      `filter declares ${nitems} instructions (${nitems * RPCAP_FILTER_INSN_BYTES} bytes) but ${r.remaining} bytes follow`,
      offset + 4,
    );
  }
  return {
    filtertype,
    program: decodeBpfInstructions(bytes.subarray(0, end), r.offset, nitems, { maxInstructions: RPCAP_MAX_FILTER_INSTRUCTIONS }),
  };
}

function filterBlockSize(program: readonly BpfInstruction[]): number {
  return RPCAP_FILTER_BYTES + program.length * RPCAP_FILTER_INSN_BYTES;
}

function writeFilterBlock(w: ByteWriter, program: readonly BpfInstruction[]): void {
  if (program.length > RPCAP_MAX_FILTER_INSTRUCTIONS) {
    throw new RangeError(`filter of ${program.length} instructions; the limit is ${RPCAP_MAX_FILTER_INSTRUCTIONS}`);
  }
  w.u16(RPCAP_FILTER_TYPE_BPF, BE).zeros(2).u32(program.length, BE);
  writeBpfInstructions(w, program);
}

/** UPDATEFILTER_REQ payload: one filter block. */
export function encodeUpdateFilterPayload(program: readonly BpfInstruction[]): Uint8Array {
  const w = new ByteWriter(filterBlockSize(program));
  writeFilterBlock(w, program);
  return w.finish();
}

/** UPDATEFILTER_REQ payload: the filter block is the whole payload. */
export function decodeUpdateFilterRequest(bytes: Uint8Array, offset = 0, end = bytes.byteLength): FilterBlock {
  return decodeFilterBlock(bytes, offset, end);
}

// ---- STARTCAP ----------------------------------------------------------------------------

export interface StartCapRequest {
  snaplen: number;
  /** read_timeout in milliseconds (libpcap's client sends half of what pcap_open() was given). */
  readTimeoutMs: number;
  /** StartCapFlag bits. */
  flags: number;
  portdata: number;
  filter: FilterBlock;
}

/** STARTCAP_REQ payload: rpcap_startcapreq then a filter block filling the rest. */
export function decodeStartCapRequest(bytes: Uint8Array, offset = 0, end = bytes.byteLength): StartCapRequest {
  const r = new ByteReader(bytes, offset, end);
  const snaplen = r.u32(BE, "snaplen");
  const readTimeoutMs = r.u32(BE, "read_timeout");
  const flags = r.u16(BE, "flags");
  const portdata = r.u16(BE, "portdata");
  return { snaplen, readTimeoutMs, flags, portdata, filter: decodeFilterBlock(bytes, r.offset, end) };
}

export function encodeStartCapRequestPayload(req: Omit<StartCapRequest, "filter"> & { program: readonly BpfInstruction[] }): Uint8Array {
  const w = new ByteWriter(RPCAP_STARTCAPREQ_BYTES + filterBlockSize(req.program));
  w.u32(req.snaplen, BE).u32(req.readTimeoutMs, BE).u16(req.flags, BE).u16(req.portdata, BE);
  writeFilterBlock(w, req.program);
  return w.finish();
}

/** STARTCAP_REPLY payload: bufsize (the largest message the client should expect) and our data port. */
export function encodeStartCapReplyPayload(bufsize: number, portdata: number): Uint8Array {
  return new ByteWriter(RPCAP_STARTCAPREPLY_BYTES).i32(bufsize, BE).u16(portdata, BE).zeros(2).finish();
}

export function decodeStartCapReply(bytes: Uint8Array, offset = 0, end = bytes.byteLength): { bufsize: number; portdata: number } {
  const r = new ByteReader(bytes, offset, end);
  const bufsize = r.i32(BE, "bufsize");
  const portdata = r.u16(BE, "portdata");
  r.skip(2, "dummy");
  return { bufsize, portdata };
}

// ---- STATS, SETSAMPLING ------------------------------------------------------------------

export interface RpcapStats {
  ifrecv: number;
  ifdrop: number;
  krnldrop: number;
  svrcapt: number;
}

/** STATS_REPLY payload. Counters wrap at 2^32, as libpcap's u_int counters do on the wire. */
export function encodeStatsReplyPayload(s: RpcapStats): Uint8Array {
  const u32 = (n: number) => n % 2 ** 32; // explicit wrap: the wire field is 32 bits
  return new ByteWriter(RPCAP_STATS_BYTES).u32(u32(s.ifrecv), BE).u32(u32(s.ifdrop), BE).u32(u32(s.krnldrop), BE).u32(u32(s.svrcapt), BE).finish();
}

export function decodeStatsReply(bytes: Uint8Array, offset = 0, end = bytes.byteLength): RpcapStats {
  const r = new ByteReader(bytes, offset, end);
  return { ifrecv: r.u32(BE, "ifrecv"), ifdrop: r.u32(BE, "ifdrop"), krnldrop: r.u32(BE, "krnldrop"), svrcapt: r.u32(BE, "svrcapt") };
}

/**
 * SETSAMPLING_REQ payload. Note libpcap's client sends `(uint16_t)htonl(value)` (pcap-rpcap.c),
 * so on little-endian hosts any value < 65536 arrives as 0 (vector rpcap-setsampling).
 */
export function decodeSamplingRequest(bytes: Uint8Array, offset = 0, end = bytes.byteLength): { method: number; value: number } {
  const r = new ByteReader(bytes, offset, end);
  const method = r.u8("method");
  r.skip(3, "dummy1 and dummy2");
  return { method, value: r.u32(BE, "value") };
}

export function encodeSamplingRequestPayload(method: number, value: number): Uint8Array {
  return new ByteWriter(RPCAP_SAMPLING_BYTES).u8(method).zeros(3).u32(value, BE).finish();
}

// ---- PACKET (data channel) ---------------------------------------------------------------

/** struct rpcap_pkthdr, decoded. */
export interface PacketHeader {
  tsSec: number;
  tsUsec: number;
  caplen: number;
  len: number;
  npkt: number;
}

/**
 * PACKET payload: pkthdr and a borrowed view of the data. caplen must fit in plen - 20
 * (pcap-rpcap.c checks only caplen <= plen, 20 bytes too lax), must not exceed len, and, when
 * `maxCaplen` is given (the snaplen asked for), must not exceed it. Bytes after the data are
 * tolerated (libpcap ignores them).
 */
export function decodePacketPayload(
  bytes: Uint8Array,
  offset = 0,
  end = bytes.byteLength,
  maxCaplen = Number.POSITIVE_INFINITY,
): { header: PacketHeader; data: Uint8Array } {
  const r = new ByteReader(bytes, offset, end);
  const header: PacketHeader = {
    tsSec: r.u32(BE, "timestamp_sec"),
    tsUsec: r.u32(BE, "timestamp_usec"),
    caplen: r.u32(BE, "caplen"),
    len: r.u32(BE, "len"),
    npkt: r.u32(BE, "npkt"),
  };
  if (header.caplen > r.remaining) {
    throw new ProtocolError("caplen-exceeds-plen", `caplen ${header.caplen} > plen - 20 (${r.remaining})`, offset + 8);
  }
  if (header.caplen > header.len) {
    throw new ProtocolError("caplen-exceeds-len", `caplen ${header.caplen} > len ${header.len}`, offset + 8);
  }
  if (header.caplen > maxCaplen) {
    throw new ProtocolError("caplen-exceeds-snaplen", `caplen ${header.caplen} > snaplen ${maxCaplen}`, offset + 8);
  }
  return { header, data: r.bytesView(header.caplen, "packet data") };
}

/** Bytes added per record when a batch record (16-byte header) becomes a PACKET message (28). */
const PACKET_GROWTH_BYTES = RPCAP_HEADER_BYTES + RPCAP_PKTHDR_BYTES - BATCH_RECORD_HEADER_BYTES;
/** Largest caplen whose plen (20 + caplen) still fits the u32 plen field. */
const MAX_ENCODABLE_CAPLEN = 0xffffffff - RPCAP_PKTHDR_BYTES;

/** npkt after `count` more packets: a u32 on the wire, so it wraps at 2^32 (as libpcap's does). */
export function nextNpkt(npkt: number, count: number): number {
  return (npkt + count) % 2 ** 32;
}

/**
 * Writes every record of `batch` as a PACKET message into `out` (exactly sized by the caller)
 * and, when given, each message's end offset into `ends`. The hot path of the data channel:
 * DataView writes, one `.set` per packet's data, no other allocation per packet.
 */
function writePacketMessages(batch: PacketBatch, firstNpkt: number, ver: number, out: Uint8Array, ends: Uint32Array | null): void {
  if (!Number.isInteger(firstNpkt) || firstNpkt < 0 || firstNpkt > 0xffffffff) throw new RangeError(`npkt out of range: ${firstNpkt}`);
  if (!Number.isInteger(ver) || ver < 0 || ver > 0xff) throw new RangeError(`ver out of range: ${ver}`);
  const src = batch.bytes;
  const input = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const output = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const nanoToMicro = batch.precision === "nano";
  const typeAndVer = (ver << 8) | RpcapMessageType.PACKET; // ver:u8 type:u8 as one big-endian u16
  let from = 0;
  let at = 0;
  let npkt = firstNpkt;
  for (let i = 0; i < batch.count; i++) {
    const caplen = input.getUint32(from + 8, true);
    const dataFrom = from + BATCH_RECORD_HEADER_BYTES;
    if (caplen > MAX_ENCODABLE_CAPLEN || dataFrom + caplen > src.byteLength) {
      throw new RangeError(`batch record ${i} is malformed (caplen ${caplen} at offset ${from})`);
    }
    const tsFrac = input.getUint32(from + 4, true);
    output.setUint16(at, typeAndVer);
    output.setUint16(at + 2, 0); // value
    output.setUint32(at + 4, RPCAP_PKTHDR_BYTES + caplen); // plen
    output.setUint32(at + 8, input.getUint32(from, true)); // timestamp_sec
    output.setUint32(at + 12, nanoToMicro ? Math.floor(tsFrac / 1000) : tsFrac); // timestamp_usec
    output.setUint32(at + 16, caplen);
    output.setUint32(at + 20, input.getUint32(from + 12, true)); // len
    output.setUint32(at + 24, npkt);
    // npkt is a u32 counter on the wire: after 0xffffffff comes 0, explicitly.
    npkt = npkt === 0xffffffff ? 0 : npkt + 1;
    out.set(src.subarray(dataFrom, dataFrom + caplen), at + 28);
    from = dataFrom + caplen;
    at += 28 + caplen;
    if (ends) ends[i] = at;
  }
  if (at !== out.byteLength) throw new RangeError(`batch holds ${src.byteLength - from} bytes after its ${batch.count} records`);
}

/**
 * The TCP data channel's hot path: every record of `batch` as a PACKET message (header + pkthdr
 * + data, big-endian), back to back in ONE buffer, so a batch is one socket write. npkt counts
 * from `firstNpkt` and wraps at 2^32; nanosecond batches are truncated to microseconds.
 */
export function encodePacketStream(batch: PacketBatch, firstNpkt: number, ver = RPCAP_VERSION): Uint8Array {
  return encodePacketStreamInto(batch, firstNpkt, new Uint8Array(packetStreamBytes(batch)), ver);
}

/** Bytes of `batch` as PACKET messages: what encodePacketStream returns, what encodePacketStreamInto needs. */
export function packetStreamBytes(batch: PacketBatch): number {
  return batch.bytes.byteLength + batch.count * PACKET_GROWTH_BYTES;
}

/**
 * encodePacketStream into the start of `out` (at least packetStreamBytes(batch) long), for a
 * sender that reuses one buffer for every batch: a new ~280 KiB buffer per full batch was
 * garbage that the collector's threads then spent ~9% of the daemon's CPU on (docs/capture-history.md,
 * "Fifth round"). Returns the encoded bytes, a view of `out`.
 */
export function encodePacketStreamInto(batch: PacketBatch, firstNpkt: number, out: Uint8Array, ver = RPCAP_VERSION): Uint8Array {
  const size = packetStreamBytes(batch);
  if (out.byteLength < size) throw new RangeError(`${size} bytes of PACKET messages do not fit in ${out.byteLength}`);
  const stream = out.subarray(0, size);
  writePacketMessages(batch, firstNpkt, ver, stream, null);
  return stream;
}

/**
 * The UDP data channel: one PACKET message per datagram, as rpcapd sends them. All messages
 * share one allocation; the result is one subarray per datagram, in order.
 */
export function encodePacketDatagrams(batch: PacketBatch, firstNpkt: number, ver = RPCAP_VERSION): Uint8Array[] {
  const { bytes, ends } = encodePacketMessages(batch, firstNpkt, ver);
  const datagrams = new Array<Uint8Array>(batch.count);
  let start = 0;
  for (let i = 0; i < batch.count; i++) {
    datagrams[i] = bytes.subarray(start, ends[i]);
    start = ends[i]!;
  }
  return datagrams;
}

/**
 * Both views at once: the one-buffer stream and the end offset of each message (what a
 * datagram sender slices on). Kept for src/daemon/data-channel.ts.
 */
export function encodePacketMessages(batch: PacketBatch, firstNpkt: number, ver = RPCAP_VERSION): { bytes: Uint8Array; ends: Uint32Array } {
  const out = new Uint8Array(packetStreamBytes(batch));
  const ends = new Uint32Array(batch.count);
  writePacketMessages(batch, firstNpkt, ver, out, ends);
  return { bytes: out, ends };
}
