// The JIT's tier-up policy once a pipeline runs. The executable starts with JavaScriptCore's
// tier-up thresholds scaled up (scripts/build.ts, JIT_POLICY = 32): code that runs a few
// thousand times (flags, zod validation, building the pipeline, and afterwards the per-batch
// code) stays in the interpreter, and the process never touches the JIT compilers' own code
// for it. Memory against CPU, measured (docs/capture-history.md, "Sixth round"):
//   - kept for the whole run, a loaded `probe capture -i lo -w FILE` peaks ~3.6 MiB lower than
//     with the normal policy after start-up, for ~0.02 CPU s more per million packets (its
//     per-packet work is the native walker's; the main thread hands each batch to the file);
//   - the RPCAP daemon, which encodes every packet in JavaScript and sends ~100 small batches a
//     second at moderate rates, spent 25-30% more CPU per packet at 20,000-50,000 packets/s with
//     its per-batch code left in the interpreter (one run; the spread between runs is wide).
// So pipelines whose outputs are all files and that have no stages keep the start-up policy;
// every other pipeline returns to the normal policy once it runs.
import type { PipelineSpec } from "../pipeline/spec.ts";
import { writesOnlyFiles } from "../pipeline/live-latency.ts";

/** JavaScriptCore's normal tier-up policy (Bun.unsafe.setJITPolicy's scale). */
const NORMAL_JIT_POLICY = 1;

/** True when the spec's per-packet work is native and its JavaScript runs once per batch. */
export function keepsStartupJitPolicy(spec: PipelineSpec): boolean {
  return spec.stages.length === 0 && writesOnlyFiles(spec);
}

/** Called once the pipeline runs: the normal JIT policy unless keepsStartupJitPolicy(spec). */
export function settleJitPolicy(spec: PipelineSpec): void {
  if (!keepsStartupJitPolicy(spec)) Bun.unsafe.setJITPolicy(NORMAL_JIT_POLICY);
}
