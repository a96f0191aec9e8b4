// sliceRecords, the one record slicer: views (no copy) with meta realigned to index 0.
import { expect, test } from "bun:test";
import { BATCH_RECORD_HEADER_BYTES, sliceRecords, type PacketBatch } from "../../src/packet/packet-batch.ts";

function batchOf(caplens: number[]): PacketBatch {
  const bytes = new Uint8Array(caplens.reduce((n, c) => n + BATCH_RECORD_HEADER_BYTES + c, 0));
  const dv = new DataView(bytes.buffer);
  let at = 0;
  caplens.forEach((caplen, i) => {
    dv.setUint32(at, 1000 + i, true);
    dv.setUint32(at + 8, caplen, true);
    dv.setUint32(at + 12, caplen, true);
    bytes.fill(i + 1, at + BATCH_RECORD_HEADER_BYTES, at + BATCH_RECORD_HEADER_BYTES + caplen);
    at += BATCH_RECORD_HEADER_BYTES + caplen;
  });
  return {
    bytes, count: caplens.length, linktype: 1, precision: "nano",
    meta: { inputs: Uint16Array.from([0, 1, 1, 2]), flags: Uint32Array.from([1, 2, 0, 1]), comments: [undefined, ["a"], ["b", "c"], undefined] },
  };
}

test("records [1, 3) as a view sharing the batch's bytes and meta, realigned", () => {
  const batch = batchOf([3, 5, 7, 2]);
  const from = BATCH_RECORD_HEADER_BYTES + 3;
  const to = from + 2 * BATCH_RECORD_HEADER_BYTES + 12;
  const run = sliceRecords(batch, 1, 3, from, to);
  expect(run.count).toBe(2);
  expect(run.linktype).toBe(1);
  expect(run.precision).toBe("nano");
  expect(run.bytes.buffer).toBe(batch.bytes.buffer);
  expect([run.bytes.byteOffset, run.bytes.byteLength]).toEqual([from, to - from]);
  expect(new DataView(run.bytes.buffer, run.bytes.byteOffset).getUint32(0, true)).toBe(1001);
  expect(Array.from(run.meta!.inputs!)).toEqual([1, 1]);
  expect(run.meta!.inputs!.buffer).toBe(batch.meta!.inputs!.buffer);
  expect(Array.from(run.meta!.flags!)).toEqual([2, 0]);
  expect(run.meta!.comments).toEqual([["a"], ["b", "c"]]);
});

test("the whole range is the batch itself; no meta stays no meta", () => {
  const batch = batchOf([3, 5, 7, 2]);
  expect(sliceRecords(batch, 0, 4, 0, batch.bytes.byteLength)).toBe(batch);
  const { meta: _meta, ...bare } = batch;
  const cut = sliceRecords(bare, 0, 1, 0, BATCH_RECORD_HEADER_BYTES + 3);
  expect(cut.meta).toBeUndefined();
  expect(cut.count).toBe(1);
});
