// PcapOverIpSource on real loopback sockets: socat and a Bun test server as peers, the vector
// file as ground truth (judged by tshark and tcpdump), misbehaving peers, back-pressure,
// reconnects and TLS (self-signed certificate made by openssl; socat and Bun as TLS servers).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { PcapOverIpSource, RemoteSourceError, parseRemoteSourceUrl, type PcapOverIpSourceOptions } from "../../src/capture/remote/index.ts";
import { ProtocolError } from "../../src/packet/protocol-error.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import {
  ETHERNET,
  RAW,
  collect,
  concat,
  pcapHeaderBytes,
  pcapRecordBytes,
  pcapStream,
  socatServeFile,
  startStreamServer,
  taggedRecords,
  tool,
  until,
  vectorsDir,
  within,
  type TestStreamServer,
} from "../support/remote-source-helpers.ts";
import { freeTcpPort } from "../support/free-port.ts";

const VECTOR = join(vectorsDir, "rpcap-passive-tcp.pcap");
let dir: string;
const procs: Subprocess[] = [];
const servers: TestStreamServer[] = [];
const sources: PcapOverIpSource[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "probe-remote-"));
  // Self-signed server certificate for CN=localhost with the loopback address as a SAN too; it
  // doubles as the CA that signs itself, and as a client certificate for mutual TLS.
  await tool([
    "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
  ]);
  // A second, unrelated self-signed certificate: a CA that did not sign the server's.
  await tool([
    "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=other", "-days", "1",
    "-keyout", join(dir, "other-key.pem"), "-out", join(dir, "other.pem"),
  ]);
  await Bun.write(join(dir, "both.pem"), (await Bun.file(join(dir, "key.pem")).text()) + (await Bun.file(join(dir, "cert.pem")).text()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
  for (const s of servers.splice(0)) s.stop();
  for (const p of procs.splice(0)) {
    p.kill();
    await p.exited;
  }
});

function source(url: string, options: Partial<PcapOverIpSourceOptions> = {}): PcapOverIpSource {
  const s = new PcapOverIpSource({ address: parseRemoteSourceUrl(url)!, headerTimeoutMs: 5000, ...options });
  sources.push(s);
  return s;
}

function server(onConnection: Parameters<typeof startStreamServer>[0], tls?: Parameters<typeof startStreamServer>[1]): TestStreamServer {
  const s = startStreamServer(onConnection, tls);
  servers.push(s);
  return s;
}

/** tshark's view of the vector: one [frame.len, frame.cap_len, epoch] per packet. */
async function tsharkFrames(path: string, filter?: string): Promise<{ len: number; caplen: number; epoch: string }[]> {
  const out = await tool(["tshark", "-r", path, ...(filter ? ["-Y", filter] : []), "-T", "fields", "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.time_epoch"]);
  return out.trim().split("\n").map((line) => {
    const [len, caplen, epoch] = line.split("\t");
    return { len: Number(len), caplen: Number(caplen), epoch: epoch! };
  });
}

async function expectRejects(promise: Promise<unknown>, code: string): Promise<RemoteSourceError> {
  const error = await within(promise.then(() => undefined, (e: unknown) => e), 15_000, "start to settle");
  expect(error).toBeInstanceOf(RemoteSourceError);
  expect((error as RemoteSourceError).code).toBe(code as RemoteSourceError["code"]);
  return error as RemoteSourceError;
}

describe("PcapOverIpSource with socat serving the vector file", () => {
  test("tcp://: every packet of the file arrives, lengths and timestamps equal tshark's reading of it", async () => {
    const { port, proc } = await socatServeFile(VECTOR);
    procs.push(proc);
    const out = collect();
    const info = await source(`tcp://127.0.0.1:${port}`).start(out.handlers);
    expect(info).toEqual({ linktype: ETHERNET, snaplen: 262144, precision: "micro", description: `tcp://127.0.0.1:${port}` });
    await within(out.ended, 10_000, "end of stream");
    expect(out.end()).toEqual({ reason: "end-of-file", error: undefined });
    const frames = await tsharkFrames(VECTOR);
    expect(frames).toHaveLength(101);
    expect(out.records.map((r) => [r.len, r.caplen, `${r.tsSec}.${String(r.tsFrac).padStart(6, "0")}000`])).toEqual(
      frames.map((f) => [f.len, f.caplen, f.epoch]),
    );
    // And the bytes: the records as delivered are the file's records (little-endian file, batch layout).
    const file = new Uint8Array(await Bun.file(VECTOR).arrayBuffer());
    expect(Buffer.from(concat(out.batches.map((b) => b.bytes))).equals(Buffer.from(file.subarray(24)))).toBe(true);
  });

  test("a userland filter keeps what tcpdump's filter keeps", async () => {
    const { port, proc } = await socatServeFile(VECTOR);
    procs.push(proc);
    const out = collect();
    await source(`TCP@127.0.0.1:${port}`, { filter: "udp" }).start(out.handlers);
    await within(out.ended, 10_000, "end of stream");
    const judged = (await tool(["tcpdump", "-r", VECTOR, "-nn", "-q", "udp"])).trim().split("\n").length;
    expect(out.records.length).toBe(judged);
    expect(out.records.length).toBeGreaterThan(0);
    expect(out.records.length).toBeLessThan(101);
  });

  test("tls:// to socat OPENSSL-LISTEN with the server's certificate as CA: the whole file arrives", async () => {
    const { port, proc } = await socatServeFile(VECTOR, join(dir, "both.pem"));
    procs.push(proc);
    const out = collect();
    await source(`tls://127.0.0.1:${port}`, { tlsCa: join(dir, "cert.pem") }).start(out.handlers);
    await within(out.ended, 10_000, "end of stream");
    expect(out.end()!.reason).toBe("end-of-file");
    expect(out.records).toHaveLength(101);
    expect(out.records.reduce((n, r) => n + r.caplen, 0)).toBe((await tsharkFrames(VECTOR)).reduce((n, f) => n + f.caplen, 0));
  });

  test("tls:// without a CA that trusts the self-signed certificate: tls-failed; insecure: accepted", async () => {
    const first = await socatServeFile(VECTOR, join(dir, "both.pem"));
    procs.push(first.proc);
    const error = await expectRejects(source(`tls://127.0.0.1:${first.port}`, { tlsCa: join(dir, "other.pem") }).start(collect().handlers), "tls-failed");
    expect(error.message).toMatch(/^tls:\/\/127\.0\.0\.1:\d+: TLS: /);
    const second = await socatServeFile(VECTOR, join(dir, "both.pem"));
    procs.push(second.proc);
    const out = collect();
    await source(`tls://127.0.0.1:${second.port}`, { insecure: true }).start(out.handlers);
    await within(out.ended, 10_000, "end of stream");
    expect(out.records).toHaveLength(101);
  });
});

describe("PcapOverIpSource with a Bun test server", () => {
  test("the stream written one byte at a time: same records as written in one piece", async () => {
    const records = taggedRecords("p", 4, 1_700_000_000, 250_000);
    const stream = pcapStream({ snaplen: 100 }, records);
    const srv = server((c) => {
      c.socket.setNoDelay(true);
      let at = 0;
      const step = () => {
        if (c.closed) return;
        if (at >= stream.byteLength) return c.end();
        c.write(stream.subarray(at, at + 1));
        at++;
        setTimeout(step, 0);
      };
      step();
    });
    const out = collect();
    const s = source(`tcp://127.0.0.1:${srv.port}`);
    expect((await s.start(out.handlers)).snaplen).toBe(100);
    await within(out.ended, 10_000, "end of stream");
    expect(out.records.map((r) => [r.tsSec, r.tsFrac, out.text(r)])).toEqual(
      records.map((r) => [r.tsSec, r.tsFrac, new TextDecoder().decode(r.data)]),
    );
    expect(s.connectionCounters.bytesReceived).toBe(stream.byteLength);
  });

  test("a big-endian nanosecond stream: info says nano, records arrive in the batch layout", async () => {
    const records = [{ tsSec: 5, tsFrac: 999_999_999, data: new Uint8Array([1, 2, 3]), len: 60 }];
    const srv = server((c) => {
      c.write(pcapStream({ precision: "nano", littleEndian: false, linktype: RAW }, records));
      c.end();
    });
    const out = collect();
    const info = await source(`tcp://127.0.0.1:${srv.port}`).start(out.handlers);
    expect([info.linktype, info.precision]).toEqual([RAW, "nano"]);
    await within(out.ended, 10_000, "end of stream");
    expect(out.records.map((r) => [r.tsSec, r.tsFrac, r.caplen, r.len, [...r.data], r.precision])).toEqual([[5, 999_999_999, 3, 60, [1, 2, 3], "nano"]]);
  });

  test("bad magic: start rejects with bad-stream carrying the ProtocolError, and closes the socket", async () => {
    const srv = server((c) => c.write(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n")));
    const error = await expectRejects(source(`tcp://127.0.0.1:${srv.port}`).start(collect().handlers), "bad-stream");
    expect(error.cause).toBeInstanceOf(ProtocolError);
    expect([(error.cause as ProtocolError).code, (error.cause as ProtocolError).offset]).toEqual(["bad-magic", 0]);
    expect(error.message).toBe(`tcp://127.0.0.1:${srv.port}: not a valid pcap stream at byte 0: not a pcap or pcapng file: unknown magic number (bad-magic)`);
    await within(srv.connections[0]!.closedPromise, 5000, "our close");
  });

  test("caplen > snaplen after two good records: the two are delivered, then the source fails and closes", async () => {
    const good = taggedRecords("g", 2, 100, 1);
    const bad = { tsSec: 101, tsFrac: 0, data: new Uint8Array(200) };
    const stream = concat([pcapStream({ snaplen: 128 }, good), pcapRecordBytes(bad), pcapRecordBytes(good[0]!)]);
    const srv = server((c) => c.write(stream)); // and keeps the connection open: we must close it
    const out = collect();
    await source(`tcp://127.0.0.1:${srv.port}`).start(out.handlers);
    await within(out.ended, 10_000, "failure");
    expect(out.records.map((r) => out.text(r))).toEqual(good.map((r) => new TextDecoder().decode(r.data)));
    const { reason, error } = out.end()!;
    expect(reason).toBe("failed");
    expect((error as RemoteSourceError).code).toBe("bad-stream");
    const cause = (error as RemoteSourceError).cause as ProtocolError;
    expect([cause.code, cause.offset]).toEqual(["caplen-exceeds-snaplen", 24 + 2 * (16 + 20) + 8]);
    expect(error!.message).toContain("caplen 200 exceeds snaplen 128 (caplen-exceeds-snaplen)");
    await within(srv.connections[0]!.closedPromise, 5000, "our close");
  });

  test("caplen > len: bad-stream caplen-exceeds-len", async () => {
    const srv = server((c) => c.write(pcapStream({}, [{ tsSec: 1, tsFrac: 0, data: new Uint8Array(10), len: 9 }])));
    const out = collect();
    await source(`tcp://127.0.0.1:${srv.port}`).start(out.handlers);
    await within(out.ended, 10_000, "failure");
    expect(((out.end()!.error as RemoteSourceError).cause as ProtocolError).code).toBe("caplen-exceeds-len");
    expect(out.records).toHaveLength(0);
  });

  test("an empty stream (header, then EOF): start resolves, then end-of-file with nothing delivered", async () => {
    const srv = server((c) => {
      c.write(pcapHeaderBytes());
      c.end();
    });
    const out = collect();
    await source(`tcp://127.0.0.1:${srv.port}`).start(out.handlers);
    await within(out.ended, 10_000, "end");
    expect(out.end()).toEqual({ reason: "end-of-file", error: undefined });
    expect(out.records).toHaveLength(0);
  });

  test("a filter that does not compile rejects start and closes the connection; start twice is refused", async () => {
    const srv = server((c) => c.write(pcapHeaderBytes()));
    const s = source(`tcp://127.0.0.1:${srv.port}`, { filter: "this is not a filter" });
    const error = await within(s.start(collect().handlers).then(() => undefined, (e: unknown) => e), 10_000, "start");
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/syntax error|filter/i);
    await within(srv.connections[0]!.closedPromise, 5000, "our close");
    expect(s.start(collect().handlers)).rejects.toThrow("start() called twice");
  });

  test("a pcapng stream is refused: unsupported-format", async () => {
    const vector = new Uint8Array(await Bun.file(VECTOR).arrayBuffer());
    const pcapng = await tool(["sh", "-c", `editcap -F pcapng ${VECTOR} ${join(dir, "v.pcapng")} && echo ok`]);
    expect(pcapng.trim()).toBe("ok");
    const bytes = new Uint8Array(await Bun.file(join(dir, "v.pcapng")).arrayBuffer());
    expect(bytes.byteLength).not.toBe(vector.byteLength);
    const srv = server((c) => c.write(bytes));
    const error = await expectRejects(source(`tcp://127.0.0.1:${srv.port}`).start(collect().handlers), "unsupported-format");
    expect(error.message).toContain("editcap -F pcap");
  });

  test("the peer closes before the header: closed; says nothing at all: header-timeout; nobody listens: connect-failed", async () => {
    const closing = server((c) => {
      c.write(pcapHeaderBytes().subarray(0, 10));
      c.end();
    });
    const closed = await expectRejects(source(`tcp://127.0.0.1:${closing.port}`).start(collect().handlers), "closed");
    expect(closed.retriable).toBe(true);
    const silent = server(() => {});
    const timeout = await expectRejects(source(`tcp://127.0.0.1:${silent.port}`, { headerTimeoutMs: 200 }).start(collect().handlers), "header-timeout");
    expect(timeout.message).toBe(`tcp://127.0.0.1:${silent.port}: no pcap global header within 200 ms`);
    await within(silent.connections[0]!.closedPromise, 5000, "our close after the timeout");
    const port = freeTcpPort();
    const refused = await expectRejects(source(`tcp://127.0.0.1:${port}`).start(collect().handlers), "connect-failed");
    expect(refused.message).toStartWith(`tcp://127.0.0.1:${port}: cannot connect: `);
  });

  test("the peer closes in the middle of a record: the complete ones arrive, then failed (closed, truncated)", async () => {
    const records = taggedRecords("t", 3, 10, 1);
    const stream = pcapStream({}, records);
    const srv = server((c) => {
      c.write(stream.subarray(0, stream.byteLength - 5));
      c.end();
    });
    const out = collect();
    await source(`tcp://127.0.0.1:${srv.port}`).start(out.handlers);
    await within(out.ended, 10_000, "end");
    expect(out.records).toHaveLength(2);
    const error = out.end()!.error as RemoteSourceError;
    expect([out.end()!.reason, error.code, (error.cause as ProtocolError).code]).toEqual(["failed", "closed", "truncated"]);
    expect(error.message).toContain("in the middle of a record at byte 96");
  });

  test("back-pressure: while onBatch's promise is pending the socket is paused and the server's writes back up", async () => {
    const total = 48 * 1024 * 1024;
    const record = pcapRecordBytes({ tsSec: 1, tsFrac: 0, data: new Uint8Array(65000) });
    const count = Math.ceil(total / record.byteLength);
    const srv = server((c) => {
      c.write(pcapHeaderBytes({ snaplen: 65535 }));
      for (let i = 0; i < count; i++) c.write(record);
      c.end();
    });
    let release!: () => void;
    const stalled = new Promise<void>((r) => (release = r));
    let calls = 0;
    const out = collect(() => (++calls === 1 ? stalled : undefined));
    const s = source(`tcp://127.0.0.1:${srv.port}`);
    await s.start(out.handlers);
    await until(() => calls === 1, "first batch");
    await until(() => srv.connections[0]?.sawBackPressure === true, "the server's writes to back up");
    await Bun.sleep(300); // without pause() Bun would read the rest into memory in far less
    const received = s.connectionCounters.bytesReceived;
    expect(received).toBeLessThan(total / 2);
    expect(srv.connections[0]!.pendingBytes).toBeGreaterThan(total / 2);
    release();
    await within(out.ended, 30_000, "end of stream");
    expect(out.records).toHaveLength(count);
    expect(out.end()!.reason).toBe("end-of-file");
  });

  test("the consumer throwing ends the source: consumer-failed", async () => {
    const srv = server((c) => c.write(pcapStream({}, taggedRecords("c", 2, 1, 1))));
    let ended: [string, Error | undefined] | undefined;
    await source(`tcp://127.0.0.1:${srv.port}`).start({
      onBatch: () => {
        throw new Error("no room");
      },
      onEnd: (reason, error) => (ended = [reason, error]),
    });
    await until(() => ended !== undefined, "onEnd");
    expect(ended![0]).toBe("failed");
    expect((ended![1] as RemoteSourceError).code).toBe("consumer-failed");
  });

  test("stop(): ends the source with stopped once, closes the socket, is idempotent", async () => {
    const srv = server((c) => c.write(pcapStream({}, taggedRecords("s", 1, 1, 1))));
    const out = collect();
    const s = source(`tcp://127.0.0.1:${srv.port}`);
    await s.start(out.handlers);
    await until(() => out.records.length === 1, "the record");
    const [a, b] = await Promise.all([s.stop(), s.stop()]);
    expect(a).toEqual({ delivered: 1 });
    expect(b).toBe(a);
    expect(out.end()).toEqual({ reason: "stopped", error: undefined });
    await within(srv.connections[0]!.closedPromise, 5000, "our close");
  });

  test("stop() while connecting: start rejects with stopped", async () => {
    const silent = server(() => {});
    const s = source(`tcp://127.0.0.1:${silent.port}`);
    const starting = s.start(collect().handlers);
    await until(() => silent.connections.length === 1, "the connection");
    await s.stop();
    await expectRejects(starting, "stopped");
  });
});

describe("PcapOverIpSource reconnect", () => {
  test("a stream that drops is reconnected; records of both connections arrive; backoff is logged", async () => {
    const first = taggedRecords("one", 3, 100, 10);
    const second = taggedRecords("two", 2, 200, 10);
    const srv = server((c) => {
      c.write(pcapStream({}, c.index === 0 ? first : second));
      if (c.index === 0) c.end(); // drop after the first stream; the second stays open
    });
    const log = memoryLogger();
    const out = collect();
    const s = source(`tcp://127.0.0.1:${srv.port}`, { reconnect: { initialDelayMs: 20 }, log });
    await s.start(out.handlers);
    await until(() => out.records.length === 5, "records of both connections");
    expect(out.records.map((r) => out.text(r).split(".")[0])).toEqual(["one-0", "one-1", "one-2", "two-0", "two-1"]);
    expect(s.connectionCounters).toMatchObject({ connections: 2, reconnects: 1 });
    expect(out.end()).toBeUndefined();
    expect(log.lines).toContain(`warn: tcp://127.0.0.1:${srv.port}: the peer closed the stream; reconnecting in 20 ms`);
    expect(log.lines).toContain(`info: tcp://127.0.0.1:${srv.port}: reconnected (attempt 1)`);
  });

  test("the reconnected stream is nanoseconds: converted to the first stream's microseconds", async () => {
    const srv = server((c) => {
      if (c.index === 0) {
        c.write(pcapStream({}, [{ tsSec: 1, tsFrac: 5, data: new Uint8Array(4) }]));
        c.end();
      } else c.write(pcapStream({ precision: "nano" }, [{ tsSec: 2, tsFrac: 123_456_789, data: new Uint8Array(4) }]));
    });
    const out = collect();
    await source(`tcp://127.0.0.1:${srv.port}`, { reconnect: { initialDelayMs: 10 } }).start(out.handlers);
    await until(() => out.records.length === 2, "both records");
    expect(out.records.map((r) => [r.tsSec, r.tsFrac, r.precision])).toEqual([[1, 5, "micro"], [2, 123_456, "micro"]]);
  });

  test("the reconnected stream has another linktype: the source ends with linktype-changed", async () => {
    const srv = server((c) => {
      c.write(pcapStream({ linktype: c.index === 0 ? ETHERNET : RAW }, [{ tsSec: c.index, tsFrac: 0, data: new Uint8Array(4) }]));
      if (c.index === 0) c.end();
    });
    const out = collect();
    await source(`tcp://127.0.0.1:${srv.port}`, { reconnect: { initialDelayMs: 10 } }).start(out.handlers);
    await within(out.ended, 10_000, "end");
    expect(out.records).toHaveLength(1); // the RAW stream's record is not delivered
    expect((out.end()!.error as RemoteSourceError).code).toBe("linktype-changed");
    expect(out.end()!.error!.message).toContain("the reconnected stream has linktype 101, the first had 1");
  });

  test("gives up after maxAttempts when the peer stays away; garbage is not retried", async () => {
    const srv = server((c) => {
      c.write(pcapStream({}, [{ tsSec: 1, tsFrac: 0, data: new Uint8Array(4) }]));
      c.end();
      srv.stop(); // nobody listens any more
    });
    const log = memoryLogger();
    const out = collect();
    await source(`tcp://127.0.0.1:${srv.port}`, { reconnect: { initialDelayMs: 10, maxAttempts: 3 }, log }).start(out.handlers);
    await within(out.ended, 10_000, "giving up");
    const error = out.end()!.error as RemoteSourceError;
    expect(error.code).toBe("connect-failed");
    expect(error.message).toEndWith("(gave up after 3 reconnect attempts)");
    expect(log.lines.filter((l) => l.includes("reconnect attempt")).map((l) => l.replace(/^.*(attempt \d+ failed, next in \d+ ms)$/, "$1"))).toEqual([
      "attempt 1 failed, next in 20 ms",
      "attempt 2 failed, next in 40 ms",
    ]);

    const garbage = server((c) => {
      c.write(concat([pcapHeaderBytes({ snaplen: 10 }), pcapRecordBytes({ tsSec: 1, tsFrac: 0, data: new Uint8Array(11) })]));
    });
    const out2 = collect();
    await source(`tcp://127.0.0.1:${garbage.port}`, { reconnect: { initialDelayMs: 10 } }).start(out2.handlers);
    await within(out2.ended, 10_000, "failure");
    expect((out2.end()!.error as RemoteSourceError).code).toBe("bad-stream");
    await Bun.sleep(50);
    expect(garbage.connections).toHaveLength(1);
  });
});

describe("PcapOverIpSource mutual TLS with a Bun TLS server", () => {
  test("with the client certificate the stream arrives; without it the server refuses", async () => {
    const tls = { cert: join(dir, "cert.pem"), key: join(dir, "key.pem"), ca: join(dir, "cert.pem") };
    const srv = server((c) => c.write(pcapStream({}, taggedRecords("m", 3, 1, 1))), tls);
    const out = collect();
    await source(`tls://localhost:${srv.port}`, { tlsCa: tls.ca, tlsCert: tls.cert, tlsKey: tls.key }).start(out.handlers);
    await until(() => out.records.length === 3, "records over mutual TLS");
    const error = await within(
      source(`tls://localhost:${srv.port}`, { tlsCa: tls.ca, headerTimeoutMs: 3000 }).start(collect().handlers).then(() => undefined, (e: unknown) => e),
      10_000,
      "refusal",
    );
    expect(error).toBeInstanceOf(RemoteSourceError);
    expect(["closed", "tls-failed", "socket-error"]).toContain((error as RemoteSourceError).code);
  });
});
