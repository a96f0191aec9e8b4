// BatchChannel: how a capture worker hands batches to the main thread without a message per
// batch. Shared memory holds a few batch slots; the worker writes a batch into the next free
// slot (in place: claim + publishClaimed, or as a copy of a staged batch: publish) and publishes
// it by bumping a counter (Atomics.store + Atomics.notify); the main thread, woken by
// Atomics.waitAsync, lends each published batch to its consumers as a view of the slot (a lent
// PacketBatch: valid during the call, see isLentBatch) and frees the slot when the call
// returns. No postMessage, no transfer, no allocation, no copy on either side.
// Measured before (docs/capture.md): postMessage with a transferred buffer cost 30–130 µs per
// batch, and the worker's fresh, exactly sized copy 50–60 µs (page faults on new memory); the
// slots are reused, so the worker's copy lands in warm pages.
//
// Layout of `control` (Int32, shared):
//   [0] published: batches published so far (the worker writes it), wrapping at 2^32
//   [1] consumed: batches the main thread has copied out (it writes it), wrapping at 2^32
//   [2 + 2*i], [3 + 2*i]: byte length and record count of slot i
// Slot i is bytes [i * slotBytes, (i + 1) * slotBytes) of `data`. A batch n (counting from 0)
// goes to slot n % slots. published - consumed (mod 2^32) is the number of full slots.

/**
 * Batch slots between worker and main thread. Eight: the worker can run up to eight batches
 * (~2 MiB, ~18,000 small packets) ahead of a main thread busy with something else (a slow
 * output, a hook, a starved core) before it stops reading; the kernel's ring then absorbs the
 * rest and counts drops. With four, a 2M-packet run on a loaded machine dropped 1,391 packets
 * where postMessage (an unbounded queue) had dropped none (docs/capture.md). Every slot is
 * touched in turn, so all of them count in RSS once traffic has flowed.
 */
export const BATCH_CHANNEL_SLOTS = 8;

/** PROBE_DEBUG_POISON_LENT_BATCHES=1 (set by the test preload): fill freed slots with POISON_BYTE. */
const POISON_FREED_SLOTS = process.env.PROBE_DEBUG_POISON_LENT_BATCHES === "1";
const POISON_BYTE = 0xee;

const PUBLISHED = 0;
const CONSUMED = 1;
const SLOT_META = 2;

/** The shared memory of a channel: created by the main thread, sent to the worker once. */
export interface BatchChannelMemory {
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
  slots: number;
  slotBytes: number;
}

export function createBatchChannelMemory(slotBytes: number, slots = BATCH_CHANNEL_SLOTS): BatchChannelMemory {
  return {
    control: new SharedArrayBuffer((SLOT_META + 2 * slots) * 4),
    data: new SharedArrayBuffer(slots * slotBytes),
    slots,
    slotBytes,
  };
}

/** Full slots, given the two wrapping counters. */
function fullSlots(published: number, consumed: number): number {
  return (published - consumed) >>> 0;
}

/** The worker's side: publishes batches into free slots. */
export class BatchChannelWriter {
  private readonly control: Int32Array;
  private readonly data: Uint8Array;

  /** Each slot's bytes, a view of the shared memory, for writing a batch in place (claim). */
  readonly slotViews: readonly Uint8Array[];

  constructor(private readonly memory: BatchChannelMemory) {
    this.control = new Int32Array(memory.control);
    this.data = new Uint8Array(memory.data);
    this.slotViews = Array.from({ length: memory.slots }, (_, i) => new Uint8Array(memory.data, i * memory.slotBytes, memory.slotBytes));
  }

  /**
   * The slot the next batch goes to (an index into slotViews), or -1 while every slot is full.
   * The reader does not look at it until publishClaimed, so the worker may fill it over time.
   */
  claim(): number {
    const published = Atomics.load(this.control, PUBLISHED);
    if (fullSlots(published, Atomics.load(this.control, CONSUMED)) >= this.memory.slots) return -1;
    return (published >>> 0) % this.memory.slots;
  }

  /**
   * Publishes the slot claim() returned, holding `count` records in its first `byteLength`
   * bytes, with no copy, and wakes the main thread. Only the worker moves `published`, so the
   * claimed slot is still the next one, and still free (the reader only ever frees slots).
   */
  publishClaimed(byteLength: number, count: number): void {
    if (byteLength > this.memory.slotBytes) throw new RangeError(`batch of ${byteLength} bytes > slot of ${this.memory.slotBytes}`);
    const control = this.control;
    const published = Atomics.load(control, PUBLISHED);
    if (fullSlots(published, Atomics.load(control, CONSUMED)) >= this.memory.slots) throw new Error("publishClaimed without a claimed slot");
    const slot = (published >>> 0) % this.memory.slots;
    control[SLOT_META + 2 * slot] = byteLength;
    control[SLOT_META + 2 * slot + 1] = count;
    Atomics.store(control, PUBLISHED, (published + 1) | 0); // wraps at 2^32 on purpose
    Atomics.notify(control, PUBLISHED);
  }

  /**
   * Copies `bytes` (one batch in the PacketBatch layout) into the next free slot and wakes the
   * main thread. Returns false, copying nothing, when every slot is still full.
   */
  publish(bytes: Uint8Array, count: number): boolean {
    const control = this.control;
    const published = Atomics.load(control, PUBLISHED);
    if (fullSlots(published, Atomics.load(control, CONSUMED)) >= this.memory.slots) return false;
    if (bytes.byteLength > this.memory.slotBytes) throw new RangeError(`batch of ${bytes.byteLength} bytes > slot of ${this.memory.slotBytes}`);
    const slot = (published >>> 0) % this.memory.slots;
    this.data.set(bytes, slot * this.memory.slotBytes);
    control[SLOT_META + 2 * slot] = bytes.byteLength;
    control[SLOT_META + 2 * slot + 1] = count;
    // The store publishes the slot's bytes and lengths (Atomics are sequentially consistent).
    Atomics.store(control, PUBLISHED, (published + 1) | 0); // wraps at 2^32 on purpose
    Atomics.notify(control, PUBLISHED);
    return true;
  }

  /** True while every slot is full (the main thread has not caught up). */
  get full(): boolean {
    return fullSlots(Atomics.load(this.control, PUBLISHED), Atomics.load(this.control, CONSUMED)) >= this.memory.slots;
  }

  /** Blocks the worker until the main thread frees a slot or `timeoutMs` passes. */
  waitForSpace(timeoutMs: number): void {
    const consumed = Atomics.load(this.control, CONSUMED);
    if (!this.full) return;
    Atomics.wait(this.control, CONSUMED, consumed, timeoutMs);
  }
}

/** The main thread's side: lends published batches to consumers and frees their slots. */
export class BatchChannelReader {
  private readonly control: Int32Array;
  private readonly data: Uint8Array;
  private closed = false;

  constructor(private readonly memory: BatchChannelMemory) {
    this.control = new Int32Array(memory.control);
    this.data = new Uint8Array(memory.data);
  }

  /**
   * Takes every published batch, in order: each is lent to `deliver` as a view of its slot and
   * the slot is freed when `deliver` returns (the worker refills it next). Whoever keeps a batch
   * past the call keeps an owned copy (ownedBatch). Returns how many batches were taken.
   */
  drain(deliver: (bytes: Uint8Array, count: number) => void): number {
    const control = this.control;
    let taken = 0;
    for (;;) {
      const consumed = Atomics.load(control, CONSUMED);
      if (fullSlots(Atomics.load(control, PUBLISHED), consumed) === 0) return taken;
      const slot = (consumed >>> 0) % this.memory.slots;
      const byteLength = control[SLOT_META + 2 * slot]!;
      const count = control[SLOT_META + 2 * slot + 1]!;
      const start = slot * this.memory.slotBytes;
      try {
        deliver(this.data.subarray(start, start + byteLength), count);
      } finally {
        // Tests poison a freed slot so that a consumer which kept a lent view without copying
        // reads garbage at once instead of only when the worker happens to refill the slot.
        if (POISON_FREED_SLOTS) this.data.fill(POISON_BYTE, start, start + byteLength);
        Atomics.store(control, CONSUMED, (consumed + 1) | 0); // wraps at 2^32 on purpose
        Atomics.notify(control, CONSUMED);
      }
      taken++;
    }
  }

  /**
   * Resolves once a batch is published after the last drain (at once when one already is), or
   * when the channel is closed. No timer: the worker's notify wakes the main thread.
   */
  async waitForBatch(): Promise<void> {
    if (this.closed) return;
    const published = Atomics.load(this.control, PUBLISHED);
    if (fullSlots(published, Atomics.load(this.control, CONSUMED)) > 0) return;
    const waiting = Atomics.waitAsync(this.control, PUBLISHED, published);
    if (waiting.async) await waiting.value;
  }

  /** Ends waiting: a pending waitForBatch resolves. */
  close(): void {
    this.closed = true;
    Atomics.notify(this.control, PUBLISHED);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
