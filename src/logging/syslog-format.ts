// Syslog lines as glibc's syslog(3) writes them to /dev/log (RFC 3164 "BSD" format, which
// rsyslog, syslog-ng and journald all read): "<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE".
// libpcap's rpcapd logs with facility LOG_DAEMON when it runs as a daemon; so does probe.

/** RFC 3164 facility 3 (system daemons). */
export const SYSLOG_FACILITY_DAEMON = 3;
/** Where syslog(3) sends by default. */
export const DEFAULT_SYSLOG_SOCKET = "/dev/log";

/** RFC 3164/5424 severities for probe's levels. */
export const SyslogSeverity = { error: 3, warn: 4, info: 6, debug: 7 } as const;

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"] as const;

/** One syslog datagram's text (local time, like syslog(3)); `message` is already escaped. */
export function formatSyslogLine(severity: number, tag: string, pid: number, message: string, at: Date): string {
  const pri = SYSLOG_FACILITY_DAEMON * 8 + severity;
  const two = (n: number) => String(n).padStart(2, "0");
  const stamp = `${MONTHS[at.getMonth()]} ${String(at.getDate()).padStart(2, " ")} ${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`;
  return `<${pri}>${stamp} ${tag}[${pid}]: ${message}`;
}
