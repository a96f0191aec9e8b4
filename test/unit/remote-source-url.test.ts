// parseRemoteSourceUrl: the tcp://, TCP@ and tls:// spellings of a PCAP-over-IP stream to read.
import { describe, expect, test } from "bun:test";
import { formatRemoteSourceUrl, parseRemoteSourceUrl } from "../../src/capture/remote/index.ts";

describe("parseRemoteSourceUrl", () => {
  const accepted: [string, { kind: "tcp" | "tls"; host: string; port: number }, string][] = [
    ["tcp://127.0.0.1:57012", { kind: "tcp", host: "127.0.0.1", port: 57012 }, "tcp://127.0.0.1:57012"],
    ["TCP@127.0.0.1:19000", { kind: "tcp", host: "127.0.0.1", port: 19000 }, "tcp://127.0.0.1:19000"],
    ["tcp@sensor-1.example.net:1", { kind: "tcp", host: "sensor-1.example.net", port: 1 }, "tcp://sensor-1.example.net:1"],
    ["tls://localhost:65535", { kind: "tls", host: "localhost", port: 65535 }, "tls://localhost:65535"],
    ["TLS://[::1]:57012", { kind: "tls", host: "::1", port: 57012 }, "tls://[::1]:57012"],
    ["tcp://[fe80::1:2]:9", { kind: "tcp", host: "fe80::1:2", port: 9 }, "tcp://[fe80::1:2]:9"],
    ["TCP@[::1]:19000", { kind: "tcp", host: "::1", port: 19000 }, "tcp://[::1]:19000"],
  ];
  for (const [text, expected, canonical] of accepted) {
    test(`accepts ${text}`, () => {
      const parsed = parseRemoteSourceUrl(text);
      expect(parsed).toEqual(expected);
      expect(formatRemoteSourceUrl(parsed!)).toBe(canonical);
    });
  }

  for (const text of ["eth0", "lo", "capture.pcap", "/tmp/x.pcap", "any", "udp://1.2.3.4:5", "http://x:1", ""]) {
    test(`'${text}' is not a remote source (undefined)`, () => {
      expect(parseRemoteSourceUrl(text)).toBeUndefined();
    });
  }

  const refused: [string, RegExp][] = [
    ["tcp://127.0.0.1", /missing :PORT/],
    ["tcp://127.0.0.1:", /numeric port/],
    ["tcp://127.0.0.1:0", /1 to 65535/],
    ["tcp://127.0.0.1:65536", /1 to 65535/],
    ["tcp://127.0.0.1:123456", /numeric port/],
    ["tcp://127.0.0.1:12a", /numeric port/],
    ["tcp://127.0.0.1:-1", /numeric port/],
    ["tcp://:57012", /missing host/],
    ["tcp://::1:57012", /IPv6 address in brackets/],
    ["tcp://[::1]57012", /missing :PORT after the IPv6/],
    ["tcp://[127.0.0.1]:5", /must be an IPv6 address/],
    ["tcp://[::1:5", /must be an IPv6 address/],
    ["tls://bad host:5", /not a host name/],
    ["tls://-x:5", /not a host name/],
    [`tcp://${"a".repeat(254)}:5`, /not a host name/],
    ["TCP@host", /missing :PORT/],
  ];
  for (const [text, message] of refused) {
    test(`refuses ${text.length > 40 ? text.slice(0, 40) + "..." : text}`, () => {
      expect(() => parseRemoteSourceUrl(text)).toThrow(message);
    });
  }
});

describe("rt:// (libtrace RT)", () => {
  test("host and port; ?state=FILE", () => {
    expect(parseRemoteSourceUrl("rt://127.0.0.1:3435")).toEqual({ kind: "rt", host: "127.0.0.1", port: 3435 });
    expect(parseRemoteSourceUrl("RT://[::1]:3435?state=/var/lib/probe/rt.state")).toEqual({ kind: "rt", host: "::1", port: 3435, statePath: "/var/lib/probe/rt.state" });
  });
  test.each([
    ["rt://h:3435?state=", /needs a file name/],
    ["rt://h:3435?reconnect=1", /unknown option 'reconnect'/],
    ["rt://h", /missing :PORT/],
  ])("refuses %s", (text, message) => {
    expect(() => parseRemoteSourceUrl(text)).toThrow(message);
  });
});
