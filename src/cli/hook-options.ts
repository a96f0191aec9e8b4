// The hook flags every command that runs hooks shares (--hook, --hook-fail, --hook-memory-mb,
// --hook-budget-ms), and startHooks(): compile the files, build the pipeline stage, install
// hot reload, and format the per-hook counters printed at exit.
import { basename } from "node:path";
import type { HookConfig } from "../config/hook-config.ts";
import type { HookCountersSnapshot, HookFailPolicy, HookReloadHandle, HookRunner, HookSettings } from "../hooks/index.ts";
import type { Logger } from "../logging/index.ts";
import { HookStage } from "../pipeline/hook-stage.ts";
import { parseInteger } from "./parse-options.ts";
import { CommandFailure } from "./usage-error.ts";

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

/**
 * A hook file that cannot be used at start (unreadable, syntax error, no default export, top
 * level throws or loops). main.ts prints its message and exits 1, as for an unreadable -r file
 * or a filter libpcap refuses: the command line is well formed, a file it names is not usable.
 */
export class HookSetupError extends CommandFailure {
  override readonly name = "HookSetupError";
}

export interface StartHooksOptions {
  /** Hook settings, as validated by hookConfigSchema; `hooks` are the files in order. */
  config: HookConfig;
  /** Receives the hooks' ctx.log lines, failure reports and reload lines. */
  logger: Logger;
  /** What hooks see as `pkt.interfaceName`. */
  interfaceName?: string;
  /** Reload on file change and SIGHUP (default true). */
  reload?: boolean;
}

/** Running hooks of one command. */
export interface ActiveHooks {
  readonly stage: HookStage;
  /** Present when reload was asked for: reloadAll() is what SIGHUP does. */
  readonly reload: HookReloadHandle | undefined;
  /** One line per hook (`hook tag.js: 24 packets, 24 passed, ...`), chain order. Call before close(). */
  summaryLines(): string[];
  /** Stops reloading and disposes every hook (the stage drops what it is given afterwards). Idempotent. */
  close(): void;
}

/**
 * Compiles every hook in `config.hooks` in order, or throws HookSetupError naming the file
 * (after disposing the hooks already compiled). Returns undefined when there are no hooks, in
 * which case QuickJS is never loaded.
 */
export async function startHooks(options: StartHooksOptions): Promise<ActiveHooks | undefined> {
  const { config, logger } = options;
  if (config.hooks.length === 0) return undefined;
  const hooks = await import("../hooks/index.ts");
  const settings: Partial<HookSettings> = {
    hookFail: config.hookFail,
    hookMemoryLimitBytes: config.hookMemoryLimitBytes,
    hookBatchBudgetMs: config.hookBatchBudgetMs,
    hookCompileBudgetMs: config.hookCompileBudgetMs,
    hookMaxStackBytes: config.hookMaxStackBytes,
  };
  const runners: HookRunner[] = [];
  try {
    for (const path of config.hooks) {
      let source: string;
      try {
        source = await Bun.file(path).text();
      } catch (error) {
        throw new HookSetupError(`hook ${path}: cannot read it: ${error instanceof Error ? error.message : String(error)}`);
      }
      try {
        runners.push(await hooks.HookRunner.create({ name: basename(path), filename: path, source, settings, logger }));
      } catch (error) {
        if (error instanceof hooks.HookCompileError) throw new HookSetupError(`hook ${path} does not compile (${error.code}): ${error.message}`);
        throw error;
      }
    }
  } catch (error) {
    for (const runner of runners) runner.dispose();
    throw error;
  }
  const chain = new hooks.HookChain(runners);
  const stage = new HookStage(chain, options.interfaceName === undefined ? {} : { interfaceName: options.interfaceName });
  const reload =
    (options.reload ?? true)
      ? hooks.installHookReload({ targets: runners.map((runner, i) => ({ runner, path: config.hooks[i]! })), logger })
      : undefined;
  let closed = false;
  return {
    stage,
    reload,
    summaryLines: () => chain.runners.map((runner) => formatHookCounters(runner.stats, runner.policy)),
    close() {
      if (closed) return;
      closed = true;
      reload?.close();
      stage.dispose();
    },
  };
}

/**
 * One line of a hook's counters, e.g.
 * `hook tag.js: 24 packets, 20 passed, 0 dropped, 4 modified; tags dns=3 icmp=1; failures threw=2 (hookFail=pass); 1.4 ms`.
 * Only counters that are not zero are listed after the first group.
 */
export function formatHookCounters(stats: HookCountersSnapshot, policy: HookFailPolicy): string {
  const parts = [`${stats.packets} packets, ${stats.passed} passed, ${stats.dropped} dropped, ${stats.modified} modified`];
  const tags = Object.entries(stats.tagged);
  if (tags.length > 0) parts.push(`tags ${tags.map(([name, count]) => `${name}=${count}`).join(" ")}`);
  const failures = Object.entries(stats.failures).filter(([, count]) => count > 0);
  if (failures.length > 0 || stats.skipped > 0) {
    const words = failures.map(([kind, count]) => `${kind}=${count}`);
    if (stats.skipped > 0) words.push(`skipped=${stats.skipped}`);
    parts.push(`failures ${words.join(" ")} (hookFail=${policy})`);
  }
  const extra: string[] = [];
  if (stats.checksumsFixed > 0) extra.push(`checksums fixed ${stats.checksumsFixed}`);
  if (stats.checksumsSkipped > 0) extra.push(`checksums skipped ${stats.checksumsSkipped}`);
  if (stats.recreations > 0) extra.push(`sandbox rebuilt ${stats.recreations}x`);
  if (stats.reloads > 0) extra.push(`reloaded ${stats.reloads}x`);
  if (stats.reloadFailures > 0) extra.push(`failed reloads ${stats.reloadFailures}`);
  if (stats.logLinesSuppressed > 0) extra.push(`log lines suppressed ${stats.logLinesSuppressed}`);
  if (stats.disabled) extra.push("DISABLED");
  if (extra.length > 0) parts.push(extra.join(", "));
  parts.push(`${(stats.timeNs / 1e6).toFixed(1)} ms`);
  return `hook ${stats.name}: ${parts.join("; ")}`;
}
