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
//   [2 + 3*e], [3 + 3*e], [4 + 3*e]: entry e's byte length, record count and slot
// Batch n (counting from 0) is described by entry n % slots; its bytes are in the entry's slot,
// bytes [slot * slotBytes, (slot + 1) * slotBytes) of `data`. published - consumed (mod 2^32)
// is the number of full slots. The writer puts each batch into the lowest-numbered slot that no
// published, unconsumed batch holds, so a main thread that keeps up reuses the first slot or
// two and the others' pages are never touched (~0.8 MiB of peak RSS under load with eight
// 256 KiB batches: docs/capture-history.md, "Sixth round"); before, batch n went to slot n % slots and
// every slot was resident once traffic had flowed. ring-thread.c writes the same layout.

/**
 * Batch slots between worker and main thread. Eight: the worker can run up to eight batches
 * (~2 MiB, ~18,000 small packets) ahead of a main thread busy with something else (a slow
 * output, a hook, a starved core) before it stops reading; the kernel's ring then absorbs the
 * rest and counts drops. With four, a 2M-packet run on a loaded machine dropped 1,391 packets
 * where postMessage (an unbounded queue) had dropped none (docs/capture.md). A slot's pages
 * become resident only when the main thread falls that far behind (lowest free slot first).
 */
export const BATCH_CHANNEL_SLOTS = 8;

/** Slots are picked with a bit mask of those in use (writer, ring-thread.c): at most 32. */
const MAXIMUM_SLOTS = 32;

/** PROBE_DEBUG_POISON_LENT_BATCHES=1 (set by the test preload): fill freed slots with POISON_BYTE. */
const POISON_FREED_SLOTS = process.env.PROBE_DEBUG_POISON_LENT_BATCHES === "1";
const POISON_BYTE = 0xee;

const PUBLISHED = 0;
const CONSUMED = 1;
const ENTRY_META = 2;
/** Cells per entry: byte length, record count, slot. */
const ENTRY_CELLS = 3;
const ENTRY_BYTE_LENGTH = 0;
const ENTRY_COUNT = 1;
const ENTRY_SLOT = 2;

/** The shared memory of a channel: created by the main thread, sent to the worker once. */
export interface BatchChannelMemory {
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
  slots: number;
  slotBytes: number;
}

export function createBatchChannelMemory(slotBytes: number, slots = BATCH_CHANNEL_SLOTS): BatchChannelMemory {
  if (!Number.isInteger(slots) || slots < 1 || slots > MAXIMUM_SLOTS) throw new RangeError(`a batch channel has 1 to ${MAXIMUM_SLOTS} slots, not ${slots}`);
  return {
    control: new SharedArrayBuffer((ENTRY_META + ENTRY_CELLS * slots) * 4),
    data: new SharedArrayBuffer(slots * slotBytes),
    slots,
    slotBytes,
  };
}

/** Full slots, given the two wrapping counters. */
function fullSlots(published: number, consumed: number): number {
  return (published - consumed) >>> 0;
}

/** The first control cell of batch n's entry. */
function entryCell(n: number, slots: number): number {
  return ENTRY_META + ENTRY_CELLS * ((n >>> 0) % slots);
}

/**
 * The lowest slot that no published, unconsumed batch holds, or -1 when all are held. A stale
 * `consumed` (the reader frees slots meanwhile) only makes more slots look held: never unsafe.
 */
function lowestFreeSlot(control: Int32Array, slots: number): number {
  const published = Atomics.load(control, PUBLISHED);
  const consumed = Atomics.load(control, CONSUMED);
  const full = fullSlots(published, consumed);
  if (full >= slots) return -1;
  let held = 0;
  for (let k = 0; k < full; k++) held |= 1 << control[entryCell(consumed + k, slots) + ENTRY_SLOT]!;
  for (let slot = 0; slot < slots; slot++) if ((held & (1 << slot)) === 0) return slot;
  return -1;
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

  /** The slot claim() returned and publishClaimed() has not published yet, or -1. */
  private claimed = -1;

  /**
   * The slot the next batch goes to (an index into slotViews), or -1 while every slot is full.
   * The reader does not look at it until publishClaimed, so the worker may fill it over time.
   */
  claim(): number {
    if (this.claimed < 0) this.claimed = lowestFreeSlot(this.control, this.memory.slots);
    return this.claimed;
  }

  /**
   * Publishes the slot claim() returned, holding `count` records in its first `byteLength`
   * bytes, with no copy, and wakes the main thread. Only the worker publishes, and the reader
   * only ever frees slots, so the claimed slot is still free.
   */
  publishClaimed(byteLength: number, count: number): void {
    if (byteLength > this.memory.slotBytes) throw new RangeError(`batch of ${byteLength} bytes > slot of ${this.memory.slotBytes}`);
    if (this.claimed < 0) throw new Error("publishClaimed without a claimed slot");
    this.publishEntry(this.claimed, byteLength, count);
    this.claimed = -1;
  }

  /**
   * Copies `bytes` (one batch in the PacketBatch layout) into the next free slot and wakes the
   * main thread. Returns false, copying nothing, when every slot is still full.
   */
  publish(bytes: Uint8Array, count: number): boolean {
    if (bytes.byteLength > this.memory.slotBytes) throw new RangeError(`batch of ${bytes.byteLength} bytes > slot of ${this.memory.slotBytes}`);
    const slot = this.claim();
    if (slot < 0) return false;
    this.data.set(bytes, slot * this.memory.slotBytes);
    this.publishEntry(slot, bytes.byteLength, count);
    this.claimed = -1;
    return true;
  }

  /** Describes the next batch (its slot and lengths) and publishes it. */
  private publishEntry(slot: number, byteLength: number, count: number): void {
    const control = this.control;
    const published = Atomics.load(control, PUBLISHED);
    const entry = entryCell(published, this.memory.slots);
    control[entry + ENTRY_BYTE_LENGTH] = byteLength;
    control[entry + ENTRY_COUNT] = count;
    control[entry + ENTRY_SLOT] = slot;
    // The store publishes the slot's bytes and the entry (Atomics are sequentially consistent).
    Atomics.store(control, PUBLISHED, (published + 1) | 0); // wraps at 2^32 on purpose
    Atomics.notify(control, PUBLISHED);
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
      const entry = entryCell(consumed, this.memory.slots);
      const byteLength = control[entry + ENTRY_BYTE_LENGTH]!;
      const count = control[entry + ENTRY_COUNT]!;
      const start = control[entry + ENTRY_SLOT]! * this.memory.slotBytes;
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
