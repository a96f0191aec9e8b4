// Running a command's pipeline: the one place for --print-pipeline, signals (SIGINT/SIGTERM
// stop with a complete file and a summary, within STOP_WATCHDOG_MS or the process ends with a
// line naming what did not stop; SIGHUP rereads configuration), the summary on
// standard error, and the end of the run. Exit statuses are main.ts's (from error categories).
import { hostPortFlag } from "./parse-options.ts";
import { formatPipeline } from "../pipeline/pipeline-file.ts";
import type { LogConfig } from "../config/log-config.ts";
import type { Logger } from "../logging/index.ts";
import { logConfigSchema } from "../config/log-config.ts";
import { settleJitPolicy } from "./jit-policy.ts";
import { openCommandLog } from "./logging-options.ts";
import { buildOutput } from "../outputs/registry.ts";
import { PipelineRunner, StartStopped } from "../pipeline/runner.ts";
import { StopProgress } from "../pipeline/stop-progress.ts";
import { StopWatchdog } from "./stop-watchdog.ts";
import { checkPipelineSpec, type PipelineSpec, type PipelineSpecInput } from "../pipeline/spec.ts";
import { ExitCode, UsageError } from "./usage-error.ts";

/** The flags every pipeline command takes: --print-pipeline and --metrics. */
export const PRINT_PIPELINE_OPTION = { "print-pipeline": { type: "boolean" }, metrics: { type: "string" } } as const;
export const PRINT_PIPELINE_HELP = `      --print-pipeline    print the pipeline this command line makes (YAML; 'probe run FILE'
                          runs it) and exit
      --metrics HOST:PORT Prometheus metrics at http://HOST:PORT/metrics while it runs (no
                          authentication: keep it on loopback or a management network)
`;

/** Validates a spec a command built from its flags; an issue names the setting. */
export function specFromFlags(command: string, raw: PipelineSpecInput): PipelineSpec {
  const checked = checkPipelineSpec(raw);
  if ("issues" in checked) {
    throw new UsageError(checked.issues.map((i) => `${command}: ${i.path.join(".")}${i.path.length ? ": " : ""}${i.message}`).join("\n"));
  }
  return checked.spec;
}

/** The spec with --metrics HOST:PORT in it (unchanged without the flag); a bad address is a usage error. */
export function withMetricsFlag(spec: PipelineSpec, flag: string | undefined): PipelineSpec {
  return flag === undefined ? spec : { ...spec, metrics: hostPortFlag("--metrics", flag) };
}

export interface RunPipelineOptions {
  /** Print the spec and return instead of running it. */
  printPipeline?: boolean;
  /** Logger prefix ("probe", "probe-rpcapd"...). */
  logName?: string;
  /** --log-format/--log-level/--log-file/--syslog/--pid-file (defaults: text on standard error). */
  logConfig?: LogConfig;
  /** Called once everything is running (banners that name the bound ports). */
  onStarted?(runner: PipelineRunner, log: Logger): void;
}

/** What a pipeline command's parser returns for a command line that is not --help. */
export interface PipelineCommand {
  spec: PipelineSpec;
  printPipeline: boolean;
  logConfig?: LogConfig;
}

/** A pipeline command's whole run: its help text for "help", else its pipeline run (or printed). */
export async function runPipelineCommand(command: PipelineCommand | "help", help: string, options: Pick<RunPipelineOptions, "logName" | "onStarted"> = {}): Promise<number> {
  if (command === "help") {
    process.stdout.write(help);
    return ExitCode.OK;
  }
  return runPipeline(command.spec, { ...options, printPipeline: command.printPipeline, ...(command.logConfig ? { logConfig: command.logConfig } : {}) });
}

export async function runPipeline(spec: PipelineSpec, options: RunPipelineOptions = {}): Promise<number> {
  if (options.printPipeline) {
    process.stdout.write(formatPipeline(spec));
    return ExitCode.OK;
  }
  const commandLog = openCommandLog(options.logConfig ?? logConfigSchema.parse({}), options.logName ?? "probe");
  const log = commandLog.log;
  try {
    return await runLogged(spec, options, log);
  } catch (error) {
    // Logging to a file or syslog (rpcapd -d): standard error may go nowhere, so say there why the run stopped.
    if (options.logConfig?.logFile || options.logConfig?.logSyslog) log.error((error as Error).message);
    throw error;
  } finally {
    commandLog.close();
  }
}

async function runLogged(spec: PipelineSpec, options: RunPipelineOptions, log: Logger): Promise<number> {
  // After a signal the stop has STOP_WATCHDOG_MS, then the process ends with one line naming
  // what did not stop (stop-watchdog.ts); the runner reports its parts as they stop.
  const watchdog = new StopWatchdog({ name: options.logName ?? "probe", log: options.logConfig?.logFile || options.logConfig?.logSyslog ? log : undefined });
  const progress = new StopProgress((pending) => watchdog.update(pending));
  // Installed before anything starts: a signal while inputs open stops the run once they have
  // (SIGHUP's default action, ending the process, never applies).
  const signalled = Promise.withResolvers<void>();
  // A signal before the inputs have started (an active-probe listener no probe has dialled yet)
  // stops the start itself rather than waiting for an input that may never come.
  const stopDuringStart = new AbortController();
  let runner: PipelineRunner | undefined;
  const onStop = () => {
    watchdog.update(runner ? [] : ["the start of the inputs and outputs"]);
    watchdog.arm();
    signalled.resolve();
    stopDuringStart.abort();
  };
  const onHangup = () => runner?.reload();
  process.on("SIGINT", onStop);
  process.on("SIGTERM", onStop);
  process.on("SIGHUP", onHangup);
  try {
    let end;
    try {
      try {
        runner = await PipelineRunner.start(spec, { log, buildOutput, stopSignal: stopDuringStart.signal });
      } catch (error) {
        if (error instanceof StartStopped) return ExitCode.OK;
        throw error;
      }
      settleJitPolicy(spec);
      options.onStarted?.(runner, log);
      end = await Promise.race([runner.ended, signalled.promise.then(() => undefined)]);
    } finally {
      process.off("SIGINT", onStop);
      process.off("SIGTERM", onStop);
      process.off("SIGHUP", onHangup);
    }
    await runner.stop(progress);
    if (!spec.quiet) {
      const lines = runner.summaryLines();
      // JSON logs: every line of standard error is a JSON object, the summary too.
      if (options.logConfig?.logFormat === "json") for (const line of lines) log.info(line);
      else if (lines.length > 0) process.stderr.write(`${lines.join("\n")}\n`);
    }
    if (end?.reason === "failed") throw end.error;
    return ExitCode.OK;
  } finally {
    watchdog.disarm();
  }
}
