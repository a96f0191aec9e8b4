// Hooks see what the processing stages mark: pkt.direction from the EPB direction bits and
// pkt.badChecksum from the checksums stage's comment; the marks survive a hook that drops
// packets (realigned), also when a big batch goes through the VM in chunks.
import { describe, expect, test } from "bun:test";
import { HookRunner } from "../../src/hooks/index.ts";
import { HOOK_CHUNK_MAX_BYTES } from "../../src/hooks/sandbox.ts";
import { silentLogger } from "../../src/logging/index.ts";
import { PacketBatchBuilder, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { ChecksumsStage } from "../../src/pipeline/stages/checksums.ts";
import { frame, ipPacket } from "../support/packet-builder.ts";

function batchOf(frames: Uint8Array[]): PacketBatch {
  const b = new PacketBatchBuilder(1, "micro");
  frames.forEach((f, i) => b.push(1_700_000_000, i, f.length, f));
  return b.take()!;
}

describe("hooks see processing marks", () => {
  test("pkt.direction and pkt.badChecksum; a dropping hook keeps the survivors' flags and comments aligned", async () => {
    const good = frame("ethernet", ipPacket({ src: "10.0.0.1", dst: "10.0.0.2", l4: { kind: "udp", sport: 1, dport: 2, payload: 4 } }));
    const bad = good.slice();
    bad[14 + 20 + 6]! ^= 0xff;
    // Drop every packet without a direction; tag the rest with what the hook saw.
    const source = `export default function (pkt, ctx) {
      if (pkt.direction === undefined) return "drop";
      ctx.tag(pkt.direction + (pkt.badChecksum ? "-bad" : "-good"));
    }`;
    const runner = await HookRunner.create({ name: "t.js", source, logger: silentLogger });
    try {
      const checked = new ChecksumsStage("check").apply(batchOf([good, bad, good, bad]));
      const input: PacketBatch = { ...checked, meta: { ...checked.meta, flags: Uint32Array.from([1, 0, 2, 1]) } };
      const result = runner.run(input);
      expect(result.batch.count).toBe(3);
      expect(result.tags).toEqual([["in-good"], ["out-good"], ["in-bad"]]);
      expect(Array.from(result.batch.meta!.flags!)).toEqual([1, 2, 1]);
      expect(result.batch.meta!.comments).toEqual([undefined, undefined, ["checksum bad: udp"]]);
    } finally {
      runner.dispose();
    }
  });

  test("a batch bigger than one VM chunk: each chunk reads its own records' directions", async () => {
    const big = frame("ethernet", ipPacket({ src: "10.0.0.1", dst: "10.0.0.2", l4: { kind: "udp", sport: 1, dport: 2, payload: 1400 } }));
    const count = Math.ceil((HOOK_CHUNK_MAX_BYTES * 2.5) / (big.length + 16));
    const flags = Uint32Array.from({ length: count }, (_, i) => (i % 3 === 0 ? 2 : 1));
    const runner = await HookRunner.create({ name: "t.js", source: `export default (pkt) => pkt.direction === "out" ? "drop" : undefined;`, logger: silentLogger });
    try {
      const result = runner.run({ ...batchOf(Array.from({ length: count }, () => big)), meta: { flags } });
      expect(result.batch.count).toBe(count - Math.ceil(count / 3));
      expect(Array.from(result.batch.meta!.flags!).every((f) => f === 1)).toBe(true);
    } finally {
      runner.dispose();
    }
  });
});
