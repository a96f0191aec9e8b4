import { LiveCaptureSource } from "../capture/live-capture-source.ts";
if (process.argv[2] === "--version") { console.log("probe 0.1.0"); process.exit(0); }
const src = new LiveCaptureSource({ interface: "lo", filter: "udp port 9999" });
let n = 0;
await src.start({ onBatch(b) { n += b.count; }, onEnd() {} });
await Bun.sleep(300);
console.log(await src.stop(), n);
