// The stop watchdog's second clock (stop-watchdog.ts): sleeps in Atomics.wait, which needs no
// event loop, so it fires even when the main thread spins. If the main thread has neither
// finished the stop nor ended the process by then, it writes the line itself and kills the
// process. A second entrypoint of the build (scripts/build.ts), like the capture worker.
import { writeSync } from "node:fs";
import { stopTimeoutLine, WATCHDOG_ARMED, type WatchdogWorkerStart } from "./stop-watchdog.ts";

declare const self: Worker;

self.onmessage = (event: MessageEvent<WatchdogWorkerStart>) => {
  const { shared, killAfterMs, prefix, timeoutMs } = event.data;
  const state = new Int32Array(shared, 0, 2);
  const deadline = Date.now() + killAfterMs;
  // Atomics.wait may wake spuriously or on a notify without a change: sleep until the deadline.
  for (let left = killAfterMs; left > 0; left = deadline - Date.now()) {
    if (Atomics.wait(state, 0, WATCHDOG_ARMED, left) === "not-equal") return;
  }
  if (Atomics.load(state, 0) !== WATCHDOG_ARMED) return;
  const length = Atomics.load(state, 1);
  const text = new TextDecoder().decode(new Uint8Array(shared, 8, length).slice());
  writeSync(2, `${prefix}: ${stopTimeoutLine(text ? text.split("\n") : [], timeoutMs)}\n`);
  process.kill(process.pid, "SIGKILL");
};
