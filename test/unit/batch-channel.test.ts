// BatchChannel: the shared-memory slots between a capture worker and the main thread. Both
// sides run in one thread here (the memory is the same whichever thread touches it); the
// integration capture tests run it across a real Worker.
import { describe, expect, test } from "bun:test";
import { BatchChannelReader, BatchChannelWriter, createBatchChannelMemory } from "../../src/capture/batch-channel.ts";
import { isLentBytes, ownedBytes } from "../../src/packet/packet-batch.ts";

function batchOf(byte: number, length: number): Uint8Array {
  return new Uint8Array(length).fill(byte);
}

describe("BatchChannel", () => {
  test("batches come out in order, lent as views of their slot; an owned copy outlives the slot", () => {
    const memory = createBatchChannelMemory(64, 4);
    const writer = new BatchChannelWriter(memory);
    const reader = new BatchChannelReader(memory);
    expect(writer.publish(batchOf(1, 10), 1)).toBe(true);
    expect(writer.publish(batchOf(2, 64), 2)).toBe(true);
    const got: { bytes: Uint8Array; count: number; first: number; lent: boolean }[] = [];
    const kept: Uint8Array[] = [];
    expect(
      reader.drain((bytes, count) => {
        got.push({ bytes, count, first: bytes[0]!, lent: isLentBytes(bytes) });
        kept.push(ownedBytes(bytes));
      }),
    ).toBe(2);
    expect(got.map((g) => [g.bytes.byteLength, g.count, g.first, g.lent])).toEqual([
      [10, 1, 1, true],
      [64, 2, 2, true],
    ]);
    // The owned copy: a plain ArrayBuffer of exactly the batch's size.
    expect(kept[0]!.buffer).toBeInstanceOf(ArrayBuffer);
    expect(isLentBytes(kept[0]!)).toBe(false);
    expect(kept[0]!.buffer.byteLength).toBe(10);
    // A later batch in the same slot overwrites the lent view, never the copy.
    for (let i = 0; i < 4; i++) expect(writer.publish(batchOf(9, 10), 1)).toBe(true);
    expect(got[0]!.bytes.every((b) => b === 9)).toBe(true);
    expect(kept[0]!.every((b) => b === 1)).toBe(true);
  });

  test("a slot is freed only when the consumer's call returns", () => {
    const memory = createBatchChannelMemory(16, 1);
    const writer = new BatchChannelWriter(memory);
    const reader = new BatchChannelReader(memory);
    expect(writer.publish(batchOf(1, 4), 1)).toBe(true);
    const during: boolean[] = [];
    reader.drain((bytes) => {
      during.push(writer.publish(batchOf(2, 4), 1)); // the only slot is still lent: refused
      during.push(bytes.every((b) => b === 1));
    });
    expect(during).toEqual([false, true]);
    expect(writer.publish(batchOf(2, 4), 1)).toBe(true);
  });

  test("the writer is refused while every slot is full, and resumes once the reader drains", () => {
    const memory = createBatchChannelMemory(16, 2);
    const writer = new BatchChannelWriter(memory);
    const reader = new BatchChannelReader(memory);
    expect(writer.publish(batchOf(1, 4), 1)).toBe(true);
    expect(writer.publish(batchOf(2, 4), 1)).toBe(true);
    expect(writer.full).toBe(true);
    expect(writer.publish(batchOf(3, 4), 1)).toBe(false);
    const seen: number[] = [];
    reader.drain((bytes) => seen.push(bytes[0]!));
    expect(writer.full).toBe(false);
    expect(writer.publish(batchOf(3, 4), 1)).toBe(true);
    reader.drain((bytes) => seen.push(bytes[0]!));
    expect(seen).toEqual([1, 2, 3]);
  });

  test("counters wrap at 2^32 without losing or repeating a batch", () => {
    const memory = createBatchChannelMemory(8, 4);
    const control = new Int32Array(memory.control);
    control[0] = -2; // published: 2^32 - 2
    control[1] = -2; // consumed
    const writer = new BatchChannelWriter(memory);
    const reader = new BatchChannelReader(memory);
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      expect(writer.publish(batchOf(i, 1), 1)).toBe(true);
      reader.drain((bytes) => seen.push(bytes[0]!));
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
  });

  test("a batch larger than a slot is a bug, not a silent cut", () => {
    const writer = new BatchChannelWriter(createBatchChannelMemory(8, 2));
    expect(() => writer.publish(batchOf(1, 9), 1)).toThrow(RangeError);
  });

  test("waitForBatch resolves on a publish, and on close", async () => {
    const memory = createBatchChannelMemory(8, 2);
    const writer = new BatchChannelWriter(memory);
    const reader = new BatchChannelReader(memory);
    const waiting = reader.waitForBatch();
    writer.publish(batchOf(1, 1), 1);
    await waiting;
    expect(reader.drain(() => {})).toBe(1);
    const second = reader.waitForBatch();
    reader.close();
    await second;
    expect(reader.isClosed).toBe(true);
  });

  test("a batch written in place (claim, publishClaimed) reaches the reader; no slot is claimed while all are full", () => {
    const memory = createBatchChannelMemory(16, 2);
    const writer = new BatchChannelWriter(memory);
    const reader = new BatchChannelReader(memory);
    const seen: number[][] = [];
    for (const byte of [1, 2]) {
      const slot = writer.claim();
      expect(slot).toBeGreaterThanOrEqual(0);
      writer.slotViews[slot]!.fill(byte, 0, 3);
      writer.publishClaimed(3, 1);
    }
    expect(writer.claim()).toBe(-1);
    expect(() => writer.publishClaimed(3, 1)).toThrow("without a claimed slot");
    reader.drain((bytes, count) => seen.push([...bytes, count]));
    expect(seen).toEqual([
      [1, 1, 1, 1],
      [2, 2, 2, 1],
    ]);
    // Copies and in-place batches share the order.
    expect(writer.publish(batchOf(3, 2), 2)).toBe(true);
    writer.slotViews[writer.claim()]!.fill(4, 0, 1);
    writer.publishClaimed(1, 1);
    reader.drain((bytes, count) => seen.push([...bytes, count]));
    expect(seen.slice(2)).toEqual([
      [3, 3, 2],
      [4, 1],
    ]);
    expect(() => writer.publishClaimed(17, 1)).toThrow(RangeError);
  });

  test("each batch goes to the lowest free slot: a reader that keeps up leaves the other slots untouched", () => {
    const memory = createBatchChannelMemory(16, 4);
    const writer = new BatchChannelWriter(memory);
    const reader = new BatchChannelReader(memory);
    const data = new Uint8Array(memory.data);
    // Which slot a lent batch is in, from its offset in the shared memory.
    const slotsRead: number[] = [];
    const read = () => reader.drain((bytes) => slotsRead.push(bytes.byteOffset / memory.slotBytes));
    for (let i = 1; i <= 5; i++) {
      expect(writer.publish(batchOf(i, 1), 1)).toBe(true);
      read();
    }
    expect(slotsRead).toEqual([0, 0, 0, 0, 0]);
    expect([...data.subarray(memory.slotBytes)].every((byte) => byte === 0)).toBe(true);
    // A reader behind by three: slots 0, 1, 2 hold batches; read in order, then slot 0 again.
    slotsRead.length = 0;
    for (let i = 6; i <= 8; i++) writer.publish(batchOf(i, 1), 1);
    const order: number[] = [];
    reader.drain((bytes) => order.push(bytes[0]!));
    expect(order).toEqual([6, 7, 8]);
    writer.publish(batchOf(9, 1), 1);
    writer.publish(batchOf(10, 1), 1);
    // With 0 and 1 held, a claim takes 2; freeing them makes 0 the next.
    expect(writer.claim()).toBe(2);
    writer.publishClaimed(1, 1);
    read();
    expect(slotsRead).toEqual([0, 1, 2]);
    expect(writer.claim()).toBe(0);
  });
});
