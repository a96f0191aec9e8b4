// `probe forward --udpstr HOST:PORT`: ExtraHop-compatible packed UDP forwarding with no RPCAP
// control connection, for collectors that only listen.
import { parseHostPort } from "../../config/addresses.ts";
import { UDPSTR_DEFAULT_MTU, UDPSTR_MAX_MTU } from "../../config/rpcapd-config.ts";
import { openUdpDataChannel } from "../../daemon/data-channel.ts";
import { stderrLogger } from "../../logging/index.ts";
import { ConsumerQueue } from "../../pipeline/consumer-queue.ts";
import { IovLayout, UdpstrPacker } from "../../protocols/udpstr/index.ts";
import { openSource } from "../open-source.ts";
import { HOOK_CLI_OPTIONS, HOOK_OPTIONS_HELP, hookConfigFromFlags, startHooks } from "../hook-options.ts";
import { hookConfigSchema } from "../../config/hook-config.ts";
import { validated } from "../validated.ts";
import type { PacketBatch } from "../../packet/packet-batch.ts";
import { parseCommandLine, parseInteger } from "../parse-options.ts";
import { ExitCode, UsageError } from "../usage-error.ts";
import { MAXIMUM_SNAPLEN } from "../../packet/packet-batch.ts";

export const FORWARD_HELP = `Usage: probe forward --udpstr HOST:PORT (-i INTERFACE | -r FILE) [options] [FILTER...]

Send captured packets to a udpstr collector (ExtraHop's packed RPCAP-over-UDP): records are
packed into datagrams of at most --mtu bytes, never an IP fragment, several records per
datagram for small packets. A partly filled datagram is sent as soon as no packet is waiting.

  --udpstr HOST:PORT   collector address (required)
  -i, --interface I    capture on I (or rpcap://HOST/IFACE)
  -r, --read FILE      send a capture file instead
      --realtime       with -r: at the pace of the file's timestamps (default: as fast as
                       the socket takes it, which a collector may not keep up with)
  -f, --filter EXPR    tcpdump filter expression
  -s, --snaplen N      bytes kept per packet (default 262144)
      --mtu N          datagram size in bytes, udpstr header included (default ${UDPSTR_DEFAULT_MTU} =
                       1500-byte link minus IPv4 and UDP headers; 37..${UDPSTR_MAX_MTU})
      --sndbuf BYTES   UDP send buffer (SO_SNDBUF)
  -q, --quiet          no summary
${HOOK_OPTIONS_HELP}At exit: packets, datagrams, bytes sent, and datagrams dropped because the socket buffer
was full (EAGAIN/ENOBUFS: counted, never blocking the capture).
`;

/** Minimum MTU for which ExtraHop's packing invariant holds (see src/protocols/udpstr). */
const MIN_MTU = 37;

export async function runForward(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseCommandLine("forward", argv, {
    udpstr: { type: "string" },
    interface: { type: "string", short: "i" },
    read: { type: "string", short: "r" },
    realtime: { type: "boolean" },
    filter: { type: "string", short: "f" },
    snaplen: { type: "string", short: "s" },
    mtu: { type: "string" },
    sndbuf: { type: "string" },
    quiet: { type: "boolean", short: "q" },
    help: { type: "boolean", short: "h" },
    ...HOOK_CLI_OPTIONS,
  });
  if (v.help) {
    process.stdout.write(FORWARD_HELP);
    return ExitCode.OK;
  }
  if (!v.udpstr) throw new UsageError("forward: --udpstr HOST:PORT is required");
  if ((v.interface === undefined) === (v.read === undefined)) throw new UsageError("forward: give exactly one of -i INTERFACE or -r FILE");
  let target;
  try {
    target = parseHostPort(v.udpstr);
  } catch (error) {
    throw new UsageError(`--udpstr: ${(error as Error).message}`);
  }
  const mtu = parseInteger("--mtu", v.mtu, MIN_MTU, UDPSTR_MAX_MTU) ?? UDPSTR_DEFAULT_MTU;
  const sndbuf = parseInteger("--sndbuf", v.sndbuf, 0, 1 << 30) ?? 0;
  const { source, live, name } = openSource({
    interface: v.interface,
    readFile: v.read,
    filter: v.filter ?? positionals.join(" "),
    snaplen: parseInteger("-s", v.snaplen, 1, MAXIMUM_SNAPLEN) ?? MAXIMUM_SNAPLEN,
    realtime: v.realtime ?? false,
  });
  const log = stderrLogger("probe-forward");
  const hookConfig = validated("forward", hookConfigSchema, hookConfigFromFlags(v));
  const hooks = await startHooks({ config: hookConfig, logger: log, interfaceName: name });
  // Dense packing: datagrams are udpstr any collector reads, but not limited by ExtraHop's
  // 32-slot iovec, so small packets fill datagrams to the MTU.
  const packer = new UdpstrPacker({ mtuBytes: mtu, iovLayout: IovLayout.DENSE });
  const channel = await openUdpDataChannel({
    host: target.host,
    port: target.port,
    kind: "udpstr",
    sendBufferBytes: sndbuf,
    packer: { pack: (batch, npkt) => packer.push(batch, npkt), flush: () => packer.flush() },
  });
  const ended = Promise.withResolvers<Error | undefined>();
  const toChannel = { write: (batch: PacketBatch) => channel.write(batch) };
  const queue = new ConsumerQueue(hooks ? hooks.stage.sinkInto(toChannel) : toChannel);
  const info = await source.start({
    onBatch: (batch) => {
      if (live) queue.offer(batch);
      else {
        const out = hooks ? hooks.stage.apply(batch).batch : batch;
        if (out.count > 0) return channel.write(out);
      }
    },
    onEnd: (_reason, error) => ended.resolve(error),
  });
  log.info(`forwarding ${info.description} as udpstr (mtu ${mtu}) to ${v.udpstr}`);
  process.on("SIGINT", () => ended.resolve(undefined));
  process.on("SIGTERM", () => ended.resolve(undefined));
  const failure = await ended.promise;
  await source.stop();
  await queue.drained();
  channel.close();
  if (!v.quiet) {
    process.stderr.write(
      `${channel.packetsSent} packets forwarded in ${channel.datagramsSent} datagrams (${channel.bytesSent} bytes), ` +
        `${channel.sendFailures} datagrams dropped (socket buffer full), ${queue.counters.droppedPackets} packets dropped (queue)\n`,
    );
  }
  if (hooks && !v.quiet) for (const line of hooks.summaryLines()) process.stderr.write(`${line}\n`);
  hooks?.close();
  if (failure) throw failure;
  return ExitCode.OK;
}
