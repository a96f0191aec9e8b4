// The hook flags every command that runs hooks shares (--hook, --hook-fail, --hook-memory-mb,
// --hook-budget-ms), turned into the pipeline's hooks stage (src/pipeline/stages/hooks.ts).
import type { HookConfig } from "../config/hook-config.ts";
import type { StageSpec } from "../pipeline/spec.ts";
import { parseInteger } from "./parse-options.ts";
import { UsageError } from "./usage-error.ts";

/** parseArgs definitions; spread them into a command's own options. */
export const HOOK_CLI_OPTIONS = {
  hook: { type: "string", multiple: true },
  "hook-fail": { type: "string" },
  "hook-memory-mb": { type: "string" },
  "hook-budget-ms": { type: "string" },
} as const;

/** The flags' lines for a command's --help (same column layout as capture's). */
export const HOOK_OPTIONS_HELP = `      --hook FILE         run the hook FILE (JavaScript, see docs/hooks.md) on every
                          packet before it is written; repeat to chain hooks, applied
                          in the order given. Edit the file or send SIGHUP to reload.
      --hook-fail POLICY  what happens to a packet whose hook failed (threw, bad
                          verdict, timeout, out of memory, hook disabled): pass
                          (default, unchanged) or drop
      --hook-memory-mb N  memory limit of each hook in MiB (default 64, 1-1024)
      --hook-budget-ms N  CPU time of each hook per batch in ms (default 50, 1-10000)
`;

/** Largest --hook-memory-mb: hookSettingsSchema's 1 GiB cap on hookMemoryLimitBytes. */
const MAX_HOOK_MEMORY_MB = 1024;
/** Largest --hook-budget-ms: hookSettingsSchema's cap on hookBatchBudgetMs. */
const MAX_HOOK_BUDGET_MS = 10_000;
const BYTES_PER_MIB = 1024 * 1024;

interface HookFlagValues {
  hook?: string[] | undefined;
  "hook-fail"?: string | undefined;
  "hook-memory-mb"?: string | undefined;
  "hook-budget-ms"?: string | undefined;
}

/**
 * The hook fields of a command's raw config, from parsed flags (undefined where a flag is
 * absent, so the schema's defaults apply); the command's zod schema (hookConfigSchema merged
 * in) validates them.
 */
export function hookConfigFromFlags(values: HookFlagValues): Record<keyof HookConfig, unknown> {
  const memoryMb = parseInteger("--hook-memory-mb", values["hook-memory-mb"], 1, MAX_HOOK_MEMORY_MB);
  return {
    hooks: values.hook,
    hookFail: values["hook-fail"],
    hookMemoryLimitBytes: memoryMb === undefined ? undefined : memoryMb * BYTES_PER_MIB,
    hookBatchBudgetMs: parseInteger("--hook-budget-ms", values["hook-budget-ms"], 1, MAX_HOOK_BUDGET_MS),
    hookCompileBudgetMs: undefined,
    hookMaxStackBytes: undefined,
  };
}

/** The hooks stage the flags ask for, or undefined without --hook. */
export function hooksStageFromFlags(values: HookFlagValues): StageSpec | undefined {
  const raw = hookConfigFromFlags(values);
  if (!values.hook || values.hook.length === 0) return undefined;
  const fail = values["hook-fail"];
  if (fail !== undefined && fail !== "pass" && fail !== "drop") throw new UsageError(`--hook-fail is pass or drop, not '${fail}'`);
  const stage: Record<string, unknown> = { kind: "hooks", files: values.hook };
  for (const key of ["hookFail", "hookMemoryLimitBytes", "hookBatchBudgetMs"] as const) if (raw[key] !== undefined) stage[key] = raw[key];
  return stage as StageSpec;
}
