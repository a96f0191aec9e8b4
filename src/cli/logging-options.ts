// The log and service flags every long-running command shares (--log-format, --log-level,
// --log-file, --syslog, --syslog-socket, --pid-file) and openCommandLog(), which builds the
// command's logger from them and writes the pid file. A command spreads LOGGING_CLI_OPTIONS
// into its parseArgs options, merges logConfigSchema into its zod schema, passes
// logConfigFromFlags(values) into its raw config, and calls openCommandLog(config, name).
import { rmSync, writeFileSync } from "node:fs";
import { logConfigSchema, type LogConfig } from "../config/log-config.ts";
import { createLogger, DEFAULT_LOG_RATE_LIMIT, LOG_FORMATS, LOG_LEVELS, type ClosableLogger, type LogDestination } from "../logging/index.ts";
import { CommandFailure, UsageError } from "./usage-error.ts";
import { validated } from "./validated.ts";

/** parseArgs definitions; spread them into a command's own options. */
export const LOGGING_CLI_OPTIONS = {
  "log-format": { type: "string" },
  "log-level": { type: "string" },
  "log-file": { type: "string" },
  syslog: { type: "boolean" },
  "syslog-socket": { type: "string" },
  "pid-file": { type: "string" },
} as const;

/** The flags' lines for a command's --help. */
export const LOGGING_OPTIONS_HELP = `      --log-format FORMAT  text (default) or json: one JSON object per line
      --log-level LEVEL    error, warn, info (default) or debug
      --log-file FILE      append log lines to FILE instead of standard error
      --syslog             log to syslog (facility daemon) instead of standard error
      --syslog-socket PATH the syslog socket (default /dev/log)
      --pid-file FILE      write the process id to FILE; removed at exit
`;

interface LoggingFlagValues {
  "log-format"?: string | undefined;
  "log-level"?: string | undefined;
  "log-file"?: string | undefined;
  syslog?: boolean | undefined;
  "syslog-socket"?: string | undefined;
  "pid-file"?: string | undefined;
}

/** The log fields of a command's raw config (undefined where a flag is absent: defaults apply). */
export function logConfigFromFlags(values: LoggingFlagValues): Record<keyof LogConfig, unknown> {
  if (values["log-file"] !== undefined && values.syslog) throw new UsageError("--log-file and --syslog: choose one destination");
  oneOf("--log-level", values["log-level"], LOG_LEVELS);
  oneOf("--log-format", values["log-format"], LOG_FORMATS);
  return {
    logFormat: values["log-format"],
    logLevel: values["log-level"],
    logFile: values["log-file"],
    logSyslog: values.syslog,
    syslogSocket: values["syslog-socket"],
    pidFile: values["pid-file"],
  };
}

/** The validated log settings of a command's flags (for commands whose schema does not merge logConfigSchema). */
export function logConfigFromCommandFlags(command: string, values: LoggingFlagValues): LogConfig {
  return validated(command, logConfigSchema, logConfigFromFlags(values));
}

/** The command's logger from its settings, and its pid file; `close()` undoes both. */
export interface CommandLog {
  log: ClosableLogger;
  close(): void;
}

/**
 * Opens the logger (file or syslog socket checked now: a bad one is one CommandFailure line
 * naming it) and writes the pid file.
 */
export function openCommandLog(config: LogConfig, name: string): CommandLog {
  const destination: LogDestination = config.logFile
    ? { kind: "file", path: config.logFile }
    : config.logSyslog
      ? { kind: "syslog", socketPath: config.syslogSocket }
      : { kind: "stderr" };
  let log: ClosableLogger;
  try {
    log = createLogger({ name, level: config.logLevel, format: config.logFormat, destination, rateLimit: DEFAULT_LOG_RATE_LIMIT });
  } catch (error) {
    throw new CommandFailure((error as Error).message);
  }
  const pidFile = config.pidFile;
  if (pidFile) {
    try {
      writeFileSync(pidFile, `${process.pid}\n`);
    } catch (error) {
      log.close();
      throw new CommandFailure(`--pid-file ${pidFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  let closed = false;
  return {
    log,
    close() {
      if (closed) return;
      closed = true;
      if (pidFile) rmSync(pidFile, { force: true });
      log.close();
    },
  };
}

function oneOf(flag: string, value: string | undefined, allowed: readonly string[]): void {
  if (value === undefined || allowed.includes(value)) return;
  const list = `${allowed.slice(0, -1).join(", ")} or ${allowed.at(-1)}`;
  throw new UsageError(`${flag} wants ${list}, not '${value}'`);
}
