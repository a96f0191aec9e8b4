// `probe pcap-over-ip`: serve one capture as a PCAP-over-IP (or PCAP-over-TLS) stream to
// listeners' clients and to --connect peers.
import { combineFilters } from "../../capture/combine-filters.ts";
import { chooseDefaultInterface } from "../../capture/default-interface.ts";
import { listInterfaces } from "../../capture/libpcap/devices.ts";
import { parseCidr, parseHostPort, isLoopbackAddress, type HostPort } from "../../config/addresses.ts";
import { pcapOverIpConfigSchema, type PcapOverIpConfig } from "../../config/pcap-over-ip-config.ts";
import { stderrLogger, type Logger } from "../../logging/index.ts";
import { formatHostPort, PcapOverIpServer, PCAP_OVER_IP_DEFAULT_PORT } from "../../outputs/pcap-over-ip/pcap-over-ip-server.ts";
import { CaptureHub } from "../../pipeline/capture-hub.ts";
import { MergedSource } from "../../pipeline/merge/index.ts";
import { parseRemoteSourceUrl, PcapOverIpSource } from "../../capture/remote/index.ts";
import { parseCommandLine, parseInteger } from "../parse-options.ts";
import { HOOK_CLI_OPTIONS, HOOK_OPTIONS_HELP, hookConfigFromFlags, startHooks, type ActiveHooks } from "../hook-options.ts";
import { ConsumerQueue } from "../../pipeline/consumer-queue.ts";
import type { PacketBatch } from "../../packet/packet-batch.ts";
import { CommandFailure, ExitCode, UsageError } from "../usage-error.ts";
import { validated } from "../validated.ts";
import { MAXIMUM_SNAPLEN } from "../../packet/packet-batch.ts";

export const PCAP_OVER_IP_HELP = `Usage: probe pcap-over-ip [-i INTERFACE] [options]

Serve a live capture as a PCAP-over-IP stream: every consumer that connects gets a classic
pcap global header, then records as they are captured. Readers: tshark -i TCP@HOST:PORT,
Wireshark, NetworkMiner, Arkime, Zeek's pcapovertcp, nc HOST PORT | tcpdump -r -.

Capture:
  -i, --interface NAME     interface (default: first up, running, non-loopback one)
  -f, --filter EXPR        tcpdump filter expression
  -s, --snaplen N          bytes kept per packet (default 262144)
  -B, --buffer-size KiB    kernel capture buffer
      --nanoseconds        nanosecond timestamps (pcap magic a1b23c4d)

Merging (instead of -i):
      --from URL           read a PCAP-over-IP stream (tcp://H:P, TCP@H:P, tls://H:P);
                           repeat to merge several in timestamp order (1 s reordering
                           window); a source that drops is redialled, the rest go on;
                           sources of different link types are refused

Serving:
      --listen ADDR:PORT   listen here (repeatable). Without --listen and --connect:
                           127.0.0.1:${PCAP_OVER_IP_DEFAULT_PORT}. PCAP-over-IP has no authentication:
                           a non-loopback address is your explicit choice.
      --connect HOST:PORT  dial out to a listening consumer and push the stream
                           (repeatable); redialled with backoff (0.5 s up to 30 s)
      --allow CIDR         only peers in CIDR may connect (repeatable)
      --tls-cert FILE      serve PCAP-over-TLS with this certificate...
      --tls-key FILE       ...and key
      --tls-ca FILE        require client certificates signed by this CA (mutual TLS)
      --connect-tls        use TLS for --connect: the server certificate is verified
                           against --tls-ca (else the built-in public CAs), host too
      --tls-insecure       with --connect-tls and tls:// --from: do not verify the server
                           certificate (logged; --connect-insecure is the old name)
      --slow-consumer P    drop (default): a consumer that falls behind loses batches,
                           counted for it alone; disconnect: it is disconnected
      --queue-bytes N      how far a consumer may fall behind (default 16 MiB)

Hooks (every packet goes through them before any consumer sees it):
${HOOK_OPTIONS_HELP}
The listeners' own traffic and the --connect peers' are left out of the capture (the
exclusion is logged), so probe never captures its own stream.
`;

const options = {
  interface: { type: "string", short: "i" },
  filter: { type: "string", short: "f" },
  snaplen: { type: "string", short: "s" },
  "buffer-size": { type: "string", short: "B" },
  nanoseconds: { type: "boolean" },
  listen: { type: "string", multiple: true },
  connect: { type: "string", multiple: true },
  allow: { type: "string", multiple: true },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-ca": { type: "string" },
  "connect-tls": { type: "boolean" },
  "connect-insecure": { type: "boolean" },
  "tls-insecure": { type: "boolean" },
  "slow-consumer": { type: "string" },
  "queue-bytes": { type: "string" },
  from: { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
  ...HOOK_CLI_OPTIONS,
} as const;

function hostPorts(flag: string, values: string[] | undefined, defaultPort: number): HostPort[] {
  return (values ?? []).map((text) => {
    try {
      return parseHostPort(text, defaultPort);
    } catch (error) {
      throw new UsageError(`${flag}: ${(error as Error).message}`);
    }
  });
}

export function parsePcapOverIpConfig(argv: string[]): PcapOverIpConfig | "help" {
  const { values: v, positionals } = parseCommandLine("pcap-over-ip", argv, options);
  if (v.help) return "help";
  if (positionals.length > 0 && v.filter !== undefined) throw new UsageError("pcap-over-ip: filter given twice");
  for (const cidr of v.allow ?? []) {
    try {
      parseCidr(cidr);
    } catch (error) {
      throw new UsageError(`--allow: ${(error as Error).message}`);
    }
  }
  return validated("pcap-over-ip", pcapOverIpConfigSchema, {
    interface: v.interface,
    from: v.from,
    filter: v.filter ?? positionals.join(" "),
    snaplen: parseInteger("-s", v.snaplen, 1, MAXIMUM_SNAPLEN),
    bufferKiB: parseInteger("-B", v["buffer-size"], 0, 4 * 1024 * 1024),
    listen: hostPorts("--listen", v.listen, PCAP_OVER_IP_DEFAULT_PORT),
    connect: hostPorts("--connect", v.connect, PCAP_OVER_IP_DEFAULT_PORT),
    allow: v.allow,
    nanoseconds: v.nanoseconds,
    tlsCert: v["tls-cert"],
    tlsKey: v["tls-key"],
    tlsCa: v["tls-ca"],
    connectTls: v["connect-tls"],
    connectInsecure: v["connect-insecure"] || v["tls-insecure"],
    slowConsumer: v["slow-consumer"],
    queueBytes: parseInteger("--queue-bytes", v["queue-bytes"], 64 * 1024, 2 ** 40),
    ...hookConfigFromFlags(v),
  });
}

export interface RunningPcapOverIp {
  server: PcapOverIpServer;
  stop(): Promise<void>;
  ended: Promise<Error | undefined>;
}

/**
 * The server a PcapOverIpConfig describes, listening: default loopback listener, a warning for
 * any other address, TLS for listeners and --connect. Shared by every command that serves.
 */
export async function listenPcapOverIp(config: PcapOverIpConfig, log: Logger): Promise<PcapOverIpServer> {
  const listen = config.listen.length === 0 && config.connect.length === 0
    ? [{ host: "127.0.0.1", port: PCAP_OVER_IP_DEFAULT_PORT }]
    : config.listen;
  for (const address of listen) {
    if (!isLoopbackAddress(address.host)) {
      log.warn(`serving on ${formatHostPort(address.host, address.port)}: PCAP-over-IP has no authentication${config.allow.length ? "" : "; consider --allow or TLS"}`);
    }
  }
  const tls = config.tlsCert && config.tlsKey ? { cert: config.tlsCert, key: config.tlsKey, ...(config.tlsCa ? { ca: config.tlsCa } : {}) } : undefined;
  const server = new PcapOverIpServer({
    listen,
    connect: config.connect,
    allow: config.allow.map(parseCidr),
    ...(tls ? { tls } : {}),
    ...(config.connectTls ? { connectTls: { ...(config.tlsCa ? { ca: config.tlsCa } : {}), insecure: config.connectInsecure } } : {}),
    precision: config.nanoseconds ? "nano" : "micro",
    maxQueueBytes: config.queueBytes,
    slowConsumer: config.slowConsumer,
    log,
  });
  await server.listen();
  return server;
}

/** Starts serving a live capture; shared by the command and the default serve mode. */
export async function startPcapOverIp(config: PcapOverIpConfig, hub: CaptureHub, log: Logger, hooks?: ActiveHooks): Promise<RunningPcapOverIp> {
  const server = await listenPcapOverIp(config, log);
  const exclusion = server.ownTrafficFilter();
  const filter = combineFilters(config.filter, exclusion);
  if (exclusion) log.info(`leaving own traffic out of the capture: ${exclusion}`);
  const iface = config.interface ?? chooseDefaultInterface(listInterfaces());
  const ended = Promise.withResolvers<Error | undefined>();
  let subscription;
  try {
    subscription = await hub.subscribe(
      {
        interface: iface,
        ...(filter ? { filter } : {}),
        snaplen: config.snaplen,
        bufferBytes: config.bufferKiB * 1024,
        precision: config.nanoseconds ? "nano" : "micro",
      },
      // Hooks run in this subscription's queue, so a slow hook drops (counted) instead of
      // stalling the capture; every consumer then gets the hooked packets.
      hooks ? hooks.stage.sinkInto({ write: (batch) => server.offer(batch) }) : { write: (batch) => server.offer(batch) },
      { onEnd: (error) => ended.resolve(error), label: "pcap-over-ip" },
    );
  } catch (error) {
    await server.stop();
    throw error;
  }
  server.attach(subscription.info);
  server.connectOut();
  log.info(`capturing on ${iface}${config.filter ? ` with filter '${config.filter}'` : ""}`);
  for (const l of server.listening) {
    const host = l.host === "0.0.0.0" || l.host === "::" ? "127.0.0.1" : l.host;
    log.info(readItWith(host, l.port, config.tlsCert !== undefined, config.tlsCa !== undefined));
  }
  const sub = subscription;
  return {
    server,
    ended: ended.promise,
    async stop() {
      await sub.unsubscribe();
      await server.stop();
    },
  };
}

/** The hint printed per listener: tshark and nc cannot speak TLS, so a TLS listener gets TLS clients. */
function readItWith(host: string, port: number, tls: boolean, clientCertificates: boolean): string {
  const at = formatHostPort(host, port);
  if (!tls) return `read it with: tshark -i TCP@${at}   or: nc ${host} ${port} | tcpdump -n -r -`;
  // With --tls-ca the listener wants a client certificate too.
  const cert = clientCertificates ? " -cert CLIENT.pem -key CLIENT-KEY.pem" : "";
  const probeCert = clientCertificates ? " --tls-cert CLIENT.pem --tls-key CLIENT-KEY.pem" : "";
  return `read it with: probe capture -i tls://${at} --tls-ca CA.pem${probeCert} -w -   or: openssl s_client -quiet${cert} -connect ${at} | tcpdump -n -r -`;
}

export async function runPcapOverIp(argv: string[]): Promise<number> {
  const config = parsePcapOverIpConfig(argv);
  if (config === "help") {
    process.stdout.write(PCAP_OVER_IP_HELP);
    return ExitCode.OK;
  }
  const log = stderrLogger();
  const hooks = await startHooks({ config, logger: log });
  try {
    if (config.from.length > 0) return await serveMerged(config, log, hooks);
    return await serveCapture(config, log, hooks);
  } finally {
    if (hooks) for (const line of hooks.summaryLines()) log.info(line);
    hooks?.close();
  }
}

async function serveCapture(config: PcapOverIpConfig, log: Logger, hooks: ActiveHooks | undefined): Promise<number> {
  const hub = new CaptureHub();
  const running = await startPcapOverIp(config, hub, log, hooks);
  const signal = Promise.withResolvers<void>();
  process.on("SIGINT", () => signal.resolve());
  process.on("SIGTERM", () => signal.resolve());
  const failure = await Promise.race([signal.promise.then(() => undefined), running.ended]);
  await running.stop();
  await hub.close();
  if (failure) throw failure;
  return ExitCode.OK;
}

/**
 * --from URL...: read several PCAP-over-IP streams, merge them in timestamp order within a
 * bounded window, and serve the result. A source that drops is reconnected with backoff; the
 * merge goes on with the others meanwhile.
 */
async function serveMerged(config: PcapOverIpConfig, log: Logger, hooks: ActiveHooks | undefined): Promise<number> {
  const sources = config.from.map((text) => {
    let address;
    try {
      address = parseRemoteSourceUrl(text);
    } catch (error) {
      throw new UsageError(`--from: ${(error as Error).message}`);
    }
    if (!address) throw new UsageError(`--from: '${text}' is not tcp://HOST:PORT, TCP@HOST:PORT or tls://HOST:PORT`);
    return new PcapOverIpSource({
      address,
      reconnect: true,
      log,
      ...(config.tlsCa ? { tlsCa: config.tlsCa } : {}),
      ...(config.connectInsecure ? { insecure: true } : {}),
      ...(config.filter ? { filter: config.filter } : {}),
    });
  });
  const merged = new MergedSource(sources, { log, precision: config.nanoseconds ? "nano" : "micro" });
  const server = await listenPcapOverIp(config, log);
  const ended = Promise.withResolvers<Error | undefined>();
  let info;
  try {
    const sink = hooks ? hooks.stage.sinkInto({ write: (batch) => server.offer(batch) }) : { write: (batch: PacketBatch) => server.offer(batch) };
    const queue = new ConsumerQueue(sink);
    info = await merged.start({ onBatch: (batch) => void queue.offer(batch), onEnd: (_reason, error) => ended.resolve(error) });
  } catch (error) {
    await server.stop();
    // The sources could not be reached: a runtime failure (exit 1), not a command-line mistake.
    throw new CommandFailure(`pcap-over-ip: ${(error as Error).message}`);
  }
  server.attach(info);
  server.connectOut();
  log.info(`merging ${sources.length} streams (${config.from.join(", ")})`);
  process.on("SIGINT", () => ended.resolve(undefined));
  process.on("SIGTERM", () => ended.resolve(undefined));
  const failure = await ended.promise;
  await merged.stop();
  await server.stop();
  // Every source failed: their peers' doing (bad streams, refused connections), one line.
  if (failure) throw new CommandFailure(`pcap-over-ip: ${failure.message}`);
  return ExitCode.OK;
}
