// tshark as the outside judge of our RPCAP encoders: a pcap of synthetic TCP/UDP frames carrying
// a whole session's messages (both directions), a TCP data channel (one segment per batch, one
// batch split mid-message) and UDP datagrams must be recognised by Wireshark's RPCAP dissector
// message by message, with the field values we wrote, and nothing "Malformed".
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PacketBatchBuilder } from "../../src/packet/packet-batch.ts";
import {
  AUTH_REPLY_MESSAGE,
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
  RpcapErrorCode,
  RpcapMessageType as T,
  StartCapFlag,
} from "../../src/protocols/rpcap/index.ts";
import { runTool } from "../support/probe-binary.ts";
import { sampleUdpFrame, syntheticPcap, type SyntheticSegment } from "../support/synthetic-pcap.ts";

// 'udp port 9999' as tcpdump -dd prints it (Ethernet), so the dissector sees a real program.
const PROGRAM = [
  { code: 0x28, jt: 0, jf: 0, k: 12 },
  { code: 0x15, jt: 0, jf: 3, k: 0x800 },
  { code: 0x30, jt: 0, jf: 0, k: 23 },
  { code: 0x15, jt: 0, jf: 1, k: 17 },
  { code: 0x6, jt: 0, jf: 0, k: 262144 },
  { code: 0x6, jt: 0, jf: 0, k: 0 },
];

const client = { src: "10.0.0.1", sport: 40000 };
const server = { src: "10.0.0.2", sport: 2002 };
const toServer = (payload: Uint8Array): SyntheticSegment => ({ proto: "tcp", src: client.src, sport: client.sport, dst: server.src, dport: server.sport, payload });
const toClient = (payload: Uint8Array): SyntheticSegment => ({ proto: "tcp", src: server.src, sport: server.sport, dst: client.src, dport: client.sport, payload });
const text = (s: string) => new TextEncoder().encode(s);

const control: [number, SyntheticSegment][] = [
  [T.AUTH_REQ, toServer(encodeMessage(0, T.AUTH_REQ, 0, encodeAuthRequest({ authType: 1, username: "user", password: "secret" })))],
  [T.AUTH_REPLY, toClient(AUTH_REPLY_MESSAGE)],
  [T.FINDALLIF_REQ, toServer(encodeEmptyMessage(T.FINDALLIF_REQ))],
  [T.FINDALLIF_REPLY, toClient(encodeMessage(0, T.FINDALLIF_REPLY, 2, encodeFindAllIfReplyPayload([
    { name: "lo", description: "", flags: 0x37, addresses: [{ addr: "127.0.0.1", netmask: "255.0.0.0" }, { addr: "::1", netmask: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" }] },
    { name: "eth0", description: "Ethernet", flags: 0x16, addresses: [{ addr: "192.0.2.2", netmask: "255.255.255.0", broadaddr: "192.0.2.255" }, { addr: "fe80::fc:ff:fe00:1", scopeId: 2, netmask: "ffff:ffff:ffff:ffff::" }] },
  ])))],
  [T.OPEN_REQ, toServer(encodeMessage(0, T.OPEN_REQ, 0, encodeOpenRequestPayload("eth0")))],
  [T.OPEN_REPLY, toClient(encodeMessage(0, T.OPEN_REPLY, 0, encodeOpenReplyPayload(1, 0)))],
  [T.SETSAMPLING_REQ, toServer(encodeMessage(0, T.SETSAMPLING_REQ, 0, encodeSamplingRequestPayload(1, 10)))],
  [T.SETSAMPLING_REPLY, toClient(encodeEmptyMessage(T.SETSAMPLING_REPLY))],
  [T.STARTCAP_REQ, toServer(encodeMessage(0, T.STARTCAP_REQ, 0, encodeStartCapRequestPayload({ snaplen: 65535, readTimeoutMs: 250, flags: StartCapFlag.PROMISC | StartCapFlag.SERVEROPEN, portdata: 40001, program: PROGRAM })))],
  [T.STARTCAP_REPLY, toClient(encodeMessage(0, T.STARTCAP_REPLY, 0, encodeStartCapReplyPayload(262172, 0)))],
  [T.UPDATEFILTER_REQ, toServer(encodeMessage(0, T.UPDATEFILTER_REQ, 0, encodeUpdateFilterPayload(PROGRAM)))],
  [T.UPDATEFILTER_REPLY, toClient(encodeEmptyMessage(T.UPDATEFILTER_REPLY))],
  [T.STATS_REQ, toServer(encodeEmptyMessage(T.STATS_REQ))],
  [T.STATS_REPLY, toClient(encodeMessage(0, T.STATS_REPLY, 0, encodeStatsReplyPayload({ ifrecv: 40, ifdrop: 1, krnldrop: 2, svrcapt: 20 })))],
  [T.ENDCAP_REQ, toServer(encodeEmptyMessage(T.ENDCAP_REQ))],
  [T.ENDCAP_REPLY, toClient(encodeEmptyMessage(T.ENDCAP_REPLY))],
  [T.OPEN_REQ, toServer(encodeMessage(0, T.OPEN_REQ, 0, encodeOpenRequestPayload("nope")))],
  [T.ERROR, toClient(encodeError(0, RpcapErrorCode.OPEN, "nope: no such device"))],
  [T.CLOSE, toServer(encodeEmptyMessage(T.CLOSE))],
];

function batch(sizes: number[], seed: number) {
  const b = new PacketBatchBuilder(1, "nano");
  sizes.forEach((size, i) => b.push(1_700_000_100 + i, 123_456_789, size + 42, sampleUdpFrame(size, seed + i)));
  return b.take()!;
}

// Data channel, TCP: batch 1 in one segment; batch 2 split in the middle of its second message.
const dataSegment = (payload: Uint8Array): SyntheticSegment => ({ proto: "tcp", src: server.src, sport: 50000, dst: client.src, dport: 40001, payload });
const stream1 = encodePacketStream(batch([1, 100, 1000], 0), 1);
const stream2 = encodePacketStream(batch([7, 70, 700], 3), 4);
const cut = 28 + 49 + 30;
// Data channel, UDP: one message per datagram.
const datagrams = encodePacketDatagrams(batch([5, 50, 500], 6), 7).map(
  (payload): SyntheticSegment => ({ proto: "udp", src: server.src, sport: 50001, dst: client.src, dport: 40002, payload }),
);

const segments = [
  ...control.map(([, s]) => s),
  dataSegment(stream1),
  dataSegment(stream2.subarray(0, cut)),
  dataSegment(stream2.subarray(cut)),
  ...datagrams,
];

let dir = "";
let file = "";
const tshark = (...args: string[]) => runTool(["tshark", "-r", file, "-o", "tcp.check_checksum:FALSE", ...args]);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rpcap-tshark-"));
  file = join(dir, "encoded.pcap");
  writeFileSync(file, syntheticPcap(segments));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FIELDS = [
  "rpcap.type", "rpcap.username", "rpcap.password", "rpcap.ifname", "rpcap.ifdesc", "rpcap.if.ipv4", "rpcap.if.ipv6",
  "rpcap.open_request", "rpcap.linktype", "rpcap.snaplen", "rpcap.read_timeout", "rpcap.client_port", "rpcap.bufsize",
  "rpcap.nitems", "rpcap.sampling_value", "rpcap.ifrecv", "rpcap.srvcapt", "rpcap.error", "rpcap.number", "rpcap.cap_len",
  "udp.dstport",
];
let fieldsRun: Promise<Map<string, Map<number, string[]>>> | null = null;

/** One tshark run for every field: field -> frame number -> that frame's values. */
function fields(): Promise<Map<string, Map<number, string[]>>> {
  fieldsRun ??= tshark("-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|", "-e", "frame.number", ...FIELDS.flatMap((f) => ["-e", f])).then((out) => {
    const result = new Map(FIELDS.map((f) => [f, new Map<number, string[]>()]));
    for (const line of out.trim().split("\n")) {
      const [frame, ...values] = line.split("\t");
      values.forEach((v, i) => {
        if (v) result.get(FIELDS[i]!)!.set(Number(frame), v.split("|"));
      });
    }
    return result;
  });
  return fieldsRun;
}

async function fieldByFrame(field: string): Promise<Map<number, string[]>> {
  return (await fields()).get(field)!;
}

describe("tshark decodes what we encode", () => {
  test("every control message, in order, with its type", async () => {
    const types = await fieldByFrame("rpcap.type");
    control.forEach(([type], i) => expect(types.get(i + 1)?.map(Number)).toEqual([type]));
  }, 30_000);

  test("field values we wrote come back", async () => {
    const one = async (field: string) => [...(await fieldByFrame(field)).values()].flat();
    expect(await one("rpcap.username")).toEqual(["user"]);
    expect(await one("rpcap.password")).toEqual(["secret"]);
    expect(await one("rpcap.ifname")).toEqual(["lo", "eth0"]);
    expect(await one("rpcap.ifdesc")).toEqual(["Ethernet"]);
    expect(await one("rpcap.if.ipv4")).toEqual(["127.0.0.1", "255.0.0.0", "192.0.2.2", "255.255.255.0", "192.0.2.255"]);
    expect(await one("rpcap.if.ipv6")).toEqual(["::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::fc:ff:fe00:1", "ffff:ffff:ffff:ffff::"]);
    expect(await one("rpcap.open_request")).toEqual(["eth0", "nope"]);
    expect(await one("rpcap.linktype")).toEqual(["1"]);
    expect(await one("rpcap.snaplen")).toEqual(["65535"]);
    expect(await one("rpcap.read_timeout")).toEqual(["250"]);
    expect(await one("rpcap.client_port")).toEqual(["40001"]);
    expect(await one("rpcap.bufsize")).toEqual(["262172"]);
    expect(await one("rpcap.nitems")).toEqual(["6", "6"]);
    expect(await one("rpcap.sampling_value")).toEqual(["10"]);
    expect(await one("rpcap.ifrecv")).toEqual(["40"]);
    expect(await one("rpcap.srvcapt")).toEqual(["20"]);
    expect(await one("rpcap.error")).toEqual(["nope: no such device"]);
  }, 30_000);

  test("data channels: every PACKET with its npkt and caplen, TCP (incl. a split message) and UDP", async () => {
    const npkt = [...(await fieldByFrame("rpcap.number")).values()].flat().map(Number);
    expect(npkt).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const caplen = [...(await fieldByFrame("rpcap.cap_len")).values()].flat().map(Number);
    expect(caplen).toEqual([1, 100, 1000, 7, 70, 700, 5, 50, 500].map((n) => n + 42));
    // The inner frames were dissected too (OPEN_REPLY told tshark the link type).
    const inner = [...(await fieldByFrame("udp.dstport")).values()].flat();
    expect(inner.filter((p) => p === "9999").length).toBe(9);
  }, 30_000);

  test("nothing malformed, no RPCAP expert errors", async () => {
    expect((await tshark("-Y", "_ws.malformed || rpcap.caplen_too_big || rpcap.no_more_data")).trim()).toBe("");
    const verbose = await tshark("-O", "rpcap");
    expect(verbose).not.toMatch(/Malformed/i);
    expect(verbose.match(/Remote Packet Capture/g)?.length).toBe(control.length + 9);
  }, 30_000);
});
