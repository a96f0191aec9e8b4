// libtrace's own tools read `probe rt` live (Debian libtrace-tools 3.0.22 as the judge):
// tracesplit's pcap file is byte for byte tcpdump's capture of the same traffic, and
// tracepktdump's dump of the live stream is identical to its dump of tcpdump's file.
// Unreliable (two clients at once) and reliable (packets kept while no client is connected,
// then every one delivered and acknowledged; a second client is denied).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { runTool, waitFor } from "../support/probe-binary.ts";
import { readPcap, sendNumbered, type PcapRecord, startRtServer, startTcpdump, udpSink } from "../support/rt-harness.ts";

let dir: string;
const procs: Subprocess[] = [];
let sink: { port: number; close(): void };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "rt-libtrace-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill("SIGKILL");
    await p.exited;
  }
  sink?.close();
});

function spawnTool(argv: string[]): Subprocess<"ignore", "pipe", "pipe"> {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  procs.push(proc);
  return proc;
}

/** Stops probe with SIGTERM (it sends END_DATA) and waits for it and the tools to finish. */
async function endAll(server: Subprocess, tools: Subprocess[]): Promise<void> {
  server.kill("SIGTERM");
  expect(await server.exited).toBe(0);
  const timer = setTimeout(() => tools.forEach((t) => t.kill("SIGKILL")), 10_000);
  await Promise.all(tools.map((t) => t.exited));
  clearTimeout(timer);
}

const PACKETS = 300;

/**
 * tracesplit's records against tcpdump's: bytes, caplen and len exactly; timestamps within
 * 1 ms, because two capture handles on lo do not always get the same kernel timestamp (seen:
 * 1 µs apart on some packets, for tcpdump against tcpdump too).
 */
function expectSameRecords(got: PcapRecord[], expected: PcapRecord[]): void {
  expect(got.map((r) => [r.caplen, r.len, r.data])).toEqual(expected.map((r) => [r.caplen, r.len, r.data]));
  got.forEach((r, i) => {
    const e = expected[i]!;
    expect(Math.abs((r.tsSec - e.tsSec) * 1_000_000 + r.tsUsec - e.tsUsec)).toBeLessThan(1000);
  });
}

describe("libtrace 3.0.22 reads probe rt", () => {
  test("unreliable: tracesplit and tracepktdump at once; tracesplit's file equals tcpdump's byte for byte", async () => {
    sink = await udpSink();
    const filter = `udp dst port ${sink.port}`;
    const ref = join(dir, "u-ref.pcap");
    const split = join(dir, "u-split.pcap");
    const tcpdump = await startTcpdump(ref, filter);
    procs.push(tcpdump);
    const server = await startRtServer(["-i", "lo", "-f", filter]);
    procs.push(server.proc);
    const tracesplit = spawnTool(["tracesplit", `rt:127.0.0.1:${server.port}`, `pcapfile:${split}`]);
    const tracepktdump = spawnTool(["tracepktdump", `rt:127.0.0.1:${server.port}`]);
    await waitFor(() => (server.log().match(/connected/g) ?? []).length >= 2, 10_000, "both libtrace clients");
    await Bun.sleep(300); // their START follows HELLO at once; unreliable clients get packets from START on
    await sendNumbered(sink.port, 1, PACKETS, { gapEvery: 50, gapMs: 5 });
    await waitFor(async () => readPcap(ref).records.length >= PACKETS, 10_000, "tcpdump to see every packet");
    await Bun.sleep(500);
    const dumpText = new Response(tracepktdump.stdout).text();
    await endAll(server.proc, [tracesplit, tracepktdump]);
    tcpdump.kill("SIGTERM");
    await tcpdump.exited;

    const expected = readPcap(ref);
    const got = readPcap(split);
    expect(got.linktype).toBe(expected.linktype);
    expect(got.records.length).toBe(PACKETS);
    expectSameRecords(got.records, expected.records);
    const refDump = await runTool(["tracepktdump", `pcapfile:${ref}`]);
    expect(await dumpText).toBe(refDump);
  }, 60_000);

  test.each(["memory fifo", "disk spool"] as const)("reliable, %s: packets captured before any client connects are kept; tracesplit gets them all; a second client is denied", async (fifo) => {
    sink = await udpSink();
    const filter = `udp dst port ${sink.port}`;
    const ref = join(dir, `r-ref-${fifo.replace(" ", "-")}.pcap`);
    const split = join(dir, `r-split-${fifo.replace(" ", "-")}.pcap`);
    const tcpdump = await startTcpdump(ref, filter);
    procs.push(tcpdump);
    const spool = fifo === "disk spool" ? ["--spool", join(dir, "spool")] : [];
    const server = await startRtServer(["-i", "lo", "-f", filter, "--reliable", "--status-interval-ms", "100", ...spool]);
    procs.push(server.proc);
    await sendNumbered(sink.port, 1, PACKETS, { gapEvery: 50, gapMs: 5 });
    await waitFor(async () => readPcap(ref).records.length >= PACKETS, 10_000, "tcpdump to see every packet");
    await Bun.sleep(300);
    const tracesplit = spawnTool(["tracesplit", `rt:127.0.0.1:${server.port}`, `pcapfile:${split}`]);
    await waitFor(() => server.log().includes("started at sequence 1"), 10_000, "tracesplit to start");
    // A second client is denied: libtrace prints the reason.
    const second = Bun.spawn(["tracepktdump", `rt:127.0.0.1:${server.port}`], { stdout: "pipe", stderr: "pipe" });
    procs.push(second);
    const secondText = (await new Response(second.stdout).text()) + (await new Response(second.stderr).text());
    expect(secondText).toContain("Max connections reached on server");
    // tracesplit acknowledges every packet; STATUS (every 100 ms) does not disturb it.
    await Bun.sleep(1000);
    await endAll(server.proc, [tracesplit]);
    expect(server.log()).toContain(`${PACKETS} packets in, ${PACKETS} sent`);
    expect(server.log()).toContain("0 held unacknowledged");
    tcpdump.kill("SIGTERM");
    await tcpdump.exited;
    expectSameRecords(readPcap(split).records, readPcap(ref).records);
  }, 60_000);

  test("reliable: tracepktdump's live dump equals its dump of tcpdump's file", async () => {
    sink = await udpSink();
    const filter = `udp dst port ${sink.port}`;
    const ref = join(dir, "d-ref.pcap");
    const tcpdump = await startTcpdump(ref, filter);
    procs.push(tcpdump);
    const server = await startRtServer(["-i", "lo", "-f", filter, "--reliable"]);
    procs.push(server.proc);
    const tracepktdump = spawnTool(["tracepktdump", `rt:127.0.0.1:${server.port}`]);
    await waitFor(() => server.log().includes("started at sequence 1"), 10_000, "tracepktdump to start");
    await sendNumbered(sink.port, 1, 100, { gapEvery: 25, gapMs: 5 });
    await waitFor(async () => readPcap(ref).records.length >= 100, 10_000, "tcpdump");
    await Bun.sleep(1000);
    const dumpText = new Response(tracepktdump.stdout).text();
    await endAll(server.proc, [tracepktdump]);
    tcpdump.kill("SIGTERM");
    await tcpdump.exited;
    expect(server.log()).toContain("0 held unacknowledged");
    expect(await dumpText).toBe(await runTool(["tracepktdump", `pcapfile:${ref}`]));
  }, 60_000);
});
