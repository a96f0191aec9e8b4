// The ring's block walkers (native ring-walk.c built by cc -O2 with the program, the same C
// compiled by TinyCC at run time, and JavaScript) on
// TPACKET_V3 blocks built in memory: nanoseconds per packet for one thread walking 16 blocks of
// 512 KiB over and over into a staging area, for a few frame sizes, with and without VLAN tags.
// This is the walk alone, with warm caches; in a live capture the frames come from the kernel
// on another core and cost more (docs/capture-history.md, "The worker's loop").
// Usage: bun run scripts/bench/index.ts ring-walk. Prints, never asserts; noisy on a shared machine.
import { ptr } from "bun:ffi";
import { createBlockWalker } from "../../src/capture/linux-ring/block-walker.ts";
import { loadRingNatives, type RingNativesOrigin } from "../../src/capture/linux-ring/ring-natives.ts";
import { ringBlockBytes } from "../../src/capture/linux-ring/ring-socket.ts";

/** The block size a default-snaplen capture on lo gets (snaplen 262144, MTU 65536). */
const RING_BLOCK_BYTES = ringBlockBytes(262144, 65536);
import { BatchBuilder } from "../../src/capture/batch-builder.ts";
import { patternFrame, writeRingBlock } from "../../test/support/tpacket-block.ts";

const BLOCKS = 16;
const FLUSH_BYTES = 256 * 1024;
/** Walks of the whole ring per measurement; the first one warms up (JIT, pages). */
const ROUNDS = 40;
/** tpacket3_hdr + sockaddr_ll + padding before each frame in the test blocks (tpacket-block.ts). */
const FRAME_OVERHEAD_BYTES = 96;
const VLAN_VALID = 16;

type Walker = RingNativesOrigin | "js";

const loaded = { prebuilt: loadRingNatives("prebuilt"), tinycc: loadRingNatives("tinycc") };

function nsPerPacket(kind: Walker, frameBytes: number, vlan: boolean): number {
  const region = new Uint8Array(RING_BLOCK_BYTES * BLOCKS + BatchBuilder.stagingBytesFor(FLUSH_BYTES));
  const perBlock = Math.floor((RING_BLOCK_BYTES - 64) / (frameBytes + FRAME_OVERHEAD_BYTES));
  for (let b = 0; b < BLOCKS; b++) {
    const frames = Array.from({ length: perBlock }, (_, i) => ({ data: patternFrame(frameBytes, i), ...(vlan ? { status: VLAN_VALID, vlanTci: 42 } : {}) }));
    writeRingBlock(region, b * RING_BLOCK_BYTES, RING_BLOCK_BYTES, frames);
  }
  const options = { snaplen: 262144, keepIncoming: true, keepOutgoing: true, nano: false, blockBytes: RING_BLOCK_BYTES, interfaceName: "bench" };
  const memory = { buffer: region.buffer, address: Number(ptr(region)) };
  const code = kind === "js" ? undefined : loaded[kind];
  if (code && !("error" in code) && code.natives.origin !== kind) console.log(`  (no ${kind} library: ${code.natives.origin} instead; run the build)`);
  const { walker, note } = code ? createBlockWalker(memory, options, "native", "error" in code ? code : code.natives) : createBlockWalker(memory, options, "js");
  if (note) console.log(`  (${note})`);
  const staging = region.subarray(RING_BLOCK_BYTES * BLOCKS);
  const batch = new BatchBuilder(FLUSH_BYTES, () => true, { bytes: staging, address: Number(ptr(staging)) });
  const walkAll = () => {
    for (let b = 0; b < BLOCKS; b++) {
      walker.walk(b * RING_BLOCK_BYTES, batch);
      if (batch.full) batch.flush();
    }
  };
  walkAll();
  const started = performance.now();
  for (let r = 0; r < ROUNDS; r++) walkAll();
  return ((performance.now() - started) * 1e6) / (ROUNDS * BLOCKS * perBlock);
}

export async function benchRingWalk(): Promise<void> {
  console.log(`\n## ring block walkers: ns per packet, ${BLOCKS} blocks of ${RING_BLOCK_BYTES / 1024} KiB walked ${ROUNDS} times (warm caches)`);
  console.log("| frame bytes | VLAN tag put back | native, cc -O2 (default) | native, TinyCC | JavaScript |");
  console.log("|---|---|---|---|---|");
  for (const frameBytes of [60, 142, 1514]) {
    for (const vlan of [false, true]) {
      const prebuilt = nsPerPacket("prebuilt", frameBytes, vlan);
      const tinycc = nsPerPacket("tinycc", frameBytes, vlan);
      const js = nsPerPacket("js", frameBytes, vlan);
      console.log(`| ${frameBytes} | ${vlan ? "yes" : "no"} | ${prebuilt.toFixed(1)} | ${tinycc.toFixed(1)} | ${js.toFixed(1)} |`);
    }
  }
}

if (import.meta.main) await benchRingWalk();
