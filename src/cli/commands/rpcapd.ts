// `probe rpcapd`: a drop-in for libpcap's rpcapd (same flags, same config file), plus long
// options, ExtraHop's -i/-t, a users file, and shared captures behind every session. The flags
// become a PipelineSpec with no inputs (clients open their own) and one rpcapd output.
import { fstatSync, readFileSync, writeFileSync } from "node:fs";
import {
  formatRpcapdConfigFile,
  parseRpcapdConfigFile,
  RPCAP_DEFAULT_ACTIVE_PORT,
  RPCAP_DEFAULT_PORT,
  rpcapdConfigSchema,
  UDPSTR_DEFAULT_MTU,
  type RpcapdConfig,
} from "../../config/rpcapd-config.ts";
import type { PipelineSpec } from "../../pipeline/spec.ts";
import { inetdPeerAddress } from "../../daemon/inetd-peer.ts";
import { hostPortFlag, parseCommandLine, parseInteger } from "../parse-options.ts";
import {
  normalizeProcessingArgv,
  ONLY_DIRECTION_CLI_OPTION,
  ONLY_DIRECTION_HELP,
  onlyDirectionOfTaggedStream,
  PROCESSING_CLI_OPTIONS,
  PROCESSING_OPTIONS_HELP,
  processingStagesFromFlags,
} from "../processing-options.ts";
import { HOOK_CLI_OPTIONS, HOOK_OPTIONS_HELP, hookConfigFromFlags, hooksStageFromFlags } from "../hook-options.ts";
import { LOGGING_CLI_OPTIONS, LOGGING_OPTIONS_HELP, logConfigFromFlags, openCommandLog } from "../logging-options.ts";
import { PRINT_PIPELINE_HELP, PRINT_PIPELINE_OPTION, runPipeline, specFromFlags, withMetricsFlag } from "../run-pipeline.ts";
import { ExitCode, UsageError } from "../usage-error.ts";
import { validated } from "../validated.ts";

export const RPCAPD_HELP = `Usage: probe rpcapd [options]

An RPCAP daemon: libpcap clients (tcpdump/Wireshark -i rpcap://HOST:2002/IFACE, rpcaps:// for
TLS) capture on this host through it. Flags follow libpcap's rpcapd.

  -b, --bind ADDR          listen on ADDR (default: every IPv4 and IPv6 address)
  -p, --port PORT          listen on PORT (default ${RPCAP_DEFAULT_PORT})
  -4, --ipv4               IPv4 only
  -l, --host-list LIST     only these hosts may connect, checked before AUTH: a file (hosts
                           separated by newlines, spaces or commas) or, as libpcap's rpcapd
                           takes it, the hosts themselves: -l host1,host2
  -n, --null-auth          allow NULL authentication (no password)
  -a, --active-client HOST,PORT
      --active HOST:PORT   dial out to a collector (repeatable; port defaults to ${RPCAP_DEFAULT_ACTIVE_PORT})
                           and serve it; redialled while unreachable (30 s, backing
                           off to 4 min; one log line per outage)
  -v, --active-only        do not listen; active connections only
  -d, --daemon             run in the background, logging to syslog (like rpcapd) unless
                           --log-file is given
  -s, --save-config FILE   write the current configuration to FILE (rpcapd's format)
  -f, --config FILE        load configuration (ActiveClient, PassiveClient, NullAuthPermit)
                           from FILE; SIGHUP reloads it without dropping live sessions
  -S, --tls                TLS on control and data connections (rpcaps://)
  -K, --tls-key FILE       private key (default key.pem)
  -X, --tls-cert FILE      certificate (default cert.pem)
  -i, --interface IFACE    (ExtraHop) capture only IFACE: listed first as ';preselected',
                           any other OPEN is refused
  -i                       (libpcap) with no IFACE, i.e. last or followed by another option:
      --inetd              inetd mode, serve the one connection on standard input/output
                           (inetd, systemd's probe-rpcapd.socket, socat) and exit when it ends
      --interfaces LIST    only these interfaces (comma-separated) are listed and may be opened
  -t, --udpstr-mtu MTU     (ExtraHop) pack UDP data channels as udpstr datagrams of at most
                           MTU bytes (${UDPSTR_DEFAULT_MTU} for a 1500-byte link). Off unless given, so
                           stock libpcap clients keep working; -t 0 = plain RPCAP over UDP.
                           NOTE: libpcap 1.11's -t means a fixed data port; here that is
                           --data-port.
      --data-port PORT     fixed port for passive TCP data connections (default: ephemeral)
      --users FILE         password file: 'user:hash' lines made by 'probe passwd USER'
      --system-accounts-share-capture
                           without --users, accept system-account passwords (/etc/shadow) like
                           rpcapd; but the session captures with this daemon's rights, not the
                           user's (rpcapd switches to the user). Off: password logins are refused
      --auth-timeout-ms N  a connection must authenticate within N ms (default 90000)
      --idle-timeout-ms N  close an idle authenticated connection after N ms (default 180000)
      --max-sessions N     concurrent control connections (default 64)
      --max-sessions-per-address N
                           of which from one address, IPv6 /64 (default 8)
      --pressure-auth-timeout-ms N
                           auth deadline once 3/4 of the sessions are taken (default 10000)
  -h, --help               this text
${ONLY_DIRECTION_HELP}
Processing (docs/stages.md; run once per captured batch, like hooks):
${PROCESSING_OPTIONS_HELP}
${LOGGING_OPTIONS_HELP}${HOOK_OPTIONS_HELP}
${PRINT_PIPELINE_HELP}
Hooks run once per captured batch of each opened interface, before that capture's sessions;
each client's filter, snaplen and sampling apply to it alone, after the hooks.
Every failed authentication is answered "Authentication failed" and costs that peer a
growing pause; the reason is logged. OPEN accepts local interfaces only.
`;

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const RPCAPD_OPTIONS = {
  bind: { type: "string", short: "b" },
  port: { type: "string", short: "p" },
  ipv4: { type: "boolean", short: "4" },
  "host-list": { type: "string", short: "l" },
  "null-auth": { type: "boolean", short: "n" },
  "active-client": { type: "string", short: "a", multiple: true },
  active: { type: "string", multiple: true },
  "active-only": { type: "boolean", short: "v" },
  daemon: { type: "boolean", short: "d" },
  "save-config": { type: "string", short: "s" },
  config: { type: "string", short: "f" },
  tls: { type: "boolean", short: "S" },
  "tls-key": { type: "string", short: "K" },
  "tls-cert": { type: "string", short: "X" },
  interface: { type: "string", short: "i" },
  inetd: { type: "boolean" },
  interfaces: { type: "string" },
  "udpstr-mtu": { type: "string", short: "t" },
  "data-port": { type: "string" },
  users: { type: "string" },
  "auth-timeout-ms": { type: "string" },
  "idle-timeout-ms": { type: "string" },
  "max-sessions": { type: "string" },
  "max-sessions-per-address": { type: "string" },
  "pressure-auth-timeout-ms": { type: "string" },
  "system-accounts-share-capture": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  ...PRINT_PIPELINE_OPTION,
  ...HOOK_CLI_OPTIONS,
  ...LOGGING_CLI_OPTIONS,
  ...PROCESSING_CLI_OPTIONS,
  ...ONLY_DIRECTION_CLI_OPTION,
} as const;

/**
 * libpcap's rpcapd reads a bare `-i` as inetd mode; ExtraHop's reads `-i IFACE` as the
 * preselected interface. Both stay usable: `-i` as the last argument or followed by another
 * option means inetd (`--inetd`); `-i NAME` preselects NAME (no interface name starts with '-').
 */
export function rewriteInetdFlag(argv: readonly string[]): string[] {
  const end = argv.indexOf("--");
  return argv.map((arg, i) => {
    if (arg !== "-i" || (end >= 0 && i > end)) return arg;
    const next = argv[i + 1];
    return next === undefined || next.startsWith("-") ? "--inetd" : arg;
  });
}

/** `--interfaces eth0,lo` as names; one clear line when nothing is left. */
function interfaceList(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  const names = text.split(",").map((name) => name.trim()).filter((name) => name !== "");
  if (names.length === 0) throw new UsageError("--interfaces: give at least one interface name (e.g. --interfaces eth0,eth1)");
  return names;
}

export function parseRpcapdConfig(argv: string[]): RpcapdConfig | "help" {
  const { values: v, positionals } = parseCommandLine("rpcapd", rewriteInetdFlag(normalizeProcessingArgv(argv)), RPCAPD_OPTIONS);
  if (v.help) return "help";
  if (positionals.length > 0) throw new UsageError(`rpcapd: unexpected argument '${positionals[0]}'`);
  const active = [
    ...(v["active-client"] ?? []).map((text) => {
      const [host, port] = text.split(",");
      return { host: host ?? "", port: port ? Number(port) : RPCAP_DEFAULT_ACTIVE_PORT };
    }),
    ...(v.active ?? []).map((text) => hostPortFlag("--active", text, RPCAP_DEFAULT_ACTIVE_PORT)),
  ];
  return validated("rpcapd", rpcapdConfigSchema, {
    bindAddress: v.bind,
    port: parseInteger("-p", v.port, 0, 65535),
    ipv4Only: v.ipv4,
    hostListFile: v["host-list"],
    nullAuth: v["null-auth"],
    active,
    activeOnly: v["active-only"],
    daemonize: v.daemon,
    saveConfigFile: v["save-config"],
    configFile: v.config,
    tls: v.tls,
    tlsKey: v["tls-key"],
    tlsCert: v["tls-cert"],
    preselectedInterface: v.interface,
    inetd: v.inetd,
    interfaces: interfaceList(v.interfaces),
    udpstrMtu: parseInteger("-t", v["udpstr-mtu"], 0, 65000),
    dataPort: parseInteger("--data-port", v["data-port"], 0, 65535),
    usersFile: v.users,
    authTimeoutMs: parseInteger("--auth-timeout-ms", v["auth-timeout-ms"], 100, 86_400_000),
    idleTimeoutMs: parseInteger("--idle-timeout-ms", v["idle-timeout-ms"], 100, 86_400_000),
    maxSessions: parseInteger("--max-sessions", v["max-sessions"], 1, 100_000),
    maxSessionsPerAddress: parseInteger("--max-sessions-per-address", v["max-sessions-per-address"], 1, 100_000),
    pressureAuthTimeoutMs: parseInteger("--pressure-auth-timeout-ms", v["pressure-auth-timeout-ms"], 100, 86_400_000),
    systemAccountsShareCapture: v["system-accounts-share-capture"],
    ...hookConfigFromFlags(v),
    ...logConfigFromFlags(v),
  });
}

/**
 * The pipeline of an rpcapd configuration: no inputs (sessions open theirs), the stages
 * (processing, then hooks), the daemon.
 */
export function rpcapdSpec(config: RpcapdConfig, stages: PipelineSpec["stages"], onlyDirection?: "in" | "out"): PipelineSpec {
  return specFromFlags("rpcapd", {
    inputs: [],
    stages,
    outputs: [
      {
        kind: "rpcapd",
        ...(config.activeOnly || config.inetd ? {} : { listen: { ...(config.bindAddress ? { host: config.bindAddress } : {}), port: config.port, ipv4Only: config.ipv4Only } }),
        active: config.active,
        ...(config.tls ? { tls: { cert: config.tlsCert, key: config.tlsKey } } : {}),
        ...(config.configFile ? { configFile: config.configFile } : {}),
        ...(config.hostListFile ? { hostListFile: config.hostListFile } : {}),
        passiveClients: config.passiveClients,
        nullAuth: config.nullAuth,
        ...(config.usersFile ? { usersFile: config.usersFile } : {}),
        ...(config.preselectedInterface ? { preselectedInterface: config.preselectedInterface } : {}),
        ...(config.interfaces ? { interfaces: config.interfaces } : {}),
        ...(config.inetd ? { inetd: true } : {}),
        udpstrMtu: config.udpstrMtu,
        dataPort: config.dataPort,
        authTimeoutMs: config.authTimeoutMs,
        idleTimeoutMs: config.idleTimeoutMs,
        activeRetryMs: config.activeRetryMs,
        dataQueueBytes: config.dataQueueBytes,
        maxControlPlen: config.maxControlPlen,
        maxSessions: config.maxSessions,
        maxSessionsPerAddress: config.maxSessionsPerAddress,
        pressureAuthTimeoutMs: config.pressureAuthTimeoutMs,
        systemAccountsShareCapture: config.systemAccountsShareCapture,
        ...(onlyDirection ? { onlyDirection } : {}),
      },
    ],
  });
}

export async function runRpcapd(argv: string[]): Promise<number> {
  const parsed = parseRpcapdConfig(argv);
  if (parsed === "help") {
    process.stdout.write(RPCAPD_HELP);
    return ExitCode.OK;
  }
  if (parsed.inetd && (parsed.daemonize || parsed.activeOnly || parsed.active.length > 0)) {
    throw new UsageError("rpcapd: inetd mode (-i without an interface, --inetd) serves standard input; it cannot be combined with -d, -a/--active or -v");
  }
  if (parsed.inetd && !inetdPeerAddress()) {
    throw new UsageError("rpcapd -i (inetd mode): standard input is not a TCP connection; run it from inetd, probe-rpcapd.socket or socat, or give -i an interface name");
  }
  if (parsed.preselectedInterface && parsed.interfaces && !parsed.interfaces.includes(parsed.preselectedInterface)) {
    throw new UsageError(`rpcapd: -i ${parsed.preselectedInterface} is not among --interfaces ${parsed.interfaces.join(",")}`);
  }
  // The detached child sees -d again when it was bundled (-nd): the marker stops a chain.
  if (parsed.daemonize && process.env[DETACHED_ENV] !== "1") return daemonize(argv, parsed);
  const normalized = rewriteInetdFlag(normalizeProcessingArgv(argv));
  const { values } = parseCommandLine("rpcapd", normalized, RPCAPD_OPTIONS);
  const hooks = hooksStageFromFlags(values);
  const spec = rpcapdSpec(parsed, [...processingStagesFromFlags(values, normalized), ...(hooks ? [hooks] : [])], onlyDirectionOfTaggedStream(values));
  if (parsed.saveConfigFile && !values["print-pipeline"]) {
    // The configuration in force: the -f file's settings win over the flags (rpcapd).
    let saved = { active: [...parsed.active], passiveClients: [...parsed.passiveClients], nullAuth: parsed.nullAuth };
    if (parsed.configFile) {
      try {
        saved = parseRpcapdConfigFile(readFileSync(parsed.configFile, "utf8"));
      } catch (error) {
        throw new UsageError(`-f ${parsed.configFile}: ${(error as Error).message}`);
      }
    }
    writeFileSync(parsed.saveConfigFile, formatRpcapdConfigFile(saved));
  }
  if (parsed.activeOnly && parsed.active.length === 0 && !parsed.configFile) throw new UsageError("rpcapd: -v needs at least one -a HOST,PORT");
  return runPipeline(withMetricsFlag(spec, values.metrics), {
    printPipeline: values["print-pipeline"] ?? false,
    logName: "probe-rpcapd",
    // inetd mode: standard error may be the connection itself (plain inetd): then log nowhere.
    logConfig: parsed.inetd && !parsed.logFile && !parsed.logSyslog && stderrIsStdin() ? { ...parsed, logFile: "/dev/null" } : parsed,
  });
}

/** Whether standard error is the connection itself (plain inetd): then logging must stay off it. */
function stderrIsStdin(): boolean {
  try {
    const input = fstatSync(0);
    const error = fstatSync(2);
    return input.ino === error.ino && input.dev === error.dev;
  } catch {
    return false;
  }
}

/** Set in the detached child's environment so that it does not detach again. */
const DETACHED_ENV = "PROBE_RPCAPD_DETACHED";

/**
 * -d: start again detached (without -d), stdio to /dev/null, and return at once. The child
 * logs to syslog like libpcap's rpcapd (checked here first, so an unreachable syslog is one
 * line now rather than a silent daemon), unless --log-file or --syslog says where.
 */
function daemonize(argv: string[], config: RpcapdConfig): number {
  const rest = argv.filter((a) => a !== "-d" && a !== "--daemon");
  if (!config.logFile && !config.logSyslog) {
    openCommandLog({ ...config, logSyslog: true, pidFile: undefined }, "probe-rpcapd").close();
    rest.push("--syslog");
  }
  const self = process.execPath.endsWith("/bun") || process.execPath.endsWith("/bun.exe")
    ? [process.execPath, Bun.main]
    : [process.execPath];
  const child = Bun.spawn([...self, "rpcapd", ...rest], {
    stdio: ["ignore", "ignore", "ignore"],
    detached: true,
    env: { ...process.env, [DETACHED_ENV]: "1" },
  } as Parameters<typeof Bun.spawn>[1]);
  child.unref();
  process.stderr.write(`probe rpcapd running in the background, pid ${child.pid}\n`);
  return ExitCode.OK;
}
