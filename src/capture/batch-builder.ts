// BatchBuilder: where a capture worker gathers records in the PacketBatch layout before handing
// them to the main thread. Records are written into one staging buffer that lives as long as the
// worker (its pages stay mapped and warm); a flush copies exactly the bytes used into a fresh
// ArrayBuffer that is transferred, so the main thread owns it (PacketBatch says consumers may keep
// a batch, so the staging buffer itself is never handed out or pooled).
// Measured before this (docs/capture.md): allocating a zeroed flushBytes + 256 KiB buffer per
// batch cost memset, page faults and 2x the memory of the data it carried.
import { BATCH_RECORD_HEADER_BYTES, MAXIMUM_SNAPLEN } from "../packet/packet-batch.ts";

/** An 802.1Q tag re-inserted by the ring engine can make a record this much longer than snaplen's frame. */
const VLAN_TAG_BYTES = 4;

export type BatchPoster = (buffer: ArrayBuffer, byteLength: number, count: number) => void;

export class BatchBuilder {
  /** Borrowed by the engines for writing; never leaves the worker. */
  readonly staging: ArrayBuffer;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  used = 0;
  count = 0;
  /** performance.now() when the oldest record still in the staging buffer was added; 0 when empty. */
  firstPendingAt = 0;

  /**
   * @param flushBytes a batch is handed over once it holds this many bytes
   * @param post receives each finished batch (an owned copy)
   */
  constructor(
    readonly flushBytes: number,
    private readonly post: BatchPoster,
  ) {
    // Room for one maximum record past the threshold, so an append never overruns.
    this.staging = new ArrayBuffer(flushBytes + BATCH_RECORD_HEADER_BYTES + MAXIMUM_SNAPLEN + VLAN_TAG_BYTES);
    this.bytes = new Uint8Array(this.staging);
    this.view = new DataView(this.staging);
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

  /** Hands the pending records over as an owned, exactly sized buffer; no-op when empty. */
  flush(): void {
    if (this.count === 0) return;
    const owned = this.staging.slice(0, this.used);
    const count = this.count;
    this.used = 0;
    this.count = 0;
    this.firstPendingAt = 0;
    this.post(owned, owned.byteLength, count);
  }
}
