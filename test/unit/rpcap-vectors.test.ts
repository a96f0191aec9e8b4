// RPCAP against real bytes: libpcap's rpcapd and clients (and ExtraHop's rpcapd control
// channel) recorded in test/fixtures/vectors. Every message of every manifest frames and decodes
// to the manifest's header fields and payload facts, re-encodes byte for byte where we have an
// encoder, and the data channels' PACKETs re-encode from a PacketBatch to the exact bytes.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { PacketBatchBuilder } from "../../src/packet/packet-batch.ts";
import {
  AUTH_REPLY_MESSAGE,
  decodeAuthReply,
  decodeAuthRequest,
  decodeDatagram,
  decodeErrorText,
  decodeFindAllIfReply,
  decodeOpenReply,
  decodeOpenRequest,
  decodePacketPayload,
  decodeSamplingRequest,
  decodeStartCapReply,
  decodeStartCapRequest,
  decodeStatsReply,
  decodeUpdateFilterRequest,
  encodeAuthRequest,
  encodeEmptyMessage,
  encodeError,
  encodeFindAllIfReplyPayload,
  encodeMessage,
  encodeOpenReplyPayload,
  encodeOpenRequestPayload,
  encodePacketDatagrams,
  encodePacketStream,
  encodeSamplingRequestPayload,
  encodeStartCapReplyPayload,
  encodeStartCapRequestPayload,
  encodeStatsReplyPayload,
  encodeUpdateFilterPayload,
  rpcapErrorName,
  rpcapMessageName,
  RpcapFramer,
  RpcapMessageType as T,
  type PacketHeader,
  type RpcapMessage,
} from "../../src/protocols/rpcap/index.ts";
import { loadVectorStreams, tcpStreamByPorts, vectorsDir, type VectorTcpStream } from "../support/vector-streams.ts";
import { hex } from "../support/rpcap-helpers.ts";

interface ManifestMessage {
  frame: number;
  ver: number;
  type: number;
  type_name: string;
  value: number;
  plen: number;
  decoded?: string;
  npkt?: number;
  caplen?: number;
  interfaces?: { name: string; desc: string; flags: number; addr_families: number[]; addresses: (string | null)[][] }[];
}
interface Manifest {
  tcp_streams: { src: string; dst: string; role: "ctrl" | "data"; bytes: number; trailing_bytes: number; messages: ManifestMessage[] }[];
  udp_data_datagrams: { frame: number; src: string; dst: string; ver: number; type: number; value: number; plen: number; npkt: number; caplen: number }[];
  forwarded_packets: { npkt: number; caplen: number; len: number; ts: string; channel: string }[];
}

const VECTORS = [
  "rpcap-passive-tcp.pcap", "rpcap-passive-udp.pcap", "rpcap-updatefilter.pcap", "rpcap-auth-fail.pcap",
  "rpcap-auth-null.pcap", "rpcap-auth-ok.pcap", "rpcap-auth-ok-capture.pcap", "rpcap-active.pcap",
  "rpcap-bad-version.pcap", "rpcap-setsampling.pcap",
  // ExtraHop's control channel: AUTH_REPLY with plen 0 (its udpstr data is another module's test).
  "udpstr-extrahop.pcap", "udpstr-extrahop-mtu600.pcap", "udpstr-extrahop-mt.pcap",
];

const hostLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const port = (endpoint: string) => Number(endpoint.split(":")[1]);
/** Python's repr of a str, as the manifest generator printed it. */
const pyStr = (s: string) => (s.includes("'") && !s.includes('"') ? `"${s}"` : `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`);

/** Our decoders' view of a message in the manifest's "decoded" notation. */
function describe_(m: RpcapMessage): string {
  const p = m.payload;
  switch (m.header.type) {
    case T.AUTH_REQ: {
      const a = decodeAuthRequest(p);
      return `AUTH_REQ authtype=${a.authType} user=b'${a.username}' pass=b'${a.password}'`;
    }
    case T.AUTH_REPLY: {
      const r = decodeAuthReply(p);
      return p.byteLength === 0 ? "AUTH_REPLY" : `AUTH_REPLY minvers=${r.minvers} maxvers=${r.maxvers} byte_order_magic=${hex(p.subarray(4, 8))}`;
    }
    case T.OPEN_REQ:
      return `OPEN_REQ source=b'${decodeOpenRequest(p)}'`;
    case T.OPEN_REPLY: {
      const r = decodeOpenReply(p);
      return `OPEN_REPLY linktype=${r.linktype} tzoff=${r.tzoff}`;
    }
    case T.STARTCAP_REQ: {
      const r = decodeStartCapRequest(p);
      return `STARTCAP_REQ snaplen=${r.snaplen} read_timeout=${r.readTimeoutMs} flags=0x${r.flags.toString(16)} portdata=${r.portdata} filtertype=${r.filter.filtertype} nitems=${r.filter.program.length}`;
    }
    case T.STARTCAP_REPLY: {
      const r = decodeStartCapReply(p);
      return `STARTCAP_REPLY bufsize=${r.bufsize} portdata=${r.portdata}`;
    }
    case T.UPDATEFILTER_REQ: {
      const f = decodeUpdateFilterRequest(p);
      return `UPDATEFILTER_REQ filtertype=${f.filtertype} nitems=${f.program.length}`;
    }
    case T.STATS_REPLY: {
      const s = decodeStatsReply(p);
      return `STATS_REPLY ifrecv=${s.ifrecv} ifdrop=${s.ifdrop} krnldrop=${s.krnldrop} svrcapt=${s.svrcapt}`;
    }
    case T.SETSAMPLING_REQ: {
      const s = decodeSamplingRequest(p);
      return `SETSAMPLING_REQ method=${s.method} dummy1=${p[1]} dummy2=${(p[2]! << 8) | p[3]!} value=${s.value}`;
    }
    case T.ERROR:
      return `ERROR errcode=${m.header.value}(${rpcapErrorName(m.header.value)}) msg=${pyStr(decodeErrorText(p))}`;
    case T.FINDALLIF_REPLY:
      return `FINDALLIF_REPLY nif=${decodeFindAllIfReply(m.header.value, p).length}`;
    default:
      return rpcapMessageName(m.header.type).startsWith("type ") ? `UNKNOWN(0x${m.header.type.toString(16)})` : rpcapMessageName(m.header.type);
  }
}

/** Our encoders' bytes for a decoded message; undefined where we have no encoder for it. */
function reencode(m: RpcapMessage): Uint8Array | undefined {
  const { ver, type, value } = m.header;
  const p = m.payload;
  const wrap = (payload: Uint8Array) => encodeMessage(ver, type, value, payload);
  switch (type) {
    case T.AUTH_REQ:
      return wrap(encodeAuthRequest(decodeAuthRequest(p)));
    case T.OPEN_REQ:
      return wrap(encodeOpenRequestPayload(decodeOpenRequest(p)));
    case T.STARTCAP_REQ: {
      const r = decodeStartCapRequest(p);
      return wrap(encodeStartCapRequestPayload({ ...r, program: r.filter.program }));
    }
    case T.UPDATEFILTER_REQ:
      return wrap(encodeUpdateFilterPayload(decodeUpdateFilterRequest(p).program));
    case T.SETSAMPLING_REQ: {
      const s = decodeSamplingRequest(p);
      return wrap(encodeSamplingRequestPayload(s.method, s.value));
    }
    case T.OPEN_REPLY: {
      const o = decodeOpenReply(p);
      return wrap(encodeOpenReplyPayload(o.linktype, o.tzoff));
    }
    case T.STARTCAP_REPLY: {
      const s = decodeStartCapReply(p);
      return wrap(encodeStartCapReplyPayload(s.bufsize, s.portdata));
    }
    case T.STATS_REPLY:
      return wrap(encodeStatsReplyPayload(decodeStatsReply(p)));
    case T.FINDALLIF_REPLY:
      return wrap(encodeFindAllIfReplyPayload(decodeFindAllIfReply(value, p)));
    case T.ERROR:
      return encodeError(ver, value, decodeErrorText(p));
    case T.FINDALLIF_REQ:
    case T.CLOSE:
    case T.STATS_REQ:
    case T.ENDCAP_REQ:
    case T.ENDCAP_REPLY:
    case T.UPDATEFILTER_REPLY:
    case T.SETSAMPLING_REPLY:
      return encodeEmptyMessage(type, ver, value);
    default:
      return undefined; // AUTH_REPLY depends on the recording host's byte order; PACKET below
  }
}

/** Frame number carrying the first byte at `offset` of a reassembled stream. */
function frameAt(stream: VectorTcpStream, offset: number): number {
  const seg = stream.segments.find((s) => offset >= s.offset && offset < s.offset + s.length);
  return seg!.frame;
}

/** Rebuilds the PacketBatch a daemon would have had, to re-encode PACKETs byte for byte. */
function batchFrom(packets: { header: PacketHeader; data: Uint8Array }[]) {
  const b = new PacketBatchBuilder(1, "micro");
  for (const { header, data } of packets) b.push(header.tsSec, header.tsUsec, header.len, data);
  return b.take()!;
}

for (const file of VECTORS) {
  describe(file, () => {
    const manifest = JSON.parse(readFileSync(`${vectorsDir}expected/${file.replace(".pcap", ".json")}`, "utf8")) as Manifest;

    test("TCP streams: header fields, frames, payload facts, exact re-encode", async () => {
      const streams = await loadVectorStreams(file);
      let exact = 0;
      for (const s of manifest.tcp_streams) {
        const stream = tcpStreamByPorts(streams, port(s.src), port(s.dst));
        expect(stream).toBeDefined();
        expect(stream!.bytes.byteLength).toBe(s.bytes);
        expect(stream!.gapBytes).toBe(0);
        const framer = new RpcapFramer(() => 1 << 24);
        const messages = framer.push(stream!.bytes);
        if (s.trailing_bytes === 0) framer.end();
        expect(messages.map((m) => [m.header.ver, m.header.type, m.header.value, m.header.plen])).toEqual(s.messages.map((m) => [m.ver, m.type, m.value, m.plen]));
        let offset = 0;
        messages.forEach((m, i) => {
          const want = s.messages[i]!;
          expect(frameAt(stream!, offset)).toBe(want.frame);
          offset += 8 + m.header.plen;
          if (m.header.type === T.PACKET) {
            const { header } = decodePacketPayload(m.payload);
            expect([header.npkt, header.caplen]).toEqual([want.npkt!, want.caplen!]);
            return;
          }
          expect(describe_(m)).toBe(want.decoded!);
          if (want.interfaces) {
            const ifs = decodeFindAllIfReply(m.header.value, m.payload);
            expect(ifs.map((i) => ({
              name: i.name,
              desc: i.description,
              flags: i.flags,
              addr_families: i.addresses.map((a): number => (a.addr.includes(":") ? 23 : 2)),
              addresses: i.addresses.map((a) => [a.addr, a.netmask ?? null, a.broadaddr ?? null, a.dstaddr ?? null]),
            }))).toEqual(want.interfaces);
          }
          const again = reencode(m);
          if (again) {
            expect(hex(again)).toBe(hex(encodeMessage(m.header.ver, m.header.type, m.header.value, m.payload)));
            exact++;
          }
          if (m.header.type === T.AUTH_REPLY && m.payload.byteLength === 8) {
            // Recorded on x86: the magic is little-endian, so it re-encodes only on a little-endian host.
            expect(decodeAuthReply(m.payload).serverLittleEndian).toBe(true);
            // Our pre-encoded reply (range 0..0, this host's magic) is libpcap's, byte for byte, on x86.
            if (hostLittleEndian) expect(hex(AUTH_REPLY_MESSAGE)).toBe(hex(encodeMessage(m.header.ver, m.header.type, m.header.value, m.payload)));
          }
        });
        if (s.role === "data") {
          const packets = messages.map((m) => decodePacketPayload(m.payload));
          const forwarded = manifest.forwarded_packets.filter((p) => p.channel === "tcp");
          expect(packets.map(({ header: h }) => [h.npkt, h.caplen, h.len, `${h.tsSec}.${String(h.tsUsec).padStart(6, "0")}`])).toEqual(
            forwarded.map((p) => [p.npkt, p.caplen, p.len, p.ts]),
          );
          // The hot-path encoder rebuilds libpcap's data stream byte for byte.
          expect(hex(encodePacketStream(batchFrom(packets), packets[0]!.header.npkt))).toBe(hex(stream!.bytes));
          exact += packets.length;
        }
      }
      expect(exact).toBeGreaterThan(0);
    });

    if (manifest.udp_data_datagrams.length > 0) {
      test("UDP data channel: one PACKET per datagram, exact re-encode", async () => {
        const { udp } = await loadVectorStreams(file);
        const datagrams = manifest.udp_data_datagrams.map((want) => {
          const d = udp.find((x) => x.frame === want.frame)!;
          expect(d).toBeDefined();
          const m = decodeDatagram(d.payload);
          expect([m.header.ver, m.header.type, m.header.value, m.header.plen]).toEqual([want.ver, want.type, want.value, want.plen]);
          const packet = decodePacketPayload(m.payload);
          expect([packet.header.npkt, packet.header.caplen]).toEqual([want.npkt, want.caplen]);
          return { packet, bytes: d.payload };
        });
        const forwarded = manifest.forwarded_packets.filter((p) => p.channel === "udp");
        expect(datagrams.map(({ packet: { header: h } }) => [h.npkt, h.caplen, h.len, `${h.tsSec}.${String(h.tsUsec).padStart(6, "0")}`])).toEqual(
          forwarded.map((p) => [p.npkt, p.caplen, p.len, p.ts]),
        );
        const encoded = encodePacketDatagrams(batchFrom(datagrams.map((d) => d.packet)), datagrams[0]!.packet.header.npkt);
        expect(encoded.map(hex)).toEqual(datagrams.map((d) => hex(d.bytes)));
      });
    }
  });
}
