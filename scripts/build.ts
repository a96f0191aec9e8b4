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
import { buildRingNative } from "./build-ring-native.ts";

const root = new URL("..", import.meta.url).pathname;
const entrypoints = ["src/cli/main.ts", "src/capture/libpcap/capture-worker.ts", "src/daemon/auth/hash-worker.ts"].map((e) => root + e);
// The ring engine's native code, compiled by the system's cc and embedded as a file
// (Bun.embeddedFiles; src/capture/linux-ring/ring-natives.ts loads it).
const ringNative = await buildRingNative();
const result = await Bun.build({
  entrypoints,
  compile: { outfile: `${root}dist/probe` },
  minify: true,
  splitting: true,
  bytecode: true,
  format: "esm",
  sourcemap: "none",
  define: {
    "process.env.PROBE_BUILD_TIME": JSON.stringify(new Date().toISOString()),
    ...(ringNative ? { PROBE_RING_NATIVE_LIBRARY_BASE64: JSON.stringify((await Bun.file(ringNative).bytes()).toBase64()) } : {}),
  },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
await $`${root}dist/probe --version`.quiet();
console.error(`built dist/probe (${(Bun.file(`${root}dist/probe`).size / 1e6).toFixed(1)} MB)`);
