// Log and service settings every long-running command takes (--log-format, --log-level,
// --log-file, --syslog, --syslog-socket, --pid-file), for merging into a command's schema.
import { lazySchema, z } from "./zod.ts";
import { DEFAULT_SYSLOG_SOCKET, LOG_FORMATS, LOG_LEVELS } from "../logging/index.ts";

/** Built on first use (src/config/zod.ts); `.unwrap()` for `.shape`. */
export const logConfigSchema = lazySchema(() =>
  z.object({
    logFormat: z.enum(LOG_FORMATS).default("text"),
    logLevel: z.enum(LOG_LEVELS).default("info"),
    /** Append lines to this file instead of standard error. */
    logFile: z.string().min(1).optional(),
    /** Send lines to syslog (facility daemon), as libpcap's rpcapd does when daemonized. */
    logSyslog: z.boolean().default(false),
    /** The syslog socket (a Unix datagram socket). */
    syslogSocket: z.string().min(1).default(DEFAULT_SYSLOG_SOCKET),
    /** Write the process id here at start; removed at exit. */
    pidFile: z.string().min(1).optional(),
  }),
);

export type LogConfig = Readonly<z.infer<typeof logConfigSchema>>;
