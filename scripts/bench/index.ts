// npm run bench [-- NAME...]: runs the named benchmarks (default: all) and prints their tables.
import { benchCapture } from "./capture.ts";
import { benchRpcap } from "./rpcap.ts";

const benches: Record<string, () => Promise<void>> = {
  capture: benchCapture,
  rpcap: benchRpcap,
};

const wanted = process.argv.slice(2);
for (const name of wanted.length ? wanted : Object.keys(benches)) {
  const run = benches[name];
  if (!run) {
    console.error(`unknown benchmark '${name}'; known: ${Object.keys(benches).join(", ")}`);
    process.exit(2);
  }
  await run();
}
