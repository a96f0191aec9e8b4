// RingCaptureThread: the ring engine read by a native thread (ring-thread.c, started with
// pthread_create from the code ring-natives.ts loads) instead of a capture Worker. The thread
// waits in poll(), walks ready blocks straight into the BatchChannel's shared slots and wakes
// this (the main) thread through a thread-safe JSCallback, which Bun runs as an event-loop task;
// the main thread lends each published batch to its consumers and frees the slot, as it does for
// a Worker. Filters and kernel counters are set and read from here on the same socket.
//
// Why: the Worker was a second JavaScript runtime that only polled and called the walker. Without
// it a capture costs ~7 MiB less memory, and a wake-up costs the main thread ~6 µs (a task from
// the callback) against ~31 µs for Atomics.waitAsync (docs/capture.md, "The capture thread").
// Only x86-64 for now (ring-thread.c uses an mfence, which TinyCC, its fallback compiler, can
// emit there); elsewhere, or when the code does not load, the caller falls back to the Worker.
import { JSCallback, ptr } from "bun:ffi";
import { CaptureError } from "../errors.ts";
import { BatchChannelReader, type BatchChannelMemory } from "../batch-channel.ts";
import type { KernelStats } from "../libpcap/pcap-handle.ts";
import type { WorkerFilter } from "../libpcap/worker-protocol.ts";
import { nativeWalkFlags, ringOverrunError } from "./block-walker.ts";
import { lastErrno, ringLibc, errnoText } from "./ffi.ts";
import { applyRingFilter } from "./open-ring.ts";
import { ringNatives, type RingNatives } from "./ring-natives.ts";
import { interfaceVanishesAsync, isInterfaceGoneErrno, type RingSocket } from "./ring-socket.ts";

/** ring-thread.c's control[] cells (Int32 indexes; the 64-bit ones at even indexes). */
const Control = {
  stop: 0,
  state: 1,
  failure: 2,
  wakePending: 3,
  waitingSpace: 4,
  walkFlags: 5,
  snaplen: 6,
  flushBytes: 7,
  blockBytes: 8,
  blockCount: 9,
  slots: 10,
  slotBytes: 11,
  flushIntervalMs: 12,
  ringFd: 13,
  wakeFd: 14,
  stopFlushMs: 15,
  ringAddress: 16,
  slotsAddress: 18,
  channelAddress: 20,
  callbackAddress: 22,
  threadId: 24,
  cells: 26,
} as const;
const ThreadState = { running: 0, stopped: 1, failed: 2 } as const;
/** control[stop]: drain then end with a last call; abandon: end at once, no call (process exit). */
const Stop = { drain: 1, abandon: 2 } as const;
const Failure = { overrun: -1, noRoom: -2, hangUp: -3, poll: -4 } as const;

/** eventfd(2) flags (asm-generic values, x86-64 and aarch64): close on exec, never block. */
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
/**
 * At stop, how long the thread keeps trying to hand over its last batch while every slot is
 * full: the main thread drains meanwhile, so this runs out only if it is stuck.
 */
const STOP_FLUSH_MS = 1000;
/**
 * Longest setInterval delay (2^31 - 1 ms). The keep-alive timer never fires in practice: it only
 * holds the event loop open while the thread runs. Measured with Bun 1.4.4: with a thread-safe
 * JSCallback pending and no other handle the loop spins at 100% of a core.
 */
const KEEP_ALIVE_MS = 2 ** 31 - 1;

export interface RingThreadHandlers {
  /** A batch lent from its slot (valid during the call: see isLentBatch). */
  onBatch(bytes: Uint8Array, count: number): void;
  /** The thread ended: stopped (error absent) or failed. The ring is closed already. */
  onEnd(error?: Error): void;
}

/** Why the native capture thread cannot run here (undefined: it can). */
export function ringThreadUnavailable(): string | undefined {
  const natives = ringNatives();
  if ("error" in natives) return `native code unavailable (${natives.error})`;
  if (natives.threadSupported() !== 1) return `no capture thread on ${process.arch}`;
  return undefined;
}

function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}

/** Threads that have not ended, abandoned and joined if the process exits first (see abandonAtExit). */
const liveThreads = new Set<RingCaptureThread>();
let exitHandlerInstalled = false;

export class RingCaptureThread {
  private readonly controlMemory = new SharedArrayBuffer(Control.cells * 4);
  private readonly control = new Int32Array(this.controlMemory);
  private readonly natives: RingNatives;
  private readonly reader: BatchChannelReader;
  private readonly callback: JSCallback;
  private readonly wakeFd: number;
  private readonly keepAlive: ReturnType<typeof setInterval>;
  private ring: RingSocket | null;
  private finalStats: KernelStats | undefined;
  private finishing = false;
  private readonly ended: Promise<void>;
  private resolveEnded!: () => void;
  private readonly wakeValue = new BigUint64Array([1n]);
  /** A consumer's exception, which ended the capture. */
  private pendingError: Error | undefined;

  /**
   * Starts the thread over an open, started ring (RingSocket.start done) and the channel's
   * memory. Throws CaptureError when the thread cannot start; the ring is then still the
   * caller's to close.
   */
  constructor(
    ring: RingSocket,
    channel: BatchChannelMemory,
    flushBytes: number,
    flushIntervalMs: number,
    private readonly handlers: RingThreadHandlers,
  ) {
    const natives = ringNatives();
    if ("error" in natives) throw new CaptureError("capture-failed", `capture thread: ${natives.error}`);
    this.natives = natives;
    const p = ring.threadParameters();
    if (p.nextBlock !== 0) throw new Error("capture thread needs a ring nobody has read");
    this.ring = ring;
    this.reader = new BatchChannelReader(channel);
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    const wakeFd = ringLibc().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakeFd < 0) throw new CaptureError("capture-failed", `capture thread: eventfd: ${errnoText(lastErrno())}`);
    this.wakeFd = wakeFd;
    const c = this.control;
    c[Control.walkFlags] = nativeWalkFlags(p);
    c[Control.snaplen] = p.snaplen;
    c[Control.flushBytes] = flushBytes;
    c[Control.blockBytes] = p.blockBytes;
    c[Control.blockCount] = p.blockCount;
    c[Control.slots] = channel.slots;
    c[Control.slotBytes] = channel.slotBytes;
    c[Control.flushIntervalMs] = Math.max(1, Math.round(flushIntervalMs));
    c[Control.ringFd] = p.fd;
    c[Control.wakeFd] = wakeFd;
    c[Control.stopFlushMs] = STOP_FLUSH_MS;
    this.callback = new JSCallback(this.onWake, { args: ["i32"], returns: "void", threadsafe: true });
    const cells = new BigUint64Array(this.controlMemory);
    cells[Control.ringAddress / 2] = BigInt(p.ringAddress);
    cells[Control.slotsAddress / 2] = BigInt(ptr(new Uint8Array(channel.data)));
    cells[Control.channelAddress / 2] = BigInt(ptr(new Int32Array(channel.control)));
    cells[Control.callbackAddress / 2] = BigInt(this.callback.ptr!);
    this.keepAlive = setInterval(() => {}, KEEP_ALIVE_MS);
    const error = natives.threadStart(ptr(c));
    if (error !== 0) {
      this.release();
      throw new CaptureError("capture-failed", `capture thread: pthread_create: ${errnoText(error)}`);
    }
    liveThreads.add(this);
    if (!exitHandlerInstalled) {
      exitHandlerInstalled = true;
      // A thread must not call into a runtime that is being torn down: a process that exits
      // without stopping its captures (process.exit on an error path) ends them first.
      process.on("exit", () => {
        for (const thread of liveThreads) thread.abandonAtExit();
      });
    }
  }

  /** The process is exiting: ends the thread at once (no hand-over, no last call) and joins it. */
  private abandonAtExit(): void {
    liveThreads.delete(this);
    Atomics.store(this.control, Control.stop, Stop.abandon);
    this.wakeThread();
    this.natives.threadJoin(ptr(this.control)); // bounded: the thread checks the flag after each poll or block
  }

  setFilter(filter: WorkerFilter): void {
    if (!this.ring || this.finishing) throw new CaptureError("capture-failed", "capture is not running");
    applyRingFilter(this.ring, filter);
  }

  /** The kernel's counters now (while running), or the last ones read as it ended. */
  stats(): KernelStats | undefined {
    return this.ring && !this.finishing ? this.ring.stats() : this.finalStats;
  }

  /** Asks the thread to hand over what is in the ring and end; resolves once it has ended. */
  async stop(): Promise<KernelStats | undefined> {
    if (this.ring && !this.finishing) {
      Atomics.store(this.control, Control.stop, Stop.drain);
      this.wakeThread();
    }
    await this.ended;
    return this.finalStats;
  }

  /**
   * The thread's wake-up, run on this thread by the event loop (JSCallback threadsafe), in the
   * order the thread made them: `last` is 1 on its final call, after which it makes no other.
   */
  private readonly onWake = (last: number): void => {
    const control = this.control;
    // Cleared before draining: a batch published after this gets a wake-up of its own.
    Atomics.store(control, Control.wakePending, 0);
    let consumerError: unknown;
    try {
      this.reader.drain(this.deliver);
    } catch (error) {
      consumerError = error;
    }
    if (Atomics.load(control, Control.waitingSpace) === 1) this.wakeThread();
    if (consumerError !== undefined && Atomics.load(control, Control.state) === ThreadState.running) {
      // A consumer threw: end the capture with that error rather than leave it half delivered.
      this.pendingError = asError(consumerError);
      Atomics.store(control, Control.stop, Stop.drain);
      this.wakeThread();
    }
    // Not from inside the callback: finishing closes it.
    if (last === 1 && !this.finishing) {
      this.finishing = true;
      setImmediate(() => void this.finish());
    }
  };

  private readonly deliver = (bytes: Uint8Array, count: number): void => this.handlers.onBatch(bytes, count);

  /** Writes the eventfd the thread polls (stop, or a slot freed while it waits for one). */
  private wakeThread(): void {
    ringLibc().write(this.wakeFd, ptr(this.wakeValue), 8);
  }

  private async finish(): Promise<void> {
    const control = this.control;
    const ring = this.ring!;
    liveThreads.delete(this);
    this.natives.threadJoin(ptr(control)); // it has made its last call: this returns at once
    try {
      this.reader.drain(this.deliver); // anything published between the last drain and the end
    } catch (error) {
      this.pendingError ??= asError(error);
    }
    let error = this.pendingError;
    if (Atomics.load(control, Control.state) === ThreadState.failed) error ??= await this.failure(ring, control[Control.failure]!);
    try {
      this.finalStats = ring.stats();
    } catch {
      // the socket failed: the counters read last (none) stand
    }
    this.ring = null;
    ring.close();
    this.release();
    this.resolveEnded();
    this.handlers.onEnd(error);
  }

  /** The CaptureError for the thread's failure code (an errno of the socket, or a Failure). */
  private async failure(ring: RingSocket, code: number): Promise<CaptureError> {
    if (code === Failure.overrun) return ringOverrunError(ring.interfaceName);
    if (code === Failure.hangUp) return ring.hangUp();
    if (code === Failure.noRoom) return new CaptureError("capture-failed", `${ring.interfaceName}: capture thread: batch slot smaller than a record`);
    if (code === Failure.poll || code <= 0) return new CaptureError("capture-failed", `${ring.interfaceName}: capture thread: poll failed`);
    return ring.socketFailure(code, isInterfaceGoneErrno(code) && (await interfaceVanishesAsync(ring.interfaceName)));
  }

  private release(): void {
    clearInterval(this.keepAlive);
    this.callback.close();
    ringLibc().close(this.wakeFd);
    this.reader.close();
  }
}
