// `probe collect --rpcap-active-listen HOST:PORT`: the active-mode collector libpcap users have
// asked for since libpcap#960. Probes running an active rpcapd dial in; each is captured (AUTH,
// OPEN -i or its preselection, STARTCAP with -f) and re-served to ordinary tools: PCAP-over-IP
// (one listener for every probe, or one per probe) and capture files (one, or one per probe).
import {
  ACTIVE_PROBE_SETUP_TIMEOUT_MS,
  MAX_ACTIVE_CONNECTIONS_PER_ADDRESS,
  MAX_ACTIVE_PROBES,
  RpcapActiveListener,
  type RpcapActivePeerSource,
} from "../../capture/remote/index.ts";
import { compileFilter } from "../../capture/libpcap/compile-filter.ts";
import type { CaptureInfo } from "../../capture/capture-source.ts";
import { isLoopbackAddress, parseCidr, type HostPort } from "../../net/addresses.ts";
import { tlsClientOptions } from "../../net/tls-client.ts";
import { RPCAP_DEFAULT_ACTIVE_PORT, RPCAP_DEFAULT_PORT, rpcapdConfigSchema } from "../../config/rpcapd-config.ts";
import { Authenticator } from "../../daemon/auth/index.ts";
import { RpcapDaemon } from "../../daemon/index.ts";
import { CaptureHub } from "../../pipeline/capture-hub.ts";
import type { Logger } from "../../logging/index.ts";
import { CaptureFileWriter, type CaptureFileFormat } from "../../outputs/capture-file/capture-file-writer.ts";
import { formatHostPort, PcapOverIpServer } from "../../outputs/pcap-over-ip/pcap-over-ip-server.ts";
import { DEFAULT_CONSUMER_QUEUE_BYTES } from "../../pipeline/consumer-queue.ts";
import { MAXIMUM_SNAPLEN, type PacketBatch } from "../../packet/packet-batch.ts";
import { ConsumerQueue } from "../../pipeline/consumer-queue.ts";
import { CommandFailure, ExitCode, UsageError } from "../usage-error.ts";
import { hostPortFlag, parseCommandLine, parseInteger } from "../parse-options.ts";
import { stderrLogger } from "../../logging/index.ts";
import { startMetricsOption } from "../metrics-option.ts";
import { StopWatchdog } from "../stop-watchdog.ts";
import { StopProgress } from "../../pipeline/stop-progress.ts";
import { activeProbesCollector, captureHubCollector, rpcapdCollector } from "../../metrics/index.ts";

export const COLLECT_RPCAP_ACTIVE_HELP = `Usage: probe collect --rpcap-active-listen HOST:PORT [options] OUTPUTS

Accept active-mode RPCAP connections (libpcap's 'rpcapd -a', 'probe rpcapd --active') and
re-serve every probe that dials in. Each probe is named by its address (or --probe-name).

  --rpcap-active-listen HOST:PORT   where probes dial in (port defaults to ${RPCAP_DEFAULT_ACTIVE_PORT})
  -i, --interface IFACE             interface to open on each probe (default: the probe's
                                    preselected interface, else the first it lists)
  -f, --filter EXPR                 capture filter, run on the probe
  --remote-user USER                authenticate with a password (default: NULL auth)
  --remote-password PASS
  --probe-name ADDR=NAME            name the probe that dials from ADDR (repeatable)
  --udpstr                          ask for a UDP data channel and read it as udpstr (probes
                                    running ExtraHop's or probe's 'rpcapd -t MTU')
  -S, --tls                         probes dial in with TLS ('rpcapd -a ... -S', 'probe rpcapd
                                    --active ... -S'): as in libpcap the probe is the TLS
                                    server and this side verifies its certificate against
                                    the probe's address
  --tls-ca FILE                     trust this CA for the probes' certificates (default: the
                                    built-in public CAs)
  --tls-insecure                    do not verify them (logged)
 WHO MAY DIAL IN:
  --allow CIDR                      only probes in CIDR may connect, checked before a byte is
                                    read (repeatable; default: anyone who can reach the port).
                                    With -S (and not --tls-insecure), each probe must also hold
                                    a certificate for its address from --tls-ca: the probe's
                                    credential (RPCAP's AUTH only authenticates this side)
  --max-probes N                    probes named at once (default ${MAX_ACTIVE_PROBES}); a probe takes a
                                    name only once it captures
  --max-per-address N               connections from one address (default ${MAX_ACTIVE_CONNECTIONS_PER_ADDRESS})
  --setup-timeout-ms N              a connection not capturing within N ms is closed (default
                                    ${ACTIVE_PROBE_SETUP_TIMEOUT_MS})
 OUTPUTS (at least one):
  -w, --write FILE                  one capture file for every probe; a FILE containing
                                    {probe} is one file per probe ({probe} = its name)
  -F, --format FMT                  pcap (default) or pcapng
  --serve-pcap-over-ip HOST:PORT    one PCAP-over-IP listener carrying every probe's packets
  --serve-pcap-over-ip-each HOST:PORT
                                    one listener per probe: PORT for the first probe, PORT+1
                                    for the next...; PORT 0 = a free port each (logged)
  --serve-rpcap HOST:PORT           a passive RPCAP daemon whose interfaces are the probes:
                                    probe capture -i rpcap://HOST:PORT/PROBE-NAME
    -n, --null-auth                 its clients may use NULL authentication
    --users FILE                    its password file ('probe passwd USER' lines)
  --metrics HOST:PORT               Prometheus metrics at http://HOST:PORT/metrics
  -h, --help                        this text
A probe that disconnects keeps its name and outputs: when it dials in again its stream resumes
(PCAP-over-IP readers stay connected), unless every name was needed for a new probe meanwhile
(the one gone longest is forgotten first). Outputs shared by several probes take the link type of
the first; a probe capturing another link type there is refused (logged).
`;

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const COLLECT_RPCAP_ACTIVE_OPTIONS = {
  "rpcap-active-listen": { type: "string" },
  interface: { type: "string", short: "i" },
  filter: { type: "string", short: "f" },
  "remote-user": { type: "string" },
  "remote-password": { type: "string" },
  "probe-name": { type: "string", multiple: true },
  write: { type: "string", short: "w" },
  format: { type: "string", short: "F" },
  "serve-pcap-over-ip": { type: "string" },
  "serve-pcap-over-ip-each": { type: "string" },
  "serve-rpcap": { type: "string" },
  "null-auth": { type: "boolean", short: "n" },
  users: { type: "string" },
  metrics: { type: "string" },
  udpstr: { type: "boolean" },
  tls: { type: "boolean", short: "S" },
  "tls-ca": { type: "string" },
  "tls-insecure": { type: "boolean" },
  allow: { type: "string", multiple: true },
  "max-probes": { type: "string" },
  "max-per-address": { type: "string" },
  "setup-timeout-ms": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** `probe collect --rpcap-active-listen ...`: parses its own flags (collect.ts dispatches here). */
export async function runRpcapActiveCollectCommand(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseCommandLine("collect", argv, COLLECT_RPCAP_ACTIVE_OPTIONS);
  if (v.help) {
    process.stdout.write(COLLECT_RPCAP_ACTIVE_HELP);
    return ExitCode.OK;
  }
  if (positionals.length > 0) throw new UsageError(`collect: unexpected argument '${positionals[0]}'`);
  return runRpcapActiveCollect(
    {
      listen: v["rpcap-active-listen"] ?? "",
      probeNames: v["probe-name"] ?? [],
      ...(v.interface !== undefined ? { interface: v.interface } : {}),
      ...(v.filter !== undefined ? { filter: v.filter } : {}),
      ...(v["remote-user"] !== undefined ? { remoteUser: v["remote-user"] } : {}),
      ...(v["remote-password"] !== undefined ? { remotePassword: v["remote-password"] } : {}),
      ...(v.write !== undefined ? { write: v.write } : {}),
      ...(v.format !== undefined ? { format: v.format } : {}),
      ...(v["serve-pcap-over-ip"] !== undefined ? { servePcapOverIp: v["serve-pcap-over-ip"] } : {}),
      ...(v["serve-pcap-over-ip-each"] !== undefined ? { servePcapOverIpEach: v["serve-pcap-over-ip-each"] } : {}),
      ...(v["serve-rpcap"] !== undefined ? { serveRpcap: v["serve-rpcap"] } : {}),
      ...(v["null-auth"] ? { nullAuth: true } : {}),
      ...(v.users !== undefined ? { users: v.users } : {}),
      ...(v.metrics !== undefined ? { metrics: v.metrics } : {}),
      ...(v.udpstr ? { udpstr: true } : {}),
      ...(v.tls ? { tls: true } : {}),
      ...(v["tls-ca"] !== undefined ? { tlsCa: v["tls-ca"] } : {}),
      ...(v["tls-insecure"] ? { tlsInsecure: true } : {}),
      allow: v.allow ?? [],
      ...(v["max-probes"] !== undefined ? { maxProbes: parseInteger("--max-probes", v["max-probes"], 1, 100_000)! } : {}),
      ...(v["max-per-address"] !== undefined ? { maxPerAddress: parseInteger("--max-per-address", v["max-per-address"], 1, 100_000)! } : {}),
      ...(v["setup-timeout-ms"] !== undefined ? { setupTimeoutMs: parseInteger("--setup-timeout-ms", v["setup-timeout-ms"], 100, 86_400_000)! } : {}),
    },
    stderrLogger("probe-collect"),
  );
}

export interface RpcapActiveCollectFlags {
  listen: string;
  interface?: string;
  filter?: string;
  remoteUser?: string;
  remotePassword?: string;
  probeNames: string[];
  write?: string;
  format?: string;
  servePcapOverIp?: string;
  servePcapOverIpEach?: string;
  serveRpcap?: string;
  nullAuth?: boolean;
  users?: string;
  metrics?: string;
  udpstr?: boolean;
  /** Probes dial in with TLS; their certificates verified against --tls-ca (or not: --tls-insecure). */
  tls?: boolean;
  tlsCa?: string;
  tlsInsecure?: boolean;
  /** --allow: CIDR blocks whose probes may dial in; empty = anyone. */
  allow?: string[];
  maxProbes?: number;
  maxPerAddress?: number;
  setupTimeoutMs?: number;
}

/** Something that takes one probe's (or every probe's) batches. */
interface BatchOutput {
  offer(batch: PacketBatch): void;
  close(): Promise<void>;
}

export async function runRpcapActiveCollect(flags: RpcapActiveCollectFlags, log: Logger): Promise<number> {
  const listen = hostPortFlag("--rpcap-active-listen", flags.listen, RPCAP_DEFAULT_ACTIVE_PORT);
  if (flags.write === undefined && flags.servePcapOverIp === undefined && flags.servePcapOverIpEach === undefined && flags.serveRpcap === undefined) {
    throw new UsageError("collect: --rpcap-active-listen needs an output: -w FILE, --serve-pcap-over-ip, --serve-pcap-over-ip-each or --serve-rpcap");
  }
  if (flags.serveRpcap !== undefined && !flags.nullAuth && flags.users === undefined) {
    throw new UsageError("collect: --serve-rpcap needs -n (NULL authentication) or --users FILE");
  }
  if (flags.format && flags.format !== "pcap" && flags.format !== "pcapng") throw new UsageError("collect: -F is pcap or pcapng");
  if ((flags.remoteUser === undefined) !== (flags.remotePassword === undefined)) {
    throw new UsageError("collect: give --remote-user and --remote-password together");
  }
  if (!flags.tls && (flags.tlsCa !== undefined || flags.tlsInsecure)) throw new UsageError("collect: --tls-ca and --tls-insecure go with -S (--tls)");
  if (flags.tlsCa !== undefined && flags.tlsInsecure) throw new UsageError("collect: give --tls-ca or --tls-insecure, not both");
  // libpcap's rpcapd refuses TLS with a UDP data channel (daemon_msg_startcap_req): so does this.
  if (flags.tls && flags.udpstr) throw new UsageError("collect: -S (--tls) cannot be combined with --udpstr: the UDP data channel has no TLS");
  if (flags.tls) {
    // The CA file is read now: a missing one is one line before anything listens.
    tlsClientOptions("localhost", { ca: flags.tlsCa });
  }
  if (flags.filter) {
    try {
      compileFilter(flags.filter, 1, MAXIMUM_SNAPLEN);
    } catch (error) {
      throw new UsageError(`-f: ${(error as Error).message}`);
    }
  }
  const allow = (flags.allow ?? []).map((text) => {
    try {
      return parseCidr(text);
    } catch (error) {
      throw new UsageError(`--allow: ${(error as Error).message}`);
    }
  });
  if (flags.maxPerAddress !== undefined && flags.maxPerAddress > (flags.maxProbes ?? MAX_ACTIVE_PROBES)) {
    throw new UsageError("collect: --max-per-address cannot exceed --max-probes");
  }
  const names = new Map<string, string>();
  for (const entry of flags.probeNames) {
    const [address, name] = entry.split("=");
    if (!address || !name) throw new UsageError(`--probe-name ${entry}: want ADDRESS=NAME`);
    names.set(address, name);
  }
  const format = (flags.format ?? "pcap") as CaptureFileFormat;
  const shared: SharedOutput[] = [];
  if (flags.write !== undefined && !flags.write.includes("{probe}")) {
    const target = flags.write;
    shared.push(new SharedOutput("-w", log, (info) => fileOutput(target, format, info, log)));
  }
  if (flags.servePcapOverIp !== undefined) {
    const address = hostPortFlag("--serve-pcap-over-ip", flags.servePcapOverIp);
    // Listen now, so readers can connect before the first probe does.
    const server = await listenPcapOverIp(address, log);
    shared.push(new SharedOutput("--serve-pcap-over-ip", log, (info) => pcapOverIpOutput(server, info), () => server.stop()));
  }
  const eachBase = flags.servePcapOverIpEach === undefined ? undefined : hostPortFlag("--serve-pcap-over-ip-each", flags.servePcapOverIpEach, 0);
  let probeIndex = 0;
  const perProbe: BatchOutput[] = [];

  const collector = new RpcapActiveListener({
    host: listen.host,
    port: listen.port,
    ...(flags.interface ? { device: flags.interface } : {}),
    ...(flags.filter ? { filter: flags.filter } : {}),
    ...(flags.remoteUser !== undefined ? { username: flags.remoteUser, password: flags.remotePassword ?? "" } : {}),
    ...(flags.udpstr ? { udpstr: true } : {}),
    ...(flags.tls ? { tls: { ca: flags.tlsCa, insecure: flags.tlsInsecure } } : {}),
    names,
    allow,
    ...(flags.maxProbes !== undefined ? { maxProbes: flags.maxProbes } : {}),
    ...(flags.maxPerAddress !== undefined ? { maxConnectionsPerAddress: flags.maxPerAddress } : {}),
    ...(flags.setupTimeoutMs !== undefined ? { setupTimeoutMs: flags.setupTimeoutMs } : {}),
    log,
    onProbe: (source) => void startProbe(source),
    onForget: (source) => void forgetProbe(source),
  });
  if (allow.length === 0 && !isLoopbackAddress(listen.host)) {
    log.warn(`--rpcap-active-listen ${flags.listen}: any host that reaches the port may dial in as a probe; consider --allow${flags.tls ? "" : " or -S with --tls-ca"}`);
  }
  /** Outputs of one probe alone (a {probe} file, its own PCAP-over-IP port), closed when it is forgotten. */
  const ownOutputs = new Map<RpcapActivePeerSource, BatchOutput[]>();

  async function forgetProbe(source: RpcapActivePeerSource): Promise<void> {
    const outputs = ownOutputs.get(source) ?? [];
    ownOutputs.delete(source);
    for (const output of outputs) {
      perProbe.splice(perProbe.indexOf(output), 1);
      await output.close();
    }
  }

  async function startProbe(source: RpcapActivePeerSource): Promise<void> {
    const outputs: BatchOutput[] = [];
    let info: CaptureInfo;
    try {
      info = await source.start({
        onBatch: (batch) => {
          for (const output of outputs) output.offer(batch);
        },
        onEnd: () => {},
      });
    } catch (error) {
      log.warn((error as Error).message);
      return;
    }
    // Counted only for probes that capture, so PORT+N goes to the N-th probe that really did.
    const index = probeIndex++;
    const own: BatchOutput[] = [];
    ownOutputs.set(source, own);
    for (const output of shared) {
      const attached = await output.join(source.name, info);
      if (attached) outputs.push(attached);
    }
    if (flags.write?.includes("{probe}")) {
      const target = flags.write.replaceAll("{probe}", fileSafe(source.name));
      const file = await fileOutput(target, format, info, log);
      outputs.push(file);
      perProbe.push(file);
      own.push(file);
      log.info(`probe ${source.name}: writing ${target}`);
    }
    if (eachBase) {
      const port = eachBase.port === 0 ? 0 : eachBase.port + index;
      try {
        const server = await listenPcapOverIp({ host: eachBase.host, port }, log);
        const output = pcapOverIpOutput(server, info);
        outputs.push(output);
        const served = { offer: output.offer, close: () => server.stop() };
        perProbe.push(served);
        own.push(served);
        const bound = server.listening[0]!;
        log.info(`probe ${source.name}: PCAP-over-IP on ${formatHostPort(bound.host, bound.port)}`);
      } catch (error) {
        log.warn(`probe ${source.name}: cannot serve PCAP-over-IP on ${formatHostPort(eachBase.host, port)}: ${(error as Error).message}`);
      }
    }
  }

  const rpcapServer = flags.serveRpcap === undefined ? undefined : await serveProbesOverRpcap(collector, hostPortFlag("--serve-rpcap", flags.serveRpcap, RPCAP_DEFAULT_PORT), flags, log);
  try {
    await collector.listen();
  } catch (error) {
    await rpcapServer?.daemon.stop();
    throw new CommandFailure(`--rpcap-active-listen ${flags.listen}: cannot listen (${(error as Error).message.split("\n")[0]})`);
  }
  const metrics = startMetricsOption(
    flags.metrics,
    [activeProbesCollector(collector), ...(rpcapServer ? [rpcapdCollector(rpcapServer.daemon), captureHubCollector(rpcapServer.hub)] : [])],
    log,
  );
  log.info(`accepting active rpcapd connections on ${formatHostPort(listen.host, collector.port ?? listen.port)}`);

  // The same stop watchdog as the pipeline runner's (run-pipeline.ts): 5 s after the signal,
  // one line naming what did not stop, exit 1.
  const watchdog = new StopWatchdog({ name: "probe" });
  const progress = new StopProgress((pending) => watchdog.update(pending));
  const stop = Promise.withResolvers<void>();
  const onStop = () => {
    watchdog.arm();
    stop.resolve();
  };
  process.on("SIGINT", onStop);
  process.on("SIGTERM", onStop);
  await stop.promise;
  process.off("SIGINT", onStop);
  process.off("SIGTERM", onStop);
  const probes = collector.probes;
  const metricsServer = metrics?.server;
  if (metricsServer) await progress.step("the metrics endpoint", () => metricsServer.stop());
  const daemon = rpcapServer?.daemon;
  if (daemon) await progress.step(`--serve-rpcap ${flags.serveRpcap}`, () => daemon.stop());
  await progress.step(`--rpcap-active-listen ${flags.listen}`, () => collector.stop());
  for (const [i, output] of perProbe.entries()) await progress.step(`the output of probe ${i + 1}`, () => output.close());
  for (const output of shared) await progress.step(`output ${output.flag}`, () => output.close());
  watchdog.disarm();
  for (const probe of probes) {
    const stats = await probe.stats();
    const lost = probe.udpstrCounters.reduce((n, c) => n + c.recordsLost, 0);
    log.info(`probe ${probe.label}: ${stats.delivered} packets over ${probe.connections} connection(s)${flags.udpstr ? `, ${lost} lost in udpstr datagrams` : ""}`);
  }
  return ExitCode.OK;
}

/**
 * `--serve-rpcap`: a passive RPCAP daemon (the same RpcapDaemon as `probe rpcapd`) whose
 * interfaces are the probes that have captured: FINDALLIF lists them by name, OPEN NAME and
 * STARTCAP read that probe's packets through a tap with the client's filter, run here.
 */
async function serveProbesOverRpcap(collector: RpcapActiveListener, address: HostPort, flags: RpcapActiveCollectFlags, log: Logger): Promise<{ daemon: RpcapDaemon; hub: CaptureHub }> {
  const defaults = rpcapdConfigSchema.parse({});
  const probeNamed = (name: string) => collector.probes.find((p) => p.name === name && p.captureInfo);
  const hub = new CaptureHub((options) => {
    const probe = probeNamed(options.interface);
    if (!probe) throw new Error(`no probe named ${options.interface} is capturing`);
    return probe.openTap(options.filter);
  });
  let authenticator;
  try {
    authenticator = await Authenticator.create({ nullAuth: flags.nullAuth ?? false, systemAccountsShareCapture: false, ...(flags.users ? { usersFile: flags.users } : {}) }, { log });
  } catch (error) {
    throw new UsageError(`--users: ${(error as Error).message}`);
  }
  const daemon = new RpcapDaemon({
    listen: { host: address.host, port: address.port, ipv4Only: false },
    active: [],
    authenticator,
    interfaces: {
      list: () =>
        collector.probes
          .filter((p) => p.captureInfo)
          .map((p) => ({ name: p.name, description: `probe ${p.label}${p.connected ? "" : " (disconnected)"}`, flags: 0, loopback: false, up: true, running: p.connected, addresses: [] })),
      linktype: async (device) => {
        const info = probeNamed(device)?.captureInfo;
        if (!info) throw new Error(`no probe named ${device} is capturing`);
        return info.linktype;
      },
    },
    udpstrMtu: 0,
    dataPort: 0,
    authTimeoutMs: defaults.authTimeoutMs,
    idleTimeoutMs: defaults.idleTimeoutMs,
    activeRetryMs: defaults.activeRetryMs,
    dataQueueBytes: defaults.dataQueueBytes,
    maxControlPlen: defaults.maxControlPlen,
    maxSessions: defaults.maxSessions,
    hub,
    log,
  });
  try {
    await daemon.start();
  } catch (error) {
    throw new UsageError(`--serve-rpcap ${formatHostPort(address.host, address.port)}: ${(error as Error).message}`);
  }
  return { daemon, hub };
}

/**
 * An output every probe feeds: opened with the first probe's CaptureInfo; a probe whose link
 * type differs is kept out of it (its packets would be misread under the first's header).
 */
class SharedOutput {
  private opened: Promise<BatchOutput> | null = null;
  private linktype = -1;

  constructor(
    readonly flag: string,
    private readonly log: Logger,
    private readonly open: (info: CaptureInfo) => Promise<BatchOutput> | BatchOutput,
    private readonly release: () => Promise<void> = async () => {},
  ) {}

  async join(probe: string, info: CaptureInfo): Promise<BatchOutput | undefined> {
    if (!this.opened) {
      this.linktype = info.linktype;
      this.opened = Promise.resolve(this.open(info));
    } else if (info.linktype !== this.linktype) {
      this.log.warn(`probe ${probe}: link type ${info.linktype} differs from ${this.flag}'s ${this.linktype}; left out of it`);
      return undefined;
    }
    return this.opened;
  }

  async close(): Promise<void> {
    if (this.opened) await (await this.opened).close();
    await this.release();
  }
}

async function fileOutput(target: string, format: CaptureFileFormat, info: CaptureInfo, log: Logger): Promise<BatchOutput> {
  let writer: CaptureFileWriter;
  try {
    writer = await CaptureFileWriter.open({ target, format, linktype: info.linktype, snaplen: info.snaplen, precision: "micro" });
  } catch (error) {
    log.error(`-w ${target}: ${(error as Error).message}`);
    return { offer() {}, close: async () => {} };
  }
  // The probes never wait for the disk: a bounded queue drops (counted) if it stalls.
  const queue = new ConsumerQueue(writer, undefined, (error) => log.error(`-w ${target}: ${error.message}`));
  return {
    offer: (batch) => void queue.offer(batch),
    close: async () => {
      await queue.drained();
      await writer.close();
      if (queue.counters.droppedPackets > 0) log.warn(`-w ${target}: ${queue.counters.droppedPackets} packets dropped by a slow disk`);
    },
  };
}

/** A plain PCAP-over-IP listener (no TLS, no --allow) on `address`, listening when this returns. */
async function listenPcapOverIp(address: HostPort, log: Logger): Promise<PcapOverIpServer> {
  const server = new PcapOverIpServer({
    listen: [address],
    connect: [],
    allow: [],
    precision: "micro",
    maxQueueBytes: DEFAULT_CONSUMER_QUEUE_BYTES,
    slowConsumer: "drop",
    log,
  });
  try {
    await server.listen();
  } catch (error) {
    await server.stop();
    throw new CommandFailure(`PCAP-over-IP cannot listen on ${formatHostPort(address.host, address.port)}: ${(error as Error).message.split("\n")[0]}`);
  }
  return server;
}

function pcapOverIpOutput(server: PcapOverIpServer, info: CaptureInfo): BatchOutput {
  server.attach(info);
  return { offer: (batch) => server.offer(batch), close: async () => {} };
}


/** A probe name as a file-name part: "edge-2" stays, "fe80::1" -> "fe80__1". */
function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, "_");
}
