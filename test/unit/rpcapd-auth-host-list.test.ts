// rpcapd's allowed-host list (-l): parsing rpcapd's separators and comments, canonical address
// matching (IPv4, IPv6 forms, IPv4-mapped IPv6), names resolved once, failures closed.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  canonicalAddress,
  loadHostList,
  loadHostListFile,
  MAX_HOST_LIST_ENTRIES,
  parseHostList,
  readHostListArgument,
  resolveHostList,
  type HostLookup,
} from "../../src/daemon/auth/index.ts";

const dir = mkdtempSync(join(tmpdir(), "probe-auth-hosts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A lookup that never touches the network; names not in the table fail like ENOTFOUND. */
function fakeLookup(table: Record<string, string[]>, calls: string[] = []): HostLookup {
  return async (host) => {
    calls.push(host);
    const found = table[host];
    if (!found) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
    return found;
  };
}

describe("parseHostList", () => {
  const rows: [string, string, string[]][] = [
    ["empty", "", []],
    ["one per line", "10.0.0.1\nhost-a\n", ["10.0.0.1", "host-a"]],
    ["rpcapd's separators: space, comma, semicolon, CR", "a b,c;d\r\ne", ["a", "b", "c", "d", "e"]],
    ["tabs and runs of separators", "a\t\t, ;b", ["a", "b"]],
    ["comment lines and trailing comments", "# allowed\na # the first\n  # indented comment\nb", ["a", "b"]],
    ["IPv6 kept whole", "::1, fe80::1%eth0", ["::1", "fe80::1%eth0"]],
  ];
  for (const [name, text, expected] of rows) test(name, () => expect(parseHostList(text)).toEqual(expected));

  test(`more than ${MAX_HOST_LIST_ENTRIES} entries is refused`, () => {
    expect(() => parseHostList("h ".repeat(MAX_HOST_LIST_ENTRIES + 1))).toThrow("at most");
    expect(parseHostList("h ".repeat(MAX_HOST_LIST_ENTRIES))).toHaveLength(MAX_HOST_LIST_ENTRIES);
  });
});

describe("canonicalAddress", () => {
  const rows: [string, string | undefined][] = [
    ["127.0.0.1", "127.0.0.1"],
    ["::ffff:127.0.0.1", "127.0.0.1"],
    ["::FFFF:7f00:1", "127.0.0.1"],
    ["[::ffff:10.1.2.3]", "10.1.2.3"],
    ["::1", "00000000000000000000000000000001"],
    ["0:0:0:0:0:0:0:1", "00000000000000000000000000000001"],
    ["2001:DB8::1", "20010db8000000000000000000000001"],
    ["2001:db8:0:0:0:0:0:1", "20010db8000000000000000000000001"],
    ["fe80::1%eth0", "fe800000000000000000000000000001"],
    ["1::", "00010000000000000000000000000000"],
    ["::", "00000000000000000000000000000000"],
    ["::1.2.3.4", "00000000000000000000000001020304"],
    ["localhost", undefined],
    ["256.0.0.1", undefined],
    ["1.2.3", undefined],
    ["01234.1.1.1", undefined],
    ["1::2::3", undefined],
    ["1:2:3:4:5:6:7:8:9", undefined],
    ["1:2:3:4:5:6:7", undefined],
    ["12345::", undefined],
    [":::", undefined],
    ["::ffff:1.2.3.256", undefined],
    ["", undefined],
  ];
  for (const [text, key] of rows) test(JSON.stringify(text), () => expect(canonicalAddress(text)).toBe(key));
});

describe("resolveHostList / loadHostList", () => {
  test("addresses match in every spelling; others do not", async () => {
    const list = await resolveHostList(["10.1.2.3", "2001:db8::7"], fakeLookup({}));
    for (const peer of ["10.1.2.3", "::ffff:10.1.2.3", "2001:db8::7", "2001:0db8:0:0::7", "2001:db8::7%eth0"]) {
      expect(list.allows(peer)).toBe(true);
    }
    for (const peer of ["10.1.2.4", "::ffff:10.1.2.4", "2001:db8::8", "::1", "garbage", ""]) {
      expect(list.allows(peer)).toBe(false);
    }
  });

  test("a listed IPv4-mapped IPv6 address allows the plain IPv4 peer", async () => {
    const list = await resolveHostList(["::ffff:192.0.2.9"], fakeLookup({}));
    expect(list.allows("192.0.2.9")).toBe(true);
  });

  test("names are resolved once at load, never per connection", async () => {
    const calls: string[] = [];
    const list = await resolveHostList(["collector", "10.0.0.1"], fakeLookup({ collector: ["192.0.2.1", "2001:db8::1"] }, calls));
    expect(calls).toEqual(["collector"]);
    expect(list.allows("192.0.2.1")).toBe(true);
    expect(list.allows("::ffff:192.0.2.1")).toBe(true);
    expect(list.allows("2001:db8::1")).toBe(true);
    expect(list.allows("10.0.0.1")).toBe(true);
    expect(calls).toEqual(["collector"]);
  });

  test("an unresolvable name is reported and allows nobody; the rest still works", async () => {
    const warnings: string[] = [];
    const allowed = await loadHostList(["no-such-host", "10.0.0.1"], { lookup: fakeLookup({}), warn: (m) => warnings.push(m) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("no-such-host");
    expect(allowed("10.0.0.1")).toBe(true);
    expect(allowed("10.0.0.2")).toBe(false);
  });

  test("a list where nothing resolves stays closed", async () => {
    const allowed = await loadHostList(["nowhere"], { lookup: fakeLookup({}), warn: () => {} });
    expect(allowed("127.0.0.1")).toBe(false);
  });

  test("'localhost' through the real resolver (/etc/hosts, no network)", async () => {
    const list = await resolveHostList(["localhost"]);
    expect(list.unresolved).toEqual([]);
    expect(list.allows("127.0.0.1") || list.allows("::1")).toBe(true);
    expect(list.allows("192.0.2.1")).toBe(false);
  });

  test("loadHostListFile reads the file format", async () => {
    const path = join(dir, "hosts");
    writeFileSync(path, "# collectors\n10.0.0.1, 10.0.0.2\ncollector ; ::1\n");
    const allowed = await loadHostListFile(path, { lookup: fakeLookup({ collector: ["10.9.9.9"] }) });
    for (const peer of ["10.0.0.1", "10.0.0.2", "10.9.9.9", "::1"]) expect(allowed(peer)).toBe(true);
    expect(allowed("10.0.0.3")).toBe(false);
  });
});

describe("-l's argument: a file or the list itself (issue 9, libpcap's rpcapd takes -l host1,host2)", () => {
  test("a comma-separated list is taken as the hosts", () => {
    expect(readHostListArgument("192.0.2.1,host.example;2001:db8::1")).toEqual({ source: "list", hosts: ["192.0.2.1", "host.example", "2001:db8::1"] });
  });

  test("an existing file is read as before", () => {
    const file = join(dir, "hosts-arg");
    writeFileSync(file, "192.0.2.1\n# comment\n192.0.2.2, 192.0.2.3\n");
    expect(readHostListArgument(file)).toEqual({ source: "file", path: file, hosts: ["192.0.2.1", "192.0.2.2", "192.0.2.3"] });
  });

  test("a missing path is an error naming the flag, not a host called '/etc/...'", () => {
    expect(() => readHostListArgument("/no/such/hosts")).toThrow("-l /no/such/hosts: no such file");
  });

  test("a directory or an empty list is refused", () => {
    expect(() => readHostListArgument(dir)).toThrow("not a regular file");
    expect(() => readHostListArgument(" , ")).toThrow("empty");
  });
});
