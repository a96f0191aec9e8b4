// BatchBuilder: where a capture engine gathers records in the PacketBatch layout before handing
// them on. Two kinds of memory, one interface for the engines:
//   * a staging buffer that lives as long as the capture (its pages stay mapped and warm); a
//     flush lends the used bytes to a poster, which copies them where they go (an owned buffer
//     on the main thread, a transferred copy for file replay, a channel slot for the ring
//     engine's JavaScript walker). The staging buffer itself is never handed out or pooled.
//   * batch slots (BatchSlots: a live worker's BatchChannel): records are written straight into
//     the next free slot and a flush publishes it in place, with no copy. While every slot is
//     full there is nowhere to write: the builder reports itself full until one is freed.
// Measured before staging (docs/capture-history.md, "Where the time went"): allocating a zeroed flushBytes + 256 KiB buffer per
// batch cost memset, page faults and 2x the memory of the data it carried.
import { BATCH_RECORD_HEADER_BYTES, MAXIMUM_SNAPLEN } from "../packet/packet-batch.ts";

/** An 802.1Q tag re-inserted by the ring engine can make a record this much longer than snaplen's frame. */
const VLAN_TAG_BYTES = 4;

/**
 * Receives a finished batch: `staged` is borrowed (valid during the call only; copy it). Returns
 * false when it cannot take the batch now (no free channel slot): the records stay staged.
 */
export type BatchPoster = (staged: Uint8Array, count: number) => boolean;

/** Memory records are written into, with its native address for engines that write with memcpy (0: unknown). */
export interface BatchMemory {
  bytes: Uint8Array;
  address: number;
}

/** Slots records are written into in place (BatchChannelWriter.claim/publishClaimed, with addresses). */
export interface BatchSlots {
  /** The next free slot (at least stagingBytesFor(flushBytes) long), or null while every slot is full. */
  claim(): BatchMemory | null;
  /** Publishes the claimed slot holding `count` records in its first `byteLength` bytes. */
  publish(byteLength: number, count: number): void;
}

const NO_MEMORY: BatchMemory = { bytes: new Uint8Array(0), address: 0 };

export class BatchBuilder {
  /** Where records go now (lent to the engines for writing; in slot mode, empty while no slot is free). */
  bytes: Uint8Array;
  view: DataView;
  /** Native address of `bytes` (0 when the creator did not give it). */
  address: number;
  used = 0;
  count = 0;
  /** performance.now() when the oldest pending record was added; 0 when empty. */
  firstPendingAt = 0;

  /** Staging bytes (or slot bytes) a builder with this flush threshold needs: room for one maximum record past it. */
  static stagingBytesFor(flushBytes: number): number {
    return flushBytes + BATCH_RECORD_HEADER_BYTES + MAXIMUM_SNAPLEN + VLAN_TAG_BYTES;
  }

  private readonly post: BatchPoster | null;
  private readonly slots: BatchSlots | null;

  /**
   * @param flushBytes a batch is handed over once it holds this many bytes
   * @param target a poster that receives each finished batch (borrowed: it copies), or slots
   *   to write into in place (the first slot is claimed by the first flush(); the engines flush
   *   a full builder before reading, and a builder with no slot is full)
   * @param staging poster only: where records are gathered, at least stagingBytesFor(flushBytes)
   *   long; a fresh buffer (address unknown) when absent. The ring engine passes memory that
   *   shares one ArrayBuffer with its ring, so its JavaScript walker copies frames with copyWithin.
   */
  constructor(
    readonly flushBytes: number,
    target: BatchPoster | BatchSlots,
    staging?: BatchMemory,
  ) {
    this.post = typeof target === "function" ? target : null;
    this.slots = typeof target === "function" ? null : target;
    const size = BatchBuilder.stagingBytesFor(flushBytes);
    if (staging && staging.bytes.byteLength < size) throw new RangeError(`staging of ${staging.bytes.byteLength} bytes < ${size}`);
    const memory = this.slots ? NO_MEMORY : (staging ?? { bytes: new Uint8Array(size), address: 0 });
    this.bytes = memory.bytes;
    this.address = memory.address;
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  /** True once the batch should be handed over for its size, or (slots) while there is no slot to write into. */
  get full(): boolean {
    return this.used >= this.flushBytes || this.bytes === NO_MEMORY.bytes;
  }

  /** Writes a record header at the current end and returns where its data goes. */
  beginRecord(tsSec: number, tsFrac: number, caplen: number, len: number): number {
    const at = this.used;
    const view = this.view;
    view.setUint32(at, tsSec, true);
    view.setUint32(at + 4, tsFrac, true);
    view.setUint32(at + 8, caplen, true);
    view.setUint32(at + 12, len, true);
    this.used = at + BATCH_RECORD_HEADER_BYTES + caplen;
    if (this.count++ === 0) this.firstPendingAt = performance.now();
    return at + BATCH_RECORD_HEADER_BYTES;
  }

  /** Records an engine wrote into `bytes` itself (a native walker): the new end and record count. */
  written(used: number, count: number): void {
    if (this.count === 0 && count > 0) this.firstPendingAt = performance.now();
    this.used = used;
    this.count = count;
  }

  /** Milliseconds the oldest pending record has waited (0 when nothing is pending). */
  pendingMs(now: number): number {
    return this.count === 0 ? 0 : now - this.firstPendingAt;
  }

  /**
   * Hands over the pending records. Staging: lends them to the poster; false when it could not
   * take them (they stay staged: do not append to a full builder then). Slots: publishes the
   * slot in place, then claims the next one; false while none is free (nothing is lost, but
   * there is nowhere to write until the reader frees a slot).
   */
  flush(): boolean {
    const slots = this.slots;
    if (slots) {
      if (this.count > 0) {
        slots.publish(this.used, this.count);
        this.use(NO_MEMORY);
        this.reset();
      }
      if (this.bytes !== NO_MEMORY.bytes) return true;
      const next = slots.claim();
      if (!next) return false;
      const size = BatchBuilder.stagingBytesFor(this.flushBytes);
      if (next.bytes.byteLength < size) throw new RangeError(`batch slot of ${next.bytes.byteLength} bytes < ${size}`);
      this.use(next);
      return true;
    }
    if (this.count === 0) return true;
    if (!this.post!(this.bytes.subarray(0, this.used), this.count)) return false;
    this.reset();
    return true;
  }

  private use(memory: BatchMemory): void {
    this.bytes = memory.bytes;
    this.address = memory.address;
    this.view = new DataView(memory.bytes.buffer, memory.bytes.byteOffset, memory.bytes.byteLength);
  }

  private reset(): void {
    this.used = 0;
    this.count = 0;
    this.firstPendingAt = 0;
  }
}
