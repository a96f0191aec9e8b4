// Logging for daemons and long-running commands: one line per event (text or JSON) on
// standard error, in a file or to syslog, with levels, a rate limit and escaped peer text.
import { DEFAULT_LOG_SETTINGS, createLogger, type ClosableLogger, type Logger } from "./logger.ts";
import { escapeControlCharacters } from "./peer-text.ts";

export {
  createLogger,
  DEFAULT_LOG_SETTINGS,
  LOG_FORMATS,
  LOG_LEVELS,
  type ClosableLogger,
  type LogDestination,
  type LogFormat,
  type Logger,
  type LogLevel,
  type LogSettings,
} from "./logger.ts";
export { DEFAULT_LOG_RATE_LIMIT, LogRateLimiter, MAX_LOG_KINDS_PER_INTERVAL, type LogRateLimit } from "./log-rate-limiter.ts";
export { escapeControlCharacters, MAX_PEER_TEXT_CHARS, peerText } from "./peer-text.ts";
export { DEFAULT_SYSLOG_SOCKET, formatSyslogLine } from "./syslog-format.ts";

/** Text lines on standard error with the default level and rate limit. */
export function stderrLogger(prefix = "probe"): ClosableLogger {
  return createLogger({ ...DEFAULT_LOG_SETTINGS, name: prefix });
}

/** A logger that keeps lines in memory (tests), control characters escaped like the real one. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (m: string) => void lines.push(`${level}: ${escapeControlCharacters(m)}`);
  return { lines, error: keep("error"), warn: keep("warn"), info: keep("info"), debug: keep("debug") };
}

export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
