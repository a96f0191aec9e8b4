// ownTrafficFilter: the expression that leaves a session's own connections out of its
// capture (issue 9) is valid libpcap syntax for every kind of peer address and channel.
import { describe, expect, test } from "bun:test";
import { compileFilter } from "../../src/capture/libpcap/compile-filter.ts";
import { OwnTraffic, ownTrafficFilter } from "../../src/daemon/own-traffic.ts";

describe("ownTrafficFilter", () => {
  test("control and passive TCP data connection", () => {
    const filter = ownTrafficFilter([
      { protocol: "tcp", peerAddress: "127.0.0.1", ports: [2002, 40000] },
      { protocol: "tcp", peerAddress: "127.0.0.1", ports: [41000] },
    ]);
    expect(filter).toBe("not ((tcp and host 127.0.0.1 and port 2002 and port 40000) or (tcp and host 127.0.0.1 and port 41000))");
    expect(compileFilter(filter, 1, 65535).length).toBeGreaterThan(0);
  });

  test("UDP data channel, IPv6 peer with a zone, unknown ports left out", () => {
    const filter = ownTrafficFilter([
      { protocol: "tcp", peerAddress: "fe80::1%eth0", ports: [2002, 0] },
      { protocol: "udp", peerAddress: "fe80::1%eth0", ports: [5000] },
      { protocol: "tcp", peerAddress: "::1", ports: [0] },
    ]);
    expect(filter).toBe("not ((tcp and host fe80::1 and port 2002) or (udp and host fe80::1 and port 5000))");
    expect(compileFilter(filter, 1, 65535).length).toBeGreaterThan(0);
  });

  test("nothing known: no filter", () => {
    expect(ownTrafficFilter([{ protocol: "tcp", peerAddress: "127.0.0.1", ports: [0, 0] }])).toBe("");
  });
});

describe("OwnTraffic", () => {
  test("connections come and go; the filter follows and is recompiled only on change", () => {
    const errors: string[] = [];
    const own = new OwnTraffic((expression) => errors.push(expression));
    expect(own.filterFor(1, 65535)).toBeNull();
    const forgetControl = own.add({ protocol: "tcp", peerAddress: "127.0.0.1", ports: [2002, 40000] });
    const forgetData = own.add({ protocol: "udp", peerAddress: "127.0.0.1", ports: [5000] });
    expect(own.expression).toBe("not ((tcp and host 127.0.0.1 and port 2002 and port 40000) or (udp and host 127.0.0.1 and port 5000))");
    const first = own.filterFor(1, 65535);
    expect(first).not.toBeNull();
    expect(own.filterFor(1, 65535)).toBe(first!);
    forgetData();
    forgetData(); // idempotent
    expect(own.expression).toBe("not ((tcp and host 127.0.0.1 and port 2002 and port 40000))");
    expect(own.filterFor(1, 65535)).not.toBe(first!);
    forgetControl();
    expect(own.filterFor(1, 65535)).toBeNull();
    expect(errors).toEqual([]);
  });
});
