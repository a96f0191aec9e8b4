// The capture worker: owns one PcapHandle and runs every blocking libpcap call off the main
// thread. Packets are copied once, straight from libpcap's ring into a batch buffer that is
// then transferred (not copied) to the main thread.
import { ptr, type Pointer } from "bun:ffi";
import { CaptureError } from "../errors.ts";
import { BATCH_RECORD_HEADER_BYTES } from "../../packet/packet-batch.ts";
import { libcSymbolsLoaded } from "./ffi.ts";
import { PcapHandle, type RecordSink } from "./pcap-handle.ts";
import type { FromWorker, ToWorker, WorkerFilter } from "./worker-protocol.ts";
import { MAXIMUM_SNAPLEN } from "../../packet/packet-batch.ts";

declare const self: Worker;

/** How long one poll() may block before the loop checks for messages (stop, stats, filters). */
const POLL_SLICE_MS = 20;
/** A file replay keeps at most this many batches in flight before waiting for credit. */
const FILE_BATCHES_IN_FLIGHT = 4;

/** libc's memcpy, looked up once: it runs for every captured packet. */
const memcpy = libcSymbolsLoaded().memcpy;

let handle: PcapHandle | null = null;
let stopping = false;
let credit = FILE_BATCHES_IN_FLIGHT;
let wakeForCredit: (() => void) | null = null;

function post(message: FromWorker, transfer?: ArrayBuffer[]): void {
  if (transfer) self.postMessage(message, transfer);
  else self.postMessage(message);
}

/** libpcap's MAXIMUM_SNAPLEN: no record libpcap hands us is longer than this. */
const MAXIMUM_CAPLEN = MAXIMUM_SNAPLEN;

/**
 * Copies records into one ArrayBuffer in the PacketBatch layout. The buffer has room for one
 * maximum-size record beyond the flush threshold, so an append never overruns it.
 */
class BatchAccumulator implements RecordSink {
  private readonly capacity: number;
  private buffer!: ArrayBuffer;
  private view!: DataView;
  private base = 0;
  used = 0;
  count = 0;

  constructor(private readonly flushBytes: number) {
    this.capacity = flushBytes + BATCH_RECORD_HEADER_BYTES + MAXIMUM_CAPLEN;
    this.fresh();
  }

  append(tsSec: number, tsFrac: number, caplen: number, len: number, data: Pointer): boolean {
    if (caplen > MAXIMUM_CAPLEN) throw new CaptureError("capture-failed", `libpcap returned caplen ${caplen} > ${MAXIMUM_CAPLEN}`);
    const at = this.used;
    this.view.setUint32(at, tsSec, true);
    this.view.setUint32(at + 4, tsFrac, true);
    this.view.setUint32(at + 8, caplen, true);
    this.view.setUint32(at + 12, len, true);
    if (caplen > 0) memcpy((this.base + at + BATCH_RECORD_HEADER_BYTES) as Pointer, data, caplen);
    this.used = at + BATCH_RECORD_HEADER_BYTES + caplen;
    this.count++;
    return this.used >= this.flushBytes;
  }

  /** Transfers the filled buffer to the main thread and starts a fresh one. */
  flush(): void {
    if (this.count === 0) return;
    post({ type: "batch", buffer: this.buffer, byteLength: this.used, count: this.count }, [this.buffer]);
    this.fresh();
  }

  private fresh(): void {
    this.buffer = new ArrayBuffer(this.capacity);
    this.view = new DataView(this.buffer);
    this.base = ptr(new Uint8Array(this.buffer));
    this.used = 0;
    this.count = 0;
  }
}

function applyFilter(target: PcapHandle, filter: WorkerFilter): void {
  if (filter.kind === "expression") target.setFilterExpression(filter.expression);
  else target.setFilterProgram(filter.instructions);
}

const yieldToEvents = () => new Promise<void>((resolve) => setImmediate(resolve));

async function runLive(message: Extract<ToWorker, { type: "open-live" }>): Promise<void> {
  const live = PcapHandle.openLive(message.options);
  handle = live;
  if (message.filter) applyFilter(live, message.filter);
  post({ type: "opened", info: live.info });
  const batch = new BatchAccumulator(message.batchBytes);
  let firstPendingAt = 0;
  while (!stopping) {
    const outcome = live.readInto(batch);
    if (outcome === "idle") {
      batch.flush();
      live.waitReadable(POLL_SLICE_MS);
      await yieldToEvents();
    } else if (outcome === "more") {
      batch.flush();
      await yieldToEvents();
    }
    if (batch.count > 0) {
      // Under a steady trickle readInto may keep returning packets; bound the latency.
      const now = performance.now();
      if (firstPendingAt === 0) firstPendingAt = now;
      else if (now - firstPendingAt >= message.flushIntervalMs) {
        batch.flush();
        firstPendingAt = 0;
      }
    } else firstPendingAt = 0;
  }
  batch.flush();
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
  const batch = new BatchAccumulator(message.batchBytes);
  let ended = false;
  while (!stopping && !ended) {
    while (credit <= 0 && !stopping) await new Promise<void>((resolve) => (wakeForCredit = resolve));
    ended = file.readInto(batch) !== "more";
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
