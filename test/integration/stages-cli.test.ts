// The processing stages through the real commands (dist/probe): the flags of `probe capture`,
// `probe pcap-over-ip` and `probe forward` and the stages of a `probe run` spec file, judged by
// Debian's traceanon (the same key), tshark (checksums, header lengths, EPB direction flags)
// and the run summary. The stages themselves are judged in detail by stages-judges.test.ts.
import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isManifestName } from "../../src/outputs/rotating-file/owned-files.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectStreamClient } from "../support/pcap-stream-client.ts";
import { CRYPTOPAN_SAMPLE_KEY, frame, ipPacket, pcapFile, seededRandom } from "../support/packet-builder.ts";
import { type RunningProbe, runProbe, runTool, startProbe, waitFor, waitForLine } from "../support/probe-binary.ts";

const dir = mkdtempSync(join(tmpdir(), "stages-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const keyFile = join(dir, "sample.key");
writeFileSync(keyFile, CRYPTOPAN_SAMPLE_KEY);

const CHECK_ALL = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"];

async function tsharkFields(path: string, fields: string[], extra: string[] = []): Promise<string[][]> {
  const out = await runTool(["tshark", "-r", path, "-n", ...extra, "-T", "fields", "-E", "separator=|", ...fields.flatMap((f) => ["-e", f])]);
  const lines = out.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((line) => line.split("|"));
}

const rand = seededRandom(11);
const randomIpv4 = () => [1 + Math.floor(rand() * 223), Math.floor(rand() * 256), Math.floor(rand() * 256), Math.floor(rand() * 256)].join(".");

/** IPv4 TCP, UDP, ICMP echo and ICMP errors quoting UDP, with many addresses. */
function mixedIpv4(count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => {
    const src = randomIpv4();
    const dst = i % 5 === 0 ? "10.0.0.1" : randomIpv4();
    const l4 =
      i % 4 === 0 ? ({ kind: "tcp", sport: 1024 + i, dport: 443, options: (i % 3) * 4, payload: i % 40 } as const)
      : i % 4 === 1 ? ({ kind: "udp", sport: 53, dport: 1024 + i, payload: i % 30 } as const)
      : i % 4 === 2 ? ({ kind: "icmp-echo", payload: 8 } as const)
      : ({ kind: "icmp-error", inner: ipPacket({ src: dst, dst: randomIpv4(), l4: { kind: "udp", sport: 4000, dport: 33434, payload: 4 } }) } as const);
    return frame("ethernet", ipPacket({ src, dst, l4 }));
  });
}

const mixedInput = join(dir, "mixed.pcap");
writeFileSync(mixedInput, pcapFile(1, mixedIpv4(400)));

describe("probe capture with processing flags", () => {
  test("--anonymize-key-file: IPv4 addresses identical to traceanon -s -d -f KEY, every checksum good to tshark", async () => {
    const ours = join(dir, "anon-ours.pcap");
    const theirs = join(dir, "anon-traceanon.pcap");
    const r = await runProbe(["capture", "-r", mixedInput, "--anonymize-key-file", keyFile, "-w", ours]);
    expect(r.stderr).toContain("anonymize: 400 packets, 400 rewritten");
    expect(r.exitCode).toBe(0);
    await runTool(["traceanon", "-s", "-d", "-f", keyFile, `pcapfile:${mixedInput}`, `pcapfile:${theirs}`]);
    const expected = await tsharkFields(theirs, ["ip.src", "ip.dst"]);
    expect(expected.length).toBe(400);
    expect(await tsharkFields(ours, ["ip.src", "ip.dst"])).toEqual(expected);
    expect(await tsharkFields(mixedInput, ["ip.src", "ip.dst"])).not.toEqual(expected);
    const statuses = (await tsharkFields(ours, ["ip.checksum.status", "tcp.checksum.status", "udp.checksum.status", "icmp.checksum.status"], CHECK_ALL))
      .flat()
      .flatMap((cell) => cell.split(","))
      .filter((v) => v !== "");
    expect(statuses.length).toBeGreaterThan(800);
    expect(statuses.filter((v) => v !== "1")).toEqual([]);
  });

  test("a key file of the wrong size: exit 2, one line naming the flag and the file, no output file", async () => {
    const short = join(dir, "short.key");
    writeFileSync(short, CRYPTOPAN_SAMPLE_KEY.subarray(0, 31));
    const out = join(dir, "never.pcap");
    const r = await runProbe(["capture", "-r", mixedInput, "--anonymize-key-file", short, "-w", out]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(`probe: --anonymize-key-file ${short}: a key file holds exactly 32 raw bytes (as traceanon -f reads), this one has 31\n`);
    expect(await Bun.file(out).exists()).toBe(false);
  });

  test("--truncate-headers and --truncate-headers +16: caplen is the header length tshark finds (+16), len kept", async () => {
    const frames = [
      frame("ethernet", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "tcp", sport: 1, dport: 2, options: 12, payload: 200 } })),
      frame("vlan", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", ipOptions: 8, l4: { kind: "tcp", sport: 1, dport: 2, payload: 20 } })),
      frame("ethernet", ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "udp", sport: 1, dport: 53, payload: 100 } })),
      frame("ethernet", ipPacket({ src: "2001:db8::1", dst: "2001:db8::2", l4: { kind: "tcp", sport: 1, dport: 2, options: 20, payload: 100 } })),
      frame("ethernet", ipPacket({ src: "2001:db8::1", dst: "2001:db8::2", hopByHop: true, l4: { kind: "udp", sport: 1, dport: 2, payload: 100 } })),
    ];
    const input = join(dir, "trunc.pcap");
    writeFileSync(input, pcapFile(1, frames));
    const bare = join(dir, "trunc-0.pcap");
    const plus = join(dir, "trunc-16.pcap");
    expect((await runProbe(["capture", "-r", input, "--truncate-headers", "-w", bare])).exitCode).toBe(0);
    expect((await runProbe(["capture", "-r", input, "--truncate-headers", "+16", "-w", plus])).exitCode).toBe(0);
    const fields = ["frame.cap_len", "frame.len", "vlan.id", "ip.hdr_len", "ipv6.hopopts.len_oct", "tcp.hdr_len", "udp.length"];
    const before = await tsharkFields(input, fields);
    const after = await tsharkFields(bare, fields);
    expect(after.length).toBe(frames.length);
    after.forEach((row, i) => {
      const [capLen, len, vlan, ipHdr, hop, tcpHdr, udp] = row;
      const link = 14 + (vlan === "" ? 0 : 4);
      const network = ipHdr !== "" ? Number(ipHdr) : 40 + (hop === "" ? 0 : Number(hop));
      const transport = tcpHdr !== "" ? Number(tcpHdr) : udp !== "" ? 8 : 0;
      expect(`${i}: ${capLen}`).toBe(`${i}: ${link + network + transport}`);
      expect(len).toBe(before[i]![1]!);
    });
    expect((await tsharkFields(plus, ["frame.cap_len"])).map((r) => Number(r[0]))).toEqual(after.map((r) => Number(r[0]) + 16));
  });

  test("--checksums check: the summary's bad counts equal tshark's verdicts", async () => {
    const good = [
      ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "tcp", sport: 1, dport: 2, payload: 11 } }),
      ipPacket({ src: "1.1.1.1", dst: "2.2.2.2", l4: { kind: "udp", sport: 1, dport: 2, payload: 11 } }),
    ];
    const transportChecksumAt = [20 + 16, 20 + 6];
    const frames: Uint8Array[] = [];
    for (let round = 0; round < 20; round++) {
      good.forEach((p, k) => {
        const copy = p.slice();
        if ((round + k) % 3 === 1) copy[transportChecksumAt[k]!]! ^= 0x21;
        if ((round + k) % 4 === 2) copy[10]! ^= 0x42;
        frames.push(frame("ethernet", copy));
      });
    }
    const input = join(dir, "broken.pcap");
    writeFileSync(input, pcapFile(1, frames));
    const r = await runProbe(["capture", "-r", input, "--checksums", "check", "-w", join(dir, "checked.pcap")]);
    expect(r.exitCode).toBe(0);
    const rows = await tsharkFields(input, ["ip.checksum.status", "tcp.checksum.status", "udp.checksum.status"], CHECK_ALL);
    const verdicts = (column: number, status: string) => rows.filter((row) => row[column] === status).length;
    const line = r.stderr.split("\n").find((l) => l.startsWith("checksums check:"));
    expect(line).toBe(
      `checksums check: ${frames.length} packets, ${rows.filter((row) => row.slice(0, 3).includes("0")).length} with a bad checksum; ` +
        `ipv4 ${verdicts(0, "1")} good, ${verdicts(0, "0")} bad; tcp ${verdicts(1, "1")} good, ${verdicts(1, "0")} bad; udp ${verdicts(2, "1")} good, ${verdicts(2, "0")} bad`,
    );
    expect(verdicts(0, "0")).toBeGreaterThan(0);
    expect(verdicts(1, "0")).toBeGreaterThan(0);
  });

  test("--direction-in/--direction-out with -F pcapng: tshark reads frame.packet_flags_direction back", async () => {
    const frames = [
      frame("ethernet", ipPacket({ src: "10.0.0.5", dst: "8.8.8.8", l4: { kind: "udp", sport: 1, dport: 53 } })),
      frame("ethernet", ipPacket({ src: "8.8.8.8", dst: "10.0.0.5", l4: { kind: "udp", sport: 53, dport: 1 } })),
      frame("ethernet", ipPacket({ src: "9.9.9.9", dst: "8.8.8.8", l4: { kind: "udp", sport: 53, dport: 1 } })),
    ];
    const input = join(dir, "dir.pcap");
    writeFileSync(input, pcapFile(1, frames));
    const out = join(dir, "dir.pcapng");
    const r = await runProbe(["capture", "-r", input, "--direction-in", "dst net 10.0.0.0/8", "--direction-out", "src net 10.0.0.0/8", "-F", "pcapng", "-w", out]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain("direction: 3 packets, 1 in, 1 out, 1 untagged");
    expect((await tsharkFields(out, ["frame.packet_flags_direction"])).map((row) => row[0])).toEqual(["0x00000002", "0x00000001", ""]);
  });

  test("a direction filter libpcap refuses: exit 2 at start, one line naming the flag, no output file", async () => {
    const out = join(dir, "never-dir.pcapng");
    const r = await runProbe(["capture", "-r", mixedInput, "--direction-in", "src nett 10", "-w", out]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toStartWith("probe: --direction-in 'src nett 10' (direction stage, link type 1): ");
    expect(await Bun.file(out).exists()).toBe(false);
  });

  test("--print-pipeline holds the stages in command-line order; probe run of it writes the same bytes", async () => {
    const direct = join(dir, "direct.pcapng");
    const flags = ["-r", mixedInput, "--checksums", "update", "--anonymize-key-file", keyFile, "--anonymize-only", "src", "--truncate-headers", "+4", "--direction-in", "dst host 10.0.0.1", "-F", "pcapng"];
    expect((await runProbe(["capture", ...flags, "-w", direct])).exitCode).toBe(0);
    const fromFile = join(dir, "from-file.pcapng");
    const printed = await runProbe(["capture", ...flags, "-w", fromFile, "--print-pipeline"]);
    expect(printed.exitCode).toBe(0);
    const spec = Bun.YAML.parse(printed.stdout) as { stages: { kind: string }[] };
    expect(spec.stages).toEqual([
      { kind: "checksums", action: "update" },
      { kind: "anonymize", keyFile, only: "src" },
      { kind: "truncate-headers", payloadBytes: 4 },
      { kind: "direction", inbound: "dst host 10.0.0.1" },
    ] as never);
    const specFile = join(dir, "stages.yaml");
    writeFileSync(specFile, printed.stdout);
    const run = await runProbe(["run", specFile]);
    expect(run.exitCode).toBe(0);
    expect(run.stderr).toContain("anonymize: 400 packets");
    // pcapng section headers carry no time: the bytes are the same.
    expect(Buffer.compare(readFileSync(fromFile), readFileSync(direct))).toBe(0);
  });
});

/** A PCAP-over-IP source for `--from`: sends the header at once, the records when told to. */
async function pcapStreamServer(file: Uint8Array) {
  const sockets: Socket<undefined>[] = [];
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        sockets.push(socket);
        socket.write(file.subarray(0, 24));
      },
      data() {},
    },
  });
  return {
    port: server.port,
    get connections() {
      return sockets.length;
    },
    sendRecords: () => sockets.forEach((s) => s.write(file.subarray(24))),
    stop: () => server.stop(true),
  };
}

describe("--only-direction on a PCAP-over-IP output", () => {
  test("probe pcap-over-ip --direction-in/out --only-direction in: the consumer gets the inbound packets only", async () => {
    const frames = Array.from({ length: 30 }, (_, i) =>
      i % 3 === 0 ? frame("ethernet", ipPacket({ src: `192.0.2.${i + 1}`, dst: "10.0.0.5", l4: { kind: "udp", sport: 53, dport: 1000 + i } }))
      : i % 3 === 1 ? frame("ethernet", ipPacket({ src: "10.0.0.5", dst: `192.0.2.${i + 1}`, l4: { kind: "udp", sport: 1000 + i, dport: 53 } }))
      : frame("ethernet", ipPacket({ src: "198.51.100.1", dst: "198.51.100.2", l4: { kind: "udp", sport: 1, dport: 2 } })));
    const source = await pcapStreamServer(pcapFile(1, frames));
    const probe = startProbe([
      "pcap-over-ip", "--from", `tcp://127.0.0.1:${source.port}`, "--listen", "127.0.0.1:0",
      "--direction-in", "dst net 10.0.0.0/8", "--direction-out", "src net 10.0.0.0/8", "--only-direction", "in",
    ]);
    try {
      await waitFor(() => /read it with: tshark -i TCP@127\.0\.0\.1:(\d+)/.test(probe.log()) && source.connections > 0, 10_000, "probe serving");
      const port = Number(/TCP@127\.0\.0\.1:(\d+)/.exec(probe.log())![1]);
      const consumer = await connectStreamClient(port);
      await waitFor(() => consumer.reader.pcapHeader !== undefined, 5_000, "the consumer's pcap header");
      source.sendRecords();
      await waitFor(() => consumer.packets.length >= 10, 5_000, "10 inbound packets");
      await Bun.sleep(200); // anything more would arrive now
      const destinations = consumer.packets.map((p) => Array.from(p.data.subarray(14 + 16, 14 + 20)).join("."));
      expect(destinations).toEqual(Array(10).fill("10.0.0.5"));
      consumer.close();
    } finally {
      probe.proc.kill("SIGTERM");
      await probe.proc.exited;
      await probe.drained;
      source.stop();
    }
    expect(probe.log()).toContain("direction: 30 packets, 10 in, 10 out, 10 untagged");
  }, 30_000);
});

test("--only-direction without a direction filter is refused: exit 2, one line", async () => {
  for (const command of [["pcap-over-ip", "-i", "lo"], ["rpcapd", "-n"], ["collect", "--udpstr-listen", "127.0.0.1:0", "--serve-pcap-over-ip", "127.0.0.1:0"]]) {
    const r = await runProbe([...command, "--only-direction", "in", "--print-pipeline"]);
    expect(`${command[0]}: ${r.exitCode} ${r.stderr}`).toBe(`${command[0]}: 2 probe: --only-direction needs --direction-in or --direction-out: untagged packets are never forwarded\nTry 'probe --help'.\n`);
  }
});

describe("--only-direction on the RPCAP daemon", () => {
  test("probe rpcapd --direction-in/out --only-direction in: a client capturing lo through it gets inbound packets only", async () => {
    const sink = await Bun.udpSocket({ hostname: "127.0.0.1" });
    const peer = await Bun.udpSocket({ hostname: "127.0.0.1" });
    const daemon = startProbe([
      "rpcapd", "-n", "-b", "127.0.0.1", "-p", "0",
      "--direction-in", `udp dst port ${sink.port}`, "--direction-out", `udp src port ${sink.port}`, "--only-direction", "in",
    ]);
    const out = join(dir, "rpcap-in.pcap");
    let client: RunningProbe | undefined;
    try {
      const listening = await waitForLine(daemon, /rpcapd listening on 127\.0\.0\.1:(\d+)/, 10_000, "rpcapd listening");
      const port = Number(listening![1]);
      client = startProbe(["capture", "-i", `rpcap://127.0.0.1:${port}/lo`, "-c", "10", "-w", out, `udp port ${sink.port}`]);
      await waitForLine(client, "listening on", 10_000, "the RPCAP client capturing");
      await Bun.sleep(300); // the daemon's capture open
      // Bounded: 10 rounds of one inbound (to the sink's port) and one outbound (from it) datagram.
      for (let i = 0; i < 10 && client.proc.exitCode === null; i++) {
        peer.send(new Uint8Array([i]), sink.port, "127.0.0.1");
        sink.send(new Uint8Array([100 + i]), peer.port, "127.0.0.1");
        await Bun.sleep(30);
      }
      await Promise.race([client.proc.exited, Bun.sleep(5_000)]);
      expect(client.proc.exitCode).toBe(0);
    } finally {
      client?.proc.kill("SIGTERM");
      daemon.proc.kill("SIGTERM");
      await daemon.proc.exited;
      await daemon.drained;
      sink.close();
      peer.close();
    }
    const rows = await tsharkFields(out, ["udp.srcport", "udp.dstport"]);
    expect(rows).toEqual(Array.from({ length: 10 }, () => [String(peer.port), String(sink.port)]));
  }, 30_000);
});

describe("forward -> collect with stages on both ends and rotating files", () => {
  test("forward --anonymize-key-file, collect --checksums check -w 'c-%N.pcap' --rotate-packets 100: traceanon's addresses, 4 files", async () => {
    const files = mkdtempSync(join(dir, "collect-"));
    const collector = startProbe(["collect", "--udpstr-listen", "127.0.0.1:0", "--report-seconds", "0", "--checksums", "check", "-w", join(files, "c-%N.pcap"), "--rotate-packets", "100"]);
    try {
      const receiving = await waitForLine(collector, /receiving udpstr on 127\.0\.0\.1:(\d+)/, 10_000, "collector start");
      const port = receiving![1]!;
      const sent = await runProbe(["forward", "--udpstr", `127.0.0.1:${port}`, "-r", mixedInput, "--anonymize-key-file", keyFile]);
      expect(sent.exitCode).toBe(0);
      // The third file closes at the 301st packet; the fourth at the stop.
      await waitForLine(collector, "c-0002.pcap", 10_000, "the third file closed");
      await Bun.sleep(500);
    } finally {
      collector.proc.kill("SIGINT");
      await collector.proc.exited;
      await collector.drained;
    }
    expect(collector.proc.exitCode).toBe(0);
    expect(collector.log()).toContain("checksums check: 400 packets, 0 with a bad checksum");
    const names = ["c-0000.pcap", "c-0001.pcap", "c-0002.pcap", "c-0003.pcap"];
    // The rotating output's manifest (.probe-files-HASH) sits beside the capture files.
    expect(readdirSync(files).filter((name) => !isManifestName(name)).sort()).toEqual(names);
    const theirs = join(dir, "collect-traceanon.pcap");
    await runTool(["traceanon", "-s", "-d", "-f", keyFile, `pcapfile:${mixedInput}`, `pcapfile:${theirs}`]);
    const received: string[][] = [];
    for (const name of names) received.push(...(await tsharkFields(join(files, name), ["ip.src", "ip.dst"])));
    expect(received).toEqual(await tsharkFields(theirs, ["ip.src", "ip.dst"]));
  }, 30_000);
});

describe("log flags on long-running commands", () => {
  test("probe forward --log-format json: every line of standard error is a JSON object, the summary too", async () => {
    const sink = await Bun.udpSocket({ hostname: "127.0.0.1" });
    try {
      const r = await runProbe(["forward", "--udpstr", `127.0.0.1:${sink.port}`, "-r", mixedInput, "--checksums", "check", "--log-format", "json"]);
      expect(r.exitCode).toBe(0);
      const lines = r.stderr.split("\n").filter((l) => l !== "");
      expect(lines.length).toBeGreaterThan(2);
      const messages = lines.map((l) => (JSON.parse(l) as { msg?: string; message?: string }));
      expect(JSON.stringify(messages)).toContain("400 packets captured");
      expect(JSON.stringify(messages)).toContain("checksums check: 400 packets");
    } finally {
      sink.close();
    }
  });
});
