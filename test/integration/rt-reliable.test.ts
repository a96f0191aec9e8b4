// probe -> probe over RT, reliable, with a disk spool: nothing lost and nothing twice across
// kill -9 of the sender, an outage of the receiver, and kill -9 of the receiver mid-write.
// Packets are UDP on lo whose payload carries a sequence number ("seq=00000042;").
// The same with a memory fifo shows what a memory fifo loses: everything the sender held when
// it was killed (asserted).
//
// RT_TEST_OUTAGE_S sets how long the receiver stays down in the outage test (default 3 s; the
// issue describes 30 s; the spool does not care how long, only how much).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { encodeStart, isPcapDataType, RtFramer, RtType } from "../../src/protocols/rt/index.ts";
import { type RunningProbe, startProbe, waitFor } from "../support/probe-binary.ts";
import { numbersIn, sendNumbered, startRtServer, udpSink } from "../support/rt-harness.ts";
import { freeTcpPort } from "../support/free-port.ts";

const OUTAGE_MS = Number(process.env.RT_TEST_OUTAGE_S ?? "3") * 1000;
let dir: string;
const procs: Subprocess[] = [];
let sink: { port: number; close(): void };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rt-reliable-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill("SIGKILL");
    await p.exited;
  }
  sink?.close();
});

/**
 * Records one delivery can hold: the rt source hands over what one socket read brought (a 64 KiB
 * read is a few hundred of these test's small records) and reads nothing more until that batch
 * is written and recorded, so a kill -9 can repeat at most that much.
 */
const MAX_BATCH_IN_FLIGHT = 1000;
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

async function sender(args: string[]) {
  const server = await startRtServer(["-i", "lo", "-f", `udp dst port ${sink.port}`, "--reliable", ...args]);
  procs.push(server.proc);
  return server;
}

function receiver(url: string, file: string): RunningProbe {
  const probe = startProbe(["capture", "-i", url, "-w", file]);
  procs.push(probe.proc);
  return probe;
}

function segmentBytes(spool: string): number {
  if (!existsSync(spool)) return 0;
  return readdirSync(spool).filter((n) => n.startsWith("seg-")).reduce((n, name) => n + statSync(join(spool, name)).size, 0);
}

/** A raw RT client: START, count data messages up to `want` (never ACK), leave. */
async function readWithoutAck(port: number, want: number): Promise<number> {
  const socket = connect({ host: "127.0.0.1", port });
  const framer = new RtFramer(() => 0xffff);
  let count = 0;
  socket.on("error", () => {});
  socket.on("data", (chunk: Buffer) => {
    for (const m of framer.push(chunk)) {
      if (m.type === RtType.HELLO) socket.write(encodeStart());
      else if (isPcapDataType(m.type)) count++;
    }
  });
  try {
    await waitFor(() => count >= want, 10_000, `${want} data messages`);
  } finally {
    socket.destroy();
  }
  return count;
}

/** Packets in a file another process is writing: none until its 24-byte pcap header is there. */
const countIn = (file: string) => (existsSync(file) && statSync(file).size >= 24 ? numbersIn(file).length : 0);

async function stop(p: RunningProbe): Promise<void> {
  p.proc.kill("SIGTERM");
  await p.proc.exited;
}

async function kill9(p: RunningProbe): Promise<void> {
  p.proc.kill("SIGKILL");
  await p.proc.exited;
}

describe("probe -> probe, reliable, disk spool", () => {
  test("(1) no receiver; kill -9 the sender; restart it on the spool; every number arrives once, in order", async () => {
    sink = await udpSink();
    const spool = join(dir, "spool-1");
    const first = await sender(["--spool", spool]);
    await sendNumbered(sink.port, 1, 2000, { gapEvery: 100, gapMs: 5 });
    // Wait until the spool holds all 2000 records: 24-byte record header, 16-byte pcap record
    // header and a 106-byte frame (Ethernet 14, IPv4 20, UDP 8, payload 64) each.
    await waitFor(() => segmentBytes(spool) >= 2000 * (24 + 16 + 106), 10_000, "2000 records in the spool");
    await kill9(first);
    const second = await sender(["--spool", spool]);
    expect(second.log()).toMatch(/recovered 2000 unacknowledged records/);
    const file = join(dir, "rx-1.pcap");
    const rx = receiver(`rt://127.0.0.1:${second.port}`, file);
    await waitFor(() => countIn(file) >= 2000, 20_000, "the receiver to write 2000 packets");
    await Bun.sleep(300);
    await stop(rx);
    expect(numbersIn(file)).toEqual(range(1, 2000));
  }, 60_000);

  test(`(2) receiver down ${OUTAGE_MS / 1000} s while traffic continues: nothing lost, nothing twice`, async () => {
    sink = await udpSink();
    const server = await sender(["--spool", join(dir, "spool-2")]);
    const fileA = join(dir, "rx-2a.pcap");
    const fileB = join(dir, "rx-2b.pcap");
    const rxA = receiver(`rt://127.0.0.1:${server.port}`, fileA);
    await waitFor(() => server.log().includes("started at sequence"), 10_000, "receiver A to start");
    await sendNumbered(sink.port, 1, 1000, { gapEvery: 50, gapMs: 5 });
    await waitFor(() => countIn(fileA) >= 1000, 10_000, "receiver A to write 1000");
    await stop(rxA);
    const outage = sendNumbered(sink.port, 1001, 1000, { gapEvery: 50, gapMs: Math.max(1, Math.floor(OUTAGE_MS / 20)) });
    await Bun.sleep(OUTAGE_MS);
    await outage;
    await Bun.sleep(1200);
    const rxB = receiver(`rt://127.0.0.1:${server.port}`, fileB);
    await sendNumbered(sink.port, 2001, 500, { gapEvery: 50, gapMs: 5 });
    await waitFor(() => countIn(fileA) + countIn(fileB) >= 2500, 20_000, "2500 packets in all");
    await Bun.sleep(300);
    await stop(rxB);
    expect([...numbersIn(fileA), ...numbersIn(fileB)]).toEqual(range(1, 2500));
  }, 90_000);

  // The contract today is at least once: the state file is written after the output took a
  // batch, so a kill between the two repeats that batch at the restart. Exactly once across
  // kill -9 (the receiver recovering its position from its output) is issue 23's first item.
  test("(3) kill -9 the receiver mid-write and restart it (?state=FILE): nothing lost, in order; at most the batch in flight repeated", async () => {
    sink = await udpSink();
    const server = await sender(["--spool", join(dir, "spool-3")]);
    const state = join(dir, "rx-3.state");
    const fileA = join(dir, "rx-3a.pcap");
    const fileB = join(dir, "rx-3b.pcap");
    const url = `rt://127.0.0.1:${server.port}?state=${state}`;
    const rxA = receiver(url, fileA);
    await waitFor(() => server.log().includes("started at sequence"), 10_000, "receiver A to start");
    const traffic = sendNumbered(sink.port, 1, 4000, { gapEvery: 20, gapMs: 2 });
    await waitFor(() => countIn(fileA) >= 1000, 20_000, "receiver A to be mid-stream");
    await kill9(rxA);
    const killedAt = countIn(fileA);
    expect(killedAt).toBeLessThan(4000);
    const rxB = receiver(url, fileB);
    await traffic;
    await waitFor(() => countIn(fileA) + countIn(fileB) >= 4000, 20_000, "4000 packets in all");
    await Bun.sleep(500);
    await stop(rxB);
    expect(rxB.log()).not.toContain("Error");
    const a = numbersIn(fileA);
    const b = numbersIn(fileB);
    // Each file in order, with no gap or repeat inside it.
    expect(a).toEqual(range(1, a.length));
    expect(b).toEqual(range(b[0]!, b[0]! + b.length - 1));
    // B starts at or before where A ended (nothing lost), repeating at most A's last batch.
    const repeated = a.length - b[0]! + 1;
    expect(repeated).toBeGreaterThanOrEqual(0);
    expect(repeated).toBeLessThanOrEqual(MAX_BATCH_IN_FLIGHT);
    expect(b.at(-1)).toBe(4000);
  }, 60_000);

  test("issue 21's repro: a symbolic link and a directory under segment names on a restart are left alone in one line each, the link's target untouched, every record delivered", async () => {
    sink = await udpSink();
    const spool = join(dir, "spool-links");
    const first = await sender(["--spool", spool]);
    await sendNumbered(sink.port, 1, 2000, { gapEvery: 100, gapMs: 5 });
    await waitFor(() => segmentBytes(spool) >= 2000 * (24 + 16 + 106), 10_000, "2000 records in the spool");
    await kill9(first);
    const target = join(dir, "not-probes.txt");
    writeFileSync(target, "root:x:0:0:root:/root:/bin/bash\n".repeat(40));
    const next = `seg-${(2001).toString(16).padStart(16, "0")}.rts`;
    symlinkSync(target, join(spool, next));
    mkdirSync(join(spool, `seg-${(0x9000).toString(16).padStart(16, "0")}.rts`));
    const second = await sender(["--spool", spool, "--spool-segment-bytes", "64KiB"]);
    expect(second.log()).toContain(`${next} is a symbolic link, not a segment probe wrote; left alone`);
    expect(second.log()).toContain(`seg-0000000000009000.rts is a directory, not a segment probe wrote; left alone`);
    expect(second.log()).not.toContain("EISDIR");
    expect(second.log()).toMatch(/recovered 2000 unacknowledged records \(292000 bytes;/);
    // New records need a new segment (64 KiB), whose natural name is the link's: they go beside it.
    await sendNumbered(sink.port, 2001, 500, { gapEvery: 100, gapMs: 5 });
    const file = join(dir, "rx-links.pcap");
    const rx = receiver(`rt://127.0.0.1:${second.port}`, file);
    await waitFor(() => countIn(file) >= 2500, 20_000, "the receiver to write 2500 packets");
    await Bun.sleep(300);
    await stop(rx);
    await stop(second);
    expect(numbersIn(file)).toEqual(range(1, 2500));
    expect(readFileSync(target, "utf8")).toBe("root:x:0:0:root:/root:/bin/bash\n".repeat(40));
    expect(lstatSync(join(spool, next)).isSymbolicLink()).toBe(true);
  }, 60_000);

  test("the spool keeps only what is unacknowledged: segments go once the receiver has written them", async () => {
    sink = await udpSink();
    const spool = join(dir, "spool-4");
    const server = await sender(["--spool", spool, "--spool-segment-bytes", "64KiB"]);
    await sendNumbered(sink.port, 1, 3000, { gapEvery: 100, gapMs: 5 });
    await waitFor(() => segmentBytes(spool) >= 3000 * (24 + 16 + 106), 10_000, "3000 records in the spool");
    const segmentsHeld = readdirSync(spool).filter((n) => n.startsWith("seg-")).length;
    expect(segmentsHeld).toBeGreaterThan(3);
    const file = join(dir, "rx-4.pcap");
    const rx = receiver(`rt://127.0.0.1:${server.port}`, file);
    await waitFor(() => countIn(file) >= 3000, 20_000, "3000 written");
    await waitFor(() => readdirSync(spool).filter((n) => n.startsWith("seg-")).length <= 1, 5_000, "acknowledged segments deleted");
    await stop(rx);
    expect(numbersIn(file)).toEqual(range(1, 3000));
  }, 60_000);
});

describe("probe -> probe, the receiver redials", () => {
  test("kill -9 of the sender under a connected receiver, restart in place: the receiver redials, nothing lost, nothing twice", async () => {
    sink = await udpSink();
    const spool = join(dir, "spool-5");
    // A fixed port, so the sender restarted in place listens where the receiver redials.
    const port = freeTcpPort();
    const startSender = async () => {
      const server = startProbe(["rt", "-i", "lo", "-f", `udp dst port ${sink.port}`, "--reliable", "--spool", spool, "--listen", `127.0.0.1:${port}`]);
      procs.push(server.proc);
      await waitFor(() => server.log().includes("rt: serving"), 15_000, "sender to listen");
      return server;
    };
    const first = await startSender();
    const file = join(dir, "rx-5.pcap");
    const rx = receiver(`rt://127.0.0.1:${port}`, file);
    await waitFor(() => first.log().includes("started at sequence"), 10_000, "receiver to start");
    await sendNumbered(sink.port, 1, 1500, { gapEvery: 50, gapMs: 5 });
    await waitFor(() => countIn(file) >= 1500, 20_000, "1500 written");
    await kill9(first);
    const second = await startSender();
    await waitFor(() => second.log().includes("started at sequence"), 20_000, "the receiver to redial");
    // The receiver's START carried (stream id, last sequence written): the restarted sender
    // takes it as an acknowledgement and re-sends nothing the receiver already has.
    expect(second.log()).toContain("started at sequence 1501");
    await sendNumbered(sink.port, 1501, 500, { gapEvery: 50, gapMs: 5 });
    await waitFor(() => countIn(file) >= 2000, 20_000, "2000 written");
    await Bun.sleep(500);
    await stop(rx);
    expect(rx.log()).toContain("dialling again");
    expect(numbersIn(file)).toEqual(range(1, 2000));
  }, 60_000);
});

describe("probe -> probe, reliable, memory fifo: what it loses", () => {
  test("kill -9 of the sender loses everything it held (the disk spool's test (1) loses nothing)", async () => {
    sink = await udpSink();
    const first = await sender([]);
    await sendNumbered(sink.port, 1, 500, { gapEvery: 100, gapMs: 5 });
    // Prove the fifo held all 500: a client reads them without acknowledging and leaves, so
    // they stay in the fifo (reliable mode releases only on ACK).
    expect(await readWithoutAck(first.port, 500)).toBe(500);
    await kill9(first);
    const second = await sender([]);
    const file = join(dir, "rx-m1.pcap");
    const rx = receiver(`rt://127.0.0.1:${second.port}`, file);
    await waitFor(() => second.log().includes("started at sequence 1, 0 records waiting"), 10_000, "receiver to start on an empty fifo");
    await sendNumbered(sink.port, 501, 10, {});
    await waitFor(() => countIn(file) >= 10, 10_000, "the new packets");
    await stop(rx);
    // Numbers 1..500 are gone: they lived only in the killed process.
    expect(numbersIn(file)).toEqual(range(501, 510));
  }, 60_000);

  test("a receiver outage loses nothing while the sender lives", async () => {
    sink = await udpSink();
    const server = await sender([]);
    const fileA = join(dir, "rx-m2a.pcap");
    const fileB = join(dir, "rx-m2b.pcap");
    const rxA = receiver(`rt://127.0.0.1:${server.port}`, fileA);
    await waitFor(() => server.log().includes("started at sequence"), 10_000, "receiver A");
    await sendNumbered(sink.port, 1, 500, { gapEvery: 50, gapMs: 5 });
    await waitFor(() => countIn(fileA) >= 500, 10_000, "500 written");
    await kill9(rxA);
    await sendNumbered(sink.port, 501, 500, { gapEvery: 50, gapMs: 5 });
    await Bun.sleep(1200);
    const rxB = receiver(`rt://127.0.0.1:${server.port}`, fileB);
    await waitFor(() => countIn(fileA) + countIn(fileB) >= 1000, 10_000, "1000 in all");
    await Bun.sleep(300);
    await stop(rxB);
    const all = [...numbersIn(fileA), ...numbersIn(fileB)];
    // kill -9 may leave the last written batch unacknowledged: the sender re-sends it and a
    // receiver without ?state= cannot know, so duplicates are possible here, losses are not.
    expect([...new Set(all)].sort((a, b) => a - b)).toEqual(range(1, 1000));
  }, 60_000);
});
