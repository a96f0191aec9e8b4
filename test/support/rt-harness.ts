// Helpers for the RT tests: start `probe rt` and wait for its port, run a reference tcpdump,
// read classic pcap files record by record, and traffic whose payload carries its number.
import { readFileSync } from "node:fs";
import type { Subprocess } from "bun";
import { collectStderr, startProbeUntil, waitForLine, type RunningProbe } from "./probe-binary.ts";

/** `probe rt ...` listening on an ephemeral port; resolves with the port. */
export async function startRtServer(args: string[]): Promise<RunningProbe & { port: number }> {
  const probe = await startProbeUntil(["rt", "--listen", "127.0.0.1:0", ...args], /rt: serving .* on 127\.0\.0\.1:(\d+)/, { timeoutMs: 15_000 });
  return { ...probe, port: Number(probe.match[1]) };
}

/** tcpdump -U -w FILE on lo as the reference capture; resolves once it listens. */
export async function startTcpdump(path: string, filter: string): Promise<Subprocess> {
  const tcpdump = collectStderr(Bun.spawn(["tcpdump", "-i", "lo", "-U", "-w", path, filter], { stdout: "ignore", stderr: "pipe" }));
  if (!(await waitForLine(tcpdump, "listening on", 10_000, "tcpdump to listen"))) throw new Error(`tcpdump exited: ${tcpdump.log()}`);
  return tcpdump.proc;
}

export interface PcapRecord {
  tsSec: number;
  tsUsec: number;
  caplen: number;
  len: number;
  data: string;
}

/** Records of a little-endian microsecond classic pcap file (what tcpdump, tracesplit and probe write). */
export function readPcap(path: string): { linktype: number; records: PcapRecord[] } {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== 0xa1b2c3d4) throw new Error(`${path}: not a little-endian microsecond pcap file`);
  const records: PcapRecord[] = [];
  let at = 24;
  while (at + 16 <= bytes.byteLength) {
    const caplen = view.getUint32(at + 8, true);
    if (at + 16 + caplen > bytes.byteLength) break; // a record still being written
    records.push({ tsSec: view.getUint32(at, true), tsUsec: view.getUint32(at + 4, true), caplen, len: view.getUint32(at + 12, true), data: bytes.subarray(at + 16, at + 16 + caplen).toString("hex") });
    at += 16 + caplen;
  }
  return { linktype: view.getUint32(20, true), records };
}

/** UDP to 127.0.0.1:port whose payload is "seq=N" padded: numbers from `first`, `count` of them. */
export async function sendNumbered(port: number, first: number, count: number, options: { gapEvery?: number; gapMs?: number } = {}): Promise<void> {
  if (count > 200_000) throw new Error("test traffic over its bound");
  const socket = await Bun.udpSocket({ hostname: "127.0.0.1" });
  for (let n = first; n < first + count; n++) {
    socket.send(numberedPayload(n), port, "127.0.0.1");
    if (options.gapEvery && (n - first + 1) % options.gapEvery === 0) await Bun.sleep(options.gapMs ?? 1);
  }
  socket.close();
}

export function numberedPayload(n: number): Uint8Array {
  const text = `seq=${String(n).padStart(8, "0")};`;
  return new TextEncoder().encode(text.padEnd(64, "x"));
}

/** The numbers carried by the UDP payloads of an Ethernet/IPv4 pcap file, in file order. */
export function numbersIn(path: string): number[] {
  return readPcap(path).records.map((r) => {
    const text = Buffer.from(r.data, "hex").toString("latin1");
    const match = /seq=(\d{8});/.exec(text);
    return match ? Number(match[1]) : -1;
  });
}

/** A UDP sink so the kernel does not answer with ICMP port unreachable (kept out of captures by filter). */
export async function udpSink(): Promise<{ port: number; close(): void }> {
  const sink = await Bun.udpSocket({ hostname: "127.0.0.1" });
  return { port: sink.port, close: () => sink.close() };
}
