// The three example hooks on real captures and on built packets, with exact expected bytes
// computed independently in the test, and tshark judging checksums of the redacted output.
import { describe, expect, test, afterAll } from "bun:test";
import { join } from "node:path";
import { HookChain, HookRunner } from "../../src/hooks/index.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { batchOf, EXAMPLES, ipv4Frame, ipv6Frame, readPcap, records, referenceChecksums, tsharkFields, VECTORS, writePcap } from "../support/hooks-helpers.ts";

const runners: HookRunner[] = [];
afterAll(() => runners.forEach((r) => r.dispose()));

async function example(name: string): Promise<HookRunner> {
  const path = join(EXAMPLES, name);
  const runner = await HookRunner.create({ name, filename: path, source: await Bun.file(path).text(), logger: memoryLogger() });
  runners.push(runner);
  return runner;
}

/** Independent expectation for redact.js on an Ethernet/IPv4 frame. */
function expectedRedact(frame: Uint8Array): Uint8Array {
  const f = frame.slice();
  const l3 = 14;
  const ihl = (f[l3]! & 15) * 4;
  const proto = f[l3 + 9]!;
  const l4 = l3 + ihl;
  const payload = proto === 17 ? l4 + 8 : proto === 6 ? l4 + (f[l4 + 12]! >> 4) * 4 : -1;
  if (payload >= 0) f.fill(0, payload);
  f[l3 + 15] = 0;
  f[l3 + 19] = 0;
  return referenceChecksums(f);
}

describe("redact.js", () => {
  for (const vector of ["rpcap-passive-udp.pcap", "udpstr-extrahop.pcap"]) {
    test(`${vector}: exact bytes, and tshark sees zero payloads, /24 addresses and good checksums`, async () => {
      const runner = await example("redact.js");
      const { batches, linktype } = readPcap(join(VECTORS, vector), 50);
      const inputs = batches.flatMap(records);
      const outputs = batches.map((b) => runner.run(b).batch);
      const got = outputs.flatMap(records);
      expect(got.length).toBe(inputs.length);
      got.forEach((r, i) => {
        expect(r.caplen).toBe(inputs[i]!.caplen);
        expect(r.len).toBe(inputs[i]!.len);
        expect(r.tsSec).toBe(inputs[i]!.tsSec);
        expect(Buffer.from(r.data).toString("hex")).toBe(Buffer.from(expectedRedact(inputs[i]!.data)).toString("hex"));
      });
      const stats = runner.stats;
      expect(stats.modified).toBe(inputs.length);
      expect(stats.failures).toEqual({ threw: 0, badVerdict: 0, timeout: 0, outOfMemory: 0, internal: 0 });

      const out = writePcap(outputs, linktype);
      const rows = tsharkFields(
        out,
        ["ip.src", "ip.dst", "ip.checksum.status", "udp.checksum.status", "tcp.checksum.status", "udp.payload", "tcp.payload"],
        ["-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-d", "udp.port==1-65535,data", "-d", "tcp.port==1-65535,data"],
      );
      expect(rows.length).toBe(inputs.length);
      let udp = 0;
      let tcpWithPayload = 0;
      for (const [src, dst, ipStatus, udpStatus, tcpStatus, udpPayload, tcpPayload] of rows) {
        expect(src).toBe("127.0.0.0");
        expect(dst).toBe("127.0.0.0");
        expect(ipStatus).toBe("1"); // 1 = Good (PROTO_CHECKSUM_E_GOOD)
        if (udpStatus) {
          udp++;
          expect(udpStatus).toBe("1");
          expect(udpPayload ?? "").toMatch(/^0*$/);
        }
        if (tcpStatus) expect(tcpStatus).toBe("1");
        if (tcpPayload) {
          tcpWithPayload++;
          expect(tcpPayload).toMatch(/^0+$/);
        }
      }
      expect(udp).toBeGreaterThan(0);
      if (vector === "rpcap-passive-udp.pcap") expect(tcpWithPayload).toBeGreaterThan(0);
    });
  }

  test("built frames: VLAN-tagged UDP, TCP with payload, padded short frame, IPv6 /64", async () => {
    const runner = await example("redact.js");
    const udp = ipv4Frame({ protocol: "udp", srcPort: 5353, dstPort: 53, payload: Uint8Array.from([1, 2, 3, 4, 5]), vlans: [{ tpid: 0x8100, vid: 42 }] });
    const tcp = ipv4Frame({ protocol: "tcp", srcPort: 40000, dstPort: 443, payload: new TextEncoder().encode("secret!") });
    const padded = ipv4Frame({ protocol: "udp", srcPort: 1, dstPort: 2, payload: Uint8Array.from([9]), padTo: 60 });
    const v6 = ipv6Frame({ protocol: "udp", srcPort: 7, dstPort: 9, payload: Uint8Array.from([0xaa, 0xbb]) });
    const got = records(runner.run(batchOf([udp, tcp, padded, v6])).batch).map((r) => r.data);

    // VLAN frame: L3 at 18.
    const e0 = udp.slice();
    e0.fill(0, 18 + 20 + 8);
    e0[18 + 15] = 0;
    e0[18 + 19] = 0;
    expect(Buffer.from(got[0]!).toString("hex")).toBe(Buffer.from(referenceChecksums(e0)).toString("hex"));
    expect(Buffer.from(got[1]!).toString("hex")).toBe(Buffer.from(expectedRedact(tcp)).toString("hex"));
    // Padding (0xee) is zeroed too; the UDP checksum still covers only the UDP length.
    const e2 = expectedRedact(padded);
    expect(Array.from(got[2]!.subarray(43))).toEqual(new Array(60 - 43).fill(0));
    expect(Buffer.from(got[2]!).toString("hex")).toBe(Buffer.from(e2).toString("hex"));
    // IPv6: interface identifiers zeroed, payload zeroed, UDP checksum recomputed (judged by tshark below).
    expect(Array.from(got[3]!.subarray(14 + 16, 14 + 24))).toEqual(new Array(8).fill(0));
    expect(Array.from(got[3]!.subarray(14 + 32, 14 + 40))).toEqual(new Array(8).fill(0));
    expect(Array.from(got[3]!.subarray(14 + 48))).toEqual([0, 0]);
    const rows = tsharkFields(writePcap([batchOf([got[3]!])], 1), ["ipv6.src", "udp.checksum.status"], ["-o", "udp.check_checksum:TRUE"]);
    expect(rows).toEqual([["2001:db8:0:1::", "1"]]);
  });
});

describe("tag.js", () => {
  test("tags by protocol and port; nothing else changes", async () => {
    const runner = await example("tag.js");
    const frames = [
      ipv4Frame({ protocol: "udp", srcPort: 40000, dstPort: 53, payload: new Uint8Array(4) }),
      ipv4Frame({ protocol: "udp", srcPort: 53, dstPort: 40000, payload: new Uint8Array(4) }),
      ipv4Frame({ protocol: "tcp", srcPort: 40000, dstPort: 80, payload: new Uint8Array(0) }),
      ipv4Frame({ protocol: "tcp", srcPort: 443, dstPort: 40000, payload: new Uint8Array(3) }),
      ipv4Frame({ protocol: "udp", srcPort: 1000, dstPort: 2000, payload: new Uint8Array(1) }),
      ipv6Frame({ protocol: "udp", srcPort: 1, dstPort: 443, payload: new Uint8Array(2) }),
    ];
    // ICMP echo: IPv4 protocol 1.
    const icmp = ipv4Frame({ protocol: "udp", srcPort: 0, dstPort: 0, payload: new Uint8Array(0) });
    icmp[14 + 9] = 1;
    frames.push(icmp);
    const batch = batchOf(frames);
    const result = runner.run(batch);
    expect(result.batch).toBe(batch); // unchanged batches are passed through without a copy
    expect(result.tags).toEqual([["dns"], ["dns"], ["http"], ["tls"], undefined, ["quic"], ["icmp"]]);
    expect(runner.stats.tagged).toEqual({ dns: 2, http: 1, tls: 1, quic: 1, icmp: 1 });
    expect(runner.stats.passed).toBe(7);
  });

  test("rpcap-passive-udp.pcap: RPCAP control on TCP 2002 is tagged rpcap", async () => {
    const runner = await example("tag.js");
    const { batches } = readPcap(join(VECTORS, "rpcap-passive-udp.pcap"));
    const result = runner.run(batches[0]!);
    const rows = tsharkFields(join(VECTORS, "rpcap-passive-udp.pcap"), ["tcp.port"]);
    const tcp2002 = rows.filter(([ports]) => (ports ?? "").split(",").includes("2002")).length;
    expect(tcp2002).toBeGreaterThan(0);
    expect(result.tags.filter((t) => t?.[0] === "rpcap").length).toBe(tcp2002);
  });
});

describe("sample.js", () => {
  test("keeps the 1st, 11th, 21st... packet of each flow, both directions counted together", async () => {
    const runner = await example("sample.js");
    const a = (i: number) => ipv4Frame({ protocol: "udp", srcPort: 1111, dstPort: 2222, payload: Uint8Array.from([i]) });
    const aReverse = (i: number) =>
      ipv4Frame({ protocol: "udp", srcPort: 2222, dstPort: 1111, src: [192, 168, 7, 9], dst: [10, 1, 2, 3], payload: Uint8Array.from([i]) });
    const b = (i: number) => ipv4Frame({ protocol: "tcp", srcPort: 3333, dstPort: 4444, payload: Uint8Array.from([i]) });
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 25; i++) frames.push(i % 2 === 0 ? a(i) : aReverse(i), b(i));
    // Split over two batches: the per-flow counters live on in the VM between batches.
    const first = runner.run(batchOf(frames.slice(0, 17)));
    const second = runner.run(batchOf(frames.slice(17)));
    const kept = [...records(first.batch), ...records(second.batch)].map((r) => r.data[r.data.length - 1]);
    // Flow a (both directions): packets 0, 10, 20 of it; flow b likewise; interleaved a,b.
    expect(kept).toEqual([0, 0, 10, 10, 20, 20]);
    expect(runner.stats.dropped).toBe(44);
    expect(runner.stats.passed).toBe(6);
  });

  test("udpstr-extrahop.pcap: count per flow matches ceil(n/10) per tshark's conversations", async () => {
    const runner = await example("sample.js");
    const path = join(VECTORS, "udpstr-extrahop.pcap");
    const { batches } = readPcap(path, 32);
    let kept = 0;
    for (const batch of batches) kept += runner.run(batch).batch.count;
    const rows = tsharkFields(path, ["ip.proto", "tcp.stream", "udp.stream"]);
    const flows = new Map<string, number>();
    for (const [proto, tcpStream, udpStream] of rows) {
      const key = `${proto}/${tcpStream || udpStream}`;
      flows.set(key, (flows.get(key) ?? 0) + 1);
    }
    const expected = [...flows.values()].reduce((n, c) => n + Math.ceil(c / 10), 0);
    expect(kept).toBe(expected);
  });
});

describe("chain", () => {
  test("tag.js then sample.js then redact.js: tags survive, drops apply, output redacted", async () => {
    const chain = new HookChain([await example("tag.js"), await example("sample.js"), await example("redact.js")]);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 12; i++) frames.push(ipv4Frame({ protocol: "udp", srcPort: 5000, dstPort: 53, payload: Uint8Array.from([i + 1, 7]) }));
    const result = chain.run(batchOf(frames));
    expect(result.batch.count).toBe(2); // packets 0 and 10
    expect(result.tags).toEqual([["dns"], ["dns"]]);
    const out = records(result.batch);
    expect(Buffer.from(out[0]!.data).toString("hex")).toBe(Buffer.from(expectedRedact(frames[0]!)).toString("hex"));
    expect(Buffer.from(out[1]!.data).toString("hex")).toBe(Buffer.from(expectedRedact(frames[10]!)).toString("hex"));
    const [tag, sample, redact] = chain.stats();
    expect([tag!.packets, sample!.packets, redact!.packets]).toEqual([12, 12, 2]);
    expect(sample!.dropped).toBe(10);
    expect(redact!.modified).toBe(2);
  });
});
