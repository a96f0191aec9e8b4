// Hostile peers on both sides of RT, on real loopback sockets. Server: garbage headers, a huge
// announced length, a client that never sends START, ACKs for sequences never sent, a reliable
// client that never acknowledges (the fifo fills, the policy applies, counted, logged once, in
// STATUS; nothing else stalls). Client (rt:// source): garbage instead of HELLO, bad pcap
// headers, DENY, an unsupported data type, a server that announces a body and hangs up.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RtSource } from "../../src/capture/remote/rt-source.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { RtServer, type RtServerOptions } from "../../src/outputs/rt/index.ts";
import { forEachRecord, PacketBatchBuilder, type PacketBatch } from "../../src/packet/packet-batch.ts";
import {
  decodeStatus,
  encodeAck,
  encodeDeny,
  encodeMessage,
  encodeStart,
  encodeStreamAnnounce,
  HELLO_RELIABLE,
  RtFramer,
  RtType,
  type RtMessage,
} from "../../src/protocols/rt/index.ts";
import { waitFor } from "../support/probe-binary.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function batch(first: number, count: number, size = 200): PacketBatch {
  const builder = new PacketBatchBuilder(1, "micro");
  for (let n = first; n < first + count; n++) builder.push(1_700_000_000, 0, size, new Uint8Array(size).fill(n & 0xff));
  return builder.take()!;
}

async function server(options: Partial<RtServerOptions>) {
  const log = memoryLogger();
  const s = new RtServer({ listen: [{ host: "127.0.0.1", port: 0 }], reliable: false, log, ...options });
  await s.start({ inputs: [{ name: "t", linktype: 1, snaplen: 262144, description: "test" }], precision: "micro" });
  cleanups.push(() => s.stop());
  return { s, log, port: s.listening[0]!.port };
}

/** A raw client: collects the server's messages. */
async function rawClient(port: number) {
  const socket: Socket = connect({ host: "127.0.0.1", port });
  await new Promise((resolve) => socket.once("connect", resolve));
  const framer = new RtFramer(() => 0xffff);
  const messages: RtMessage[] = [];
  let closed = false;
  socket.on("data", (chunk: Buffer) => {
    for (const m of framer.push(chunk)) messages.push({ ...m, body: m.body.slice() });
  });
  socket.on("close", () => (closed = true));
  socket.on("error", () => {});
  cleanups.push(() => void socket.destroy());
  return { socket, messages, closed: () => closed, data: () => messages.filter((m) => m.type > 2000) };
}

describe("hostile clients", () => {
  test("garbage header and a huge length close that client alone; another keeps receiving", async () => {
    const { s, log, port } = await server({});
    const good = await rawClient(port);
    good.socket.write(encodeStart());
    const garbage = await rawClient(port);
    garbage.socket.write(new Uint8Array(12).fill(0xff));
    const huge = await rawClient(port);
    const header = encodeMessage(RtType.START);
    new DataView(header.buffer).setUint16(4, 60000, true);
    huge.socket.write(header); // the body never comes: refused on the header alone
    await waitFor(() => garbage.closed() && huge.closed(), 5_000, "both hostile clients closed");
    expect(log.lines.filter((l) => l.includes("length-too-large at byte 4")).length).toBe(2);
    s.write(batch(1, 10));
    await waitFor(() => good.data().length === 10, 5_000, "the good client's 10 packets");
    expect(s.counters().protocol_errors).toBe(2);
  });

  test("unreliable: a client that never reads loses batches, counted for it alone; another gets every packet", async () => {
    const { s, port } = await server({ queueBytes: 64 * 1024 });
    const stalled = await rawClient(port);
    stalled.socket.write(encodeStart());
    const good = await rawClient(port);
    good.socket.write(encodeStart());
    await Bun.sleep(100);
    stalled.socket.pause();
    for (let i = 0; i < 400; i++) {
      s.write(batch(1 + i * 20, 20, 1000)); // 8 MB in all, beyond any loopback socket buffer
      if (i % 20 === 0) await Bun.sleep(5);
    }
    await waitFor(() => good.data().length === 8000, 10_000, "the reading client's 8000 packets");
    expect(s.counters().packets_dropped_slow_client).toBeGreaterThan(0);
  });

  test("a client that never sends START is closed after the start timeout", async () => {
    const { log, port } = await server({ startTimeoutMs: 200 });
    const silent = await rawClient(port);
    await waitFor(() => silent.closed(), 5_000, "the silent client closed");
    expect(log.lines.some((l) => l.includes("no START within the start timeout"))).toBe(true);
  });

  test("reliable: an ACK for a sequence never sent is ignored and counted; the fifo keeps the packets", async () => {
    const { s, log, port } = await server({ reliable: true, fifo: { maxBytes: 4 * 1024 * 1024, policy: "block" } });
    s.write(batch(1, 5));
    const client = await rawClient(port);
    client.socket.write(encodeStart());
    await waitFor(() => client.data().length === 5, 5_000, "5 packets");
    client.socket.write(encodeAck(1_000_000));
    await waitFor(() => s.counters().invalid_acks === 1, 5_000, "the invalid ACK counted");
    expect(s.counters().fifo_records_held).toBe(5);
    expect(log.lines.filter((l) => l.includes("never sent")).length).toBe(1);
    client.socket.write(encodeAck(3));
    await waitFor(() => s.counters().fifo_records_held === 2, 5_000, "ACK 3 releases 3");
  });

  test("reliable: a client that STARTs and never reads or ACKs is closed after the ACK timeout, in one line; the next client gets every packet", async () => {
    const { s, log, port } = await server({ reliable: true, ackTimeoutMs: 300, fifo: { maxBytes: 64 * 1024 * 1024, policy: "block" } });
    const stalled = await rawClient(port);
    stalled.socket.write(encodeStart());
    await waitFor(() => log.lines.some((l) => l.includes("started at sequence 1")), 5_000, "start");
    stalled.socket.pause(); // never reads: the server's writes pile up in the socket buffers
    for (let i = 0; i < 200; i++) s.write(batch(1 + i * 50, 50, 1000)); // 10 MB, beyond the socket buffers
    // The paused client would not see its end until it reads; the server's line is the judge.
    await waitFor(() => log.lines.some((l) => l.includes("(--ack-timeout-ms); closed to free the reliable slot")), 10_000, "the stalled client closed");
    expect(log.lines.filter((l) => l.includes("no ACK for 300 ms with ")).length).toBe(1);
    expect(s.counters().ack_timeouts).toBe(1);
    const next = await rawClient(port);
    next.socket.write(encodeStart());
    await waitFor(() => next.data().length === 10_000, 20_000, "every packet for the next client");
    expect(next.messages[0]?.type).toBe(RtType.HELLO);
    expect(next.data().map((m) => m.sequence)).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
   }, 40_000);

  test("stop() completes with denied peers that never close their side and a stalled reader (it once waited forever)", async () => {
    const { s, log, port } = await server({ reliable: true, fifo: { maxBytes: 64 * 1024 * 1024, policy: "block" } });
    const stalled = await rawClient(port);
    stalled.socket.write(encodeStart());
    await waitFor(() => log.lines.some((l) => l.includes("started at sequence 1")), 5_000, "start");
    stalled.socket.pause();
    for (let i = 0; i < 100; i++) s.write(batch(1 + i * 50, 50, 1000));
    const denied = await Promise.all(Array.from({ length: 30 }, () => rawClient(port)));
    for (const d of denied) d.socket.pause(); // never reads the DENY, never sees the FIN, never closes
    await waitFor(() => s.counters().clients_denied === 30, 5_000, "30 denied");
    const outcome = await Promise.race([s.stop().then(() => "stopped"), Bun.sleep(5_000).then(() => "still stopping after 5 s")]);
    expect(outcome).toBe("stopped");
  }, 20_000);

  test("reliable: a client with nothing outstanding is never timed out (a quiet stream), nor when data comes after the quiet", async () => {
    const { s, log, port } = await server({ reliable: true, ackTimeoutMs: 1_000, fifo: { maxBytes: 4 * 1024 * 1024, policy: "block" } });
    const quiet = await rawClient(port);
    quiet.socket.write(encodeStart());
    await waitFor(() => log.lines.some((l) => l.includes("started at sequence 1")), 5_000, "start");
    await Bun.sleep(1_500); // quiet for longer than the timeout
    expect(quiet.closed()).toBe(false);
    s.write(batch(1, 5));
    await waitFor(() => quiet.data().length === 5, 5_000, "5 packets");
    quiet.socket.write(encodeAck(5));
    await waitFor(() => s.counters().fifo_records_held === 0, 5_000, "ACK 5 releases 5");
    expect(quiet.closed()).toBe(false);
    expect(s.counters().ack_timeouts).toBe(0);
  });

  test("reliable: a stalled client holds the slot only until the ACK timeout; an rt:// source denied meanwhile retries and gets every packet", async () => {
    const { s, log, port } = await server({ reliable: true, ackTimeoutMs: 1_000, fifo: { maxBytes: 64 * 1024 * 1024, policy: "block" } });
    const stalled = await rawClient(port);
    stalled.socket.write(encodeStart());
    await waitFor(() => log.lines.some((l) => l.includes("started at sequence 1")), 5_000, "start");
    stalled.socket.pause();
    for (let i = 0; i < 20; i++) s.write(batch(1 + i * 50, 50, 200));
    const sourceLog = memoryLogger();
    const source = new RtSource({ host: "127.0.0.1", port, log: sourceLog });
    cleanups.push(async () => void (await source.stop()));
    const sizes: number[] = [];
    const started = source.start({ onBatch: (b) => forEachRecord(b, (view) => void sizes.push(view.caplen)), onEnd: () => {} });
    await waitFor(() => sourceLog.lines.some((l) => l.includes("max connections reached")), 5_000, "the source denied");
    await started;
    await waitFor(() => sizes.length === 1000, 20_000, "1000 packets through the source");
    expect(source.counters.duplicates).toBe(0);
    expect(sourceLog.lines.filter((l) => l.includes("max connections reached")).length).toBe(1);
    expect(s.counters().ack_timeouts).toBe(1);
  }, 40_000);

  test.each(["drop-new", "drop-oldest", "block"] as const)(
    "reliable, spool, a client that never acks: the fifo fills, %s applies, logged once, in STATUS; others are denied promptly",
    async (policy) => {
      const dir = mkdtempSync(join(tmpdir(), "rt-hostile-"));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const { s, log, port } = await server({
        reliable: true,
        statusIntervalMs: 100,
        fifo: { directory: dir, maxBytes: 1024 * 1024, policy, segmentBytes: 128 * 1024 },
      });
      const lazy = await rawClient(port);
      lazy.socket.write(encodeStart());
      await waitFor(() => log.lines.some((l) => l.includes("started at sequence")), 5_000, "start");
      const started = performance.now();
      const writes: (void | Promise<void>)[] = [];
      for (let i = 0; i < 100; i++) writes.push(s.write(batch(1 + i * 50, 50, 400))); // ~2 MB into a 1 MiB fifo
      const elapsed = performance.now() - started;
      void elapsed; // not asserted (no timing assertions); write() never awaited anything above
      const c = s.counters();
      if (policy !== "block") expect(c.packets_dropped_fifo_full!).toBeGreaterThan(0);
      expect(c.fifo_full_episodes).toBe(1);
      expect(log.lines.filter((l) => l.includes("rt fifo full")).length).toBe(1);
      if (policy === "block") expect(writes.some((w) => w instanceof Promise)).toBe(true);
      await waitFor(() => lazy.messages.some((m) => m.type === RtType.STATUS && decodeStatus(m.body).fullEpisodes === 1), 5_000, "STATUS with the episode");
      const status = decodeStatus(lazy.messages.filter((m) => m.type === RtType.STATUS).at(-1)!.body);
      expect(status.policy).toBe({ block: 1, "drop-oldest": 2, "drop-new": 3 }[policy]);
      if (policy !== "block") expect(status.droppedRecords).toBeGreaterThan(0);
      expect(status.used).toBeLessThanOrEqual(1024 * 1024);
      // Nothing else stalls: a second client is denied at once, and the server stops cleanly.
      const second = await rawClient(port);
      await waitFor(() => second.closed(), 5_000, "the second client denied");
      expect(second.messages[0]?.type).toBe(RtType.DENY_CONN);
    },
  );
});

/** A fake RT server that runs `script` on each connection. */
async function fakeServer(script: (socket: Socket) => void): Promise<number> {
  const srv: Server = createServer((socket) => {
    socket.on("error", () => {});
    script(socket);
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  const address = srv.address();
  return typeof address === "object" && address ? address.port : 0;
}

function dataMessage(fields: { caplen: number; len: number; dataBytes: number; type?: number }): Uint8Array {
  const body = new Uint8Array(24 + fields.dataBytes);
  const v = new DataView(body.buffer);
  v.setBigInt64(0, 1n, true);
  v.setUint32(16, fields.caplen, true);
  v.setUint32(20, fields.len, true);
  return encodeMessage(fields.type ?? 2001, body, 1);
}

/** A pcap data message numbered `n` whose one data byte is `n`. */
function numberedData(n: number): Uint8Array {
  const body = new Uint8Array(25);
  const v = new DataView(body.buffer);
  v.setBigInt64(0, 1n, true);
  v.setUint32(16, 1, true);
  v.setUint32(20, 1, true);
  body[24] = n;
  return encodeMessage(2001, body, n);
}

async function sourceOutcome(port: number) {
  const source = new RtSource({ host: "127.0.0.1", port, helloTimeoutMs: 2000, reconnect: false });
  cleanups.push(async () => void (await source.stop()));
  const ended = Promise.withResolvers<{ reason: string; error?: Error }>();
  const started = source.start({ onBatch: () => {}, onEnd: (reason, error) => ended.resolve({ reason, ...(error ? { error } : {}) }) });
  const opened = await started.then(() => "opened", (error: Error & { code?: string }) => `rejected ${error.code}: ${error.message}`);
  return { opened, ended: ended.promise };
}

describe("hostile servers (rt:// source)", () => {
  test("garbage instead of HELLO: bad-stream", async () => {
    const port = await fakeServer((s) => s.write(new Uint8Array(32).fill(0x41)));
    const { opened } = await sourceOutcome(port);
    expect(opened).toMatch(/^rejected bad-stream/);
  });

  test("DENY with reconnect off: server-busy naming the reason", async () => {
    const port = await fakeServer((s) => s.end(encodeDeny(2)));
    const { opened } = await sourceOutcome(port);
    expect(opened).toStartWith("rejected server-busy: ");
    expect(opened).toContain("connection denied: max connections reached");
  });

  test("DENY (slot taken) three times, then HELLO: the source retries with backoff, logs once per change, delivers", async () => {
    let connections = 0;
    const port = await fakeServer((s) => {
      if (++connections <= 3) {
        s.end(encodeDeny(2));
        return;
      }
      s.write(HELLO_RELIABLE);
      s.once("data", () => s.write(new Uint8Array([1, 2, 3].flatMap((n) => [...numberedData(n)]))));
    });
    const log = memoryLogger();
    const delivered: number[] = [];
    const source = new RtSource({ host: "127.0.0.1", port, log });
    cleanups.push(async () => void (await source.stop()));
    await source.start({ onBatch: (b) => forEachRecord(b, (view, bytes) => void delivered.push(bytes[view.dataOffset]!)), onEnd: () => {} });
    await waitFor(() => delivered.length === 3, 10_000, "3 packets");
    expect(delivered).toEqual([1, 2, 3]);
    expect(connections).toBe(4);
    expect(log.lines.filter((l) => l.includes("max connections reached")).length).toBe(1);
    expect(log.lines.filter((l) => l.includes("connected after 3 retries")).length).toBe(1);
  });

  test.each([
    ["caplen over len", dataMessage({ caplen: 10, len: 5, dataBytes: 10 }), "caplen-exceeds-len"],
    ["caplen beyond the body", dataMessage({ caplen: 60000, len: 60000, dataBytes: 10 }), "caplen-mismatch"],
    ["ERF-typed data", dataMessage({ caplen: 4, len: 4, dataBytes: 4, type: 1002 }), "unsupported-data"],
  ] as const)("%s: the source fails with the ProtocolError's code", async (_name, bytes, code) => {
    const port = await fakeServer((s) => {
      s.write(HELLO_RELIABLE);
      s.once("data", () => s.write(bytes));
    });
    const { opened } = await sourceOutcome(port);
    expect(opened).toMatch(/^rejected bad-stream/);
    expect(opened).toContain(code === "unsupported-data" ? "not pcap-typed" : code === "caplen-exceeds-len" ? "caplen 10 > len 5" : "caplen 60000 but 10 bytes follow");
  });

  test("a server that re-sends: duplicates by sequence are dropped, acknowledged again, not delivered", async () => {
    const acks: number[] = [];
    const port = await fakeServer((s) => {
      s.write(HELLO_RELIABLE);
      const framer = new RtFramer(() => 256);
      s.on("data", (chunk: Buffer) => {
        for (const m of framer.push(chunk)) {
          if (m.type === RtType.START) {
            const seqs = [1, 2, 3, 2, 3, 4];
            s.write(new Uint8Array(seqs.flatMap((n) => [...numberedData(n)])));
          }
          if (m.type === RtType.ACK) acks.push(new DataView(m.body.buffer, m.body.byteOffset).getUint32(0, true));
        }
      });
    });
    const delivered: number[] = [];
    const source = new RtSource({ host: "127.0.0.1", port, reconnect: false });
    cleanups.push(async () => void (await source.stop()));
    await source.start({
      onBatch: (b) => forEachRecord(b, (view, bytes) => void delivered.push(bytes[view.dataOffset]!)),
      onEnd: () => {},
    });
    await waitFor(() => acks.includes(4), 5_000, "the ACK for 4");
    expect(delivered).toEqual([1, 2, 3, 4]);
    expect(source.counters.duplicates).toBe(2);
  });

  test("?state=FILE: a FILE.tmp symbolic link is never written through (the source ends in one line); a stale regular one is replaced", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rt-state-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const port = await fakeServer((s) => {
      s.write(HELLO_RELIABLE);
      // A probe server's announce gives the stream id the state file keeps.
      s.once("data", () => s.write(new Uint8Array([...encodeStreamAnnounce(new Uint8Array(8).fill(7), 1, 1), ...numberedData(1)])));
    });
    const target = join(dir, "target");
    writeFileSync(target, "keep me\n");
    const linked = join(dir, "linked.state");
    symlinkSync(target, `${linked}.tmp`);
    const failing = new RtSource({ host: "127.0.0.1", port, statePath: linked, reconnect: false });
    cleanups.push(async () => void (await failing.stop()));
    const ended = Promise.withResolvers<Error | undefined>();
    await failing.start({ onBatch: () => {}, onEnd: (_reason, error) => ended.resolve(error) });
    expect((await ended.promise)?.message).toBe(`rt state file: ${linked}.tmp exists and is not a file probe wrote; left alone`);
    expect(readFileSync(target, "utf8")).toBe("keep me\n");
    const stale = join(dir, "stale.state");
    writeFileSync(`${stale}.tmp`, "{");
    const working = new RtSource({ host: "127.0.0.1", port, statePath: stale, reconnect: false });
    cleanups.push(async () => void (await working.stop()));
    await working.start({ onBatch: () => {}, onEnd: () => {} });
    await waitFor(() => existsSync(stale), 5_000, "the state written");
    expect(JSON.parse(readFileSync(stale, "utf8")).lastSequence).toBe(1);
  });

  test("a server that announces a 65535-byte body and hangs up: closed, nothing delivered", async () => {
    const port = await fakeServer((s) => {
      s.write(HELLO_RELIABLE);
      s.once("data", () => {
        const header = encodeMessage(2001);
        new DataView(header.buffer).setUint16(4, 0xffff, true);
        s.end(header);
      });
    });
    const { opened } = await sourceOutcome(port);
    expect(opened).toMatch(/^rejected closed/);
  });
});
