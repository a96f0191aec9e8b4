// `probe forward --udpstr HOST:PORT`: ExtraHop-compatible packed UDP forwarding with no RPCAP
// control connection, for collectors that only listen. The flags become a PipelineSpec with
// one udpstr output; src/pipeline/runner.ts runs it.
import { UDPSTR_DEFAULT_MTU, UDPSTR_MAX_MTU } from "../../config/rpcapd-config.ts";
import type { PipelineSpec } from "../../pipeline/spec.ts";
import { byteSizeFlag, SOCKET_BUFFER_BOUNDS } from "../byte-size.ts";
import { HOOK_CLI_OPTIONS, HOOK_OPTIONS_HELP, hooksStageFromFlags } from "../hook-options.ts";
import { INPUT_CLI_OPTIONS, INPUT_OPTIONS_HELP, INPUT_TLS_CLI_OPTIONS, INPUT_TLS_OPTIONS_HELP, inputGroupFromFlags, inputTlsFromFlags } from "../inputs-from-flags.ts";
import { hostPortFlag, parseCommandLine, parseInteger } from "../parse-options.ts";
import { normalizeProcessingArgv, PROCESSING_CLI_OPTIONS, PROCESSING_OPTIONS_HELP, processingStagesFromFlags } from "../processing-options.ts";
import { LOGGING_CLI_OPTIONS, LOGGING_OPTIONS_HELP, logConfigFromCommandFlags } from "../logging-options.ts";
import type { LogConfig } from "../../config/log-config.ts";
import { PRINT_PIPELINE_HELP, PRINT_PIPELINE_OPTION, runPipelineCommand, specFromFlags, withMetricsFlag } from "../run-pipeline.ts";
import { UsageError } from "../usage-error.ts";

export const FORWARD_HELP = `Usage: probe forward --udpstr HOST:PORT (-i INTERFACE | -r FILE)... [options] [FILTER...]

Send captured packets to a udpstr collector (ExtraHop's packed RPCAP-over-UDP): records are
packed into datagrams of at most --mtu bytes, never an IP fragment, several records per
datagram for small packets. A partly filled datagram is sent as soon as no packet is waiting.

  --udpstr HOST:PORT   collector address (required)
      --mtu N          datagram size in bytes, udpstr header included (default ${UDPSTR_DEFAULT_MTU} =
                       1500-byte link minus IPv4 and UDP headers; 37..${UDPSTR_MAX_MTU})
      --sndbuf SIZE    UDP send buffer (SO_SNDBUF; up to 1GiB; SIZE: docs/flags.md)
  -q, --quiet          no summary
  -h, --help           this text

Input (the same on every capture-like command; docs/flags.md):
${INPUT_OPTIONS_HELP}${INPUT_TLS_OPTIONS_HELP}  With -r, --realtime keeps the file's pace; without it records go as fast as the socket
  takes them, which a collector may not keep up with.

${PROCESSING_OPTIONS_HELP}${LOGGING_OPTIONS_HELP}${HOOK_OPTIONS_HELP}${PRINT_PIPELINE_HELP}At exit: packets, datagrams, bytes sent, and datagrams dropped because the socket buffer
was full (EAGAIN/ENOBUFS: counted, never blocking the capture).
`;

/** Minimum MTU for which ExtraHop's packing invariant holds (see src/protocols/udpstr). */
const MIN_MTU = 37;

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const FORWARD_OPTIONS = {
  udpstr: { type: "string" },
  ...INPUT_CLI_OPTIONS,
  ...INPUT_TLS_CLI_OPTIONS,
  mtu: { type: "string" },
  sndbuf: { type: "string" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
  ...PRINT_PIPELINE_OPTION,
  ...HOOK_CLI_OPTIONS,
  ...PROCESSING_CLI_OPTIONS,
  ...LOGGING_CLI_OPTIONS,
} as const;

export function parseForwardCommand(rawArgv: string[]): { spec: PipelineSpec; printPipeline: boolean; logConfig: LogConfig } | "help" {
  const argv = normalizeProcessingArgv(rawArgv);
  const { values: v, positionals, tokens } = parseCommandLine("forward", argv, FORWARD_OPTIONS);
  if (v.help) return "help";
  if (!v.udpstr) throw new UsageError("forward: --udpstr HOST:PORT is required");
  const group = inputGroupFromFlags("forward", v, { tokens, positionals }, { tls: inputTlsFromFlags("forward", v) });
  const target = hostPortFlag("--udpstr", v.udpstr);
  const hooks = hooksStageFromFlags(v);
  const spec = specFromFlags("forward", {
    inputs: group.inputs as PipelineSpec["inputs"],
    stages: [...processingStagesFromFlags(v, argv), ...(hooks ? [hooks] : [])],
    outputs: [
      {
        kind: "udpstr",
        target,
        mtu: parseInteger("--mtu", v.mtu, MIN_MTU, UDPSTR_MAX_MTU) ?? UDPSTR_DEFAULT_MTU,
        sendBufferBytes: byteSizeFlag("--sndbuf", v.sndbuf, SOCKET_BUFFER_BOUNDS) ?? 0,
      },
    ],
    ...(group.stopAfterPackets !== undefined ? { stopAfterPackets: group.stopAfterPackets } : {}),
    quiet: v.quiet ?? false,
  });
  return { spec: withMetricsFlag(spec, v.metrics), printPipeline: v["print-pipeline"] ?? false, logConfig: logConfigFromCommandFlags("forward", v) };
}

export async function runForward(argv: string[]): Promise<number> {
  return runPipelineCommand(parseForwardCommand(argv), FORWARD_HELP, { logName: "probe-forward" });
}
