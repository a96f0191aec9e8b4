// `probe rpcapd`: a drop-in for libpcap's rpcapd (same flags, same config file), plus long
// options, ExtraHop's -i/-t, a users file, and a shared capture behind every session.
import { fstatSync, readFileSync, writeFileSync } from "node:fs";
import { parseHostPort } from "../../config/addresses.ts";
import {
  formatRpcapdConfigFile,
  parseRpcapdConfigFile,
  RPCAP_DEFAULT_ACTIVE_PORT,
  RPCAP_DEFAULT_PORT,
  rpcapdConfigSchema,
  UDPSTR_DEFAULT_MTU,
  type RpcapdConfig,
} from "../../config/rpcapd-config.ts";
import { Authenticator, loadHostList, readHostListArgument } from "../../daemon/auth/index.ts";
import { inetdPeerAddress } from "../../daemon/inetd-peer.ts";
import { RpcapDaemon } from "../../daemon/rpcapd.ts";
import { silentLogger, stderrLogger, type Logger } from "../../logging/index.ts";
import { CaptureHub } from "../../pipeline/capture-hub.ts";
import { UdpstrPacker } from "../../protocols/udpstr/index.ts";
import { parseCommandLine, parseInteger } from "../parse-options.ts";
import { HOOK_CLI_OPTIONS, HOOK_OPTIONS_HELP, hookConfigFromFlags, startHooks } from "../hook-options.ts";
import type { PacketBatch } from "../../packet/packet-batch.ts";
import { ExitCode, UsageError } from "../usage-error.ts";
import { validated } from "../validated.ts";
import { METRICS_CLI_OPTION, METRICS_OPTION_HELP, startMetricsOption } from "../metrics-option.ts";
import { captureHubCollector, rpcapdCollector } from "../../metrics/index.ts";

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
                           and serve it; redialled every 30 s while unreachable
  -v, --active-only        do not listen; active connections only
  -d, --daemon             run in the background
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
${METRICS_OPTION_HELP}  -h, --help               this text
${HOOK_OPTIONS_HELP}
Every failed authentication is answered "Authentication failed" and costs that peer a
growing pause; the reason is logged. OPEN accepts local interfaces only.
`;

const options = {
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
  ...METRICS_CLI_OPTION,
  ...HOOK_CLI_OPTIONS,
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

export function parseRpcapdConfig(argv: string[]): RpcapdConfig | "help" {
  return parseRpcapdCommandLine(argv).config;
}

/** The config, and the flags that are not part of it (--metrics: wired by the command). */
function parseRpcapdCommandLine(argv: string[]): { config: RpcapdConfig | "help"; metrics?: string } {
  const parsed = parseCommandLine("rpcapd", rewriteInetdFlag(argv), options);
  const metrics = parsed.values.metrics;
  return { config: rpcapdConfigFromFlags(parsed), ...(metrics !== undefined ? { metrics } : {}) };
}

function rpcapdConfigFromFlags({ values: v, positionals }: ReturnType<typeof parseCommandLine<typeof options>>): RpcapdConfig | "help" {
  if (v.help) return "help";
  if (positionals.length > 0) throw new UsageError(`rpcapd: unexpected argument '${positionals[0]}'`);
  const active = [
    ...(v["active-client"] ?? []).map((text) => {
      const [host, port] = text.split(",");
      return { host: host ?? "", port: port ? Number(port) : RPCAP_DEFAULT_ACTIVE_PORT };
    }),
    ...(v.active ?? []).map((text) => {
      try {
        return parseHostPort(text, RPCAP_DEFAULT_ACTIVE_PORT);
      } catch (error) {
        throw new UsageError(`--active: ${(error as Error).message}`);
      }
    }),
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
  });
}

/** `--interfaces eth0,lo` as names; one clear line when nothing is left. */
function interfaceList(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  const names = text.split(",").map((name) => name.trim()).filter((name) => name !== "");
  if (names.length === 0) throw new UsageError("--interfaces: give at least one interface name (e.g. --interfaces eth0,eth1)");
  return names;
}

/** The config file's settings merged over the command line's (rpcapd: the file wins). */
function withConfigFile(config: RpcapdConfig): RpcapdConfig {
  if (!config.configFile) return config;
  let text: string;
  try {
    text = readFileSync(config.configFile, "utf8");
  } catch (error) {
    throw new UsageError(`-f ${config.configFile}: ${(error as Error).message}`);
  }
  let file;
  try {
    file = parseRpcapdConfigFile(text);
  } catch (error) {
    throw new UsageError(`${config.configFile}: ${(error as Error).message}`);
  }
  return Object.freeze({ ...config, active: file.active, passiveClients: file.passiveClients, nullAuth: file.nullAuth });
}

async function accessControl(config: RpcapdConfig, log: Logger) {
  const hosts = [...config.passiveClients];
  if (config.hostListFile) {
    // A file, or the list itself as libpcap's rpcapd takes it (-l host1,host2).
    try {
      hosts.push(...readHostListArgument(config.hostListFile).hosts);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const isHostAllowed = hosts.length > 0 ? await loadHostList(hosts, { warn: (m: string) => log.warn(m) }) : undefined;
  const authenticator = await Authenticator.create(
    {
      nullAuth: config.nullAuth,
      systemAccountsShareCapture: config.systemAccountsShareCapture,
      ...(config.usersFile ? { usersFile: config.usersFile } : {}),
    },
    { log },
  );
  return { isHostAllowed, authenticator };
}

export async function runRpcapd(argv: string[]): Promise<number> {
  const { config: parsed, metrics: metricsFlag } = parseRpcapdCommandLine(argv);
  if (parsed === "help") {
    process.stdout.write(RPCAPD_HELP);
    return ExitCode.OK;
  }
  if (parsed.inetd && (parsed.daemonize || parsed.activeOnly || parsed.active.length > 0)) {
    throw new UsageError("rpcapd: inetd mode (-i without an interface, --inetd) serves standard input; it cannot be combined with -d, -a/--active or -v");
  }
  if (parsed.preselectedInterface && parsed.interfaces && !parsed.interfaces.includes(parsed.preselectedInterface)) {
    throw new UsageError(`rpcapd: -i ${parsed.preselectedInterface} is not among --interfaces ${parsed.interfaces.join(",")}`);
  }
  if (parsed.daemonize) return daemonize(argv);
  const inetdPeer = parsed.inetd ? inetdPeerAddress() : undefined;
  if (parsed.inetd && !inetdPeer) {
    throw new UsageError("rpcapd -i (inetd mode): standard input is not a TCP connection; run it from inetd, probe-rpcapd.socket or socat, or give -i an interface name");
  }
  let config = withConfigFile(parsed);
  if (config.saveConfigFile) {
    writeFileSync(config.saveConfigFile, formatRpcapdConfigFile({ active: config.active, passiveClients: config.passiveClients, nullAuth: config.nullAuth }));
  }
  const log = parsed.inetd && stderrIsStdin() ? silentLogger : stderrLogger("probe-rpcapd");
  const hub = new CaptureHub();
  const access = await accessControl(config, log);
  const hooks = await startHooks({ config, logger: log });
  const daemon = new RpcapDaemon({
    ...(config.activeOnly || config.inetd ? {} : { listen: { ...(config.bindAddress ? { host: config.bindAddress } : {}), port: config.port, ipv4Only: config.ipv4Only } }),
    active: config.active,
    ...(config.tls ? { tls: { cert: config.tlsCert, key: config.tlsKey } } : {}),
    ...(access.isHostAllowed ? { isHostAllowed: access.isHostAllowed } : {}),
    authenticator: access.authenticator,
    ...(config.preselectedInterface ? { preselectedInterface: config.preselectedInterface } : {}),
    ...(config.interfaces ? { offeredInterfaces: config.interfaces } : {}),
    udpstrMtu: config.udpstrMtu,
    createUdpstrPacker: (mtu) => {
      const packer = new UdpstrPacker({ mtuBytes: mtu });
      return { pack: (batch, firstNpkt) => packer.push(batch, firstNpkt), flush: () => packer.flush() };
    },
    dataPort: config.dataPort,
    authTimeoutMs: config.authTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    activeRetryMs: config.activeRetryMs,
    dataQueueBytes: config.dataQueueBytes,
    maxControlPlen: config.maxControlPlen,
    maxSessions: config.maxSessions,
    maxSessionsPerAddress: config.maxSessionsPerAddress,
    pressureAuthTimeoutMs: config.pressureAuthTimeoutMs,
    hub,
    ...(hooks ? { transformBatch: (batch: PacketBatch) => hooks.stage.apply(batch).batch } : {}),
    log,
  });
  if (config.activeOnly && config.active.length === 0) throw new UsageError("rpcapd: -v needs at least one -a HOST,PORT");
  await daemon.start();
  const metrics = startMetricsOption(metricsFlag, [rpcapdCollector(daemon), captureHubCollector(hub)], log);
  if (inetdPeer) {
    await serveInheritedConnection(daemon, inetdPeer, log);
    await metrics?.server.stop();
    await daemon.stop();
    await hub.close();
    hooks?.close();
    return ExitCode.OK;
  }
  process.on("SIGHUP", async () => {
    try {
      config = withConfigFile(parsed);
      const access = await accessControl(config, log);
      daemon.reconfigure({ active: config.active, authenticator: access.authenticator, ...(access.isHostAllowed ? { isHostAllowed: access.isHostAllowed } : {}) });
    } catch (error) {
      log.error(`reload failed, keeping the running configuration: ${(error as Error).message}`);
    }
  });
  const stop = Promise.withResolvers<void>();
  process.on("SIGINT", () => stop.resolve());
  process.on("SIGTERM", () => stop.resolve());
  await stop.promise;
  await metrics?.server.stop();
  await daemon.stop();
  await hub.close();
  if (hooks) for (const line of hooks.summaryLines()) log.info(line);
  hooks?.close();
  return ExitCode.OK;
}

/**
 * Replies a peer may leave unread on standard output before the session is closed (the same
 * bound as a listening daemon's MAX_UNREAD_CONTROL_BYTES: control replies are small).
 */
const INETD_MAX_UNREAD_BYTES = 1024 * 1024;

/** inetd mode: one session over standard input/output, until it or the peer ends it. */
async function serveInheritedConnection(daemon: RpcapDaemon, peerAddress: string, log: Logger): Promise<void> {
  let ended = false;
  const connection = daemon.serveStream({
    peerAddress,
    send: (bytes) => {
      if (ended) return;
      if (process.stdout.writableLength > INETD_MAX_UNREAD_BYTES) {
        log.warn(`${peerAddress} does not read its control connection: closing`);
        connection.peerClosed();
        return;
      }
      process.stdout.write(bytes);
    },
    end: () => {
      if (ended) return;
      ended = true;
      process.stdout.end();
    },
  });
  process.stdin.on("data", (chunk: Buffer) => connection.receive(chunk));
  process.stdin.on("end", () => connection.peerClosed());
  process.stdin.on("error", () => connection.peerClosed());
  process.stdout.on("error", () => connection.peerClosed());
  const stop = () => connection.peerClosed();
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  await connection.closed;
  process.stdin.pause();
  // Let the last reply (an ERROR, CLOSE's end) reach the peer before the process exits.
  if (!ended) {
    ended = true;
    process.stdout.end();
  }
  await new Promise<void>((resolve) => (process.stdout.writableLength === 0 ? resolve() : process.stdout.once("drain", () => resolve())));
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

/** -d: start again detached (without -d), stdio to /dev/null, and return at once. */
function daemonize(argv: string[]): number {
  const rest = argv.filter((a) => a !== "-d" && a !== "--daemon");
  const self = process.execPath.endsWith("/bun") || process.execPath.endsWith("/bun.exe")
    ? [process.execPath, Bun.main]
    : [process.execPath];
  const child = Bun.spawn([...self, "rpcapd", ...rest], { stdio: ["ignore", "ignore", "ignore"], detached: true } as Parameters<typeof Bun.spawn>[1]);
  child.unref();
  process.stderr.write(`probe rpcapd running in the background, pid ${child.pid}\n`);
  return ExitCode.OK;
}
