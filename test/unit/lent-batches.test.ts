// Lent batches (a live capture's shared memory, reused once the receiving call returns): the
// places that hold a batch past the call keep an owned copy, and only those.
import { describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { isLentBatch, ownedBatch, type PacketBatch } from "../../src/packet/packet-batch.ts";
import { ConsumerQueue } from "../../src/pipeline/consumer-queue.ts";
import { SocketWriter } from "../../src/net/socket-writer.ts";

/** A one-record batch in shared memory, like the capture's batch channel lends. */
function lentBatch(fill: number, dataBytes = 8): { batch: PacketBatch; memory: Uint8Array } {
  const memory = new Uint8Array(new SharedArrayBuffer(16 + dataBytes));
  new DataView(memory.buffer).setUint32(8, dataBytes, true);
  new DataView(memory.buffer).setUint32(12, dataBytes, true);
  memory.fill(fill, 16);
  return { batch: { bytes: memory, count: 1, linktype: 1, precision: "micro" }, memory };
}

describe("lent batches", () => {
  test("isLentBatch tells shared memory (and views of it) from owned buffers; ownedBatch copies only lent ones", () => {
    const { batch } = lentBatch(7);
    expect(isLentBatch(batch)).toBe(true);
    expect(isLentBatch({ ...batch, bytes: batch.bytes.subarray(0, 20) })).toBe(true);
    const owned = ownedBatch(batch);
    expect(isLentBatch(owned)).toBe(false);
    expect([...owned.bytes]).toEqual([...batch.bytes]);
    expect(ownedBatch(owned)).toBe(owned); // no second copy
  });

  test("ConsumerQueue hands an idle sink the lent batch itself, and holds a copy while the sink is busy", async () => {
    const seen: { lent: boolean; data: number }[] = [];
    let release!: () => void;
    const queue = new ConsumerQueue({
      write(batch) {
        seen.push({ lent: isLentBatch(batch), data: batch.bytes[16]! });
        if (seen.length === 1) return new Promise<void>((resolve) => (release = resolve));
      },
    });
    const first = lentBatch(1);
    queue.offer(first.batch);
    const second = lentBatch(2);
    queue.offer(second.batch);
    second.memory.fill(0xee); // the capture reuses the memory once offer() returned
    release();
    await queue.drained();
    expect(seen).toEqual([
      { lent: true, data: 1 },
      { lent: false, data: 2 },
    ]);
  });

  /** A socket whose kernel takes 4 bytes of the first write, then everything: what it took, in order. */
  function slowSocket() {
    let accept = 4;
    const written: number[] = [];
    const socket = {
      write(bytes: Uint8Array) {
        const n = Math.min(accept, bytes.byteLength);
        written.push(...bytes.subarray(0, n));
        accept = 1024;
        return n;
      },
    } as unknown as Socket<unknown>;
    return { writer: new SocketWriter(socket), written };
  }

  test("SocketWriter keeps a copy of what the kernel did not take", async () => {
    const { writer, written } = slowSocket();
    const { batch, memory } = lentBatch(3);
    const pending = writer.write(batch.bytes);
    expect(pending).toBeInstanceOf(Promise);
    memory.fill(0xee); // reused before the drain
    writer.onDrain();
    await pending;
    expect(written.slice(16)).toEqual(new Array(8).fill(3));
  });

  test("SocketWriter keeps a copy of borrowed bytes (a reused encode buffer), not only of lent ones", async () => {
    const { writer, written } = slowSocket();
    const scratch = new Uint8Array(12).fill(7); // an ordinary ArrayBuffer: not lent
    const pending = writer.write(scratch, true);
    expect(pending).toBeInstanceOf(Promise);
    scratch.fill(0xee); // the next batch encoded into it before the drain
    writer.onDrain();
    await pending;
    expect(written).toEqual(new Array(12).fill(7));
  });
});
