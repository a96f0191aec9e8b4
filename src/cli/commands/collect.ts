// `probe collect --udpstr-listen ADDR:PORT`: the udpstr receiver ExtraHop never shipped.
// Reassembles records across datagrams, follows seqno, drops only records cut by a loss,
// and accounts for every loss, live (every few seconds) and at exit. The flags become a
// PipelineSpec with one udpstr input, the processing stages and a (rotating) file or
// PCAP-over-IP output; src/pipeline/runner.ts runs it.
import { LINKTYPE_ETHERNET } from "../../capture/libpcap/constants.ts";
import type { PipelineSpec } from "../../pipeline/spec.ts";
import { byteSizeFlag, SOCKET_BUFFER_BOUNDS } from "../byte-size.ts";
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
import { LOGGING_CLI_OPTIONS, LOGGING_OPTIONS_HELP, logConfigFromCommandFlags } from "../logging-options.ts";
import type { LogConfig } from "../../config/log-config.ts";
import { fileOutputFromFlags, hasRotationFlags, ROTATION_CLI_OPTIONS, ROTATION_OPTIONS_HELP } from "../rotation-options.ts";
import { PRINT_PIPELINE_HELP, PRINT_PIPELINE_OPTION, runPipelineCommand, specFromFlags, withMetricsFlag } from "../run-pipeline.ts";
import { UsageError } from "../usage-error.ts";
import { parseCidr } from "../../net/addresses.ts";
import { runRpcapActiveCollectCommand } from "./collect-rpcap-active.ts";

export const COLLECT_HELP = `Usage: probe collect --udpstr-listen ADDR:PORT (-w FILE|- | --serve-pcap-over-ip ADDR:PORT)
       probe collect --rpcap-active-listen HOST:PORT [options] OUTPUTS   (see --rpcap-active-listen --help)

Receive a udpstr stream (from 'probe forward --udpstr', 'probe rpcapd -t', or ExtraHop's
rpcapd) and write the packets to a file or serve them to PCAP-over-IP readers.

  --udpstr-listen ADDR:PORT     where to receive (required)
  --allow CIDR                  read only senders in CIDR (repeatable); datagrams from
                                others are counted and dropped
  -w, --write FILE|-            write a pcap (or -F pcapng) file, '-' for standard output
  -F, --format FMT              pcap (default) or pcapng
  --serve-pcap-over-ip A:P      serve the packets as PCAP-over-IP instead
  --linktype N                  link type of the forwarded frames (default 1, Ethernet:
                                udpstr does not carry it)
  --rcvbuf SIZE                 UDP receive buffer (SO_RCVBUF; default 8MiB, up to 1GiB;
                                SIZE: docs/flags.md)
  --report-seconds N            live loss report interval (default 5; 0 = only at exit)
  -q, --quiet                   no reports
  -h, --help                    this text
${PRINT_PIPELINE_HELP}Processing (docs/stages.md):
${PROCESSING_OPTIONS_HELP}${ONLY_DIRECTION_HELP}                          (with --serve-pcap-over-ip)
Rotating files, with -w (docs/rotation.md):
${ROTATION_OPTIONS_HELP}Logging:
${LOGGING_OPTIONS_HELP}Each sender (source address and port) is its own stream with its own loss figures: another
sender's datagrams never enter it. Losses: a missing datagram loses only the records it cut;
records wholly inside lost datagrams are counted exactly from the npkt gap. Hostile datagrams
(bad type, firsthdridx past the end, caplen > len or snaplen) are counted and skipped.
`;

/** Enough receive buffer for a burst of ~5000 full datagrams while the event loop is busy. */
const DEFAULT_RCVBUF_BYTES = 8 * 1024 * 1024;

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const COLLECT_OPTIONS = {
  "udpstr-listen": { type: "string" },
  allow: { type: "string", multiple: true },
  write: { type: "string", short: "w" },
  format: { type: "string", short: "F" },
  "serve-pcap-over-ip": { type: "string" },
  linktype: { type: "string" },
  rcvbuf: { type: "string" },
  "report-seconds": { type: "string" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
  ...PRINT_PIPELINE_OPTION,
  ...PROCESSING_CLI_OPTIONS,
  ...ONLY_DIRECTION_CLI_OPTION,
  ...ROTATION_CLI_OPTIONS,
  ...LOGGING_CLI_OPTIONS,
} as const;

export function parseCollectCommand(rawArgv: string[]): { spec: PipelineSpec; printPipeline: boolean; logConfig: LogConfig } | "help" {
  const argv = normalizeProcessingArgv(rawArgv);
  const { values: v } = parseCommandLine("collect", argv, COLLECT_OPTIONS);
  if (v.help) return "help";
  if (!v["udpstr-listen"]) throw new UsageError("collect: --udpstr-listen ADDR:PORT is required");
  if ((v.write === undefined) === (v["serve-pcap-over-ip"] === undefined)) {
    throw new UsageError("collect: give exactly one of -w FILE or --serve-pcap-over-ip ADDR:PORT");
  }
  if (v.write === undefined && hasRotationFlags(v)) throw new UsageError("collect: rotation flags go with -w FILE");
  const only = onlyDirectionOfTaggedStream(v);
  if (only && v.write !== undefined) throw new UsageError("collect: --only-direction goes with --serve-pcap-over-ip");
  if (v.format && v.format !== "pcap" && v.format !== "pcapng") throw new UsageError("collect: -F is pcap or pcapng");
  for (const cidr of v.allow ?? []) {
    try {
      parseCidr(cidr);
    } catch (error) {
      throw new UsageError(`--allow: ${(error as Error).message}`);
    }
  }
  const spec = specFromFlags("collect", {
    inputs: [
      {
        kind: "udpstr",
        listen: hostPortFlag("--udpstr-listen", v["udpstr-listen"]),
        linktype: parseInteger("--linktype", v.linktype, 0, 0xffff) ?? LINKTYPE_ETHERNET,
        receiveBufferBytes: byteSizeFlag("--rcvbuf", v.rcvbuf, SOCKET_BUFFER_BOUNDS) ?? DEFAULT_RCVBUF_BYTES,
        reportSeconds: v.quiet ? 0 : (parseInteger("--report-seconds", v["report-seconds"], 0, 86400) ?? 5),
        allow: v.allow ?? [],
      },
    ],
    outputs: [
      v.write !== undefined
        ? fileOutputFromFlags("collect", v, v.write, (v.format as "pcap" | "pcapng" | undefined) ?? "pcap")
        : { kind: "pcap-over-ip", listen: [hostPortFlag("--serve-pcap-over-ip", v["serve-pcap-over-ip"]!)], ...(only ? { onlyDirection: only } : {}) },
    ],
    stages: processingStagesFromFlags(v, argv),
    quiet: v.quiet ?? false,
  });
  return { spec: withMetricsFlag(spec, v.metrics), printPipeline: v["print-pipeline"] ?? false, logConfig: logConfigFromCommandFlags("collect", v) };
}

export async function runCollect(argv: string[]): Promise<number> {
  // The active-mode RPCAP collector has its own flags and several streams (one per probe).
  if (argv.some((arg) => arg === "--rpcap-active-listen" || arg.startsWith("--rpcap-active-listen="))) return runRpcapActiveCollectCommand(argv);
  return runPipelineCommand(parseCollectCommand(argv), COLLECT_HELP, { logName: "probe-collect" });
}
