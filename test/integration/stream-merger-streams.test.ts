// MergedSource over real PCAP-over-IP streams on loopback: socat and Bun servers as peers,
// capinfos and tshark as judges of the merged file, garbage peers, a peer that drops and
// comes back, link types that do not mix.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { PcapOverIpSource, parseRemoteSourceUrl, type PcapOverIpSourceOptions } from "../../src/capture/remote/index.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { MergeError, MergedSource, type MergedSourceOptions } from "../../src/pipeline/merge/index.ts";
import { encodePcapGlobalHeader, pcapRecordsFromBatch } from "../../src/protocols/pcap/index.ts";
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
  type CollectedRecord,
  type TestStreamServer,
} from "../support/remote-source-helpers.ts";

const VECTOR = join(vectorsDir, "rpcap-passive-tcp.pcap");
let dir: string;
const procs: Subprocess[] = [];
const servers: TestStreamServer[] = [];
const merges: MergedSource[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "probe-merge-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await Promise.all(merges.splice(0).map((m) => m.stop()));
  for (const s of servers.splice(0)) s.stop();
  for (const p of procs.splice(0)) {
    p.kill();
    await p.exited;
  }
});

function server(onConnection: Parameters<typeof startStreamServer>[0]): TestStreamServer {
  const s = startStreamServer(onConnection);
  servers.push(s);
  return s;
}

function remote(port: number, options: Partial<PcapOverIpSourceOptions> = {}): PcapOverIpSource {
  return new PcapOverIpSource({ address: parseRemoteSourceUrl(`tcp://127.0.0.1:${port}`)!, headerTimeoutMs: 5000, ...options });
}

function merge(sources: PcapOverIpSource[], options: MergedSourceOptions = {}): MergedSource {
  const m = new MergedSource(sources, options);
  merges.push(m);
  return m;
}

function inOrder(records: readonly CollectedRecord[]): boolean {
  return records.every((r, i) => i === 0 || records[i - 1]!.tsSec < r.tsSec || (records[i - 1]!.tsSec === r.tsSec && records[i - 1]!.tsFrac <= r.tsFrac));
}

const label = (r: CollectedRecord) => new TextDecoder().decode(r.data).replace(/\.+$/, "");

describe("MergedSource over PCAP-over-IP streams", () => {
  test("two socat peers serving the vector: 202 packets in time order, judged by capinfos and tshark", async () => {
    const a = await socatServeFile(VECTOR);
    const b = await socatServeFile(VECTOR);
    procs.push(a.proc, b.proc);
    const out = collect();
    const merged = merge([remote(a.port), remote(b.port)]);
    const info = await merged.start(out.handlers);
    expect([info.linktype, info.precision]).toEqual([ETHERNET, "micro"]);
    await within(out.ended, 15_000, "both streams to end");
    expect(out.end()!.reason).toBe("end-of-file");
    expect(out.records).toHaveLength(202);
    // Equal timestamps: the later source first (mergecap 4.0's order), so every frame appears
    // twice in a row, from 1 then 0.
    expect(out.records.map((r) => r.source)).toEqual(Array.from({ length: 202 }, (_, i) => (i + 1) % 2));
    const file = join(dir, "merged.pcap");
    await Bun.write(file, concat([encodePcapGlobalHeader({ linktype: info.linktype, snaplen: info.snaplen, precision: info.precision, littleEndian: true }), ...out.batches.map((x) => pcapRecordsFromBatch(x, info.precision))]));
    const capinfos = await tool(["capinfos", "-c", "-o", file]);
    expect(capinfos).toMatch(/Number of packets:\s+202/);
    expect(capinfos).toMatch(/Strict time order:\s+True/);
    const lens = (await tool(["tshark", "-r", VECTOR, "-T", "fields", "-e", "frame.len"])).trim().split("\n");
    const mergedLens = (await tool(["tshark", "-r", file, "-T", "fields", "-e", "frame.len"])).trim().split("\n");
    expect(mergedLens).toEqual(lens.flatMap((l) => [l, l]));
  });

  test("interleaved timestamps from two Bun peers come out in order, each record tagged with its source", async () => {
    const even = taggedRecords("even", 50, 1000, 2000, 0); // 0, 2, 4 ... ms
    const odd = taggedRecords("odd", 50, 1000, 2000, 1000); // 1, 3, 5 ... ms
    const srvA = server((c) => c.write(pcapStream({}, even)));
    const srvB = server((c) => {
      // Written in uneven slices to cross record boundaries.
      const bytes = pcapStream({}, odd);
      for (let at = 0; at < bytes.byteLength; at += 333) c.write(bytes.subarray(at, at + 333));
    });
    const out = collect();
    const merged = merge([remote(srvA.port), remote(srvB.port)], { windowMs: 60_000 });
    await merged.start(out.handlers);
    // All but the last record are safe (the last one waits for the other source to pass it).
    await until(() => out.records.length === 99, "99 records");
    await merged.stop();
    expect(out.records.map(label)).toEqual(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? `even-${i / 2}` : `odd-${(i - 1) / 2}`)));
    expect(out.records.map((r) => r.source)).toEqual(Array.from({ length: 100 }, (_, i) => i % 2));
    expect(merged.counters).toMatchObject({ released: 100, outOfOrder: 0, releasedByTimeout: 0 });
    expect(out.end()!.reason).toBe("stopped");
  });

  test("garbage peers (bad magic; caplen > snaplen mid-stream) are logged and left out, the good ones merged", async () => {
    const good = taggedRecords("good", 5, 10, 1000);
    const before = taggedRecords("before-bad", 2, 10, 1000, 500);
    const srvGood = server((c) => {
      c.write(pcapStream({}, good));
      c.end();
    });
    const srvMagic = server((c) => c.write(new TextEncoder().encode("SSH-2.0-OpenSSH_9.2\r\n")));
    const srvCaplen = server((c) =>
      c.write(concat([pcapStream({ snaplen: 64 }, before), pcapRecordBytes({ tsSec: 10, tsFrac: 3000, data: new Uint8Array(65) })])),
    );
    const log = memoryLogger();
    const out = collect();
    const merged = merge([remote(srvGood.port), remote(srvMagic.port), remote(srvCaplen.port)], { log, windowMs: 60_000 });
    await merged.start(out.handlers);
    await within(out.ended, 15_000, "the merge to end");
    expect(out.end()!.reason).toBe("end-of-file");
    expect(out.records.map(label)).toEqual(["good-0", "before-bad-0", "good-1", "before-bad-1", "good-2", "good-3", "good-4"]);
    const text = log.lines.join("\n");
    expect(text).toContain(`tcp://127.0.0.1:${srvMagic.port}: cannot start (tcp://127.0.0.1:${srvMagic.port}: not a valid pcap stream at byte 0: not a pcap or pcapng file: unknown magic number (bad-magic)); merging the other sources`);
    expect(text).toContain(`tcp://127.0.0.1:${srvCaplen.port} failed: tcp://127.0.0.1:${srvCaplen.port}: not a valid pcap stream at byte 104: caplen 65 exceeds snaplen 64 (caplen-exceeds-snaplen)`);
    expect(merged.sourceStatuses.map((s) => s.state)).toEqual(["ended", "failed", "failed"]);
    await within(srvCaplen.connections[0]!.closedPromise, 5000, "the garbage connection closed by us");
    await within(srvMagic.connections[0]!.closedPromise, 5000, "the garbage connection closed by us");
  });

  test("a peer that drops is reconnected and the merge goes on, in order", async () => {
    const a1 = taggedRecords("a1", 3, 100, 1000, 0); // 0, 1, 2 ms
    const a2 = taggedRecords("a2", 3, 100, 1000, 6500); // 6.5, 7.5, 8.5 ms
    const b = taggedRecords("b", 10, 100, 1000, 500); // 0.5 ... 9.5 ms
    const srvA = server((c) => {
      c.write(pcapStream({}, c.index === 0 ? a1 : a2));
      if (c.index === 0) c.end();
    });
    const srvB = server((c) => c.write(pcapStream({}, b)));
    const log = memoryLogger();
    const out = collect();
    const merged = merge([remote(srvA.port, { reconnect: { initialDelayMs: 20 }, log }), remote(srvB.port)], { log, windowMs: 60_000 });
    await merged.start(out.handlers);
    // Everything up to a2's last record (8.5 ms) is safe once A is back; b's 9.5 waits for A.
    await until(() => out.records.length === 15, "records up to 8.5 ms");
    expect(srvA.connections).toHaveLength(2);
    await merged.stop();
    expect(out.records).toHaveLength(16);
    expect(inOrder(out.records)).toBe(true);
    expect(out.records.map(label)).toEqual([
      // a2 and b share 6.5, 7.5 and 8.5 ms: the later source (b) goes first, as in mergecap.
      "a1-0", "b-0", "a1-1", "b-1", "a1-2", "b-2", "b-3", "b-4", "b-5", "b-6", "a2-0", "b-7", "a2-1", "b-8", "a2-2", "b-9",
    ]);
    expect(merged.counters.outOfOrder).toBe(0);
    expect(log.lines.join("\n")).toContain(`tcp://127.0.0.1:${srvA.port}: reconnected (attempt 1)`);
  });

  test("sources of different link types are refused with MergeError and their connections closed", async () => {
    const srvEth = server((c) => c.write(pcapHeaderBytes({ linktype: ETHERNET })));
    const srvRaw = server((c) => c.write(pcapHeaderBytes({ linktype: RAW })));
    const error = await within(
      merge([remote(srvEth.port), remote(srvRaw.port)]).start(collect().handlers).then(() => undefined, (e: unknown) => e),
      10_000,
      "refusal",
    );
    expect(error).toBeInstanceOf(MergeError);
    expect((error as MergeError).code).toBe("linktype-mismatch");
    expect((error as MergeError).message).toBe(
      `cannot merge sources of different link types (tcp://127.0.0.1:${srvEth.port} linktype 1, tcp://127.0.0.1:${srvRaw.port} linktype 101) into one pcap stream; write pcapng with one interface per source instead`,
    );
    await within(Promise.all([srvEth.connections[0]!.closedPromise, srvRaw.connections[0]!.closedPromise]), 5000, "both closed");
  });

  test("a micro and a nano peer: nanosecond output, nothing truncated", async () => {
    const srvMicro = server((c) => c.write(pcapStream({}, [{ tsSec: 50, tsFrac: 1, data: new Uint8Array([1]) }])));
    const srvNano = server((c) =>
      c.write(pcapStream({ precision: "nano", littleEndian: false }, [{ tsSec: 50, tsFrac: 999, data: new Uint8Array([2]) }, { tsSec: 50, tsFrac: 1001, data: new Uint8Array([3]) }])),
    );
    const out = collect();
    const merged = merge([remote(srvMicro.port), remote(srvNano.port)], { windowMs: 60_000 });
    expect((await merged.start(out.handlers)).precision).toBe("nano");
    await until(() => out.records.length === 2, "the safe records");
    await merged.stop();
    expect(out.records.map((r) => [r.tsFrac, r.data[0], r.precision])).toEqual([[999, 2, "nano"], [1000, 1, "nano"], [1001, 3, "nano"]]);
  });
});
