// The capture worker: owns one capture handle (a TPACKET_V3 RingSocket or a libpcap PcapHandle)
// and runs every blocking call off the main thread. A live capture's records are written
// straight into the next free slot of the shared BatchChannel (the ring's native block walker,
// or one memcpy per packet from libpcap) and published in place: no message, no allocation, no
// copy per batch. The ring's JavaScript walker (the fallback) gathers records in a staging area
// beside the ring and copies each batch into a slot. A file replay's batches are transferred as
// exactly sized ArrayBuffers.
import { ptr, type Pointer } from "bun:ffi";
import { CaptureError } from "../errors.ts";
import { libcSymbolsLoaded } from "./ffi.ts";
import { PcapHandle, type RecordSink } from "./pcap-handle.ts";
import { BatchBuilder, type BatchMemory, type BatchPoster, type BatchSlots } from "../batch-builder.ts";
import { RingSocket, RingUnsupported } from "../linux-ring/ring-socket.ts";
import { openRingCapture } from "../linux-ring/open-ring.ts";
import type { FromWorker, ToWorker, WorkerFilter } from "./worker-protocol.ts";
import { MAXIMUM_SNAPLEN } from "../../packet/packet-batch.ts";
import { BatchChannelWriter } from "../batch-channel.ts";

declare const self: Worker;

/**
 * How long one poll() may block before the loop checks for messages (stop, stats, filters):
 * the worst delay of a stop or stats request, and 20 wake-ups a second on an idle interface.
 */
const POLL_SLICE_MS = 50;
/** Ring blocks read per loop turn (at most ~8 MiB of frames) before the loop looks at its flush deadline again. */
const RING_BLOCKS_PER_TURN = 16;
/**
 * While traffic keeps the loop busy, how often it yields to the worker's message queue (stop,
 * stats, filters). Yielding every turn (once per ring block) cost ~12-30 µs of worker CPU per
 * turn (`await setImmediate` and what the event loop does then), ~25% of the worker's CPU at
 * 250,000 packets/s (docs/capture-history.md, "The worker's loop"). An idle loop (poll timed out, or no
 * free slot) still yields at once, so a stop waits at most this or one poll slice.
 */
const MESSAGE_CHECK_MS = 10;
/** A file replay keeps at most this many batches in flight before waiting for credit. */
const FILE_BATCHES_IN_FLIGHT = 4;
/**
 * At stop, how long the worker waits for a free channel slot for its last batch: the main thread
 * is draining the channel meanwhile, so this only runs out if it is stuck.
 */
const STOP_FLUSH_MS = 1000;

/** libc's memcpy, looked up once: it runs for every captured packet. */
const memcpy = libcSymbolsLoaded().memcpy;

let handle: PcapHandle | RingSocket | null = null;
let stopping = false;
let credit = FILE_BATCHES_IN_FLIGHT;
let wakeForCredit: (() => void) | null = null;

function post(message: FromWorker, transfer?: ArrayBuffer[]): void {
  if (transfer) self.postMessage(message, transfer);
  else self.postMessage(message);
}

/** libpcap's MAXIMUM_SNAPLEN: no record libpcap hands us is longer than this. */
const MAXIMUM_CAPLEN = MAXIMUM_SNAPLEN;

/** File replay: an owned, exactly sized copy, transferred. */
function postBatch(staged: Uint8Array, count: number): boolean {
  const buffer = staged.slice().buffer;
  post({ type: "batch", buffer, byteLength: buffer.byteLength, count }, [buffer]);
  return true;
}

/** Live capture, staged batches (the ring's JavaScript walker): copied into the next free channel slot, or refused while every slot is full. */
function channelPoster(channel: BatchChannelWriter): BatchPoster {
  return (staged, count) => channel.publish(staged, count);
}

/** Live capture, written in place: the channel's slots with their native addresses (taken once: shared memory never moves). */
function channelSlots(channel: BatchChannelWriter): BatchSlots {
  const memories: BatchMemory[] = channel.slotViews.map((bytes) => ({ bytes, address: Number(ptr(bytes)) }));
  return {
    claim: () => {
      const slot = channel.claim();
      return slot < 0 ? null : memories[slot]!;
    },
    publish: (byteLength, count) => channel.publishClaimed(byteLength, count),
  };
}

/** A fresh staging buffer with its native address (file replay). */
function stagingMemory(flushBytes: number): BatchMemory {
  const bytes = new Uint8Array(BatchBuilder.stagingBytesFor(flushBytes));
  return { bytes, address: Number(ptr(bytes)) };
}

/**
 * The last batch at stop: waits (bounded) for the main thread to take it. A builder that writes
 * into slots always publishes (its slot was claimed before writing), so only staged records wait.
 */
function flushAtStop(batch: BatchBuilder, channel: BatchChannelWriter): void {
  const deadline = performance.now() + STOP_FLUSH_MS;
  while (batch.count > 0 && !batch.flush() && performance.now() < deadline) channel.waitForSpace(POLL_SLICE_MS);
}

/**
 * Copies records from libpcap's buffer into a BatchBuilder: one memcpy per packet to the
 * builder's current memory (a channel slot, or a staging buffer for file replay), at its native
 * address; the builder moves to another slot only in flush(), between packets.
 */
class LibpcapSink implements RecordSink {
  constructor(readonly batch: BatchBuilder) {}

  append(tsSec: number, tsFrac: number, caplen: number, len: number, data: Pointer): boolean {
    if (caplen > MAXIMUM_CAPLEN) throw new CaptureError("capture-failed", `libpcap returned caplen ${caplen} > ${MAXIMUM_CAPLEN}`);
    const batch = this.batch;
    const at = batch.beginRecord(tsSec, tsFrac, caplen, len);
    if (caplen > 0) memcpy((batch.address + at) as Pointer, data, caplen);
    return batch.full;
  }
}

function applyFilter(target: PcapHandle | RingSocket, filter: WorkerFilter): void {
  if (filter.kind === "expression") target.setFilterExpression(filter.expression);
  else target.setFilterProgram(filter.instructions);
}

const yieldToEvents = () => new Promise<void>((resolve) => setImmediate(resolve));

/** When a busy capture loop next yields to the message queue (see MESSAGE_CHECK_MS). */
class MessageCheck {
  private dueAt = 0;

  /** True when the loop should yield now: it is idle (it waited and nothing came), or a check is due. */
  due(idle: boolean): boolean {
    return idle || performance.now() >= this.dueAt;
  }

  async yield(): Promise<void> {
    await yieldToEvents();
    this.dueAt = performance.now() + MESSAGE_CHECK_MS;
  }
}

/** Milliseconds to wait for traffic: until the pending batch is due, or one poll slice. */
function waitBudgetMs(batch: BatchBuilder, flushIntervalMs: number): number {
  if (batch.count === 0) return POLL_SLICE_MS;
  return Math.max(1, Math.ceil(flushIntervalMs - batch.pendingMs(performance.now())));
}

/**
 * Before reading more: a full batch must be handed over first. When every channel slot is taken
 * (the main thread is busy), waits for one (bounded) and returns false: read nothing this turn,
 * the kernel's ring holds the traffic meanwhile.
 */
function handOverFullBatch(batch: BatchBuilder, channel: BatchChannelWriter): boolean {
  if (!batch.full || batch.flush()) return true;
  channel.waitForSpace(POLL_SLICE_MS);
  return false;
}

/** Flushes by time: the oldest pending record has waited the flush interval. */
function flushIfDue(batch: BatchBuilder, flushIntervalMs: number): void {
  if (batch.count > 0 && batch.pendingMs(performance.now()) >= flushIntervalMs) batch.flush();
}

async function runLive(message: Extract<ToWorker, { type: "open-live" }>): Promise<void> {
  if (message.engine === "ring") {
    let ring: RingSocket | null = null;
    try {
      ring = openRing(message);
    } catch (error) {
      if (!(error instanceof RingUnsupported)) throw error;
      await runLibpcap(message, `ring engine unavailable (${error.message}); using libpcap`);
      return;
    }
    await runRing(ring, message);
    return;
  }
  await runLibpcap(message);
}

function openRing(message: Extract<ToWorker, { type: "open-live" }>): RingSocket {
  return openRingCapture({
    options: message.options,
    batchBytes: message.batchBytes,
    retireBlockMs: message.flushIntervalMs,
    ...(message.filter ? { filter: message.filter } : {}),
    ...(message.fanoutGroup !== undefined ? { fanoutGroup: message.fanoutGroup } : {}),
  });
}

/**
 * The ring loop: read every ready block (no native call per packet), flush by size or when the
 * oldest record is due, and otherwise poll until the next block or the flush deadline. Yields to
 * the message queue when idle, and every MESSAGE_CHECK_MS while busy.
 */
async function runRing(ring: RingSocket, message: Extract<ToWorker, { type: "open-live" }>): Promise<void> {
  handle = ring;
  post({ type: "opened", info: { ...ring.info, engine: "ring", ...(ring.walkerNote ? { engineNote: ring.walkerNote } : {}) } });
  const channel = new BatchChannelWriter(message.channel);
  // The native walker writes into the slots in place; the JavaScript one copies from its staging area.
  const batch =
    ring.walkerKind === "native" ? new BatchBuilder(message.batchBytes, channelSlots(channel)) : ring.newBatchBuilder(channelPoster(channel));
  const flushIntervalMs = message.flushIntervalMs;
  const messages = new MessageCheck();
  while (!stopping) {
    let idle = true;
    if (handOverFullBatch(batch, channel)) {
      const blocks = ring.readInto(batch, RING_BLOCKS_PER_TURN);
      flushIfDue(batch, flushIntervalMs);
      if (channel.full) channel.waitForSpace(POLL_SLICE_MS);
      else if (blocks === 0) idle = !ring.waitReadable(waitBudgetMs(batch, flushIntervalMs));
      else idle = false;
    }
    if (messages.due(idle)) await messages.yield();
  }
  // What is already in the ring, bounded, and the block the kernel is still filling.
  if (handOverFullBatch(batch, channel)) ring.readInto(batch, RING_BLOCKS_PER_TURN);
  if (ring.awaitFilledBlock(STOP_FLUSH_MS) && handOverFullBatch(batch, channel)) ring.readInto(batch, 1);
  flushAtStop(batch, channel);
  const stats = ring.stats();
  ring.close();
  handle = null;
  post({ type: "ended", reason: "stopped", stats });
}

async function runLibpcap(message: Extract<ToWorker, { type: "open-live" }>, engineNote?: string): Promise<void> {
  const live = PcapHandle.openLive(message.options);
  handle = live;
  if (message.filter) applyFilter(live, message.filter);
  post({ type: "opened", info: { ...live.info, engine: "libpcap", ...(engineNote ? { engineNote } : {}) } });
  const channel = new BatchChannelWriter(message.channel);
  const batch = new BatchBuilder(message.batchBytes, channelSlots(channel));
  const sink = new LibpcapSink(batch);
  const flushIntervalMs = message.flushIntervalMs;
  const messages = new MessageCheck();
  while (!stopping) {
    let idle = true;
    if (handOverFullBatch(batch, channel)) {
      const outcome = live.readInto(sink);
      if (outcome === "more") batch.flush();
      flushIfDue(batch, flushIntervalMs);
      if (outcome === "idle") live.waitReadable(waitBudgetMs(batch, flushIntervalMs));
      else idle = false;
    }
    if (messages.due(idle)) await messages.yield();
  }
  flushAtStop(batch, channel);
  const stats = live.stats();
  live.close();
  handle = null;
  post({ type: "ended", reason: "stopped", stats });
}

async function runFile(message: Extract<ToWorker, { type: "open-file" }>): Promise<void> {
  const file = PcapHandle.openOffline(message.path, message.precision);
  handle = file;
  if (message.filter) applyFilter(file, message.filter);
  post({ type: "opened", info: file.info });
  const batch = new BatchBuilder(message.batchBytes, postBatch, stagingMemory(message.batchBytes));
  const sink = new LibpcapSink(batch);
  let ended = false;
  while (!stopping && !ended) {
    while (credit <= 0 && !stopping) await new Promise<void>((resolve) => (wakeForCredit = resolve));
    ended = file.readInto(sink) !== "more";
    if (batch.count > 0) {
      credit--;
      batch.flush();
    }
    await yieldToEvents();
  }
  file.close();
  handle = null;
  post({ type: "ended", reason: stopping ? "stopped" : "end-of-file" });
}

function fail(error: unknown): void {
  handle?.close();
  handle = null;
  const code = error instanceof CaptureError ? error.code : "capture-failed";
  post({ type: "failed", code, message: (error as Error).message });
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "open-live":
      runLive(message).catch(fail);
      break;
    case "open-file":
      runFile(message).catch(fail);
      break;
    case "set-filter":
      try {
        if (!handle) throw new CaptureError("capture-failed", "no open capture");
        applyFilter(handle, message.filter);
        post({ type: "reply", id: message.id });
      } catch (error) {
        const code = error instanceof CaptureError ? error.code : "capture-failed";
        post({ type: "reply", id: message.id, error: { code, message: (error as Error).message } });
      }
      break;
    case "stats":
      try {
        if (!handle) throw new CaptureError("capture-failed", "no open capture");
        post({ type: "reply", id: message.id, stats: handle.stats() });
      } catch (error) {
        post({ type: "reply", id: message.id, error: { code: "capture-failed", message: (error as Error).message } });
      }
      break;
    case "credit":
      credit += message.batches;
      wakeForCredit?.();
      wakeForCredit = null;
      break;
    case "stop":
      stopping = true;
      wakeForCredit?.();
      wakeForCredit = null;
      break;
  }
};
