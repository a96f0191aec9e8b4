// Builds dist/probe: one executable with the Bun runtime, the capture worker, the password
// hashing worker and QuickJS's embedded wasm inside. Each worker is an extra entrypoint so
// `new Worker(...)` finds it.
import { $ } from "bun";

const root = new URL("..", import.meta.url).pathname;
const entrypoints = ["src/cli/main.ts", "src/capture/libpcap/capture-worker.ts", "src/daemon/auth/hash-worker.ts"];
const result = await Bun.build({
  entrypoints: entrypoints.map((e) => root + e),
  compile: { outfile: `${root}dist/probe` },
  minify: true,
  sourcemap: "none",
  define: { "process.env.PROBE_BUILD_TIME": JSON.stringify(new Date().toISOString()) },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
await $`${root}dist/probe --version`.quiet();
console.error(`built dist/probe (${(Bun.file(`${root}dist/probe`).size / 1e6).toFixed(1)} MB)`);
