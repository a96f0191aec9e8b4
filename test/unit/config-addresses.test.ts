// Address forms operators type: HOST:PORT, [v6]:PORT, CIDR blocks, and peer matching.
import { describe, expect, test } from "bun:test";
import { addressAllowed, isLoopbackAddress, parseCidr, parseHostPort } from "../../src/net/addresses.ts";
import { combineFilters } from "../../src/capture/combine-filters.ts";

describe("parseHostPort", () => {
  test.each([
    ["127.0.0.1:57012", undefined, { host: "127.0.0.1", port: 57012 }],
    ["[::1]:2002", undefined, { host: "::1", port: 2002 }],
    ["collector", 2003, { host: "collector", port: 2003 }],
    ["::1", 2003, { host: "::1", port: 2003 }],
    ["0.0.0.0:0", undefined, { host: "0.0.0.0", port: 0 }],
  ] as const)("%s", (text, def, expected) => {
    expect(parseHostPort(text, def)).toEqual(expected);
  });
  test.each(["host:99999", "host:abc", ":80", "host"])("refuses %s", (text) => {
    expect(() => parseHostPort(text)).toThrow();
  });
});

describe("CIDR", () => {
  const blocks = ["10.0.0.0/8", "192.168.1.0/24", "fd00::/8", "2001:db8::1"].map(parseCidr);
  test.each([
    ["10.200.3.4", true],
    ["::ffff:10.1.1.1", true],
    ["192.168.1.77", true],
    ["192.168.2.1", false],
    ["127.0.0.1", false],
    ["fd12::1", true],
    ["2001:db8::1", true],
    ["2001:db8::2", false],
    ["not-an-address", false],
  ] as const)("%s allowed: %p", (address, allowed) => {
    expect(addressAllowed(address, blocks)).toBe(allowed);
  });
  test("bad blocks are refused", () => {
    for (const text of ["10.0.0.0/33", "fd00::/129", "10.0.0/8", "x/1", "10.0.0.0/-1"]) expect(() => parseCidr(text)).toThrow();
  });
  test("loopback", () => {
    expect(["127.0.0.1", "127.9.9.9", "::1", "localhost"].every(isLoopbackAddress)).toBe(true);
    expect(isLoopbackAddress("10.0.0.1")).toBe(false);
  });
});

test("combineFilters parenthesises and skips empty parts", () => {
  expect(combineFilters("", "not (tcp port 1)")).toBe("not (tcp port 1)");
  expect(combineFilters("udp or tcp", "not (tcp port 1)")).toBe("(udp or tcp) and (not (tcp port 1))");
  expect(combineFilters(undefined, "")).toBe("");
});
