// `probe rt`: serve one capture over libtrace's RT protocol, unreliable (many clients) or
// reliable (one client, a fifo in memory or on disk that loses nothing across restarts).
// A thin command: flags -> RtConfig -> a source (openSource) and an RtServer (the output).
import { chooseDefaultInterface } from "../../capture/default-interface.ts";
import { listInterfaces } from "../../capture/libpcap/devices.ts";
import { combineFilters } from "../../capture/combine-filters.ts";
import { parseHostPort, isLoopbackAddress, type HostPort } from "../../config/addresses.ts";
import { rtConfigSchema, type RtConfig } from "../../config/rt-config.ts";
import { stderrLogger } from "../../logging/index.ts";
import { RtServer, RT_SERVER_DEFAULT_PORT } from "../../outputs/rt/index.ts";
import { MAXIMUM_SNAPLEN } from "../../packet/packet-batch.ts";
import { openSource } from "../open-source.ts";
import { parseCommandLine, parseInteger } from "../parse-options.ts";
import { CommandFailure, ExitCode, UsageError } from "../usage-error.ts";
import { validated } from "../validated.ts";

export const RT_HELP = `Usage: probe rt [-i INTERFACE | -r FILE] [options] [FILTER...]

Serve packets over libtrace's RT protocol: tracepktdump rt:HOST:PORT, tracesplit,
tracestats, any libtrace program, or another probe (probe capture -i rt://HOST:PORT).

Capture:
  -i, --interface NAME       interface (default: first up, running, non-loopback one)
  -r, --read FILE            serve a pcap/pcapng file instead (read at the pace the
                             output allows: nothing is dropped)
  -f, --filter EXPR          tcpdump filter expression
  -s, --snaplen N            bytes kept per packet (default 262144; RT carries at most
                             65511 bytes of a packet: longer ones are cut, counted)
  -B, --buffer-size KiB      kernel capture buffer
  -p, --no-promiscuous       do not put the interface into promiscuous mode
  -Q, --direction DIR        in, out or inout (default)
      --immediate            libpcap immediate mode (lowest latency, smaller batches)

Serving:
      --listen ADDR:PORT     listen here (repeatable; default 127.0.0.1:${RT_SERVER_DEFAULT_PORT}).
                             RT has no authentication: a non-loopback address is your choice.
      --slow-consumer P      unreliable: drop (default) or disconnect a client that falls
                             more than --queue-bytes behind
      --queue-bytes N        unreliable: per-client bound (default 32 MiB)

Reliable mode:
      --reliable             one client at a time (others are denied); every packet stays in
                             the fifo until the client acknowledges it; packets wait while
                             no client is connected; STATUS every --status-interval-ms
      --spool DIR            keep the fifo on disk in DIR: it survives kill -9 (and power
                             loss with --spool-fsync-ms); a restart re-sends everything
                             unacknowledged
      --spool-max-bytes N    fifo cap, bytes, k/M/G suffixes (default 256M)
      --spool-full P         when full: block (default; hold, bounded, then drop),
                             drop-oldest, drop-new; counted, logged once per episode,
                             in STATUS
      --spool-fsync-ms N     fdatasync the spool every N ms (default 0: OS-buffered)
      --spool-segment-bytes N  segment file size (default min(16M, max/4))
      --status-interval-ms N STATUS period (default 1000; 0: none. tracestats counts
                             each STATUS as a packet, see docs/rt.md)

Details and libtrace's quirks: docs/rt.md.
`;

const options = {
  interface: { type: "string", short: "i" },
  read: { type: "string", short: "r" },
  filter: { type: "string", short: "f" },
  snaplen: { type: "string", short: "s" },
  "buffer-size": { type: "string", short: "B" },
  "no-promiscuous": { type: "boolean", short: "p" },
  direction: { type: "string", short: "Q" },
  immediate: { type: "boolean" },
  listen: { type: "string", multiple: true },
  reliable: { type: "boolean" },
  spool: { type: "string" },
  "spool-max-bytes": { type: "string" },
  "spool-full": { type: "string" },
  "spool-fsync-ms": { type: "string" },
  "spool-segment-bytes": { type: "string" },
  "status-interval-ms": { type: "string" },
  "slow-consumer": { type: "string" },
  "queue-bytes": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** "256M", "1g", "65536" -> bytes. */
export function parseSize(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d+)([kKmMgG]?)$/.exec(text);
  if (!match) throw new UsageError(`${flag} wants a size like 65536, 512k, 256M or 2G, not '${text}'`);
  const scale = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2]!.toLowerCase() as "" | "k" | "m" | "g"];
  return Number(match[1]) * scale;
}

export function parseRtConfig(argv: string[]): RtConfig | "help" {
  const { values: v, positionals } = parseCommandLine("rt", argv, options);
  if (v.help) return "help";
  if (positionals.length > 0 && v.filter !== undefined) throw new UsageError("rt: filter given twice");
  const listen: HostPort[] = (v.listen ?? []).map((text) => {
    try {
      return parseHostPort(text, RT_SERVER_DEFAULT_PORT);
    } catch (error) {
      throw new UsageError(`--listen: ${(error as Error).message}`);
    }
  });
  return validated("rt", rtConfigSchema, {
    interface: v.interface,
    readFile: v.read,
    filter: v.filter ?? positionals.join(" "),
    snaplen: parseInteger("-s", v.snaplen, 1, MAXIMUM_SNAPLEN),
    bufferKiB: parseInteger("-B", v["buffer-size"], 0, 4 * 1024 * 1024),
    promiscuous: !v["no-promiscuous"],
    direction: v.direction,
    immediate: v.immediate ?? false,
    listen,
    reliable: v.reliable,
    spool: v.spool,
    spoolMaxBytes: parseSize("--spool-max-bytes", v["spool-max-bytes"]),
    spoolFull: v["spool-full"],
    spoolFsyncMs: parseInteger("--spool-fsync-ms", v["spool-fsync-ms"], 0, 60_000),
    spoolSegmentBytes: parseSize("--spool-segment-bytes", v["spool-segment-bytes"]),
    statusIntervalMs: parseInteger("--status-interval-ms", v["status-interval-ms"], 0, 3_600_000),
    slowConsumer: v["slow-consumer"],
    queueBytes: parseSize("--queue-bytes", v["queue-bytes"]),
  });
}

export async function runRt(argv: string[]): Promise<number> {
  const config = parseRtConfig(argv);
  if (config === "help") {
    process.stdout.write(RT_HELP);
    return ExitCode.OK;
  }
  const log = stderrLogger();
  const listen = config.listen.length > 0 ? config.listen : [{ host: "127.0.0.1", port: RT_SERVER_DEFAULT_PORT }];
  for (const address of listen) {
    if (!isLoopbackAddress(address.host)) log.warn(`serving RT on ${address.host}:${address.port}: RT has no authentication`);
  }
  const server = new RtServer({
    listen,
    reliable: config.reliable,
    queueBytes: config.queueBytes,
    slowConsumer: config.slowConsumer,
    fifo: {
      ...(config.spool ? { directory: config.spool } : {}),
      maxBytes: config.spoolMaxBytes,
      policy: config.spoolFull,
      fsyncMs: config.spoolFsyncMs,
      ...(config.spoolSegmentBytes ? { segmentBytes: config.spoolSegmentBytes } : {}),
    },
    statusIntervalMs: config.statusIntervalMs,
    log,
  });
  try {
    await server.prepare();
  } catch (error) {
    // A busy port or an unusable spool directory: a runtime failure (exit 1), one line.
    throw new CommandFailure(`rt: ${(error as Error).message}`);
  }
  const live = config.readFile === undefined;
  const exclusion = live ? server.ownTrafficFilter() : "";
  const { source } = openSource({
    ...(live ? { interface: config.interface ?? chooseDefaultInterface(listInterfaces()) } : { readFile: config.readFile }),
    filter: combineFilters(config.filter, exclusion),
    snaplen: config.snaplen,
    bufferKiB: config.bufferKiB,
    promiscuous: config.promiscuous,
    direction: config.direction,
    immediate: config.immediate,
  });
  const ended = Promise.withResolvers<Error | undefined>();
  let info;
  try {
    info = await source.start({
      // Live capture never waits (a full block-mode fifo holds, bounded, then drops); a file is
      // read as fast as the fifo takes it.
      onBatch: (batch) => (live ? void server.write(batch) : server.write(batch)),
      onEnd: (_reason, error) => ended.resolve(error),
    });
  } catch (error) {
    await server.stop();
    throw error;
  }
  await server.start({ inputs: [{ name: source.description, linktype: info.linktype, snaplen: info.snaplen, description: info.description }], precision: info.precision });
  for (const l of server.listening) {
    const host = l.host.includes(":") ? `[${l.host}]` : l.host;
    log.info(`rt: serving ${info.description} on ${host}:${l.port} (${config.reliable ? `reliable, ${config.spool ? `spool ${config.spool}` : "memory fifo"}` : "unreliable"}); read it with: tracepktdump rt:${host}:${l.port}`);
  }
  const onSignal = () => ended.resolve(undefined);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const failure = await ended.promise;
  // A replayed file has ended: keep serving until a signal so a reliable client drains it.
  if (!live && !failure) {
    const signal = Promise.withResolvers<void>();
    process.on("SIGINT", () => signal.resolve());
    process.on("SIGTERM", () => signal.resolve());
    await signal.promise;
  }
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  await source.stop();
  await server.stop();
  for (const line of server.summaryLines()) log.info(line);
  if (failure) throw failure;
  return ExitCode.OK;
}
