// RPCAP wire vocabulary checked against rpcap-protocol.h, daemon.c and pcap/pcap.h of
// the-tcpdump-group/libpcap @f26ae497 (values copied here by hand from those headers).
import { describe, expect, test } from "bun:test";
import {
  isRpcapReply,
  maxDataPlen,
  maxReplyPlen,
  RPCAP_FINDALLDEVS_IF_BYTES,
  RPCAP_HEADER_BYTES,
  RPCAP_MAX_FILTER_INSTRUCTIONS,
  RPCAP_MAX_FILTER_PLEN_BYTES,
  RPCAP_MAX_OPEN_PLEN_BYTES,
  RPCAP_MAX_STARTCAP_PLEN_BYTES,
  RPCAP_PKTHDR_BYTES,
  RPCAP_SOCKADDR_BYTES,
  RPCAP_SUSPEND_WRONGAUTH_MS,
  RPCAP_TIMEOUT_INIT_MS,
  RPCAP_TIMEOUT_RUNTIME_MS,
  RpcapAddressFamily,
  rpcapAddressFamilyName,
  RpcapAuthType,
  rpcapAuthTypeName,
  RpcapErrorCode,
  rpcapErrorName,
  RpcapMessageType,
  rpcapMessageName,
  rpcapReplyType,
  rpcapVersionIsSupported,
  SamplingMethod,
  samplingMethodName,
  StartCapFlag,
  startCapFlagNames,
} from "../../src/protocols/rpcap/index.ts";

/** PCAP_ERR_* as rpcap-protocol.h lists them. */
const PCAP_ERR: [string, number][] = [
  ["NETWORK", 1], ["INITTIMEOUT", 2], ["AUTH", 3], ["FINDALLIF", 4], ["NOREMOTEIF", 5], ["OPEN", 6],
  ["UPDATEFILTER", 7], ["GETSTATS", 8], ["READEX", 9], ["HOSTNOAUTH", 10], ["REMOTEACCEPT", 11],
  ["STARTCAPTURE", 12], ["ENDCAPTURE", 13], ["RUNTIMETIMEOUT", 14], ["SETSAMPLING", 15], ["WRONGMSG", 16],
  ["WRONGVER", 17], ["AUTH_FAILED", 18], ["TLS_REQUIRED", 19], ["AUTH_TYPE_NOTSUP", 20],
];

describe("vocabulary", () => {
  test("all 20 error codes, with names", () => {
    expect(Object.entries(RpcapErrorCode) as [string, number][]).toEqual(PCAP_ERR);
    for (const [name, code] of PCAP_ERR) expect(rpcapErrorName(code)).toBe(name);
    expect(rpcapErrorName(21)).toBe("error 21");
  });

  test("message types: requests 1..11, replies = request | 0x80", () => {
    const requests = ["ERROR", "FINDALLIF_REQ", "OPEN_REQ", "STARTCAP_REQ", "UPDATEFILTER_REQ", "CLOSE", "PACKET", "AUTH_REQ", "STATS_REQ", "ENDCAP_REQ", "SETSAMPLING_REQ"] as const;
    requests.forEach((name, i) => expect<number>(RpcapMessageType[name]).toBe(i + 1));
    for (const name of ["FINDALLIF", "OPEN", "STARTCAP", "UPDATEFILTER", "AUTH", "STATS", "ENDCAP", "SETSAMPLING"] as const) {
      const req: number = RpcapMessageType[`${name}_REQ`];
      const rep: number = RpcapMessageType[`${name}_REPLY`];
      expect(rep).toBe(rpcapReplyType(req));
      expect(isRpcapReply(rep)).toBe(true);
      expect(isRpcapReply(req)).toBe(false);
      expect(rpcapMessageName(rep)).toBe(`${name}_REPLY`);
    }
    expect(rpcapMessageName(0x55)).toBe("type 0x55");
  });

  test("flags, auth types, sampling methods, address families", () => {
    expect(StartCapFlag).toEqual({ PROMISC: 1, DGRAM: 2, SERVEROPEN: 4, INBOUND: 8, OUTBOUND: 16 });
    expect(startCapFlagNames(0x6)).toBe("DGRAM|SERVEROPEN");
    expect(startCapFlagNames(0)).toBe("none");
    expect(startCapFlagNames(0x41)).toBe("PROMISC|0x40");
    expect(RpcapAuthType).toEqual({ NULL: 0, PWD: 1 });
    expect(rpcapAuthTypeName(1)).toBe("PWD");
    expect(SamplingMethod).toEqual({ NOSAMP: 0, ONE_EVERY_N: 1, FIRST_AFTER_N_MS: 2 });
    expect(samplingMethodName(2)).toBe("FIRST_AFTER_N_MS");
    expect(RpcapAddressFamily).toEqual({ INET: 2, INET6: 23 });
    expect(rpcapAddressFamilyName(10)).toBe("family 10");
  });

  test("versions: only 0", () => {
    expect(rpcapVersionIsSupported(0)).toBe(true);
    expect(rpcapVersionIsSupported(1)).toBe(false);
  });
});

describe("sizes, limits, timeouts", () => {
  test("struct sizes", () => {
    expect([RPCAP_HEADER_BYTES, RPCAP_PKTHDR_BYTES, RPCAP_SOCKADDR_BYTES, RPCAP_FINDALLDEVS_IF_BYTES]).toEqual([8, 20, 128, 12]);
  });

  test("limits derive from libpcap's", () => {
    expect(RPCAP_MAX_FILTER_INSTRUCTIONS).toBe(8192); // daemon.c RPCAP_BPF_MAXINSNS
    expect(RPCAP_MAX_FILTER_PLEN_BYTES).toBe(8 + 8192 * 8);
    expect(RPCAP_MAX_STARTCAP_PLEN_BYTES).toBe(12 + 8 + 8192 * 8);
    expect(RPCAP_MAX_OPEN_PLEN_BYTES).toBe(1024); // PCAP_BUF_SIZE
  });

  test("timeouts are daemon.c's, in milliseconds", () => {
    expect(RPCAP_TIMEOUT_INIT_MS).toBe(90_000);
    expect(RPCAP_TIMEOUT_RUNTIME_MS).toBe(180_000);
    expect(RPCAP_SUSPEND_WRONGAUTH_MS).toBe(1_000);
  });

  test("client-side caps", () => {
    expect(maxReplyPlen(RpcapMessageType.FINDALLIF_REPLY, 1 << 24)).toBe(1 << 24);
    expect(maxReplyPlen(RpcapMessageType.STATS_REPLY, 1 << 24)).toBe(65536);
    expect(maxDataPlen(RpcapMessageType.PACKET)).toBe(20 + 262144);
    expect(maxDataPlen(RpcapMessageType.ERROR)).toBe(0);
  });
});
