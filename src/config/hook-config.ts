// Hook settings as every command that runs hooks takes them: the hook files, in order, plus
// hookSettingsSchema's limits and failure policy, for merging into a command's own schema.
import { lazySchema, z } from "./zod.ts";
// settings.ts directly, not hooks/index.ts: the index loads QuickJS (~35 ms), which a command
// that validates its flags but runs no hook should not pay for.
import {
  DEFAULT_HOOK_BATCH_BUDGET_MS,
  DEFAULT_HOOK_COMPILE_BUDGET_MS,
  DEFAULT_HOOK_MAX_STACK_BYTES,
  DEFAULT_HOOK_MEMORY_LIMIT_BYTES,
  HOOK_FAIL_POLICY,
  type HookSettings,
} from "../hooks/settings.ts";

/** A hook's limits and failure policy, built on first use (zod.ts); `.unwrap()` for `.extend()`. */
export const hookSettingsSchema = lazySchema(() =>
  z.object({
    hookFail: z.enum(["pass", "drop"]).default(HOOK_FAIL_POLICY.PASS),
    hookMemoryLimitBytes: z
      .number()
      .int()
      .min(1024 * 1024)
      .max(1024 * 1024 * 1024)
      .default(DEFAULT_HOOK_MEMORY_LIMIT_BYTES),
    hookBatchBudgetMs: z.number().min(1).max(10_000).default(DEFAULT_HOOK_BATCH_BUDGET_MS),
    hookCompileBudgetMs: z.number().min(1).max(60_000).default(DEFAULT_HOOK_COMPILE_BUDGET_MS),
    hookMaxStackBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(4 * 1024 * 1024)
      .default(DEFAULT_HOOK_MAX_STACK_BYTES),
  }),
);


/** The schema's output is the runner's HookSettings (a compile-time check). */
export const toHookSettings = (validated: z.infer<typeof hookSettingsSchema>): HookSettings => validated;

/**
 * Hooks in one chain. Each has its own QuickJS instance, whose WebAssembly memory may grow to
 * 16 MiB + hookMemoryLimitBytes + 8 MiB (docs/hooks.md), and each adds its CPU budget to
 * every batch: 16 is more than any sensible chain and bounds both at a size a host survives.
 */
export const MAX_HOOK_FILES = 16;

/** Built on first use (src/config/zod.ts); `.unwrap()` for `.extend()` or `.shape`. */
export const hookConfigSchema = lazySchema(() =>
  hookSettingsSchema.unwrap().extend({
    /** Hook files, applied in this order (`--hook FILE`, repeatable). */
    hooks: z.array(z.string().min(1)).max(MAX_HOOK_FILES, `at most ${MAX_HOOK_FILES} hooks`).default([]),
  }),
);

export type HookConfig = Readonly<z.infer<typeof hookConfigSchema>>;
