// `probe rt`: serve one capture over libtrace's RT protocol, unreliable (many clients) or
// reliable (one client, a fifo in memory or on disk that loses nothing across restarts).
// A thin command: flags -> PipelineSpec (one input, hooks, an rt output) -> runPipeline.
import { chooseDefaultInterface } from "../../capture/default-interface.ts";
import { listInterfaces } from "../../capture/libpcap/devices.ts";
import type { HostPort } from "../../net/addresses.ts";
import type { LogConfig } from "../../config/log-config.ts";
import { RT_SERVER_DEFAULT_PORT, SPOOL_FULL_POLICIES, type SpoolFullPolicy } from "../../outputs/rt/index.ts";
import type { PipelineSpec } from "../../pipeline/spec.ts";
import { HOOK_CLI_OPTIONS, HOOK_OPTIONS_HELP, hooksStageFromFlags } from "../hook-options.ts";
import { INPUT_CLI_OPTIONS, INPUT_OPTIONS_HELP, INPUT_TLS_CLI_OPTIONS, INPUT_TLS_OPTIONS_HELP, inputGroupFromFlags, inputTlsFromFlags } from "../inputs-from-flags.ts";
import { byteSizeFlag, QUEUE_BYTES_BOUNDS } from "../byte-size.ts";
import { LOGGING_CLI_OPTIONS, LOGGING_OPTIONS_HELP, logConfigFromCommandFlags } from "../logging-options.ts";
import { hostPortFlag, parseCommandLine, parseInteger } from "../parse-options.ts";
import { PRINT_PIPELINE_HELP, PRINT_PIPELINE_OPTION, runPipelineCommand, specFromFlags, withMetricsFlag } from "../run-pipeline.ts";
import { UsageError } from "../usage-error.ts";

export const RT_HELP = `Usage: probe rt [-i INTERFACE | -r FILE]... [options] [FILTER...]

Serve packets over libtrace's RT protocol: tracepktdump rt:HOST:PORT, tracesplit,
tracestats, any libtrace program, or another probe (probe capture -i rt://HOST:PORT).

Input (the same on every capture-like command; docs/flags.md):
${INPUT_OPTIONS_HELP}${INPUT_TLS_OPTIONS_HELP}  Without -i or -r: the first up, running, non-loopback interface. A file is read at the
  pace the output allows (nothing is dropped). RT carries at most 65511 bytes of a packet:
  longer ones are cut, counted.

Serving:
      --listen ADDR:PORT     listen here (repeatable; default 127.0.0.1:${RT_SERVER_DEFAULT_PORT}).
                             RT has no authentication: a non-loopback address is your choice.
      --slow-consumer P      unreliable: drop (default) or disconnect a client that falls
                             more than --queue-bytes behind
      --queue-bytes SIZE     unreliable: per-client bound (default 32MiB; 64KiB..1TiB)

Reliable mode:
      --reliable             one client at a time (others are denied); every packet stays in
                             the fifo until the client acknowledges it; packets wait while
                             no client is connected; STATUS every --status-interval-ms
      --spool DIR            keep the fifo on disk in DIR: it survives kill -9 (and power
                             loss with --spool-fsync-ms); a restart re-sends everything
                             unacknowledged
      --spool-max-bytes SIZE fifo cap (default 256MiB). SIZE: bytes, K M G T = x1000,
                             KiB MiB GiB TiB = x1024 (docs/flags.md). Older probe
                             read 2G here as 2GiB: write 2GiB for that
      --spool-full P         when full: block (default; hold, bounded, then drop),
                             drop-oldest, drop-new; counted, logged once per episode,
                             in STATUS
      --spool-fsync-ms N     fdatasync the spool every N ms (default 0: OS-buffered)
      --spool-segment-bytes SIZE  segment file size (default min(16MiB, max/4))
      --status-interval-ms N STATUS period (default 1000; 0: none. tracestats counts
                             each STATUS as a packet, see docs/rt.md)
      --ack-timeout-ms N     close a client that leaves sent packets unacknowledged this
                             long, freeing the one reliable slot (default 30000; 0: never)

Run:
  -q, --quiet                no summary on standard error at the end
${PRINT_PIPELINE_HELP}  -h, --help                 this text
${LOGGING_OPTIONS_HELP}
Hooks (run once per batch before the output; docs/hooks.md):
${HOOK_OPTIONS_HELP}
A replayed file (-r) is served until SIGINT or SIGTERM after it ends, so a reliable client
drains the fifo. Details and libtrace's quirks: docs/rt.md.
`;

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const RT_OPTIONS = {
  ...INPUT_CLI_OPTIONS,
  ...INPUT_TLS_CLI_OPTIONS,
  listen: { type: "string", multiple: true },
  reliable: { type: "boolean" },
  spool: { type: "string" },
  "spool-max-bytes": { type: "string" },
  "spool-full": { type: "string" },
  "spool-fsync-ms": { type: "string" },
  "spool-segment-bytes": { type: "string" },
  "status-interval-ms": { type: "string" },
  "ack-timeout-ms": { type: "string" },
  "slow-consumer": { type: "string" },
  "queue-bytes": { type: "string" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
  ...PRINT_PIPELINE_OPTION,
  ...HOOK_CLI_OPTIONS,
  ...LOGGING_CLI_OPTIONS,
} as const;

export interface RtCommand {
  spec: PipelineSpec;
  printPipeline: boolean;
  logConfig: LogConfig;
}

/** The pipeline an rt command line describes: one input, hooks, one rt output. */
export function parseRtCommand(argv: string[]): RtCommand | "help" {
  const { values: v, positionals, tokens } = parseCommandLine("rt", argv, RT_OPTIONS);
  if (v.help) return "help";
  if (v.spool !== undefined && !v.reliable) throw new UsageError("rt: --spool needs --reliable (an unreliable server keeps nothing)");
  if (v["spool-full"] !== undefined && !(SPOOL_FULL_POLICIES as readonly string[]).includes(v["spool-full"])) {
    throw new UsageError(`rt: --spool-full is ${SPOOL_FULL_POLICIES.join(", ")}, not '${v["spool-full"]}'`);
  }
  if (v["slow-consumer"] !== undefined && v["slow-consumer"] !== "drop" && v["slow-consumer"] !== "disconnect") {
    throw new UsageError(`rt: --slow-consumer is drop or disconnect, not '${v["slow-consumer"]}'`);
  }
  const listen: HostPort[] = (v.listen ?? []).map((text) => hostPortFlag("--listen", text, RT_SERVER_DEFAULT_PORT));
  const group = inputGroupFromFlags("rt", v, { tokens, positionals }, {
    defaultInterface: () => chooseDefaultInterface(listInterfaces()),
    tls: inputTlsFromFlags("rt", v),
  });
  const hooks = hooksStageFromFlags(v);
  const spoolMaxBytes = byteSizeFlag("--spool-max-bytes", v["spool-max-bytes"]);
  const spoolFsyncMs = parseInteger("--spool-fsync-ms", v["spool-fsync-ms"], 0, 60_000);
  const spoolSegmentBytes = byteSizeFlag("--spool-segment-bytes", v["spool-segment-bytes"]);
  const statusIntervalMs = parseInteger("--status-interval-ms", v["status-interval-ms"], 0, 3_600_000);
  const ackTimeoutMs = parseInteger("--ack-timeout-ms", v["ack-timeout-ms"], 0, 3_600_000);
  const queueBytes = byteSizeFlag("--queue-bytes", v["queue-bytes"], QUEUE_BYTES_BOUNDS);
  const spec = specFromFlags("rt", {
    inputs: group.inputs as PipelineSpec["inputs"],
    stages: hooks ? [hooks] : [],
    outputs: [{
      kind: "rt",
      listen,
      reliable: v.reliable ?? false,
      ...(v.spool !== undefined ? { spool: v.spool } : {}),
      ...(spoolMaxBytes !== undefined ? { spoolMaxBytes } : {}),
      ...(v["spool-full"] !== undefined ? { spoolFull: v["spool-full"] as SpoolFullPolicy } : {}),
      ...(spoolFsyncMs !== undefined ? { spoolFsyncMs } : {}),
      ...(spoolSegmentBytes !== undefined ? { spoolSegmentBytes } : {}),
      ...(statusIntervalMs !== undefined ? { statusIntervalMs } : {}),
      ...(ackTimeoutMs !== undefined ? { ackTimeoutMs } : {}),
      ...(v["slow-consumer"] !== undefined ? { slowConsumer: v["slow-consumer"] } : {}),
      ...(queueBytes !== undefined ? { queueBytes } : {}),
    }],
    ...(group.stopAfterPackets !== undefined ? { stopAfterPackets: group.stopAfterPackets } : {}),
    quiet: v.quiet ?? false,
  });
  return { spec: withMetricsFlag(spec, v.metrics), printPipeline: v["print-pipeline"] ?? false, logConfig: logConfigFromCommandFlags("rt", v) };
}

export async function runRt(argv: string[]): Promise<number> {
  // The rt output logs where it serves ("rt: serving ... on HOST:PORT"), once it has started.
  return runPipelineCommand(parseRtCommand(argv), RT_HELP);
}
