// Builds dist/probe: one executable with the Bun runtime, the capture worker, the password
// hashing worker and QuickJS's embedded wasm inside. Each worker is an extra entrypoint so
// `new Worker(...)` finds it.
//
// Memory (docs/capture.md, "Memory: where it goes"): `splitting` puts every module that is
// reached only through import() into its own chunk inside the executable, so a command parses
// and evaluates only what it imports (without it one 2 MB bundle, QuickJS's 1.3 MB included, is
// parsed by every run); `bytecode` stores JSC bytecode beside the source so modules are not
// parsed at start. Together: --help 42 -> 20 MiB, an idle capture 54-59 -> 51 MiB peak RSS.
// Bytecode needs the esm format here (main.ts awaits at top level).
import { $ } from "bun";

const root = new URL("..", import.meta.url).pathname;
const entrypoints = ["src/cli/main.ts", "src/capture/libpcap/capture-worker.ts", "src/daemon/auth/hash-worker.ts"];
const result = await Bun.build({
  entrypoints: entrypoints.map((e) => root + e),
  compile: { outfile: process.env.OUTFILE ?? `${root}dist/probe` },
  minify: true,
  splitting: true,
  bytecode: process.env.NO_BYTECODE ? false : true,
  format: "esm",
  sourcemap: "none",
  define: { "process.env.PROBE_BUILD_TIME": JSON.stringify(new Date().toISOString()) },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}

console.error(`built dist/probe (${(Bun.file(`${root}dist/probe`).size / 1e6).toFixed(1)} MB)`);
