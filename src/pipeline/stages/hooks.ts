// The hooks stage: operator hooks (JavaScript in QuickJS sandboxes, docs/hooks.md) compiled
// from their files, chained in order, run once per batch before the fan-out, reloaded when a
// file changes or on SIGHUP, with one summary line of counters per hook.
import { basename } from "node:path";
import type { HookCountersSnapshot, HookFailPolicy, HookReloadHandle, HookRunner, HookSettings } from "../../hooks/index.ts";
// Directly, not through hooks/index.ts, which would load QuickJS into every command (as settings.ts is imported elsewhere).
import { tagCountsText } from "../../hooks/hook-text.ts";
import type { Logger } from "../../logging/index.ts";
import { ProbeError } from "../../packet/probe-error.ts";
import type { PacketBatch } from "../../packet/packet-batch.ts";
import { HookStage } from "../hook-stage.ts";
import { concatBatches, inputRuns } from "../input-runs.ts";
import type { PacketStage } from "../stage.ts";
import type { StageContext } from "./stage-context.ts";

/**
 * A hook file that cannot be used at start (unreadable, syntax error, no default export, top
 * level throws or loops): exit 1, as for an unreadable -r file: the command line is well
 * formed, a file it names is not usable.
 */
export class HookSetupError extends ProbeError {
  override readonly name = "HookSetupError";
  constructor(message: string) {
    super("hook-setup", "runtime", message);
  }
}

export interface StartHooksOptions {
  /** Hook files in order, and hookSettingsSchema's limits and failure policy. */
  config: { hooks: readonly string[] } & Partial<HookSettings>;
  /** Receives the hooks' ctx.log lines, failure reports and reload lines. */
  logger: Logger;
  /** Reload on file change and SIGHUP (default true). */
  reload?: boolean;
  /** Listen for SIGHUP here (default true); false when the caller calls reload.reloadAll() on it. */
  onSighup?: boolean;
}

/** Running hooks. */
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
  const hooks = await import("../../hooks/index.ts");
  const settings: Partial<HookSettings> = {
    ...(config.hookFail !== undefined ? { hookFail: config.hookFail } : {}),
    ...(config.hookMemoryLimitBytes !== undefined ? { hookMemoryLimitBytes: config.hookMemoryLimitBytes } : {}),
    ...(config.hookBatchBudgetMs !== undefined ? { hookBatchBudgetMs: config.hookBatchBudgetMs } : {}),
    ...(config.hookCompileBudgetMs !== undefined ? { hookCompileBudgetMs: config.hookCompileBudgetMs } : {}),
    ...(config.hookMaxStackBytes !== undefined ? { hookMaxStackBytes: config.hookMaxStackBytes } : {}),
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
  const stage = new HookStage(chain);
  const reload =
    (options.reload ?? true)
      ? hooks.installHookReload({ targets: runners.map((runner, i) => ({ runner, path: config.hooks[i]! })), logger, onSighup: options.onSighup ?? true })
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

/** The hooks stage of a spec: compiled now (a file that does not compile ends the command here). */
export async function createHooksStage(
  files: readonly string[],
  settings: Partial<HookSettings>,
  context: StageContext,
): Promise<PacketStage> {
  // SIGHUP reaches the hooks through the runner (src/cli/run-pipeline.ts has the one handler).
  const hooks = (await startHooks({ config: { hooks: files, ...settings }, logger: context.log, reload: context.reload, onSighup: false }))!;
  const { stage } = hooks;
  const several = context.inputNames.length > 1;
  return {
    name: "hooks",
    apply(batch: PacketBatch): PacketBatch {
      // Hooks see one interface name per call: a merged batch goes through in runs of one input,
      // and each result is marked with its input again (the hook runner rebuilds batches).
      const runs = inputRuns(batch);
      const results = runs.map(({ input, batch: run }) => {
        const out = stage.apply(run, context.inputNames[input] ?? "").batch;
        if (!several || out.count === 0) return out;
        return { ...out, meta: { ...out.meta, inputs: new Uint16Array(out.count).fill(input) } };
      });
      return results.length === 1 ? results[0]! : concatBatches(results);
    },
    counters: () => ({ packets_in: stage.counters.packetsIn, packets_out: stage.counters.packetsOut }),
    summaryLines: () => {
      const { packetsIn, packetsOut } = stage.counters;
      return [`${packetsOut} packets written after hooks (${packetsIn - packetsOut} dropped by hooks)`, ...hooks.summaryLines()];
    },
    reload: () => {
      if (!hooks.reload) return;
      context.log.info(`SIGHUP: reloading ${files.length} hook(s)`);
      void hooks.reload.reloadAll();
    },
    close: () => hooks.close(),
  };
}

/**
 * One line of a hook's counters, e.g.
 * `hook tag.js: 24 packets, 20 passed, 0 dropped, 4 modified; tags dns=3 icmp=1; failures threw=2 (hookFail=pass); 1.4 ms`.
 * Only counters that are not zero are listed after the first group. Tag names are the hook's
 * words: any that is not a plain word is quoted and escaped (tagText).
 */
export function formatHookCounters(stats: HookCountersSnapshot, policy: HookFailPolicy): string {
  const parts = [`${stats.packets} packets, ${stats.passed} passed, ${stats.dropped} dropped, ${stats.modified} modified`];
  const tags = tagCountsText(stats);
  if (tags !== "") parts.push(`tags ${tags}`);
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
