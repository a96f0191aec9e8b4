// Pure RPCAP encoders and decoders: no sockets, timers or logging. Wire maps follow
// rpcap-protocol.h (libpcap); payload decoders take the payload bytes of one message (the
// framer has already checked plen) and throw ProtocolError with a code and byte offset.
//
//   header   0 ver:u8  1 type:u8  2 value:u16  4 plen:u32   then plen bytes of payload
import { decodeBpfInstructions, writeBpfInstructions, type BpfInstruction } from "../../capture/bpf/index.ts";
import { BATCH_RECORD_HEADER_BYTES, type PacketBatch } from "../../capture/packet-batch.ts";
import { ByteReader } from "../byte-reader.ts";
import { ByteWriter } from "../byte-writer.ts";
import { ProtocolError } from "../errors.ts";
import {
  RPCAP_AUTH_BYTES,
  RPCAP_AUTHREPLY_BYTES,
  RPCAP_BYTE_ORDER_MAGIC,
  RPCAP_FILTER_BYTES,
  RPCAP_FILTER_INSN_BYTES,
  RPCAP_FILTER_TYPE_BPF,
  RPCAP_FINDALLDEVS_IF_BYTES,
  RPCAP_HEADER_BYTES,
  RPCAP_MAX_AUTH_STRING_BYTES,
  RPCAP_MAX_FILTER_INSTRUCTIONS,
  RPCAP_MAX_NAME_BYTES,
  RPCAP_OPENREPLY_BYTES,
  RPCAP_PKTHDR_BYTES,
  RPCAP_SAMPLING_BYTES,
  RPCAP_SOCKADDR_BYTES,
  RPCAP_STARTCAPREPLY_BYTES,
  RPCAP_STARTCAPREQ_BYTES,
  RPCAP_STATS_BYTES,
  RpcapAddressFamily,
  RpcapAuthType,
  RpcapMessageType,
} from "./wire.ts";

const BE = false;

export interface RpcapHeader {
  ver: number;
  type: number;
  value: number;
  plen: number;
}

export interface RpcapMessage {
  header: RpcapHeader;
  /** Borrowed or owned per the framer's contract: owned (a copy) when it comes from RpcapFramer. */
  payload: Uint8Array;
}

export function decodeHeader(bytes: Uint8Array, offset = 0): RpcapHeader {
  const r = new ByteReader(bytes, offset);
  return { ver: r.u8("ver"), type: r.u8("type"), value: r.u16(BE, "value"), plen: r.u32(BE, "plen") };
}

/** A whole message: header + payload, one allocation. */
export function encodeMessage(ver: number, type: number, value: number, payload?: Uint8Array): Uint8Array {
  const plen = payload?.byteLength ?? 0;
  const w = new ByteWriter(RPCAP_HEADER_BYTES + plen);
  w.u8(ver).u8(type).u16(value, BE).u32(plen, BE);
  if (payload) w.raw(payload);
  return w.finish();
}

// ---- ERROR -------------------------------------------------------------------------------

/** ERROR: value = error code, payload = message text (no NUL). */
export function encodeError(ver: number, code: number, text: string): Uint8Array {
  return encodeMessage(ver, RpcapMessageType.ERROR, code, new TextEncoder().encode(text));
}

export function decodeErrorText(payload: Uint8Array): string {
  return new TextDecoder().decode(payload);
}

// ---- AUTH --------------------------------------------------------------------------------

export interface AuthRequest {
  authType: number;
  username: string;
  password: string;
}

/** rpcap_auth + username + password; slen1/slen2 must fit what the payload holds. */
export function decodeAuthRequest(payload: Uint8Array): AuthRequest {
  const r = new ByteReader(payload);
  const authType = r.u16(BE, "auth type");
  r.skip(2);
  const slen1 = r.u16(BE, "slen1");
  const slen2 = r.u16(BE, "slen2");
  if (authType === RpcapAuthType.NULL) return { authType, username: "", password: "" };
  if (slen1 > RPCAP_MAX_AUTH_STRING_BYTES || slen2 > RPCAP_MAX_AUTH_STRING_BYTES) {
    throw new ProtocolError("auth-string-too-long", `username or password longer than ${RPCAP_MAX_AUTH_STRING_BYTES} bytes`, 4);
  }
  if (RPCAP_AUTH_BYTES + slen1 + slen2 > payload.byteLength) {
    throw new ProtocolError("truncated", `AUTH declares ${slen1}+${slen2} string bytes, payload has ${payload.byteLength - RPCAP_AUTH_BYTES}`, 4);
  }
  const decoder = new TextDecoder();
  const username = decoder.decode(r.bytesView(slen1, "username"));
  const password = decoder.decode(r.bytesView(slen2, "password"));
  return { authType, username, password };
}

export function encodeAuthRequest(request: AuthRequest): Uint8Array {
  const enc = new TextEncoder();
  const user = enc.encode(request.username);
  const pass = enc.encode(request.password);
  const w = new ByteWriter(RPCAP_AUTH_BYTES + user.byteLength + pass.byteLength);
  w.u16(request.authType, BE).zeros(2).u16(user.byteLength, BE).u16(pass.byteLength, BE).raw(user).raw(pass);
  return w.finish();
}

/** AUTH_REPLY payload: versions and the byte-order magic in OUR native order (little-endian hosts). */
export function encodeAuthReplyPayload(minvers: number, maxvers: number): Uint8Array {
  const w = new ByteWriter(RPCAP_AUTHREPLY_BYTES);
  w.u8(minvers).u8(maxvers).zeros(2).u32(RPCAP_BYTE_ORDER_MAGIC, hostIsLittleEndian());
  return w.finish();
}

export interface AuthReply {
  minvers: number;
  maxvers: number;
  /** Undefined for old servers (ExtraHop's sends plen 0; some 2 bytes). */
  serverLittleEndian?: boolean;
}

export function decodeAuthReply(payload: Uint8Array): AuthReply {
  if (payload.byteLength === 0) return { minvers: 0, maxvers: 0 };
  const r = new ByteReader(payload);
  const minvers = r.u8("minvers");
  const maxvers = r.u8("maxvers");
  if (payload.byteLength < RPCAP_AUTHREPLY_BYTES) return { minvers, maxvers };
  r.skip(2);
  const magicBE = r.u32(BE, "byte_order_magic");
  if (magicBE === RPCAP_BYTE_ORDER_MAGIC) return { minvers, maxvers, serverLittleEndian: false };
  if (magicBE === 0xd4c3b2a1) return { minvers, maxvers, serverLittleEndian: true };
  throw new ProtocolError("bad-byte-order-magic", `AUTH_REPLY byte_order_magic 0x${magicBE.toString(16)}`, 4);
}

// ---- FINDALLIF ---------------------------------------------------------------------------

export interface WireAddress {
  addr: string;
  /** sin6_scope_id of an IPv6 link-local addr (the interface index); absent when 0. */
  scopeId?: number;
  netmask?: string;
  broadaddr?: string;
  dstaddr?: string;
}

export interface WireInterface {
  name: string;
  description: string;
  flags: number;
  addresses: WireAddress[];
}

/** FINDALLIF_REPLY payload; the header's value carries the interface count. */
export function encodeFindAllIfReplyPayload(interfaces: readonly WireInterface[]): Uint8Array {
  const enc = new TextEncoder();
  const encoded = interfaces.map((i) => ({ i, name: enc.encode(i.name), desc: enc.encode(i.description) }));
  let size = 0;
  for (const e of encoded) {
    if (e.name.byteLength > RPCAP_MAX_NAME_BYTES || e.desc.byteLength > RPCAP_MAX_NAME_BYTES) {
      throw new RangeError(`interface name or description over ${RPCAP_MAX_NAME_BYTES} bytes`);
    }
    size += RPCAP_FINDALLDEVS_IF_BYTES + e.name.byteLength + e.desc.byteLength + e.i.addresses.length * 4 * RPCAP_SOCKADDR_BYTES;
  }
  const w = new ByteWriter(size);
  for (const { i, name, desc } of encoded) {
    w.u16(name.byteLength, BE).u16(desc.byteLength, BE).u32(i.flags >>> 0, BE).u16(i.addresses.length, BE).zeros(2);
    w.raw(name).raw(desc);
    for (const a of i.addresses) {
      writeSockaddr(w, a.addr, a.scopeId ?? 0);
      for (const text of [a.netmask, a.broadaddr, a.dstaddr]) writeSockaddr(w, text, 0);
    }
  }
  return w.finish();
}

export function decodeFindAllIfReply(count: number, payload: Uint8Array): WireInterface[] {
  const r = new ByteReader(payload);
  // Each interface needs at least its fixed part: bound the count before looping.
  if (count * RPCAP_FINDALLDEVS_IF_BYTES > payload.byteLength) {
    throw new ProtocolError("truncated", `FINDALLIF_REPLY declares ${count} interfaces in ${payload.byteLength} bytes`, 0);
  }
  const decoder = new TextDecoder();
  const out: WireInterface[] = [];
  for (let n = 0; n < count; n++) {
    const namelen = r.u16(BE, "namelen");
    const desclen = r.u16(BE, "desclen");
    const flags = r.u32(BE, "flags");
    const naddr = r.u16(BE, "naddr");
    r.skip(2);
    const name = decoder.decode(r.bytesView(namelen, "interface name"));
    const description = decoder.decode(r.bytesView(desclen, "interface description"));
    r.need(naddr * 4 * RPCAP_SOCKADDR_BYTES, `${naddr} addresses`);
    const addresses: WireAddress[] = [];
    for (let a = 0; a < naddr; a++) {
      const [first, ...rest] = [0, 1, 2, 3].map(() => readSockaddr(r));
      const [netmask, broadaddr, dstaddr] = rest.map((x) => x?.text);
      if (first === undefined) continue; // an address family we do not know (libpcap skips it too)
      const entry: WireAddress = { addr: first.text };
      if (first.scopeId) entry.scopeId = first.scopeId;
      if (netmask !== undefined) entry.netmask = netmask;
      if (broadaddr !== undefined) entry.broadaddr = broadaddr;
      if (dstaddr !== undefined) entry.dstaddr = dstaddr;
      addresses.push(entry);
    }
    out.push({ name, description, flags, addresses });
  }
  return out;
}

/** rpcap_sockaddr: family:u16 (2 or 23, big-endian), then sockaddr_in / sockaddr_in6 layout, zero-padded. */
function writeSockaddr(w: ByteWriter, text: string | undefined, scopeId: number): void {
  const start = w.offset;
  if (text !== undefined && text.includes(":")) {
    w.u16(RpcapAddressFamily.INET6, BE).u16(0, BE).u32(0, BE).raw(ipv6Bytes(text)).u32(scopeId, BE);
  } else if (text !== undefined) {
    w.u16(RpcapAddressFamily.INET, BE).u16(0, BE).raw(Uint8Array.from(text.split(".").map(Number)));
  }
  w.zeros(RPCAP_SOCKADDR_BYTES - (w.offset - start));
}

function readSockaddr(r: ByteReader): { text: string; scopeId: number } | undefined {
  const start = r.offset;
  r.need(RPCAP_SOCKADDR_BYTES, "sockaddr");
  const family = r.u16(BE, "sockaddr family");
  let result: { text: string; scopeId: number } | undefined;
  if (family === RpcapAddressFamily.INET) {
    r.skip(2);
    result = { text: Array.from(r.bytesView(4, "IPv4 address")).join("."), scopeId: 0 };
  } else if (family === RpcapAddressFamily.INET6) {
    r.skip(6);
    const text = formatIPv6Bytes(r.bytesView(16, "IPv6 address"));
    result = { text, scopeId: r.u32(BE, "scope id") };
  }
  r.offset = start;
  r.skip(RPCAP_SOCKADDR_BYTES, "sockaddr");
  return result;
}

function ipv6Bytes(text: string): Uint8Array {
  const [head = "", tail] = text.split("::");
  const h = head ? head.split(":") : [];
  const t = tail === undefined ? [] : tail ? tail.split(":") : [];
  const groups = [...h, ...Array(tail === undefined ? 0 : 8 - h.length - t.length).fill("0"), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16) || 0;
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

function formatIPv6Bytes(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

// ---- OPEN --------------------------------------------------------------------------------

export function decodeOpenRequest(payload: Uint8Array): string {
  if (payload.byteLength === 0) throw new ProtocolError("empty-source", "OPEN names no source", 0);
  if (payload.byteLength > RPCAP_MAX_NAME_BYTES) {
    throw new ProtocolError("source-too-long", `OPEN source of ${payload.byteLength} bytes`, 0);
  }
  // libpcap's client sends the name without NUL; tolerate one at the end.
  const end = payload.indexOf(0);
  return new TextDecoder().decode(end < 0 ? payload : payload.subarray(0, end));
}

export function encodeOpenReplyPayload(linktype: number, tzoff = 0): Uint8Array {
  return new ByteWriter(RPCAP_OPENREPLY_BYTES).i32(linktype, BE).i32(tzoff, BE).finish();
}

export function decodeOpenReply(payload: Uint8Array): { linktype: number; tzoff: number } {
  const r = new ByteReader(payload);
  return { linktype: r.i32(BE, "linktype"), tzoff: r.i32(BE, "tzoff") };
}

// ---- filters (STARTCAP, UPDATEFILTER) ----------------------------------------------------

export interface FilterBlock {
  filtertype: number;
  program: BpfInstruction[];
}

/** rpcap_filter + nitems instructions; nitems*8 must be exactly what remains (CVE-2019-15161). */
export function decodeFilterBlock(payload: Uint8Array, offset: number): FilterBlock {
  const r = new ByteReader(payload, offset);
  const filtertype = r.u16(BE, "filtertype");
  r.skip(2);
  const nitems = r.u32(BE, "nitems");
  if (filtertype !== RPCAP_FILTER_TYPE_BPF) {
    throw new ProtocolError("unknown-filter-type", `filter type ${filtertype} (only 1, BPF, exists)`, offset);
  }
  if (nitems > RPCAP_MAX_FILTER_INSTRUCTIONS) {
    throw new ProtocolError("filter-too-long", `filter of ${nitems} instructions; the limit is ${RPCAP_MAX_FILTER_INSTRUCTIONS}`, offset + 4);
  }
  if (nitems * RPCAP_FILTER_INSN_BYTES !== payload.byteLength - r.offset) {
    throw new ProtocolError(
      "filter-length-mismatch",
      `filter declares ${nitems} instructions (${nitems * 8} bytes) but ${payload.byteLength - r.offset} bytes follow`,
      offset + 4,
    );
  }
  return { filtertype, program: decodeBpfInstructions(payload, r.offset, nitems) };
}

function filterBlockSize(program: readonly BpfInstruction[]): number {
  return RPCAP_FILTER_BYTES + program.length * RPCAP_FILTER_INSN_BYTES;
}

function writeFilterBlock(w: ByteWriter, program: readonly BpfInstruction[]): void {
  w.u16(RPCAP_FILTER_TYPE_BPF, BE).zeros(2).u32(program.length, BE);
  writeBpfInstructions(w, program);
}

export function encodeUpdateFilterPayload(program: readonly BpfInstruction[]): Uint8Array {
  const w = new ByteWriter(filterBlockSize(program));
  writeFilterBlock(w, program);
  return w.finish();
}

// ---- STARTCAP ----------------------------------------------------------------------------

export interface StartCapRequest {
  snaplen: number;
  readTimeoutMs: number;
  flags: number;
  portdata: number;
  filter: FilterBlock;
}

export function decodeStartCapRequest(payload: Uint8Array): StartCapRequest {
  const r = new ByteReader(payload);
  const snaplen = r.u32(BE, "snaplen");
  const readTimeoutMs = r.u32(BE, "read_timeout");
  const flags = r.u16(BE, "flags");
  const portdata = r.u16(BE, "portdata");
  return { snaplen, readTimeoutMs, flags, portdata, filter: decodeFilterBlock(payload, RPCAP_STARTCAPREQ_BYTES) };
}

export function encodeStartCapRequestPayload(req: Omit<StartCapRequest, "filter"> & { program: readonly BpfInstruction[] }): Uint8Array {
  const w = new ByteWriter(RPCAP_STARTCAPREQ_BYTES + filterBlockSize(req.program));
  w.u32(req.snaplen, BE).u32(req.readTimeoutMs, BE).u16(req.flags, BE).u16(req.portdata, BE);
  writeFilterBlock(w, req.program);
  return w.finish();
}

export function encodeStartCapReplyPayload(bufsize: number, portdata: number): Uint8Array {
  return new ByteWriter(RPCAP_STARTCAPREPLY_BYTES).i32(bufsize, BE).u16(portdata, BE).zeros(2).finish();
}

export function decodeStartCapReply(payload: Uint8Array): { bufsize: number; portdata: number } {
  const r = new ByteReader(payload);
  return { bufsize: r.i32(BE, "bufsize"), portdata: r.u16(BE, "portdata") };
}

// ---- STATS, SETSAMPLING ------------------------------------------------------------------

export interface RpcapStats {
  ifrecv: number;
  ifdrop: number;
  krnldrop: number;
  svrcapt: number;
}

export function encodeStatsReplyPayload(s: RpcapStats): Uint8Array {
  // Counters wrap at 2^32 on the wire like libpcap's u_int counters.
  const u32 = (n: number) => n % 2 ** 32;
  return new ByteWriter(RPCAP_STATS_BYTES).u32(u32(s.ifrecv), BE).u32(u32(s.ifdrop), BE).u32(u32(s.krnldrop), BE).u32(u32(s.svrcapt), BE).finish();
}

export function decodeStatsReply(payload: Uint8Array): RpcapStats {
  const r = new ByteReader(payload);
  return { ifrecv: r.u32(BE), ifdrop: r.u32(BE), krnldrop: r.u32(BE), svrcapt: r.u32(BE) };
}

export function decodeSamplingRequest(payload: Uint8Array): { method: number; value: number } {
  const r = new ByteReader(payload);
  const method = r.u8("method");
  r.skip(3);
  return { method, value: r.u32(BE, "value") };
}

export function encodeSamplingRequestPayload(method: number, value: number): Uint8Array {
  return new ByteWriter(RPCAP_SAMPLING_BYTES).u8(method).zeros(3).u32(value, BE).finish();
}

/** Rejects trailing bytes a fixed-size request should not have (CVE-2019-15161 class). */
export function expectPlen(type: string, payload: Uint8Array, expected: number): void {
  if (payload.byteLength !== expected) {
    throw new ProtocolError("bad-plen", `${type} with ${payload.byteLength} payload bytes; expected ${expected}`, 4);
  }
}

// ---- PACKET (data channel) ---------------------------------------------------------------

export interface PacketHeader {
  tsSec: number;
  tsUsec: number;
  caplen: number;
  len: number;
  npkt: number;
}

/** Decodes a PACKET payload: pkthdr and a view of the data; caplen must fit plen - 20. */
export function decodePacketPayload(payload: Uint8Array): { header: PacketHeader; data: Uint8Array } {
  const r = new ByteReader(payload);
  const header: PacketHeader = { tsSec: r.u32(BE), tsUsec: r.u32(BE), caplen: r.u32(BE), len: r.u32(BE), npkt: r.u32(BE) };
  if (header.caplen > payload.byteLength - RPCAP_PKTHDR_BYTES) {
    throw new ProtocolError("caplen-exceeds-plen", `caplen ${header.caplen} > plen - 20 (${payload.byteLength - RPCAP_PKTHDR_BYTES})`, 8);
  }
  if (header.caplen > header.len) {
    throw new ProtocolError("caplen-exceeds-len", `caplen ${header.caplen} > len ${header.len}`, 8);
  }
  return { header, data: r.bytesView(header.caplen, "packet data") };
}

/**
 * The data-channel hot path: every record of `batch` as a PACKET message (header + pkthdr +
 * data), back to back in ONE buffer so a batch is one write. npkt counts from `firstNpkt`
 * and wraps at 2^32 (it is a u32 on the wire; libpcap's counter wraps the same way).
 * Returns the buffer and, for datagram channels, the end offset of each message.
 */
export function encodePacketMessages(batch: PacketBatch, firstNpkt: number, ver = 0): { bytes: Uint8Array; ends: Uint32Array } {
  const src = batch.bytes;
  const inView = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const perRecord = RPCAP_HEADER_BYTES + RPCAP_PKTHDR_BYTES - BATCH_RECORD_HEADER_BYTES;
  const out = new Uint8Array(src.byteLength + batch.count * perRecord);
  const view = new DataView(out.buffer);
  const ends = new Uint32Array(batch.count);
  const nanoToMicro = batch.precision === "nano";
  let from = 0;
  let at = 0;
  let npkt = firstNpkt;
  for (let i = 0; i < batch.count; i++) {
    const tsSec = inView.getUint32(from, true);
    const tsFrac = inView.getUint32(from + 4, true);
    const caplen = inView.getUint32(from + 8, true);
    const len = inView.getUint32(from + 12, true);
    view.setUint8(at, ver);
    view.setUint8(at + 1, RpcapMessageType.PACKET);
    view.setUint16(at + 2, 0);
    view.setUint32(at + 4, RPCAP_PKTHDR_BYTES + caplen);
    view.setUint32(at + 8, tsSec);
    view.setUint32(at + 12, nanoToMicro ? Math.floor(tsFrac / 1000) : tsFrac);
    view.setUint32(at + 16, caplen);
    view.setUint32(at + 20, len);
    view.setUint32(at + 24, npkt >>> 0);
    npkt = (npkt + 1) % 2 ** 32;
    out.set(src.subarray(from + BATCH_RECORD_HEADER_BYTES, from + BATCH_RECORD_HEADER_BYTES + caplen), at + 28);
    from += BATCH_RECORD_HEADER_BYTES + caplen;
    at += 28 + caplen;
    ends[i] = at;
  }
  return { bytes: out, ends };
}

let littleEndianHost: boolean | undefined;
function hostIsLittleEndian(): boolean {
  littleEndianHost ??= new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  return littleEndianHost;
}

/** Payloads of replies that carry nothing, encoded once. */
export const EMPTY_PAYLOAD = new Uint8Array(0);

export { RPCAP_MAX_NAME_BYTES };
