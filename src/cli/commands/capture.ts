// `probe capture`: capture from an interface or replay a file, optionally filter, and write
// a pcap/pcapng file or standard output, through operator hooks if given (--hook). Ctrl-C
// ends it with a complete file and a summary.
import type { CaptureSource, CaptureStats } from "../../capture/capture-source.ts";
import { openSource } from "../open-source.ts";
import { takeRecords, type PacketBatch } from "../../packet/packet-batch.ts";
import { captureConfigSchema, type CaptureConfig } from "../../config/capture-config.ts";
import { CaptureFileWriter } from "../../outputs/capture-file/capture-file-writer.ts";
import { stderrLogger } from "../../logging/index.ts";
import { ConsumerQueue, type BatchSink } from "../../pipeline/consumer-queue.ts";
import { HOOK_CLI_OPTIONS, HOOK_OPTIONS_HELP, hookConfigFromFlags, startHooks, type ActiveHooks } from "../hook-options.ts";
import { parseCommandLine, parseInteger } from "../parse-options.ts";
import { UsageError, ExitCode } from "../usage-error.ts";
import { validated } from "../validated.ts";
import { MAXIMUM_SNAPLEN } from "../../packet/packet-batch.ts";

export const CAPTURE_HELP = `Usage: probe capture (-i INTERFACE | -r FILE) [options] -w FILE|- [FILTER...]

Capture packets from a live interface or replay a capture file, and write them as a
pcap or pcapng file (or to standard output with -w -, e.g. | tshark -r -).

Options:
  -i, --interface NAME    capture on NAME (see 'probe list'); or on a remote interface
                          behind an RPCAP daemon: rpcap://[USER:PASS@]HOST[:PORT]/IFACE
                          (rpcaps:// for TLS; NULL authentication without USER); or read
                          a PCAP-over-IP stream: tcp://HOST:PORT, TCP@HOST:PORT, tls://HOST:PORT
      --tls-ca FILE       tls:// and rpcaps://: trust this CA for the server certificate
                          (default: the built-in public CAs); always verified
      --tls-insecure      tls:// and rpcaps://: do not verify it (logged)
      --tls-cert FILE     tls://: client certificate for a server that requires one...
      --tls-key FILE      ...and its key
      --no-reconnect      tcp:// and tls://: end on a failure instead of redialling
                          (0.5 s doubling to 30 s); a clean close always ends the capture
  -r, --read FILE         read a pcap or pcapng file instead of capturing
  -w, --write FILE|-      write to FILE, or '-' for standard output (required)
  -f, --filter EXPR       tcpdump filter expression; words after the options are
                          joined into the filter too, as with tcpdump
  -s, --snaplen N         bytes kept per packet (default 262144)
  -c, --count N           stop after N packets
  -F, --format FMT        pcap (default) or pcapng
  -B, --buffer-size KiB   kernel capture buffer in KiB (default: libpcap's, 2 MiB)
  -p, --no-promiscuous    do not put the interface into promiscuous mode
  -Q, --direction DIR     in, out or inout (default)
      --immediate         libpcap immediate mode (lowest latency, smaller bursts)
      --nano              nanosecond timestamps (pcap magic a1b23c4d)
      --realtime          replay -r FILE at the pace of its timestamps
      --reader R          who reads -r FILE: probe (default, streaming TypeScript
                          reader, strict checks) or libpcap (pcap_open_offline)
  -q, --quiet             no summary on standard error
  -h, --help              this text

Hooks (JavaScript run on every packet in a sandbox; 'probe hook test' tries one on a file):
${HOOK_OPTIONS_HELP}  Hooks see packets after the filter; -c counts packets before hooks. With -F pcapng
  the tags hooks give a packet become its comments (tshark -e frame.comment). On a live
  capture hooks run behind the output queue: a slow hook makes probe drop packets
  (counted in the summary) instead of stalling the capture.

On Ctrl-C (SIGINT) or SIGTERM the file is completed and a summary is printed on standard
error: packets captured, received by filter, dropped by kernel (as tcpdump prints them),
and with hooks one line of counters per hook.
Exit status: 0 success, 1 capture or file error (including a hook file that does not
compile), 2 bad command line.
`;

const options = {
  interface: { type: "string", short: "i" },
  read: { type: "string", short: "r" },
  write: { type: "string", short: "w" },
  filter: { type: "string", short: "f" },
  snaplen: { type: "string", short: "s" },
  count: { type: "string", short: "c" },
  format: { type: "string", short: "F" },
  "buffer-size": { type: "string", short: "B" },
  "no-promiscuous": { type: "boolean", short: "p" },
  direction: { type: "string", short: "Q" },
  immediate: { type: "boolean" },
  nano: { type: "boolean" },
  realtime: { type: "boolean" },
  reader: { type: "string" },
  quiet: { type: "boolean", short: "q" },
  "tls-ca": { type: "string" },
  "tls-insecure": { type: "boolean" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "no-reconnect": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  ...HOOK_CLI_OPTIONS,
} as const;

export function parseCaptureConfig(argv: string[]): CaptureConfig | "help" {
  const { values: v, positionals } = parseCommandLine("capture", argv, options);
  if (v.help) return "help";
  if (v.filter !== undefined && positionals.length > 0) {
    throw new UsageError("capture: give the filter either with -f or as trailing words, not both");
  }
  return validated("capture", captureConfigSchema, {
    interface: v.interface,
    readFile: v.read,
    writeTarget: v.write ?? "",
    filter: v.filter ?? positionals.join(" "),
    snaplen: parseInteger("-s", v.snaplen, 1, MAXIMUM_SNAPLEN),
    count: parseInteger("-c", v.count, 1, Number.MAX_SAFE_INTEGER),
    format: v.format,
    promiscuous: !v["no-promiscuous"],
    bufferKiB: parseInteger("-B", v["buffer-size"], 0, 4 * 1024 * 1024),
    immediate: v.immediate ?? false,
    precision: v.nano ? "nano" : "micro",
    direction: v.direction,
    realtime: v.realtime ?? false,
    reader: v.reader,
    quiet: v.quiet ?? false,
    tlsCa: v["tls-ca"],
    tlsInsecure: v["tls-insecure"] ?? false,
    tlsCert: v["tls-cert"],
    tlsKey: v["tls-key"],
    reconnect: !v["no-reconnect"],
    ...hookConfigFromFlags(v),
  });
}

export async function runCapture(argv: string[]): Promise<number> {
  const config = parseCaptureConfig(argv);
  if (config === "help") {
    process.stdout.write(CAPTURE_HELP);
    return ExitCode.OK;
  }
  // Building the source opens nothing yet. Hooks compile before the capture opens: a hook
  // that does not compile ends the command (exit 1) before an output file is truncated.
  const { source, live, name } = openSource({
    ...config,
    tls: { ca: config.tlsCa, insecure: config.tlsInsecure, cert: config.tlsCert, key: config.tlsKey },
    log: stderrLogger("probe"),
  });
  const hooks = await startHooks({ config, logger: stderrLogger("probe"), interfaceName: name });
  try {
    return await captureWithHooks(config, source, live, hooks);
  } finally {
    hooks?.close();
  }
}

async function captureWithHooks(
  config: CaptureConfig,
  source: CaptureSource,
  live: boolean,
  hooks: ActiveHooks | undefined,
): Promise<number> {
  let writer: CaptureFileWriter | undefined;
  let captured = 0;
  let stopRequested = false;
  let finish!: (error?: Error) => void;
  const finished = new Promise<Error | undefined>((resolve) => (finish = resolve));
  const writerReady = Promise.withResolvers<CaptureFileWriter>();
  const toWriter: BatchSink = { write: async (batch) => (await writerReady.promise).write(batch) };
  // Live packets queue (bounded, drops counted) so a slow disk, pipe or hook never stalls
  // capture: the hooks run in the queue's sink, after it, one batch at a time.
  const queue = new ConsumerQueue(hooks ? hooks.stage.sinkInto(toWriter) : toWriter, undefined, (error) => finish(error));

  const accept = (batch: PacketBatch): void | Promise<void> => {
    if (stopRequested) return;
    if (config.count !== undefined && captured + batch.count >= config.count) {
      batch = takeRecords(batch, config.count - captured);
      stopRequested = true;
      queueMicrotask(() => finish());
    }
    captured += batch.count;
    if (live) {
      queue.offer(batch);
      return;
    }
    // A file is read only as fast as this promise settles, so the hooks can run inline.
    return writerReady.promise.then((w) => {
      const out = hooks ? hooks.stage.apply(batch).batch : batch;
      if (out.count > 0) return w.write(out);
    });
  };

  const info = await source.start({ onBatch: accept, onEnd: (_reason, error) => finish(error) });
  if (info.warning) process.stderr.write(`probe: warning: ${info.warning}\n`);
  writer = await CaptureFileWriter.open({
    target: config.writeTarget,
    format: config.format,
    linktype: info.linktype,
    snaplen: Math.min(info.snaplen, config.snaplen),
    precision: config.precision,
    interfaceName: info.description,
    ...(hooks && config.format === "pcapng" ? { comments: hooks.stage.comments } : {}),
  });
  writerReady.resolve(writer);
  if (live && !config.quiet) {
    process.stderr.write(
      `probe: listening on ${info.description}, link-type ${info.linktype}, snapshot length ${info.snaplen} bytes\n`,
    );
  }

  const onSignal = () => finish();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const failure = await finished;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);

  stopRequested = true;
  const stats: CaptureStats = await source.stop();
  await queue.drained();
  await writer.close();
  if (!config.quiet) printSummary(live, captured, queue.counters.droppedPackets, stats, hooks);
  if (failure) throw failure;
  return ExitCode.OK;
}

function printSummary(live: boolean, captured: number, queueDropped: number, stats: CaptureStats, hooks: ActiveHooks | undefined): void {
  const lines = [`${captured} packet${captured === 1 ? "" : "s"} captured`];
  if (live && stats.kernel) {
    lines.push(`${stats.kernel.received} packets received by filter`);
    lines.push(`${stats.kernel.dropped} packets dropped by kernel`);
  }
  if (queueDropped > 0) lines.push(`${queueDropped} packets dropped by probe (output${hooks ? " or hooks" : ""} too slow)`);
  if (hooks) {
    const { packetsIn, packetsOut } = hooks.stage.counters;
    lines.push(`${packetsOut} packets written after hooks (${packetsIn - packetsOut} dropped by hooks)`);
    lines.push(...hooks.summaryLines());
  }
  process.stderr.write(`${lines.join("\n")}\n`);
}
