// HookStage (src/pipeline/hook-stage.ts): tags carried as meta.comments for pcapng, chains, the
// interface name per call, and dispose failing closed. (The queue in front of the stages is the
// runner's: test/integration/pipeline.test.ts.)
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { forEachRecord, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { HookChain, HookRunner } from "../../src/hooks/index.ts";
import { HookStage } from "../../src/pipeline/hook-stage.ts";
import { readCaptureFile } from "../../src/protocols/pcap/index.ts";
import { vectorPath } from "../support/fixtures.ts";

const VECTOR = vectorPath("rpcap-passive-udp.pcap");

const stages: HookStage[] = [];
afterEach(() => {
  for (const stage of stages.splice(0)) stage.dispose();
});

async function stageOf(...sources: string[]): Promise<HookStage> {
  const runners: HookRunner[] = [];
  for (const [i, source] of sources.entries()) runners.push(await HookRunner.create({ name: `hook${i}.js`, source }));
  const stage = new HookStage(new HookChain(runners));
  stages.push(stage);
  return stage;
}

async function vectorBatch(): Promise<PacketBatch> {
  const contents = await readCaptureFile(VECTOR);
  expect(contents.batches.length).toBe(1);
  return contents.batches[0]!;
}

const TAG_UDP = `export default function (pkt, ctx) { if (pkt.protocol === 17) ctx.tag("udp"); }`;
const DROP_TCP = `export default function (pkt) { return pkt.protocol !== 6; }`;
const TAG_IFACE = `export default function (pkt, ctx) { ctx.tag("if=" + pkt.interfaceName); }`;

describe("apply", () => {
  test("a tagging hook passes the batch itself and its tags become comments, record by record", async () => {
    const batch = await vectorBatch();
    const stage = await stageOf(TAG_UDP);
    const result = stage.apply(batch, "test0");
    expect(result.batch.bytes).toBe(batch.bytes);
    const protocols: number[] = [];
    forEachRecord(batch, (view, bytes) => protocols.push(bytes[view.dataOffset + 23]!));
    expect(result.tags.length).toBe(batch.count);
    result.tags.forEach((tags, i) => expect(tags).toEqual(protocols[i] === 17 ? ["udp"] : undefined));
    expect(protocols.filter((p) => p === 17).length).toBeGreaterThan(0);
    const comments = result.batch.meta!.comments!;
    for (let i = 0; i < batch.count; i++) expect(comments[i]).toEqual(result.tags[i]);
    expect(stage.counters).toEqual({ batches: 1, packetsIn: batch.count, packetsOut: batch.count });
  });

  test("hooks see the stage's interface name", async () => {
    const stage = await stageOf(TAG_IFACE);
    const result = stage.apply(await vectorBatch(), "test0");
    expect(result.tags[0]).toEqual(["if=test0"]);
  });

  test("a batch without tags has no comments", async () => {
    const batch = await vectorBatch();
    const stage = await stageOf(DROP_TCP);
    const result = stage.apply(batch);
    expect(result.batch).not.toBe(batch);
    expect(result.batch.meta?.comments).toBeUndefined();
  });

  test("a chain drops in the first hook and tags the survivors in the second, tags aligned with output records", async () => {
    const batch = await vectorBatch();
    const stage = await stageOf(DROP_TCP, TAG_UDP);
    const result = stage.apply(batch);
    let udp = 0;
    forEachRecord(batch, (view, bytes) => void (bytes[view.dataOffset + 23] === 17 && udp++));
    expect(udp).toBeGreaterThan(0);
    expect(udp).toBeLessThan(batch.count);
    expect(result.batch.count).toBe(udp);
    expect(result.tags).toEqual(new Array(udp).fill(["udp"]));
    expect(stage.counters).toEqual({ batches: 1, packetsIn: batch.count, packetsOut: udp });
    const [first, second] = stage.stats();
    expect(first!.dropped).toBe(batch.count - udp);
    expect(second!.packets).toBe(udp);
    expect(second!.tagged).toEqual({ udp });
  });

  test("after dispose() every record is dropped (a redaction hook must not fail open) and the hooks are released", async () => {
    const batch = await vectorBatch();
    const stage = await stageOf(TAG_UDP);
    stage.dispose();
    stage.dispose();
    const result = stage.apply(batch);
    expect(result.batch.count).toBe(0);
    expect(result.batch.bytes.byteLength).toBe(0);
    expect(result.batch.linktype).toBe(batch.linktype);
    expect(stage.chain.runners[0]!.disabled).toBe(true);
  });
});
