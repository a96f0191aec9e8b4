// The ring's block walkers (native ring-walk.c, built by cc at build time or by TinyCC at run
// time, and JavaScript) on TPACKET_V3 blocks built in memory: all must write byte-identical
// batches, at the same batch boundaries, and what they write must be the records libpcap's
// pcap-linux.c would give.
import { describe, expect, test } from "bun:test";
import { ptr } from "bun:ffi";
import { createBlockWalker, type WalkOptions } from "../../src/capture/linux-ring/block-walker.ts";
import { loadRingNatives, type RingNativesOrigin } from "../../src/capture/linux-ring/ring-natives.ts";
import { BatchBuilder } from "../../src/capture/batch-builder.ts";
import { BatchChannelReader, BatchChannelWriter, createBatchChannelMemory } from "../../src/capture/batch-channel.ts";
import { ownedBytes } from "../../src/packet/packet-batch.ts";
import { patternFrame, writeRingBlock, type RingFrameSpec } from "../support/tpacket-block.ts";

const BLOCK_BYTES = 64 * 1024;
const HOST = 0;
const OUTGOING = 4;
const VLAN_VALID = 16;
const VLAN_TPID_VALID = 64;

type Output = "staging beside the ring" | "separate staging" | "channel slots";
/** The native walker from either origin, or the JavaScript one. */
type Walker = RingNativesOrigin | "js";
const WALKERS: readonly Walker[] = ["prebuilt", "tinycc", "js"];

/** Each origin's native code, loaded once (ring-natives.ts: "prebuilt" is the build's library). */
const loaded = { prebuilt: loadRingNatives("prebuilt"), tinycc: loadRingNatives("tinycc") };
const natives = (origin: RingNativesOrigin) => {
  const code = loaded[origin];
  return "error" in code ? code : code.natives;
};

interface Scenario {
  blocks: RingFrameSpec[][];
  snaplen?: number;
  keepIncoming?: boolean;
  keepOutgoing?: boolean;
  nano?: boolean;
  flushBytes?: number;
}

interface Batch {
  bytes: Uint8Array;
  count: number;
}

/**
 * Walks every block of the scenario into batches and returns them. The poster (or the channel's
 * reader) refuses every other hand-over, so a walk stops mid-block and must resume there.
 */
function walkAll(kind: Walker, output: Output, scenario: Scenario): Batch[] {
  const flushBytes = scenario.flushBytes ?? 256 * 1024;
  const stagingBytes = BatchBuilder.stagingBytesFor(flushBytes);
  const ringBytes = BLOCK_BYTES * scenario.blocks.length;
  const region = new Uint8Array(ringBytes + stagingBytes);
  scenario.blocks.forEach((frames, i) => writeRingBlock(region, i * BLOCK_BYTES, BLOCK_BYTES, frames));
  const options: WalkOptions = {
    snaplen: scenario.snaplen ?? 262144,
    keepIncoming: scenario.keepIncoming ?? true,
    keepOutgoing: scenario.keepOutgoing ?? true,
    nano: scenario.nano ?? false,
    blockBytes: BLOCK_BYTES,
    interfaceName: "test0",
  };
  const memory = { buffer: region.buffer, address: Number(ptr(region)) };
  const { walker, note } = kind === "js" ? createBlockWalker(memory, options, "js") : createBlockWalker(memory, options, "native", natives(kind));
  expect(note).toBeUndefined();
  expect(walker.kind).toBe(kind === "js" ? "js" : "native");

  const batches: Batch[] = [];
  let attempts = 0;
  let batch: BatchBuilder;
  let drain = () => {};
  if (output === "channel slots") {
    const memory = createBatchChannelMemory(stagingBytes, 2);
    const writer = new BatchChannelWriter(memory);
    const reader = new BatchChannelReader(memory);
    const memories = writer.slotViews.map((bytes) => ({ bytes, address: Number(ptr(bytes)) }));
    batch = new BatchBuilder(flushBytes, {
      claim: () => {
        const slot = writer.claim();
        return slot < 0 ? null : memories[slot]!;
      },
      publish: (byteLength, count) => writer.publishClaimed(byteLength, count),
    });
    drain = () => void reader.drain((bytes, count) => batches.push({ bytes: ownedBytes(bytes), count })) /* lent: kept past the call */;
  } else {
    const bytes = output === "staging beside the ring" ? region.subarray(ringBytes) : new Uint8Array(stagingBytes);
    batch = new BatchBuilder(flushBytes, (staged, count) => (attempts++ % 2 === 1 ? (batches.push({ bytes: staged.slice(), count }), true) : false), {
      bytes,
      address: Number(ptr(bytes)),
    });
  }
  for (let i = 0; i < scenario.blocks.length; i++) {
    let calls = 0;
    while (!walker.walk(i * BLOCK_BYTES, batch)) {
      drain(); // slots: the reader frees them only once the walker found all of them full
      if (++calls > 1000) throw new Error("walker made no progress");
    }
    if (batch.full) batch.flush();
  }
  while (batch.count > 0 && !batch.flush());
  drain();
  return batches;
}

/** The records as [ts_sec, ts_frac, caplen, len, data] rows. */
function records(batches: Batch[]): [number, number, number, number, number[]][] {
  const rows: [number, number, number, number, number[]][] = [];
  for (const { bytes, count } of batches) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const caplen = view.getUint32(at + 8, true);
      rows.push([view.getUint32(at, true), view.getUint32(at + 4, true), caplen, view.getUint32(at + 12, true), [...bytes.subarray(at + 16, at + 16 + caplen)]]);
      at += 16 + caplen;
    }
    expect(at).toBe(bytes.byteLength);
  }
  return rows;
}

const OUTPUTS: Output[] = ["staging beside the ring", "separate staging", "channel slots"];

/** Runs every walker into every kind of output; all must give the same batches. Returns them. */
function expectIdentical(scenario: Scenario): Batch[] {
  const reference = walkAll("prebuilt", "separate staging", scenario);
  for (const kind of WALKERS) {
    for (const output of OUTPUTS) {
      const got = walkAll(kind, output, scenario);
      expect({ kind, output, batches: got.map((b) => [b.count, [...b.bytes]]) }).toEqual({ kind, output, batches: reference.map((b) => [b.count, [...b.bytes]]) });
    }
  }
  return reference;
}

describe("the ring's native code", () => {
  test("the build's library matches the sources and loads; TinyCC compiles the same sources", () => {
    // "prebuilt" falls back to TinyCC when build/ has no library for these sources: run the build.
    expect(natives("prebuilt")).toMatchObject({ origin: "prebuilt" });
    expect(natives("tinycc")).toMatchObject({ origin: "tinycc" });
  });
});

describe("ring block walkers: native (both origins) and JavaScript write the same records", () => {
  test("plain frames, microsecond timestamps", () => {
    const frames = [60, 142, 1514, 14].map((length, i) => ({ data: patternFrame(length, i), len: length + i, sec: 100 + i, nsec: 999_999_999 - i }));
    const rows = records(expectIdentical({ blocks: [frames] }));
    expect(rows).toEqual(frames.map((f) => [f.sec, Math.floor(f.nsec / 1000), f.data.length, f.len, [...f.data]]));
  });

  test("nanosecond timestamps are kept whole", () => {
    const frames = [{ data: patternFrame(60, 1), sec: 7, nsec: 123_456_789 }];
    expect(records(expectIdentical({ blocks: [frames], nano: true }))).toEqual([[7, 123_456_789, 60, 60, [...frames[0]!.data]]]);
  });

  test("outgoing frames are skipped or kept by direction", () => {
    const frames = [HOST, OUTGOING, HOST, OUTGOING, OUTGOING].map((packetType, i) => ({ data: patternFrame(64, i), packetType }));
    const kept = (keepIncoming: boolean, keepOutgoing: boolean) =>
      records(expectIdentical({ blocks: [frames], keepIncoming, keepOutgoing })).map((r) => r[4][0]);
    const first = (i: number) => frames[i]!.data[0];
    expect(kept(true, true)).toEqual([0, 1, 2, 3, 4].map(first));
    expect(kept(true, false)).toEqual([0, 2].map(first));
    expect(kept(false, true)).toEqual([1, 3, 4].map(first));
    expect(kept(false, false)).toEqual([]);
  });

  test("a stripped 802.1Q tag is put back after the MACs, with tp_vlan_tpid only when TPID_VALID", () => {
    const data = patternFrame(60, 3);
    const frames = [
      { data, status: VLAN_VALID, vlanTci: 0x1234 | (0xdead << 16), vlanTpid: 0x88a8 }, // TPID not valid: 0x8100
      { data, status: VLAN_VALID | VLAN_TPID_VALID, vlanTci: 0x0005, vlanTpid: 0x88a8 },
      { data: patternFrame(11, 4), status: VLAN_VALID, vlanTci: 7 }, // shorter than the MACs: no tag
    ];
    const rows = records(expectIdentical({ blocks: [frames] }));
    const tagged = (tag: number[]) => [...data.subarray(0, 12), ...tag, ...data.subarray(12)];
    expect(rows[0]!.slice(2)).toEqual([64, 64, tagged([0x81, 0x00, 0x12, 0x34])]);
    expect(rows[1]!.slice(2)).toEqual([64, 64, tagged([0x88, 0xa8, 0x00, 0x05])]);
    expect(rows[2]!.slice(2)).toEqual([11, 11, [...frames[2]!.data]]);
  });

  test("snaplen cuts frames, also inside the re-inserted tag", () => {
    const data = patternFrame(100, 5);
    const blocks = [[{ data }, { data, status: VLAN_VALID, vlanTci: 0xabc }]];
    for (const snaplen of [8, 12, 13, 14, 15, 16, 17, 64]) {
      const rows = records(expectIdentical({ blocks, snaplen }));
      expect(rows[0]!.slice(2)).toEqual([snaplen, 100, [...data.subarray(0, snaplen)]]);
      const tagged = [...data.subarray(0, 12), 0x81, 0x00, 0x0a, 0xbc, ...data.subarray(12)];
      expect(rows[1]!.slice(2)).toEqual([snaplen, 104, tagged.slice(0, snaplen)]);
    }
  });

  test("a full batch that cannot be handed over stops the walk mid-block; the next call resumes there", () => {
    // ~1,200 bytes per batch: three 400-byte records, then the batch is full.
    const blocks = [0, 1, 2].map((b) => Array.from({ length: 40 }, (_, i) => ({ data: patternFrame(384, b * 40 + i), packetType: i % 5 === 4 ? OUTGOING : HOST })));
    const batches = expectIdentical({ blocks, flushBytes: 1200, keepOutgoing: false });
    expect(batches.length).toBeGreaterThan(20);
    const rows = records(batches);
    expect(rows.length).toBe(3 * 32);
    expect(rows.map((r) => r[0])).toEqual(blocks.flatMap((frames) => frames.flatMap((_f, i) => (i % 5 === 4 ? [] : [1_700_000_000 + i]))));
  });

  test("a frame reaching past its block is an error, not a read out of bounds", () => {
    for (const kind of WALKERS) {
      const blocks = [[{ data: patternFrame(60, 1) }, { data: patternFrame(60, 2), snaplenOverride: BLOCK_BYTES }]];
      expect(() => walkAll(kind, "separate staging", { blocks })).toThrow("ring frame overruns its block");
      // A first frame past the block's end, or not on a 4-byte boundary.
      for (const firstPacketOffset of [BLOCK_BYTES - 8, 50]) {
        const region = new Uint8Array(BLOCK_BYTES + BatchBuilder.stagingBytesFor(4096));
        writeRingBlock(region, 0, BLOCK_BYTES, [{ data: patternFrame(60, 1) }]);
        new DataView(region.buffer).setUint32(16, firstPacketOffset, true);
        const options = { snaplen: 65535, keepIncoming: true, keepOutgoing: true, nano: false, blockBytes: BLOCK_BYTES, interfaceName: "test0" };
        const memory = { buffer: region.buffer, address: Number(ptr(region)) };
        const { walker } = kind === "js" ? createBlockWalker(memory, options, "js") : createBlockWalker(memory, options, "native", natives(kind));
        const staging = region.subarray(BLOCK_BYTES);
        const batch = new BatchBuilder(4096, () => true, { bytes: staging, address: Number(ptr(staging)) });
        expect(() => walker.walk(0, batch)).toThrow("ring frame overruns its block");
      }
    }
  });
});
