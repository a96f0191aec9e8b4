// Hot reload wiring for the CLI: recompile hooks when their files change (fs.watch, debounced)
// and on SIGHUP. A file that does not compile leaves the running version in place.
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import type { Logger } from "../logging/index.ts";
import type { HookRunner, ReloadResult } from "./hook-runtime.ts";

/**
 * Editors save in several steps (truncate, write, rename); waiting this long after the last
 * change event avoids compiling a half-written file.
 */
export const HOOK_RELOAD_DEBOUNCE_MS = 200;

export interface HookReloadTarget {
  runner: HookRunner;
  path: string;
}

export interface HookReloadOptions {
  targets: readonly HookReloadTarget[];
  logger: Logger;
  /** Watch the files for changes (default true). */
  watchFiles?: boolean;
  /** Reload on SIGHUP (default true). */
  onSighup?: boolean;
  /** Called after every reload attempt (tests, counters). */
  onReload?: (target: HookReloadTarget, result: ReloadResult) => void;
}

export interface HookReloadHandle {
  /** Reloads every hook from its file now (what SIGHUP does). */
  reloadAll(): Promise<ReloadResult[]>;
  /** Stops watching and removes the SIGHUP listener. Idempotent. */
  close(): void;
}

export function installHookReload(options: HookReloadOptions): HookReloadHandle {
  const { targets, logger } = options;
  const watchers: FSWatcher[] = [];
  const timers = new Map<HookReloadTarget, ReturnType<typeof setTimeout>>();
  let closed = false;

  const reloadOne = async (target: HookReloadTarget): Promise<ReloadResult> => {
    const result = await target.runner.reloadFromFile(target.path);
    options.onReload?.(target, result);
    return result;
  };
  const reloadAll = async (): Promise<ReloadResult[]> => {
    const results: ReloadResult[] = [];
    for (const target of targets) results.push(await reloadOne(target));
    return results;
  };

  if (options.watchFiles ?? true) {
    for (const target of targets) {
      try {
        // Watch the directory, not the file: editors that save by rename replace the inode,
        // and a watch on the old file would go quiet.
        const name = basename(target.path);
        const watcher = watch(dirname(target.path), (_event, changed) => {
          if (closed || (changed !== null && changed !== name)) return;
          clearTimeout(timers.get(target));
          timers.set(
            target,
            setTimeout(() => {
              timers.delete(target);
              if (!closed) void reloadOne(target);
            }, HOOK_RELOAD_DEBOUNCE_MS),
          );
        });
        watcher.on("error", (error) => logger.warn(`hook ${target.runner.name}: file watch failed: ${error.message}`));
        watchers.push(watcher);
      } catch (error) {
        logger.warn(`hook ${target.runner.name}: cannot watch ${target.path}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  const onSighup = () => {
    logger.info(`SIGHUP: reloading ${targets.length} hook(s)`);
    void reloadAll();
  };
  if (options.onSighup ?? true) process.on("SIGHUP", onSighup);

  return {
    reloadAll,
    close() {
      if (closed) return;
      closed = true;
      for (const watcher of watchers) watcher.close();
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
      process.off("SIGHUP", onSighup);
    },
  };
}
