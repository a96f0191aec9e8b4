// A process that ends while its capture thread runs (test/integration/live-capture.test.ts):
// a LiveCaptureSource on lo read by the native thread, traffic flowing, then either
// process.exit() without stopping the capture (MODE "exit") or a consumer that throws (MODE
// "throw"). Prints one JSON line: what it saw before ending.
// Usage: bun capture-thread-exit.ts exit|throw
import { LiveCaptureSource } from "../../src/capture/live-capture-source.ts";
import { openLoopbackFlow } from "./loopback-traffic.ts";

const mode = process.argv[2];
const flow = await openLoopbackFlow();
let delivered = 0;
const ended = Promise.withResolvers<{ reason: string; error?: string }>();
const source = new LiveCaptureSource({ interface: "lo", thread: "native", filter: `udp dst port ${flow.port}`, promiscuous: false });
const info = await source.start({
  onBatch: (batch) => {
    delivered += batch.count;
    if (mode === "throw") throw new Error("consumer failed on purpose");
  },
  onEnd: (reason, error) => ended.resolve(error ? { reason, error: error.message } : { reason }),
});
if (info.engine !== "ring" || info.engineNote) throw new Error(`not the native thread: ${JSON.stringify(info)}`);
// Traffic keeps the thread publishing (and calling back) while the process ends.
const sending = setInterval(() => void flow.send(Array(200).fill(64)), 5);
if (mode === "exit") {
  await Bun.sleep(300);
  console.log(JSON.stringify({ delivered }));
  process.exit(0);
}
const timeout = setTimeout(() => ended.resolve({ reason: "timeout" }), 10_000);
const end = await ended.promise;
clearTimeout(timeout);
clearInterval(sending);
flow.close();
console.log(JSON.stringify({ delivered, ...end, stats: await source.stop() }));
