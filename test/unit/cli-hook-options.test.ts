// The shared hook flags (src/cli/hook-options.ts) as `probe capture` and `probe hook test` parse
// them: order of --hook, unit conversion, limits refused as usage errors, the counters line,
// and startHooks() naming the file that does not compile.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCaptureCommand } from "../../src/cli/commands/capture.ts";
import { parseHookTestConfig } from "../../src/cli/commands/hook.ts";
import { formatHookCounters, HookSetupError, startHooks } from "../../src/pipeline/stages/hooks.ts";
import { UsageError } from "../../src/cli/usage-error.ts";
import { ProbeError } from "../../src/packet/probe-error.ts";
import { hookConfigSchema, MAX_HOOK_FILES } from "../../src/config/hook-config.ts";
import { DEFAULT_HOOK_SETTINGS } from "../../src/hooks/index.ts";
import { silentLogger } from "../../src/logging/index.ts";

const base = ["-r", "in.pcap", "-w", "out.pcap"];

/** The hooks stage of the pipeline the command line makes (defaults when there is none). */
function capture(extra: string[]) {
  const command = parseCaptureCommand([...base, ...extra]);
  if (command === "help") throw new Error("help");
  const stage = command.spec.stages.find((s) => s.kind === "hooks");
  const frozen = Object.isFrozen(command.spec) && (stage === undefined || Object.isFrozen(stage));
  if (!stage || stage.kind !== "hooks") return { ...DEFAULT_HOOK_SETTINGS, hooks: [] as readonly string[], frozen };
  return { ...stage, hooks: stage.files, frozen };
}

describe("capture's hook flags", () => {
  test("no hook flags: no hooks and the hooks module's defaults", () => {
    const config = capture([]);
    expect(config.hooks).toEqual([]);
    expect(config.hookFail).toBe("pass");
    expect(config.hookMemoryLimitBytes).toBe(DEFAULT_HOOK_SETTINGS.hookMemoryLimitBytes);
    expect(config.hookBatchBudgetMs).toBe(DEFAULT_HOOK_SETTINGS.hookBatchBudgetMs);
  });

  test("--hook repeats in order; --hook-fail, --hook-memory-mb (MiB) and --hook-budget-ms land in the config", () => {
    const config = capture(["--hook", "b.js", "--hook", "a.js", "--hook-fail", "drop", "--hook-memory-mb", "8", "--hook-budget-ms", "20"]);
    expect(config.hooks).toEqual(["b.js", "a.js"]);
    expect(config.hookFail).toBe("drop");
    expect(config.hookMemoryLimitBytes).toBe(8 * 1024 * 1024);
    expect(config.hookBatchBudgetMs).toBe(20);
    expect(config.frozen).toBe(true);
  });

  const refused: [string, string[], RegExp][] = [
    ["an unknown policy", ["--hook", "a.js", "--hook-fail", "ignore"], /--hook-fail is pass or drop/],
    ["memory 0", ["--hook", "a.js", "--hook-memory-mb", "0"], /--hook-memory-mb must be between 1 and 1024/],
    ["memory over 1 GiB", ["--hook-memory-mb", "1025"], /--hook-memory-mb must be between 1 and 1024/],
    ["a fractional budget", ["--hook-budget-ms", "1.5"], /--hook-budget-ms wants a whole number/],
    ["budget 0", ["--hook-budget-ms", "0"], /--hook-budget-ms must be between 1 and 10000/],
    [`more than ${MAX_HOOK_FILES} hooks`, Array.from({ length: MAX_HOOK_FILES + 1 }, (_, i) => ["--hook", `h${i}.js`]).flat(), /at most 16 hooks/],
  ];
  for (const [what, flags, message] of refused) {
    test(`refuses ${what} as a usage error`, () => {
      expect(() => capture(flags)).toThrow(UsageError);
      expect(() => capture(flags)).toThrow(message);
    });
  }

  test("the schema takes every hookSettingsSchema field (it is merged, not copied)", () => {
    const parsed = hookConfigSchema.parse({ hookCompileBudgetMs: 5, hookMaxStackBytes: 65536 });
    expect(parsed.hookCompileBudgetMs).toBe(5);
    expect(parsed.hookMaxStackBytes).toBe(65536);
    expect(() => hookConfigSchema.parse({ hookMaxStackBytes: 1 })).toThrow();
  });
});

describe("hook test's command line", () => {
  test("the positional is the hook; -v counts", () => {
    const config = parseHookTestConfig(["x.js", "-r", "in.pcap", "-vv", "--hook-fail", "drop"]);
    if (config === "help") throw new Error("help");
    expect(config.hooks).toEqual(["x.js"]);
    expect(config.readFile).toBe("in.pcap");
    expect(config.verbosity).toBe(2);
    expect(config.hookFail).toBe("drop");
  });

  test("no hook, two hooks or no -r are usage errors", () => {
    expect(() => parseHookTestConfig(["-r", "in.pcap"])).toThrow(/give exactly one hook/);
    expect(() => parseHookTestConfig(["a.js", "b.js", "-r", "in.pcap"])).toThrow(UsageError);
    expect(() => parseHookTestConfig(["a.js"])).toThrow(/-r IN.pcap is required/);
  });
});

describe("formatHookCounters", () => {
  const counters = {
    name: "tag.js",
    batches: 2,
    packets: 24,
    passed: 18,
    dropped: 2,
    modified: 4,
    tagged: { dns: 3, icmp: 1 },
    taggedOtherNames: 0,
    failures: { threw: 2, badVerdict: 0, timeout: 0, outOfMemory: 0, internal: 0 },
    skipped: 0,
    checksumsFixed: 0,
    checksumsSkipped: 0,
    logLines: 0,
    logLinesSuppressed: 0,
    recreations: 0,
    reloads: 1,
    reloadFailures: 0,
    timeNs: 1_400_000,
    consecutiveFailures: 0,
    disabled: false,
  };

  test("lists the outcome totals, tags, nonzero failures with the policy, and what else happened", () => {
    expect(formatHookCounters(counters, "pass")).toBe(
      "hook tag.js: 24 packets, 18 passed, 2 dropped, 4 modified; tags dns=3 icmp=1; failures threw=2 (hookFail=pass); reloaded 1x; 1.4 ms",
    );
  });

  test("a quiet hook gets the short line; a disabled one says so", () => {
    const quiet = { ...counters, tagged: {}, failures: { ...counters.failures, threw: 0 }, reloads: 0, timeNs: 0 };
    expect(formatHookCounters(quiet, "drop")).toBe("hook tag.js: 24 packets, 18 passed, 2 dropped, 4 modified; 0.0 ms");
    expect(formatHookCounters({ ...quiet, skipped: 7, disabled: true }, "drop")).toBe(
      "hook tag.js: 24 packets, 18 passed, 2 dropped, 4 modified; failures skipped=7 (hookFail=drop); DISABLED; 0.0 ms",
    );
  });
});

describe("startHooks", () => {
  const dir = mkdtempSync(join(tmpdir(), "probe-hook-options-"));
  const good = join(dir, "good.js");
  const bad = join(dir, "bad.js");
  writeFileSync(good, "export default function () {}");
  writeFileSync(bad, "export default function ( {");
  const config = (hooks: string[]) => hookConfigSchema.parse({ hooks });

  test("no hooks: nothing to start", async () => {
    expect(await startHooks({ config: config([]), logger: silentLogger })).toBeUndefined();
  });

  test("a file that does not compile is a HookSetupError (exit 1) naming it and the reason", async () => {
    const attempt = startHooks({ config: config([good, bad]), logger: silentLogger, reload: false });
    await expect(attempt).rejects.toBeInstanceOf(HookSetupError);
    await expect(startHooks({ config: config([good, bad]), logger: silentLogger, reload: false })).rejects.toThrow(
      `hook ${bad} does not compile (syntax): SyntaxError`,
    );
    expect(new HookSetupError("x")).toBeInstanceOf(ProbeError);
  });

  test("a missing file is a HookSetupError naming it", async () => {
    await expect(startHooks({ config: config([join(dir, "missing.js")]), logger: silentLogger, reload: false })).rejects.toThrow(
      /hook .*missing\.js: cannot read it/,
    );
  });

  test("good hooks give a stage, counters in chain order, and close() is idempotent", async () => {
    const hooks = (await startHooks({ config: config([good, good]), logger: silentLogger, reload: false }))!;
    expect(hooks.reload).toBeUndefined();
    expect(hooks.stage.chain.runners.length).toBe(2);
    expect(hooks.summaryLines()).toEqual(["hook good.js: 0 packets, 0 passed, 0 dropped, 0 modified; 0.0 ms", "hook good.js: 0 packets, 0 passed, 0 dropped, 0 modified; 0.0 ms"]);
    hooks.close();
    hooks.close();
    expect(hooks.stage.chain.runners.every((r) => r.disabled)).toBe(true);
  });
});
