// Wireshark extcap judged by Debian's tshark and tcpdump: probe symlinked into tshark's extcap
// folder is listed by `tshark -D`; `tshark -i probe-pcap-over-ip` captures through it from a
// PCAP-over-IP server on loopback, every packet byte for byte (tcpdump's hex dumps of both
// files); and probe-rpcap run as Wireshark runs it (--capture --fifo) captures from a real
// `probe rpcapd` on loopback, the fifo's output judged by capinfos and tshark.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { extcapSourceUrl, isExtcapInvocation } from "../../src/cli/commands/extcap.ts";
import { vectorPath } from "../support/fixtures.ts";
import { probeBinary, runProbe, runTool, spawnProbeLoggingToFile, waitFor } from "../support/probe-binary.ts";
import { openLoopbackFlow } from "../support/loopback-traffic.ts";
import { processesStoppedAfterEach } from "../support/process-cleanup.ts";

/** rpcapd's start-up line, with the port it listens on. */
const LISTENING = /rpcapd listening on 127\.0\.0\.1:(\d+)/;

const EXTCAP_DIR = "/usr/lib/x86_64-linux-gnu/wireshark/extcap";
const link = join(EXTCAP_DIR, "probe");
const work = mkdtempSync(join(tmpdir(), "probe-extcap-"));
const procs = processesStoppedAfterEach();

beforeAll(() => {
  // Replaced in one rename: a concurrent run's tshark never finds the name missing.
  const fresh = `${link}.${process.pid}`;
  if ((() => { try { return lstatSync(fresh).isSymbolicLink(); } catch { return false; } })()) unlinkSync(fresh);
  symlinkSync(probeBinary, fresh);
  renameSync(fresh, link);
});
afterAll(() => {
  try {
    if (readlinkSync(link) === probeBinary) unlinkSync(link);
  } catch {
    // already gone
  }
  rmSync(work, { recursive: true, force: true });
});

/**
 * Every record as tcpdump prints it (epoch timestamp, summary, every byte in hex), one string
 * per packet: an independent reader of both files, pcap or pcapng.
 */
async function records(path: string): Promise<string[]> {
  const dump = await runTool(["tcpdump", "-r", path, "-nn", "-tt", "-xx"]);
  return dump.split(/\n(?=\d)/).map((r) => r.trimEnd()).filter((r) => r !== "");
}

describe("extcap sentences", () => {
  test("tshark -D lists both probe interfaces", async () => {
    const listing = await runTool(["tshark", "-D"]);
    expect(listing).toMatch(/\d+\. probe-pcap-over-ip \(probe: remote capture over PCAP-over-IP\)/);
    expect(listing).toMatch(/\d+\. probe-rpcap \(probe: remote capture over RPCAP\)/);
  });

  test("tshark turns the config into preferences (the names users pass with -o)", async () => {
    const prefs = await runTool(["tshark", "-G", "currentprefs"]);
    expect(prefs).toContain("#extcap.probe_pcap_over_ip.remoteport: 57012");
    expect(prefs).toContain("#extcap.probe_rpcap.remoteinterface: eth0");
  });

  test("an unknown extcap interface is a usage error (exit 2), one line", async () => {
    const result = await runProbe(["--extcap-interface", "nope{x}", "--extcap-dlts"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr.split("\n")[0]).toBe("probe: extcap: --extcap-interface must be one of probe-pcap-over-ip, probe-rpcap, not 'nope x '");
  });

  test("source URLs for each protocol", () => {
    expect(isExtcapInvocation(["--extcap-interfaces"])).toBe(true);
    expect(isExtcapInvocation(["capture", "-i", "lo"])).toBe(false);
    expect(extcapSourceUrl("probe-pcap-over-ip", { host: "::1", port: 57012, tls: true })).toBe("tls://[::1]:57012");
    expect(extcapSourceUrl("probe-rpcap", { host: "h", port: 2002, tls: false, remoteInterface: "eth0", user: "a b", password: "p@ss" })).toBe(
      "rpcap://a%20b:p%40ss@h:2002/eth0",
    );
  });
});

test("tshark -i probe-pcap-over-ip captures every packet of a PCAP-over-IP stream byte for byte", async () => {
  const input = vectorPath("rpcap-passive-tcp.pcap");
  const stream = readFileSync(input);
  // A socket write may take only part of the stream (a full send buffer under load): the rest
  // goes on each drain, or tshark would wait forever for the last packets.
  const sent = new WeakMap<object, number>();
  const push = (socket: { write(data: Uint8Array): number }) => {
    const offset = sent.get(socket) ?? 0;
    if (offset < stream.length) sent.set(socket, offset + Math.max(0, socket.write(stream.subarray(offset))));
  };
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: push, drain: push, data() {} } });
  try {
    const expected = await records(input);
    // The vector as tcpdump reads it: 101 packets, each its timestamp, summary and hex bytes.
    expect(expected).toHaveLength(101);
    expect(expected[0]).toStartWith("1795397487.093471 IP 127.0.0.1.57284 > 127.0.0.1.2002: Flags [S]");
    expect(expected[0]).toContain("0x0000:  0000 0000 0000 0000 0000 0000 0800 4500");
    const out = join(work, "tshark.pcapng");
    const proc = Bun.spawn(
      ["tshark", "-i", "probe-pcap-over-ip", "-o", `extcap.probe_pcap_over_ip.remoteport:${server.port}`, "-c", String(expected.length), "-w", out],
      { stdout: "ignore", stderr: "pipe" },
    );
    const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    // tshark's own words name the cause when it fails.
    expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
    expect(await records(out)).toEqual(expected);
  } finally {
    server.stop(true);
  }
});

/** The byte offset of each record's header in a classic pcap file (after the 24-byte file header). */
function recordOffsets(file: Uint8Array): number[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const little = view.getUint32(0, true) === 0xa1b2c3d4 || view.getUint32(0, true) === 0xa1b23c4d;
  const offsets: number[] = [];
  for (let at = 24; at + 16 <= file.byteLength; at += 16 + view.getUint32(at + 8, little)) offsets.push(at);
  return offsets;
}

test("the link drops: the server closes mid-stream and comes back on the same port; tshark gets the packets of both connections", async () => {
  const input = vectorPath("rpcap-passive-tcp.pcap");
  const file = new Uint8Array(readFileSync(input));
  const expected = await records(input);
  const offsets = recordOffsets(file);
  expect(offsets.length).toBe(expected.length);
  expect(expected.length).toBeGreaterThanOrEqual(4);
  // First connection: the header and the first half of the records, then a clean close (FIN) at a
  // record boundary. Second connection, on the same port: a new header and the rest.
  const half = Math.floor(offsets.length / 2);
  const header = file.subarray(0, 24);
  const firstPart = file.subarray(0, offsets[half]);
  const secondPart = Buffer.concat([header, file.subarray(offsets[half])]);
  let firstConnections = 0;
  const first = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open: (socket) => {
        firstConnections++;
        socket.write(firstPart);
        socket.end();
      },
      data() {},
    },
  });
  const port = first.port;
  let second: { stop(closeActiveConnections?: boolean): void } | undefined;
  const out = join(work, "tshark-reconnect.pcapng");
  const proc = Bun.spawn(
    ["tshark", "-i", "probe-pcap-over-ip", "-o", `extcap.probe_pcap_over_ip.remoteport:${port}`, "-c", String(expected.length), "-w", out],
    { stdout: "pipe", stderr: "pipe" },
  );
  const timer = setTimeout(() => proc.kill("SIGKILL"), 40_000);
  try {
    // The link is down once the first connection has been served: nothing listens for a while.
    const deadline = Date.now() + 20_000;
    while (firstConnections === 0 && Date.now() < deadline) await Bun.sleep(50);
    expect(firstConnections).toBe(1);
    first.stop(true);
    await Bun.sleep(1_000);
    let secondConnections = 0;
    second = Bun.listen({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: (socket) => {
          secondConnections++;
          socket.write(secondPart); // and stays open: the capture ends on tshark's -c
        },
        data() {},
      },
    });
    const code = await proc.exited;
    expect(secondConnections).toBe(1);
    expect(code).toBe(0);
    expect(await records(out)).toEqual(expected);
  } finally {
    clearTimeout(timer);
    if (proc.exitCode === null) proc.kill("SIGKILL");
    first.stop(true);
    second?.stop(true);
  }
}, 60_000);

test("--reconnect-after-close contradicts --no-reconnect: one line, exit 2", async () => {
  const result = await runProbe(["capture", "-i", "tcp://127.0.0.1:9", "-w", join(work, "x.pcap"), "--no-reconnect", "--reconnect-after-close"]);
  expect(result.exitCode).toBe(2);
  expect(result.stderr.split("\n")[0]).toBe("probe: capture: --no-reconnect and --reconnect-after-close contradict each other");
});

test("probe-rpcap as Wireshark runs it (--capture --fifo) against a real probe rpcapd: the fifo carries exactly the packets sent", async () => {
  const flow = await openLoopbackFlow();
  // -p 0: the kernel picks the port, read back from rpcapd's "listening on" line.
  const daemon = spawnProbeLoggingToFile(["rpcapd", "-n", "-4", "-b", "127.0.0.1", "-p", "0"], join(work, "rpcapd.log"));
  procs.push(daemon.proc);
  const fifo = join(work, "extcap.fifo");
  const out = join(work, "from-fifo.pcap");
  try {
    await waitFor(() => LISTENING.test(daemon.stderr()) || daemon.proc.exitCode !== null, 10_000, "rpcapd listening");
    const port = Number(LISTENING.exec(daemon.stderr())?.[1]);
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    // Wireshark's side of the fifo: a reader that keeps everything (cat into a file).
    const reader = Bun.spawn(["cat", fifo], { stdout: Bun.file(out), stderr: "pipe" });
    procs.push(reader);
    const extcap = Bun.spawn(
      [probeBinary, "--extcap-interface", "probe-rpcap", "--capture", "--fifo", fifo, "--remote-host", "127.0.0.1", "--remote-port", String(port),
        "--remote-interface", "lo", "--extcap-capture-filter", `udp dst port ${flow.port}`],
      { stdout: "pipe", stderr: "pipe" },
    );
    procs.push(extcap);
    await waitFor(() => /session \d+: capturing on lo/.test(daemon.stderr()) || extcap.exitCode !== null, 15_000, "the remote capture to start");
    const sizes = Array.from({ length: 50 }, (_, i) => 20 + i);
    await flow.send(sizes, { gapMs: 1 });
    const count = async () => {
      try {
        return (await runTool(["tshark", "-r", out, "-T", "fields", "-e", "frame.number"])).trim().split("\n").length;
      } catch {
        return 0; // a record cut mid-write: look again
      }
    };
    await waitFor(async () => (await count()) >= sizes.length, 15_000, "50 packets through the fifo");
    // Wireshark stops an extcap capture with SIGTERM: the file is completed, the reader sees EOF.
    extcap.kill("SIGTERM");
    const [extcapErr, extcapCode] = await Promise.all([new Response(extcap.stderr).text(), extcap.exited]);
    expect({ extcapCode, extcapErr }).toEqual({ extcapCode: 0, extcapErr: "" });
    expect(await reader.exited).toBe(0);
    const info = await runTool(["capinfos", "-t", "-E", "-c", "-M", out]);
    expect(info.split("\n").slice(1)).toEqual(["File type:           pcap", "File encapsulation:  ether", "Number of packets:   50", ""]);
    const fields = (await runTool(["tshark", "-r", out, "-T", "fields", "-e", "ip.src", "-e", "udp.dstport", "-e", "udp.payload"])).trim().split("\n");
    expect(fields).toEqual(flow.sent.map((payload) => `127.0.0.1\t${flow.port}\t${Buffer.from(payload).toString("hex")}`));
  } finally {
    flow.close();
  }
}, 60_000);
