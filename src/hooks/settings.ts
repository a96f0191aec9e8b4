// Hook limits and policies with their defaults, units and reasons: the constants the runner
// enforces and the defaults the config layer's schema (src/config/hook-config.ts) fills in.

/**
 * QuickJS heap per hook. 64 MiB holds a hook's state for ~100k flows with room to spare while
 * keeping a runaway hook from growing the probe's memory without bound. The batch buffers are
 * allocated by the host inside the wasm heap and do not count against this limit.
 */
export const DEFAULT_HOOK_MEMORY_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * CPU time for one hook over one batch. A batch is at most a few thousand packets; 50 ms is
 * ~10x what redact.js needs for 1024 packets on the reference machine, and short enough that
 * a looping hook stalls the capture thread for less than the kernel buffer holds at 1 Gbit/s.
 */
export const DEFAULT_HOOK_BATCH_BUDGET_MS = 50;

/** Time to evaluate a hook module's top level (building tables, etc.) when it is (re)compiled. */
export const DEFAULT_HOOK_COMPILE_BUDGET_MS = 1000;

/**
 * QuickJS stack limit. Deep recursion then throws a catchable "stack overflow" (counted as a
 * throw) before the wasm C stack can be exhausted (checked by test/unit/hooks-abuse.test.ts).
 */
export const DEFAULT_HOOK_MAX_STACK_BYTES = 512 * 1024;

/**
 * Failures in a row (throws, bad verdicts, timeouts, out-of-memory) after which a hook is
 * disabled until reloaded. 100 lets a hook survive a burst of odd packets but stops one that
 * fails on everything from burning its whole CPU budget on every batch.
 */
export const HOOK_DISABLE_AFTER_CONSECUTIVE_FAILURES = 100;

/**
 * ctx.log lines per hook per second that reach the logger (token bucket, burst of the same
 * size); the rest are counted and reported once per second as suppressed. A hook that logs
 * every packet must not flood standard error at line rate.
 */
export const HOOK_LOG_LINES_PER_SECOND = 20;

/**
 * Distinct tag names a hook's counters keep a count for. A hook chooses its tag names (one per
 * flow, one per packet), so the table would otherwise grow for as long as probe runs; 1024 is
 * far more names than a summary line can show usefully. Tags of later new names are still put
 * on their packets and counted together in `taggedOtherNames`.
 */
export const HOOK_TAG_NAMES_COUNTED = 1024;

/** What to do with a packet when its hook fails (throws, times out, runs out of memory, bad verdict). */
export const HOOK_FAIL_POLICY = { PASS: "pass", DROP: "drop" } as const;
export type HookFailPolicy = (typeof HOOK_FAIL_POLICY)[keyof typeof HOOK_FAIL_POLICY];

/**
 * A hook's limits and failure policy. Their zod schema (ranges, defaults) is the config layer's
 * (src/config/hook-config.ts, hookSettingsSchema): settings reach the runner validated.
 */
export interface HookSettings {
  readonly hookFail: HookFailPolicy;
  readonly hookMemoryLimitBytes: number;
  readonly hookBatchBudgetMs: number;
  readonly hookCompileBudgetMs: number;
  readonly hookMaxStackBytes: number;
}

/**
 * The defaults as a frozen object: what the schema makes of nothing (a test holds the two
 * equal), written out so that importing this module builds no schema.
 */
export const DEFAULT_HOOK_SETTINGS: HookSettings = Object.freeze({
  hookFail: HOOK_FAIL_POLICY.PASS,
  hookMemoryLimitBytes: DEFAULT_HOOK_MEMORY_LIMIT_BYTES,
  hookBatchBudgetMs: DEFAULT_HOOK_BATCH_BUDGET_MS,
  hookCompileBudgetMs: DEFAULT_HOOK_COMPILE_BUDGET_MS,
  hookMaxStackBytes: DEFAULT_HOOK_MAX_STACK_BYTES,
});
