// createLogger: the logger every long-running command builds from its --log-* settings.
// Level filter, text or JSON lines, a destination (standard error, a file, or syslog), a
// rate limit on repeated lines, and control characters escaped in every message.
import { closeSync, openSync, writeSync } from "node:fs";
import { connectUnixDatagram, type UnixDatagramSender } from "../sys/unix-datagram.ts";
import { DEFAULT_LOG_RATE_LIMIT, LogRateLimiter, type LogRateLimit } from "./log-rate-limiter.ts";
import { escapeControlCharacters } from "./peer-text.ts";
import { DEFAULT_SYSLOG_SOCKET, formatSyslogLine, SyslogSeverity } from "./syslog-format.ts";

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Where lines go: standard error, appended to a file, or datagrams to a syslog socket. */
export type LogDestination = { kind: "stderr" } | { kind: "file"; path: string } | { kind: "syslog"; socketPath: string };

export interface LogSettings {
  /** Program name at the start of each line (text), in "name" (JSON), the syslog tag. */
  name: string;
  level: LogLevel;
  format: LogFormat;
  destination: LogDestination;
  /** null = every line printed (tests that count lines). */
  rateLimit: LogRateLimit | null;
}

export const DEFAULT_LOG_SETTINGS: Omit<LogSettings, "name"> = Object.freeze({
  level: "info",
  format: "text",
  destination: { kind: "stderr" } as LogDestination,
  rateLimit: DEFAULT_LOG_RATE_LIMIT,
});

/** A Logger whose file or socket must be closed when the command ends. */
export interface ClosableLogger extends Logger {
  /** Prints pending "suppressed" summaries and closes the destination. Idempotent. */
  close(): void;
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/**
 * Builds a logger. Opening a --log-file or the syslog socket happens here, so a bad path
 * fails at start-up with an Error naming it (the command turns it into one line).
 */
export function createLogger(settings: LogSettings): ClosableLogger {
  const write = openDestination(settings);
  const limiter = settings.rateLimit ? new LogRateLimiter(settings.rateLimit, (level, m) => emit(level as LogLevel, m)) : null;
  const threshold = RANK[settings.level];
  let closed = false;
  function emit(level: LogLevel, message: string): void {
    if (closed) return;
    write.line(level, escapeControlCharacters(message));
  }
  const log = (level: LogLevel) => (message: string) => {
    if (RANK[level] > threshold || closed) return;
    if (limiter && !limiter.admit(level, message)) return;
    emit(level, message);
  };
  return {
    error: log("error"),
    warn: log("warn"),
    info: log("info"),
    debug: log("debug"),
    close() {
      if (closed) return;
      limiter?.flush();
      closed = true;
      write.close();
    },
  };
}

interface LineWriter {
  line(level: LogLevel, message: string): void;
  close(): void;
}

function openDestination(settings: LogSettings): LineWriter {
  const { destination, format, name } = settings;
  if (destination.kind === "syslog") return syslogWriter(destination.socketPath || DEFAULT_SYSLOG_SOCKET, settings);
  const text = (level: LogLevel, message: string) =>
    format === "json"
      ? `${JSON.stringify({ time: new Date().toISOString(), level, name, message })}\n`
      : `${new Date().toISOString()} ${name} ${level}: ${message}\n`;
  if (destination.kind === "file") {
    let fd: number;
    try {
      fd = openSync(destination.path, "a", 0o640);
    } catch (error) {
      throw new Error(`--log-file ${destination.path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    return {
      line: (level, message) => {
        try {
          writeSync(fd, text(level, message));
        } catch {
          // A full disk must not stop the daemon; the line is lost.
        }
      },
      close: () => closeSync(fd),
    };
  }
  return { line: (level, message) => void process.stderr.write(text(level, message)), close() {} };
}

function syslogWriter(socketPath: string, settings: LogSettings): LineWriter {
  let sender: UnixDatagramSender | null = connect(socketPath);
  const encoder = new TextEncoder();
  const body = (level: LogLevel, message: string) =>
    settings.format === "json" ? JSON.stringify({ level, name: settings.name, message }) : message;
  return {
    line(level, message) {
      const datagram = encoder.encode(formatSyslogLine(SyslogSeverity[level], settings.name, process.pid, body(level, message), new Date()));
      if (sender?.send(datagram)) return;
      // syslogd restarted (its socket was re-created): reconnect once and retry this line.
      sender?.close();
      try {
        sender = connectUnixDatagram(socketPath);
        sender.send(datagram);
      } catch {
        sender = null;
      }
    },
    close: () => sender?.close(),
  };
}

function connect(socketPath: string): UnixDatagramSender {
  try {
    return connectUnixDatagram(socketPath);
  } catch (error) {
    throw new Error(`syslog: ${(error as Error).message}; use --log-file FILE instead`);
  }
}
