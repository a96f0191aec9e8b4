// PACKET_FANOUT helper for the capture benchmark: WORKERS LiveCaptureSources (ring engine) on lo
// in one fanout group, filtered to UDP ports PORT..PORT+7, counting packets until SIGINT, then
// printing {"delivered":[per worker], "dropped": n} as JSON.
// Usage: bun fanout-capture.ts WORKERS PORT
import { LiveCaptureSource } from "../../../src/capture/live-capture-source.ts";

const [workersText, portText] = process.argv.slice(2);
const workers = Math.min(Math.max(Number(workersText), 1), 4);
const port = Number(portText);
const group = 0x5000 + (process.pid & 0xfff);
const delivered = Array<number>(workers).fill(0);
const sources = Array.from({ length: workers }, () =>
  new LiveCaptureSource({ interface: "lo", engine: "ring", filter: `udp dst portrange ${port}-${port + 7}`, fanoutGroup: group }),
);
await Promise.all(sources.map((source, i) => source.start({ onBatch: (b) => void (delivered[i]! += b.count), onEnd: () => {} })));
const stop = Promise.withResolvers<void>();
process.on("SIGINT", () => stop.resolve());
setTimeout(() => stop.resolve(), 60_000); // bounded: never outlives the benchmark
await stop.promise;
const stats = await Promise.all(sources.map((source) => source.stop()));
console.log(JSON.stringify({ delivered, dropped: stats.reduce((n, s) => n + (s.kernel?.dropped ?? 0), 0) }));
process.exit(0);
