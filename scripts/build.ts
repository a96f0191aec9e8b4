// Builds dist/probe: one executable with the Bun runtime, the capture worker, the password
// hashing worker, the stop watchdog's worker and QuickJS's embedded wasm inside. Each worker
// is an extra entrypoint so `new Worker(...)` finds it.
//
// Memory (docs/capture-history.md, "Memory: where it goes"): `splitting` puts every module that is
// reached only through import() into its own chunk inside the executable, so a command parses
// and evaluates only what it imports (without it one 2 MB bundle, QuickJS's 1.3 MB included, is
// parsed by every run); `bytecode` stores JSC bytecode beside the source so modules are not
// parsed at start. Together: --help 42 -> 20 MiB, an idle capture 54-59 -> 51 MiB peak RSS.
// Bytecode needs the esm format here (main.ts awaits at top level).
import { $ } from "bun";
import { existsSync, readdirSync } from "node:fs";
import { buildRingNative } from "./build-ring-native.ts";

const root = new URL("..", import.meta.url).pathname;

/**
 * JavaScriptCore's tier-up thresholds times this, for the process's whole life (Bun's
 * `compile.jitPolicy`; never reset with Bun.unsafe.setJITPolicy). Code that runs a few
 * thousand times (start-up: flags, zod validation, building the pipeline; per-batch code)
 * stays in the interpreter instead of being compiled by the baseline and optimizing JITs,
 * whose own code the process then never touches; per-packet loops, run millions of times,
 * still reach the optimizing JIT after a fraction of a second of traffic. Measured
 * (docs/capture-history.md, "Sixth round"): peak RSS of a loaded capture 43.9 -> 39.5 MiB at 32, with
 * the CPU per packet unchanged within the noise; 8 kept 42.6, 128 gave 38.9.
 */
const JIT_POLICY = 32;

/**
 * Profile-guided layout of the bytecode (Bun's `compile.bytecodeOrder`): the functions the
 * recorded runs used go first in the embedded bundle, so a run reads less of the executable.
 * scripts/record-bytecode-order.ts records them; file names order them, most common first.
 */
function bytecodeProfiles(): string[] | null {
  const directory = `${root}scripts/bytecode-order`;
  if (!existsSync(directory)) return null;
  const files = readdirSync(directory).filter((name) => name.endsWith(".order")).sort();
  return files.length > 0 ? files.map((name) => `${directory}/${name}`) : null;
}
const entrypoints = ["src/cli/main.ts", "src/capture/libpcap/capture-worker.ts", "src/daemon/auth/hash-worker.ts", "src/cli/stop-watchdog-worker.ts"].map((e) => root + e);
// The ring engine's native code, compiled by the system's cc; its bytes become the constant
// PROBE_RING_NATIVE_LIBRARY_BASE64 (define, below) that src/capture/linux-ring/ring-natives.ts
// loads (an embedded file read through /$bunfs cost ~1.5 MiB more of runtime code).
const ringNative = await buildRingNative();
const result = await Bun.build({
  entrypoints,
  compile: { outfile: `${root}dist/probe`, jitPolicy: JIT_POLICY, bytecodeOrder: bytecodeProfiles() },
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
