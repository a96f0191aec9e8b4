// Helpers for rotation tests: synthetic batches with chosen timestamps, and judges that read
// the files back (our reader for record bytes, capinfos and tshark as outside judges).
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { PacketBatchBuilder, type PacketBatch, type RecordMeta } from "../../src/packet/packet-batch.ts";
import { syntheticFrame } from "../../src/capture/synthetic-source.ts";
import { readCaptureFile } from "../../src/protocols/pcap/index.ts";
import { isManifestName } from "../../src/outputs/rotating-file/owned-files.ts";

/** One batch of UDP frames, packet i at timestamps[i] seconds (+ i microseconds), payload tagged by `firstIndex + i`. */
export function batchAt(timestamps: readonly number[], firstIndex = 0, meta?: RecordMeta): PacketBatch {
  const builder = new PacketBatchBuilder(1, "micro", 4096);
  timestamps.forEach((ts, i) => {
    const frame = syntheticFrame(firstIndex + i, 100);
    // Tag the frame with its index so order checks need no timestamps.
    new DataView(frame.buffer).setUint32(42, firstIndex + i);
    builder.push(ts, i, frame.byteLength, frame);
  });
  const batch = builder.take()!;
  return meta ? { ...batch, meta } : batch;
}

/** The tag (index) of every packet in a file, in file order. */
export async function packetTags(path: string): Promise<number[]> {
  const contents = await readCaptureFile(path);
  const tags: number[] = [];
  for (const batch of contents.batches) {
    const view = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
    let at = 0;
    for (let i = 0; i < batch.count; i++) {
      const caplen = view.getUint32(at + 8, true);
      tags.push(view.getUint32(at + 16 + 42));
      at += 16 + caplen;
    }
  }
  return tags;
}

/** Files in `dir`, sorted by name, without the rotating output's manifest (owned-files.ts). */
export function filesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => !isManifestName(name))
    .sort();
}

/** capinfos' packet count of a file (fails the test when capinfos cannot read it). */
export function capinfosCount(path: string): number {
  const proc = Bun.spawnSync(["capinfos", "-M", "-c", "-r", "-T", path]);
  if (proc.exitCode !== 0) throw new Error(`capinfos ${path}: ${proc.stderr.toString()}`);
  return Number(proc.stdout.toString().trim().split("\t").at(-1));
}

/** tshark fields of every packet, one array per packet. */
export function tsharkFields(path: string, fields: readonly string[]): string[][] {
  const args = ["tshark", "-r", path, "-T", "fields", ...fields.flatMap((f) => ["-e", f])];
  const proc = Bun.spawnSync(args);
  if (proc.exitCode !== 0) throw new Error(`tshark ${path}: ${proc.stderr.toString()}`);
  return proc.stdout
    .toString()
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => l.split("\t"));
}

export function pathsIn(dir: string): string[] {
  return filesIn(dir).map((f) => join(dir, f));
}
