// `probe collect --udpstr-listen ADDR:PORT`: the udpstr receiver ExtraHop never shipped.
// Reassembles records across datagrams, follows seqno, drops only records cut by a loss,
// and accounts for every loss, live (every few seconds) and at exit.
import { setSocketBuffer } from "../../capture/libpcap/ffi.ts";
import { LINKTYPE_ETHERNET } from "../../capture/libpcap/constants.ts";
import { parseHostPort } from "../../config/addresses.ts";
import { pcapOverIpConfigSchema } from "../../config/pcap-over-ip-config.ts";
import { stderrLogger } from "../../logging/index.ts";
import { CaptureFileWriter } from "../../outputs/capture-file/capture-file-writer.ts";
import { listenPcapOverIp } from "./pcap-over-ip.ts";
import { COLLECT_RPCAP_ACTIVE_HELP, runRpcapActiveCollect } from "./collect-rpcap-active.ts";
import { ConsumerQueue } from "../../pipeline/consumer-queue.ts";
import { UdpstrReassembler, type UdpstrReassemblerCounters } from "../../protocols/udpstr/index.ts";
import { parseCommandLine, parseInteger } from "../parse-options.ts";
import { ExitCode, UsageError } from "../usage-error.ts";
import { MAXIMUM_SNAPLEN } from "../../packet/packet-batch.ts";

export const COLLECT_HELP = `Usage: probe collect --udpstr-listen ADDR:PORT (-w FILE|- | --serve-pcap-over-ip ADDR:PORT)
       probe collect --rpcap-active-listen HOST:PORT [options] OUTPUTS   (see --rpcap-active-listen --help)

Receive a udpstr stream (from 'probe forward --udpstr', 'probe rpcapd -t', or ExtraHop's
rpcapd) and write the packets to a file or serve them to PCAP-over-IP readers.

  --udpstr-listen ADDR:PORT     where to receive (required)
  -w, --write FILE|-            write a pcap (or -F pcapng) file, '-' for standard output
  -F, --format FMT              pcap (default) or pcapng
  --serve-pcap-over-ip A:P      serve the packets as PCAP-over-IP instead
  --linktype N                  link type of the forwarded frames (default 1, Ethernet:
                                udpstr does not carry it)
  --rcvbuf BYTES                UDP receive buffer (SO_RCVBUF; default 8 MiB)
  --report-seconds N            live loss report interval (default 5; 0 = only at exit)
  -q, --quiet                   no reports
Losses: a missing datagram loses only the records it cut; records wholly inside lost
datagrams are counted exactly from the npkt gap. Hostile datagrams (bad type, firsthdridx
past the end, caplen > len or snaplen) are counted and skipped.
`;

/** Enough receive buffer for a burst of ~5000 full datagrams while the event loop is busy. */
const DEFAULT_RCVBUF_BYTES = 8 * 1024 * 1024;

export function formatCollectReport(c: UdpstrReassemblerCounters): string {
  return (
    `datagrams received ${c.datagramsReceived}, lost ${c.datagramsLost}, late ${c.datagramsLate}, malformed ${c.datagramsMalformed}; ` +
    `records delivered ${c.recordsDelivered}, lost ${c.recordsLost}, malformed ${c.recordsMalformed}` +
    // Resynchronisations whose loss is unknown, and datagrams that jumped out of sequence alone.
    (c.seqnoJumps + c.npktJumps + c.strayDatagrams > 0
      ? `; seqno jumps ${c.seqnoJumps}, npkt jumps ${c.npktJumps}, stray datagrams ${c.strayDatagrams}`
      : "")
  );
}

export async function runCollect(argv: string[]): Promise<number> {
  const { values: v } = parseCommandLine("collect", argv, {
    "udpstr-listen": { type: "string" },
    write: { type: "string", short: "w" },
    format: { type: "string", short: "F" },
    "serve-pcap-over-ip": { type: "string" },
    linktype: { type: "string" },
    rcvbuf: { type: "string" },
    "report-seconds": { type: "string" },
    quiet: { type: "boolean", short: "q" },
    help: { type: "boolean", short: "h" },
    // --rpcap-active-listen (collect-rpcap-active.ts)
    "rpcap-active-listen": { type: "string" },
    interface: { type: "string", short: "i" },
    filter: { type: "string", short: "f" },
    "remote-user": { type: "string" },
    "remote-password": { type: "string" },
    "probe-name": { type: "string", multiple: true },
    "serve-pcap-over-ip-each": { type: "string" },
    "serve-rpcap": { type: "string" },
    "null-auth": { type: "boolean", short: "n" },
    users: { type: "string" },
    metrics: { type: "string" },
  });
  if (v.help) {
    process.stdout.write(v["rpcap-active-listen"] !== undefined ? COLLECT_RPCAP_ACTIVE_HELP : COLLECT_HELP);
    return ExitCode.OK;
  }
  if (v["rpcap-active-listen"] !== undefined) {
    if (v["udpstr-listen"] !== undefined) throw new UsageError("collect: give --udpstr-listen or --rpcap-active-listen, not both");
    return runRpcapActiveCollect(
      {
        listen: v["rpcap-active-listen"],
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
      },
      stderrLogger("probe-collect"),
    );
  }
  if (!v["udpstr-listen"]) throw new UsageError("collect: --udpstr-listen ADDR:PORT is required");
  if ((v.write === undefined) === (v["serve-pcap-over-ip"] === undefined)) {
    throw new UsageError("collect: give exactly one of -w FILE or --serve-pcap-over-ip ADDR:PORT");
  }
  if (v.format && v.format !== "pcap" && v.format !== "pcapng") throw new UsageError("collect: -F is pcap or pcapng");
  let listen;
  try {
    listen = parseHostPort(v["udpstr-listen"]);
  } catch (error) {
    throw new UsageError(`--udpstr-listen: ${(error as Error).message}`);
  }
  const linktype = parseInteger("--linktype", v.linktype, 0, 0xffff) ?? LINKTYPE_ETHERNET;
  const reportSeconds = parseInteger("--report-seconds", v["report-seconds"], 0, 86400) ?? 5;
  const log = stderrLogger("probe-collect");
  const info = { linktype, snaplen: MAXIMUM_SNAPLEN, precision: "micro" as const, description: `udpstr ${v["udpstr-listen"]}` };

  let write: (batch: import("../../packet/packet-batch.ts").PacketBatch) => void | Promise<void>;
  let close: () => Promise<void>;
  if (v.write !== undefined) {
    const writer = await CaptureFileWriter.open({ target: v.write, format: (v.format as "pcap" | "pcapng") ?? "pcap", linktype, snaplen: MAXIMUM_SNAPLEN, precision: "micro" });
    write = (batch) => writer.write(batch);
    close = () => writer.close();
  } else {
    const server = await listenPcapOverIp(pcapOverIpConfigSchema.parse({ listen: [parseHostPort(v["serve-pcap-over-ip"]!)] }), log);
    server.attach(info);
    write = (batch) => server.offer(batch);
    close = () => server.stop();
  }
  // The socket never waits for the output: a bounded queue drops (counted) if the disk stalls.
  const queue = new ConsumerQueue({ write });
  const reassembler = new UdpstrReassembler({ linktype });
  // Datagrams arrive one callback each; completed records are cut into one batch per turn of
  // the event loop rather than one per datagram.
  let takeScheduled = false;
  const takeRecords = () => {
    takeScheduled = false;
    const taken = reassembler.take();
    if (taken) queue.offer(taken.batch);
  };
  const socket = await Bun.udpSocket({
    hostname: listen.host,
    port: listen.port,
    socket: {
      data: (_s, datagram) => {
        reassembler.push(datagram);
        if (!takeScheduled) {
          takeScheduled = true;
          setImmediate(takeRecords);
        }
      },
    },
  });
  setSocketBuffer((socket as unknown as { fd: number }).fd, "receive", parseInteger("--rcvbuf", v.rcvbuf, 0, 1 << 30) ?? DEFAULT_RCVBUF_BYTES);
  log.info(`receiving udpstr on ${listen.host}:${socket.port}`);
  const timer = reportSeconds > 0 && !v.quiet ? setInterval(() => log.info(formatCollectReport(reassembler.counters)), reportSeconds * 1000) : undefined;

  const stop = Promise.withResolvers<void>();
  process.on("SIGINT", () => stop.resolve());
  process.on("SIGTERM", () => stop.resolve());
  await stop.promise;
  clearInterval(timer);
  socket.close();
  const incomplete = reassembler.finish();
  const last = reassembler.take();
  if (last) queue.offer(last.batch);
  await queue.drained();
  await close();
  if (!v.quiet) {
    process.stderr.write(`${formatCollectReport(reassembler.counters)}${incomplete ? `; last record incomplete (${incomplete.bytesReceived} bytes)` : ""}; ${queue.counters.droppedPackets} dropped by a slow output\n`);
  }
  return ExitCode.OK;
}
