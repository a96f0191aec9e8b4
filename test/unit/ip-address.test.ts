// The one IP/CIDR parser (src/net/ip-address.ts) behind --allow, --anonymize-prefix and
// rpcapd's host list: exact bytes, the refusals, and which half of a bad block is named.
import { describe, expect, test } from "bun:test";
import { ipAddressBytes, parseAddressBlock, peerAddressBytes, prefixMatches, sameAddress } from "../../src/net/ip-address.ts";

const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString("hex") : undefined);

describe("ipAddressBytes", () => {
  const rows: [string, string | undefined][] = [
    ["192.0.2.1", "c0000201"],
    ["::1.2.3.4", "00000000000000000000000001020304"],
    ["1:2:3:4:5:6:1.2.3.4", "00010002000300040005000601020304"],
    ["2001:DB8::1", "20010db8000000000000000000000001"],
    ["1.2.3.4::", undefined], // a dotted quad only as the last 32 bits
    ["1::2::3", undefined],
    ["::1.2.3", undefined],
    ["256.0.0.1", undefined],
    ["fe80::1%eth0", undefined], // zones only where a peer address is read
    ["", undefined],
  ];
  for (const [text, bytes] of rows) test(JSON.stringify(text), () => expect(hex(ipAddressBytes(text))).toBe(bytes));
});

describe("peerAddressBytes", () => {
  const rows: [string, string | undefined][] = [
    ["10.1.2.3", "0a010203"],
    ["::ffff:10.1.2.3", "0a010203"],
    ["::FFFF:a01:203", "0a010203"],
    ["[2001:db8::7]", "20010db8000000000000000000000007"],
    ["fe80::1%eth0", "fe800000000000000000000000000001"],
    ["1.2.3.4%eth0", undefined],
    ["garbage", undefined],
  ];
  for (const [text, bytes] of rows) test(JSON.stringify(text), () => expect(hex(peerAddressBytes(text))).toBe(bytes));
});

describe("parseAddressBlock", () => {
  test("blocks", () => {
    expect(parseAddressBlock("10.0.0.0/8", { prefixRequired: true })).toEqual({ kind: "block", bytes: Uint8Array.from([10, 0, 0, 0]), prefix: 8 });
    expect(parseAddressBlock("fd00::", { prefixRequired: false })).toMatchObject({ kind: "block", prefix: 128 });
    expect(parseAddressBlock("::ffff:10.0.0.0/104", { prefixRequired: true })).toMatchObject({ kind: "block", prefix: 104 });
  });
  test("the half at fault", () => {
    expect(parseAddressBlock("10.0.0.0", { prefixRequired: true })).toEqual({ kind: "bad-prefix", maxPrefix: 32 });
    for (const text of ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/8/9", "10.0.0.0/0x8", "10.0.0.0/ 8", "10.0.0.0/-1"]) {
      expect(parseAddressBlock(text, { prefixRequired: false })).toEqual({ kind: "bad-prefix", maxPrefix: 32 });
    }
    expect(parseAddressBlock("fd00::/129", { prefixRequired: false })).toEqual({ kind: "bad-prefix", maxPrefix: 128 });
    for (const text of ["10.0.0/8", "x/1", "/8", "1.2.3.4::/8"]) expect(parseAddressBlock(text, { prefixRequired: false })).toEqual({ kind: "bad-address" });
  });
});

test("prefixMatches compares whole bytes and the bits of a partial one", () => {
  const a = Uint8Array.from([192, 168, 0b10101010, 1]);
  expect(prefixMatches(a, Uint8Array.from([192, 168, 0b10100000, 9]), 20)).toBe(true);
  expect(prefixMatches(a, Uint8Array.from([192, 168, 0b10110000, 9]), 20)).toBe(false);
  expect(prefixMatches(a, Uint8Array.from([1, 2, 3, 4]), 0)).toBe(true);
});

test("sameAddress: one host in any spelling; names and garbage match nothing", () => {
  expect(sameAddress("::ffff:127.0.0.1", "127.0.0.1")).toBe(true);
  expect(sameAddress("2001:DB8::1", "2001:db8:0:0:0:0:0:1")).toBe(true);
  expect(sameAddress("::1", "127.0.0.1")).toBe(false);
  expect(sameAddress("127.0.0.2", "127.0.0.1")).toBe(false);
  expect(sameAddress("localhost", "localhost")).toBe(false);
});
