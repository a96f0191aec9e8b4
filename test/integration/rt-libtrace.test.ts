// libtrace's own tools read probe's RT output live (Debian libtrace-tools 3.0.22 as the judge).
// The served capture also goes to a pcap file output of the same pipeline (`probe run`, one
// input, two outputs), the exact input the RT output had: tracesplit's records equal that
// file's exactly, timestamps to the microsecond (tshark reads both files as a second judge), and
// tracepktdump's dump of the live stream is identical to its dump of that file. tcpdump's own
// capture of the same traffic checks the packets themselves (bytes, caplen, len); its timestamps
// come from a second capture handle and may differ by a microsecond, so they are not compared.
// Unreliable (two clients at once) and reliable (packets kept while no client is connected,
// then every one delivered and acknowledged; a second client is denied).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { type RunningProbe, runTool, startProbe, waitFor } from "../support/probe-binary.ts";
import { readPcap, sendNumbered, type PcapRecord, startTcpdump, udpSink } from "../support/rt-harness.ts";

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

let runs = 0;

/**
 * `probe run`: lo (with `filter`) into an rt output (`rt` holds its extra YAML lines) and a pcap
 * file output beside it, the served records' exact copy. Resolves with the RT port.
 */
async function startRtRun(filter: string, rt: string[]): Promise<RunningProbe & { port: number; served: string }> {
  const served = join(dir, `served-${++runs}.pcap`);
  const spec = join(dir, `run-${runs}.yaml`);
  writeFileSync(
    spec,
    [
      "inputs:",
      "  - kind: interface",
      "    device: lo",
      `    filter: "${filter}"`,
      "outputs:",
      "  - kind: rt",
      "    listen: [{ host: 127.0.0.1, port: 0 }]",
      ...rt.map((line) => `    ${line}`),
      "  - kind: file",
      `    path: ${served}`,
      "",
    ].join("\n"),
  );
  const probe = startProbe(["run", spec]);
  procs.push(probe.proc);
  await waitFor(() => /rt: serving .* on 127\.0\.0\.1:\d+/.test(probe.log()) || probe.proc.exitCode !== null, 15_000, "probe run to serve rt");
  const match = /rt: serving .* on 127\.0\.0\.1:(\d+)/.exec(probe.log());
  if (!match) throw new Error(`probe run did not serve rt: ${probe.log()}`);
  return { ...probe, port: Number(match[1]), served };
}

/** tshark's view of a file: time (to the nanosecond it prints), caplen, len, one line a record. */
async function tsharkRecords(path: string): Promise<string> {
  return runTool(["tshark", "-r", path, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.cap_len", "-e", "frame.len"]);
}

/**
 * tracesplit's file against what the RT output served (the file output beside it): every
 * record exactly, timestamps included, by our reader and by tshark; and against tcpdump's
 * separate capture, the packets' bytes, caplen and len exactly.
 */
async function expectServedExactly(split: string, served: string, ref: string, count: number): Promise<void> {
  const got = readPcap(split).records;
  expect(got.length).toBe(count);
  expect(got).toEqual(readPcap(served).records);
  expect(await tsharkRecords(split)).toBe(await tsharkRecords(served));
  const bytes = (records: PcapRecord[]) => records.map((r) => [r.caplen, r.len, r.data]);
  expect(bytes(got)).toEqual(bytes(readPcap(ref).records));
}

describe("libtrace 3.0.22 reads probe rt", () => {
  test("unreliable: tracesplit and tracepktdump at once; tracesplit's file equals the served records exactly", async () => {
    sink = await udpSink();
    const filter = `udp dst port ${sink.port}`;
    const ref = join(dir, "u-ref.pcap");
    const split = join(dir, "u-split.pcap");
    const tcpdump = await startTcpdump(ref, filter);
    procs.push(tcpdump);
    const server = await startRtRun(filter, []);
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

    expect(readPcap(split).linktype).toBe(readPcap(ref).linktype);
    await expectServedExactly(split, server.served, ref, PACKETS);
    expect(await dumpText).toBe(await runTool(["tracepktdump", `pcapfile:${server.served}`]));
  }, 60_000);

  test.each(["memory fifo", "disk spool"] as const)("reliable, %s: packets captured before any client connects are kept; tracesplit gets them all exactly; a second client is denied", async (fifo) => {
    sink = await udpSink();
    const filter = `udp dst port ${sink.port}`;
    const ref = join(dir, `r-ref-${fifo.replace(" ", "-")}.pcap`);
    const split = join(dir, `r-split-${fifo.replace(" ", "-")}.pcap`);
    const tcpdump = await startTcpdump(ref, filter);
    procs.push(tcpdump);
    const spool = fifo === "disk spool" ? [`spool: ${join(dir, "spool")}`] : [];
    const server = await startRtRun(filter, ["reliable: true", "statusIntervalMs: 100", ...spool]);
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
    await expectServedExactly(split, server.served, ref, PACKETS);
  }, 60_000);

  test("reliable: tracepktdump's live dump equals its dump of the served records' file", async () => {
    sink = await udpSink();
    const filter = `udp dst port ${sink.port}`;
    const ref = join(dir, "d-ref.pcap");
    const tcpdump = await startTcpdump(ref, filter);
    procs.push(tcpdump);
    const server = await startRtRun(filter, ["reliable: true"]);
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
    expect(readPcap(server.served).records.length).toBe(100);
    expect(await dumpText).toBe(await runTool(["tracepktdump", `pcapfile:${server.served}`]));
  }, 60_000);
});
