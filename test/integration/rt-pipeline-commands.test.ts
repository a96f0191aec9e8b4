// RT through the one pipeline: a `probe run` spec with an interface input on lo and an rt output
// is read live by libtrace's tracesplit (records equal tcpdump's); `probe rt --print-pipeline`
// read back by `probe run` gives the same spec; `probe rt -r FILE --reliable` serves the file
// after it ends and `probe capture -i rt://` gets every record; an rt:// input in a merge and
// the serve mode's --rt are checked at the command line.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { repoRoot, runProbe, runTool, startProbe, waitFor } from "../support/probe-binary.ts";
import { numberedPayload, numbersIn, readPcap, sendNumbered, startTcpdump, udpSink } from "../support/rt-harness.ts";

let dir: string;
const procs: Subprocess[] = [];
let sink: { port: number; close(): void } | undefined;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rt-pipeline-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill("SIGKILL");
    await p.exited;
  }
  sink?.close();
  sink = undefined;
});

const PACKETS = 200;

/** Waits for the rt output's banner and returns its port. */
async function rtPort(log: () => string, exited: () => boolean): Promise<number> {
  await waitFor(() => /rt: serving .* on 127\.0\.0\.1:\d+/.test(log()) || exited(), 15_000, "the rt output to listen");
  const match = /rt: serving .* on 127\.0\.0\.1:(\d+)/.exec(log());
  if (!match) throw new Error(`no rt output: ${log()}`);
  return Number(match[1]);
}

/** A classic pcap file (Ethernet link type, microseconds) whose records carry numberedPayload(1..count). */
function writeNumberedPcap(path: string, count: number): void {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  const records = [header];
  for (let n = 1; n <= count; n++) {
    const frame = Buffer.concat([Buffer.alloc(14), Buffer.from(numberedPayload(n))]);
    const record = Buffer.alloc(16);
    record.writeUInt32LE(1_700_000_000 + n, 0);
    record.writeUInt32LE(n, 4);
    record.writeUInt32LE(frame.byteLength, 8);
    record.writeUInt32LE(frame.byteLength, 12);
    records.push(record, frame);
  }
  writeFileSync(path, Buffer.concat(records));
}

describe("rt on the pipeline", () => {
  test("probe run: interface input on lo, rt output; tracesplit reads it live and gets tcpdump's records", async () => {
    sink = await udpSink();
    const filter = `udp dst port ${sink.port}`;
    const ref = join(dir, "run-ref.pcap");
    const split = join(dir, "run-split.pcap");
    const specFile = join(dir, "lo-to-rt.yaml");
    writeFileSync(
      specFile,
      ["inputs:", "  - kind: interface", "    device: lo", `    filter: "${filter}"`, "outputs:", "  - kind: rt", "    listen:", "      - host: 127.0.0.1", "        port: 0", ""].join("\n"),
    );
    const tcpdump = await startTcpdump(ref, filter);
    procs.push(tcpdump);
    const probe = startProbe(["run", specFile]);
    procs.push(probe.proc);
    const port = await rtPort(probe.log, () => probe.proc.exitCode !== null);
    const tracesplit = Bun.spawn(["tracesplit", `rt:127.0.0.1:${port}`, `pcapfile:${split}`], { stdout: "ignore", stderr: "pipe" });
    procs.push(tracesplit);
    await waitFor(() => probe.log().includes("connected"), 10_000, "tracesplit to connect");
    await Bun.sleep(300); // an unreliable client gets packets from its START on, which follows HELLO at once
    await sendNumbered(sink.port, 1, PACKETS, { gapEvery: 50, gapMs: 5 });
    await waitFor(() => readPcap(ref).records.length >= PACKETS, 10_000, "tcpdump to see every packet");
    await Bun.sleep(500);
    probe.proc.kill("SIGTERM");
    expect(await probe.proc.exited).toBe(0);
    const timer = setTimeout(() => tracesplit.kill("SIGKILL"), 10_000);
    await tracesplit.exited;
    clearTimeout(timer);
    tcpdump.kill("SIGTERM");
    await tcpdump.exited;

    const expected = Array.from({ length: PACKETS }, (_, i) => i + 1);
    expect(numbersIn(ref)).toEqual(expected);
    expect(numbersIn(split)).toEqual(expected);
    expect(readPcap(split).records.map((r) => r.data)).toEqual(readPcap(ref).records.map((r) => r.data));
    expect(probe.log()).toContain(`rt: ${PACKETS} packets in, ${PACKETS} sent`);
  }, 60_000);

  test("probe rt --print-pipeline read back by probe run --print-pipeline gives the same spec", async () => {
    const hook = join(repoRoot, "examples/hooks/tag.js");
    const printed = await runProbe([
      "rt", "-i", "lo", "-f", "udp port 9", "-s", "1500", "--reliable", "--spool", join(dir, "spool"), "--spool-max-bytes", "64M",
      "--spool-full", "drop-oldest", "--status-interval-ms", "200", "--listen", "127.0.0.1:0", "--hook", hook, "-c", "10", "--print-pipeline",
    ]);
    expect(printed.stderr).toBe("");
    expect(printed.exitCode).toBe(0);
    expect(printed.stdout).toContain("kind: rt");
    expect(printed.stdout).toContain("spoolFull: drop-oldest");
    expect(printed.stdout).toContain("kind: hooks");
    const specFile = join(dir, "rt.yaml");
    writeFileSync(specFile, printed.stdout);
    const again = await runProbe(["run", specFile, "--print-pipeline"]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toBe(printed.stdout);
  });

  test("probe rt -r FILE --reliable serves the file after it ends; probe capture -i rt:// -c N writes every record once, in order, exactly", async () => {
    const COUNT = 500;
    const file = join(dir, "numbered.pcap");
    const out = join(dir, "from-rt.pcap");
    writeNumberedPcap(file, COUNT);
    const server = startProbe(["rt", "-r", file, "--reliable", "--listen", "127.0.0.1:0"]);
    procs.push(server.proc);
    const port = await rtPort(server.log, () => server.proc.exitCode !== null);
    await waitFor(() => server.log().includes("serving on until SIGINT or SIGTERM"), 10_000, "the file to be read to its end");
    expect(server.proc.exitCode).toBeNull();
    const capture = await runProbe(["capture", "-i", `rt://127.0.0.1:${port}`, "-c", String(COUNT), "-w", out], { timeoutMs: 20_000 });
    expect(capture.exitCode).toBe(0);
    expect(capture.stderr).toContain(`${COUNT} packets captured`);
    expect(numbersIn(out)).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
    // Every record as the file has it: timestamps (distinct seconds and microseconds each), caplen,
    // len and bytes, by our reader and by tshark's.
    expect(readPcap(out).records).toEqual(readPcap(file).records);
    const tshark = (path: string) => runTool(["tshark", "-r", path, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.cap_len", "-e", "frame.len", "-e", "data.data"]);
    const judged = await tshark(out);
    expect(judged.split("\n").filter(Boolean).length).toBe(COUNT);
    expect(judged).toBe(await tshark(file));
    server.proc.kill("SIGTERM");
    expect(await server.proc.exited).toBe(0);
    expect(server.log()).toContain(`rt: ${COUNT} packets in`);
  }, 60_000);

  test("probe rt --hook runs the hooks stage before the rt output", async () => {
    const COUNT = 200;
    const file = join(dir, "numbered-hook.pcap");
    const out = join(dir, "odd.pcap");
    const hook = join(dir, "odd.js");
    writeNumberedPcap(file, COUNT);
    // The last digit of "seq=NNNNNNNN;" sits at byte 14 + 11 of the frame: keep odd numbers.
    writeFileSync(hook, "export default function (pkt) { return (pkt.bytes[25] - 48) % 2 === 1 ? 'pass' : 'drop'; }\n");
    const server = startProbe(["rt", "-r", file, "--reliable", "--listen", "127.0.0.1:0", "--hook", hook]);
    procs.push(server.proc);
    const port = await rtPort(server.log, () => server.proc.exitCode !== null);
    const capture = await runProbe(["capture", "-i", `rt://127.0.0.1:${port}`, "-c", String(COUNT / 2), "-w", out], { timeoutMs: 20_000 });
    expect(capture.exitCode).toBe(0);
    expect(numbersIn(out)).toEqual(Array.from({ length: COUNT / 2 }, (_, i) => 2 * i + 1));
    server.proc.kill("SIGTERM");
    expect(await server.proc.exited).toBe(0);
  }, 60_000);

  test("an rt:// input beside another input is refused: exit 2, one line", async () => {
    const result = await runProbe(["capture", "-i", "rt://127.0.0.1:9", "-r", join(dir, "none.pcap"), "-w", join(dir, "x.pcap")]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain("must be the pipeline's only input");
  });

  test("the serve mode's --rt adds an unreliable rt output", async () => {
    const result = await runProbe(["-i", "lo", "--no-rpcap", "--rt", "127.0.0.1:0", "--print-pipeline"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/- kind: rt\n\s+listen:\n\s+- host: 127\.0\.0\.1\n\s+port: 0\n\s+reliable: false/);
  });
});
