// HookStage (src/pipeline/hook-stage.ts): tags kept per produced batch for pcapng comments,
// chains, the queue sink that never runs a hook inside the offering call, and dispose failing closed.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { forEachRecord, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { HookChain, HookRunner } from "../../src/hooks/index.ts";
import { ConsumerQueue } from "../../src/pipeline/consumer-queue.ts";
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
  const stage = new HookStage(new HookChain(runners), { interfaceName: "test0" });
  stages.push(stage);
  return stage;
}

async function vectorBatch(): Promise<PacketBatch> {
  const contents = await readCaptureFile(VECTOR);
  expect(contents.batches.length).toBe(1);
  return contents.batches[0]!;
}

function caplens(batch: PacketBatch): number[] {
  const out: number[] = [];
  forEachRecord(batch, (view) => out.push(view.caplen));
  return out;
}

const TAG_UDP = `export default function (pkt, ctx) { if (pkt.protocol === 17) ctx.tag("udp"); }`;
const DROP_TCP = `export default function (pkt) { return pkt.protocol !== 6; }`;
const TAG_IFACE = `export default function (pkt, ctx) { ctx.tag("if=" + pkt.interfaceName); }`;

describe("apply", () => {
  test("a tagging hook passes the batch itself and its tags become comments, record by record", async () => {
    const batch = await vectorBatch();
    const stage = await stageOf(TAG_UDP);
    const result = stage.apply(batch);
    expect(result.batch).toBe(batch);
    const protocols: number[] = [];
    forEachRecord(batch, (view, bytes) => protocols.push(bytes[view.dataOffset + 23]!));
    expect(result.tags.length).toBe(batch.count);
    result.tags.forEach((tags, i) => expect(tags).toEqual(protocols[i] === 17 ? ["udp"] : undefined));
    expect(protocols.filter((p) => p === 17).length).toBeGreaterThan(0);
    expect(stage.tagsOf(batch)).toBe(result.tags);
    const comments = stage.comments(batch)!;
    for (let i = 0; i < batch.count; i++) expect(comments(i)).toEqual(result.tags[i]);
    expect(stage.counters).toEqual({ batches: 1, packetsIn: batch.count, packetsOut: batch.count });
  });

  test("hooks see the stage's interface name", async () => {
    const stage = await stageOf(TAG_IFACE);
    const result = stage.apply(await vectorBatch());
    expect(result.tags[0]).toEqual(["if=test0"]);
  });

  test("a batch without tags has no comments; a batch the stage never produced has none either", async () => {
    const batch = await vectorBatch();
    const stage = await stageOf(DROP_TCP);
    const result = stage.apply(batch);
    expect(result.batch).not.toBe(batch);
    expect(stage.comments(result.batch)).toBeUndefined();
    expect(stage.tagsOf(result.batch)).toBeUndefined();
    expect(stage.comments(batch)).toBeUndefined();
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

describe("sinkInto", () => {
  test("write() never runs the hooks inside the call that offered the batch; the hooked batch reaches the next sink", async () => {
    const batch = await vectorBatch();
    const stage = await stageOf(DROP_TCP);
    const written: PacketBatch[] = [];
    const sink = stage.sinkInto({ write: (b) => void written.push(b) });
    const pending = sink.write(batch);
    expect(stage.counters.batches).toBe(0);
    expect(written.length).toBe(0);
    await pending;
    expect(stage.counters.batches).toBe(1);
    expect(written.length).toBe(1);
    expect(caplens(written[0]!).length).toBe(stage.counters.packetsOut);
  });

  test("a batch emptied by the hooks is not written; the next sink's promise is awaited", async () => {
    const batch = await vectorBatch();
    const drop = await stageOf(`export default () => false;`);
    const written: PacketBatch[] = [];
    await drop.sinkInto({ write: (b) => void written.push(b) }).write(batch);
    expect(written.length).toBe(0);
    expect(drop.counters.packetsOut).toBe(0);

    const pass = await stageOf(TAG_UDP);
    let settled = false;
    const done = pass.sinkInto({ write: () => Bun.sleep(5).then(() => void (settled = true)) }).write(batch);
    await done;
    expect(settled).toBe(true);
  });

  test("inside a ConsumerQueue, batches offered while the hooks wait or run are queued or dropped (counted), never run inline", async () => {
    const batch = await vectorBatch();
    const stage = await stageOf(TAG_UDP);
    const written: PacketBatch[] = [];
    const queue = new ConsumerQueue(stage.sinkInto({ write: (b) => void written.push(b) }), 2 * batch.bytes.byteLength);
    const accepted = [1, 2, 3, 4, 5].map(() => queue.offer(batch));
    expect(stage.counters.batches).toBe(0);
    expect(accepted).toEqual([true, true, false, false, false]);
    expect(queue.counters.droppedBatches).toBe(3);
    expect(queue.counters.droppedPackets).toBe(3 * batch.count);
    await queue.drained();
    expect(stage.counters.batches).toBe(2);
    expect(written.length).toBe(2);
    expect(stage.comments(written[1]!)).toBeDefined();
  });
});
