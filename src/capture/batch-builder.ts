// BatchBuilder: where a capture engine gathers records in the PacketBatch layout before handing
// them on. Records are written into one staging buffer that lives as long as the capture (its
// pages stay mapped and warm); a flush lends the used bytes to a poster, which copies them where
// they go (a BatchChannel slot for a live worker, an owned buffer on the main thread, a
// transferred copy for file replay). The staging buffer itself is never handed out or pooled.
// Measured before this (docs/capture.md): allocating a zeroed flushBytes + 256 KiB buffer per
// batch cost memset, page faults and 2x the memory of the data it carried.
import { BATCH_RECORD_HEADER_BYTES, MAXIMUM_SNAPLEN } from "../packet/packet-batch.ts";

/** An 802.1Q tag re-inserted by the ring engine can make a record this much longer than snaplen's frame. */
const VLAN_TAG_BYTES = 4;

/**
 * Receives a finished batch: `staged` is borrowed (valid during the call only; copy it). Returns
 * false when it cannot take the batch now (no free channel slot): the records stay staged.
 */
export type BatchPoster = (staged: Uint8Array, count: number) => boolean;

export class BatchBuilder {
  /** The staging bytes (borrowed by the engines for writing; only lent, never handed out). */
  readonly bytes: Uint8Array;
  readonly view: DataView;
  used = 0;
  count = 0;
  /** performance.now() when the oldest record still in the staging buffer was added; 0 when empty. */
  firstPendingAt = 0;

  /** Staging bytes a builder with this flush threshold needs: room for one maximum record past it. */
  static stagingBytesFor(flushBytes: number): number {
    return flushBytes + BATCH_RECORD_HEADER_BYTES + MAXIMUM_SNAPLEN + VLAN_TAG_BYTES;
  }

  /**
   * @param flushBytes a batch is handed over once it holds this many bytes
   * @param post receives each finished batch (borrowed: it copies)
   * @param staging where records are gathered, at least stagingBytesFor(flushBytes) long; a
   *   fresh buffer when absent. The ring engine passes memory that shares one ArrayBuffer with
   *   its ring, so frames are copied with copyWithin (no view object per packet).
   */
  constructor(
    readonly flushBytes: number,
    private readonly post: BatchPoster,
    staging?: Uint8Array,
  ) {
    const size = BatchBuilder.stagingBytesFor(flushBytes);
    if (staging && staging.byteLength < size) throw new RangeError(`staging of ${staging.byteLength} bytes < ${size}`);
    this.bytes = staging ?? new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  /** True once the batch should be handed over for its size. */
  get full(): boolean {
    return this.used >= this.flushBytes;
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

  /** Milliseconds the oldest pending record has waited (0 when nothing is pending). */
  pendingMs(now: number): number {
    return this.count === 0 ? 0 : now - this.firstPendingAt;
  }

  /**
   * Lends the pending records to the poster; true when it took them (or nothing was pending),
   * false when it could not (they stay staged: do not append to a full builder then).
   */
  flush(): boolean {
    if (this.count === 0) return true;
    if (!this.post(this.bytes.subarray(0, this.used), this.count)) return false;
    this.used = 0;
    this.count = 0;
    this.firstPendingAt = 0;
    return true;
  }
}
