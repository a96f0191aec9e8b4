// Batches of several inputs: a merged batch carries each record's input index in meta.inputs.
// Some consumers work per input (hooks see one interface name per call; a pcapng writer writes
// one interface id per EPB run), so they cut a batch into runs of records from one input, as
// views sharing the batch's bytes, and join results back with concatBatches.
import { BATCH_RECORD_HEADER_BYTES, sliceRecords, type PacketBatch, type RecordMeta } from "../packet/packet-batch.ts";

/** A run of consecutive records from one input. */
export interface InputRun {
  readonly input: number;
  readonly batch: PacketBatch;
}

/** The batch cut where the input changes (one run, the batch itself, when it has one input). */
export function inputRuns(batch: PacketBatch): InputRun[] {
  const inputs = batch.meta?.inputs;
  if (!inputs || batch.count === 0) return [{ input: inputs?.[0] ?? 0, batch }];
  let uniform = true;
  for (let i = 1; i < batch.count; i++) if (inputs[i] !== inputs[0]) uniform = false;
  if (uniform) return [{ input: inputs[0]!, batch }];
  const dv = new DataView(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
  const runs: InputRun[] = [];
  let startIndex = 0;
  let startOffset = 0;
  let offset = 0;
  for (let i = 0; i <= batch.count; i++) {
    if (i === batch.count || (i > startIndex && inputs[i] !== inputs[startIndex])) {
      runs.push({ input: inputs[startIndex]!, batch: sliceRecords(batch, startIndex, i, startOffset, offset) });
      startIndex = i;
      startOffset = offset;
    }
    if (i < batch.count) offset += BATCH_RECORD_HEADER_BYTES + dv.getUint32(offset + 8, true);
  }
  return runs;
}

/** Joins batches of one linktype and precision into one owned batch, meta kept aligned. */
export function concatBatches(batches: readonly PacketBatch[]): PacketBatch {
  const nonEmpty = batches.filter((b) => b.count > 0);
  if (nonEmpty.length === 1) return nonEmpty[0]!;
  const first = batches[0]!;
  const count = nonEmpty.reduce((n, b) => n + b.count, 0);
  const bytes = new Uint8Array(nonEmpty.reduce((n, b) => n + b.bytes.byteLength, 0));
  let at = 0;
  for (const b of nonEmpty) {
    bytes.set(b.bytes, at);
    at += b.bytes.byteLength;
  }
  const anyMeta = nonEmpty.some((b) => b.meta);
  let meta: RecordMeta | undefined;
  if (anyMeta) {
    const has = (key: keyof RecordMeta) => nonEmpty.some((b) => b.meta?.[key] !== undefined);
    const inputs = has("inputs") ? new Uint16Array(count) : undefined;
    const flags = has("flags") ? new Uint32Array(count) : undefined;
    const comments: (readonly string[] | undefined)[] | undefined = has("comments") ? [] : undefined;
    let index = 0;
    for (const b of nonEmpty) {
      if (inputs && b.meta?.inputs) inputs.set(b.meta.inputs, index);
      if (flags && b.meta?.flags) flags.set(b.meta.flags, index);
      if (comments) for (let i = 0; i < b.count; i++) comments.push(b.meta?.comments?.[i]);
      index += b.count;
    }
    meta = { ...(inputs ? { inputs } : {}), ...(flags ? { flags } : {}), ...(comments ? { comments } : {}) };
  }
  return { bytes, count, linktype: first.linktype, precision: first.precision, ...(meta ? { meta } : {}) };
}
