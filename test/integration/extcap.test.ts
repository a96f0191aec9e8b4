// Wireshark extcap judged by Debian's tshark: probe symlinked into tshark's extcap folder is
// listed by `tshark -D`, and `tshark -i probe-pcap-over-ip` captures through it from a
// PCAP-over-IP server on loopback, every packet byte for byte.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { extcapSourceUrl, isExtcapInvocation } from "../../src/cli/commands/extcap.ts";
import { forEachRecord } from "../../src/packet/packet-batch.ts";
import { readCaptureFile } from "../../src/protocols/pcap/read-capture-file.ts";
import { vectorPath } from "../support/fixtures.ts";
import { probeBinary, runProbe, runTool } from "../support/probe-binary.ts";

const EXTCAP_DIR = "/usr/lib/x86_64-linux-gnu/wireshark/extcap";
const link = join(EXTCAP_DIR, "probe");
const work = mkdtempSync(join(tmpdir(), "probe-extcap-"));

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

/** Every record's bytes and lengths, to compare two captures packet by packet. */
async function records(path: string): Promise<string[]> {
  const contents = await readCaptureFile(path);
  const out: string[] = [];
  for (const batch of contents.batches) {
    forEachRecord(batch, (view, bytes) => {
      out.push(`${view.len}:${Buffer.from(bytes.subarray(view.dataOffset, view.dataOffset + view.caplen)).toString("hex")}`);
    });
  }
  return out;
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
