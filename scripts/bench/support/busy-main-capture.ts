// Loss when the main thread is busy: one LiveCaptureSource on lo (ring engine, THREAD "worker"
// or "main") while the main thread is blocked BUSY_MS out of every PERIOD_MS (a stand-in for a
// slow hook or a large synchronous write). Prints {"delivered", "dropped"} as JSON on SIGINT.
// Usage: bun busy-main-capture.ts THREAD PORT BUSY_MS PERIOD_MS
import { LiveCaptureSource, type CaptureThread } from "../../../src/capture/live-capture-source.ts";

const [threadText, portText, busyText, periodText] = process.argv.slice(2);
const thread = threadText as CaptureThread;
const busyMs = Number(busyText);
const periodMs = Number(periodText);
const source = new LiveCaptureSource({ interface: "lo", engine: "ring", thread, filter: `udp dst port ${Number(portText)}`, promiscuous: false });
let delivered = 0;
await source.start({ onBatch: (b) => void (delivered += b.count), onEnd: () => {} });
const busy = setInterval(() => {
  const until = performance.now() + busyMs;
  while (performance.now() < until) {
    // the main thread does nothing else meanwhile
  }
}, periodMs);
const stop = Promise.withResolvers<void>();
process.on("SIGINT", () => stop.resolve());
setTimeout(() => stop.resolve(), 60_000); // bounded: never outlives the benchmark
await stop.promise;
{
  clearInterval(busy);
  const stats = await source.stop();
  console.log(JSON.stringify({ delivered, dropped: stats.kernel?.dropped ?? 0 }));
  process.exit(0);
}
