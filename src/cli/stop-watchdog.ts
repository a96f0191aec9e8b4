// The stop watchdog: after SIGINT/SIGTERM a run has STOP_WATCHDOG_MS to stop; if it has not,
// the process ends anyway with one line naming what did not stop ("output file - (standard
// output) did not stop") and exit status 1, instead of hanging until a second signal. Real
// ways a stop hangs: an output whose reader never reads (`-w -` into a pipe nobody drains
// waits for its flush forever), a peer that holds a socket; and once, a main thread seen
// spinning after SIGTERM with no system calls.
//
// Two clocks, because a spinning main thread never runs its timers: a timer on the main thread
// (the usual case, the event loop is alive and merely waiting: exit status 1, and the line also
// goes to the log file or syslog when those are in use), and a Worker that sleeps in
// Atomics.wait on shared memory and, if the main thread has not ended the process
// STOP_WATCHDOG_KILL_GRACE_MS after that, writes the same line to standard error itself and
// ends the process with SIGKILL (a Worker's process.exit() ends only the Worker; status 137).
// The pending parts reach the Worker through the same shared memory, rewritten at each change.
import { writeSync } from "node:fs";
import type { Logger } from "../logging/index.ts";
import { ExitCode } from "./usage-error.ts";

/**
 * How long a stop may take after a signal. A clean stop takes milliseconds (files flushed,
 * sockets closed); systemd waits 90 s before SIGKILL and an operator at a terminal far less,
 * so 5 s leaves room for a slow disk while a hang is still reported while someone is looking.
 */
export const STOP_WATCHDOG_MS = 5000;
/** How much longer the Worker waits for the main thread's own exit before it kills the process. */
export const STOP_WATCHDOG_KILL_GRACE_MS = 1000;
/** Shared memory: 4 bytes state, 4 bytes text length, then the text (cut at a character boundary). */
const SHARED_HEADER_BYTES = 8;
const SHARED_TEXT_BYTES = 4096;
/** State word values: the Worker sleeps while it is ARMED. */
export const WATCHDOG_ARMED = 0;
export const WATCHDOG_DISARMED = 1;

/** The line for a stop that did not complete (without the "probe: " prefix). */
export function stopTimeoutLine(pending: readonly string[], timeoutMs: number): string {
  const seconds = `${timeoutMs / 1000} s`;
  if (pending.length === 0) return `stop did not complete within ${seconds} (every part had stopped; the process did not end); exiting`;
  return `stop did not complete within ${seconds}: ${pending.join(", ")} did not stop; exiting`;
}

/** What the Worker is told when it starts. */
export interface WatchdogWorkerStart {
  shared: SharedArrayBuffer;
  /** When it kills the process: the main thread's deadline plus the grace. */
  killAfterMs: number;
  prefix: string;
  timeoutMs: number;
}

export interface StopWatchdogOptions {
  /** The prefix of the line ("probe", "probe-rpcapd"). */
  name: string;
  /** Also given the line when logging goes to a file or syslog (standard error may go nowhere). */
  log?: Logger | undefined;
  /** Default STOP_WATCHDOG_MS. */
  timeoutMs?: number;
  /** Default STOP_WATCHDOG_KILL_GRACE_MS. */
  killGraceMs?: number;
}

const COMPILED_WORKER_PATH = "/$bunfs/root/cli/stop-watchdog-worker.js";

export class StopWatchdog {
  private readonly shared = new SharedArrayBuffer(SHARED_HEADER_BYTES + SHARED_TEXT_BYTES);
  private readonly state = new Int32Array(this.shared, 0, 2);
  private readonly timeoutMs: number;
  private pending: readonly string[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private worker: Worker | undefined;
  private armed = false;

  constructor(private readonly options: StopWatchdogOptions) {
    this.timeoutMs = options.timeoutMs ?? STOP_WATCHDOG_MS;
  }

  /** Starts both clocks (once; later calls do nothing). */
  arm(): void {
    if (this.armed) return;
    this.armed = true;
    this.timer = setTimeout(() => this.expire(), this.timeoutMs);
    this.timer.unref?.();
    const compiled = import.meta.url.includes("/$bunfs/");
    const worker = new Worker(compiled ? COMPILED_WORKER_PATH : new URL("./stop-watchdog-worker.ts", import.meta.url).href);
    // The Worker must never keep a finished process alive.
    worker.unref();
    const start: WatchdogWorkerStart = {
      shared: this.shared,
      killAfterMs: this.timeoutMs + (this.options.killGraceMs ?? STOP_WATCHDOG_KILL_GRACE_MS),
      prefix: this.options.name,
      timeoutMs: this.timeoutMs,
    };
    worker.postMessage(start);
    this.worker = worker;
  }

  /** The parts still stopping (StopProgress's onChange). */
  update(pending: readonly string[]): void {
    this.pending = pending;
    const bytes = new TextEncoder().encode(pending.join("\n"));
    let length = Math.min(bytes.byteLength, SHARED_TEXT_BYTES);
    // Cut before a UTF-8 continuation byte, so the Worker never decodes half a character.
    while (length < bytes.byteLength && length > 0 && (bytes[length]! & 0xc0) === 0x80) length--;
    new Uint8Array(this.shared, SHARED_HEADER_BYTES, length).set(bytes.subarray(0, length));
    Atomics.store(this.state, 1, length);
  }

  /** The stop completed: both clocks stop. Idempotent. */
  disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    Atomics.store(this.state, 0, WATCHDOG_DISARMED);
    Atomics.notify(this.state, 0);
    this.worker?.terminate();
    this.worker = undefined;
  }

  private expire(): void {
    const line = stopTimeoutLine(this.pending, this.timeoutMs);
    this.options.log?.error(line);
    writeSync(2, `${this.options.name}: ${line}\n`);
    process.exit(ExitCode.FAILURE);
  }
}
