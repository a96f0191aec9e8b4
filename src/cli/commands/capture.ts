// `probe capture`: capture from interfaces, remote streams or files (-i and -r, repeatable and
// mixed: merged in timestamp order), optionally filter, and write a pcap/pcapng file,
// rotating files (-G, -C, %-names: docs/rotation.md) or standard output, through processing
// stages (--anonymize-*, --truncate-headers, --checksums, --direction-*: docs/stages.md) and
// operator hooks (--hook). Ctrl-C ends it with complete files and a summary. The flags become a PipelineSpec; src/pipeline/runner.ts runs it.
import { linktypeText } from "../../capture/libpcap/index.ts";
import type { PipelineSpec } from "../../pipeline/spec.ts";
import { HOOK_CLI_OPTIONS, HOOK_OPTIONS_HELP, hooksStageFromFlags } from "../hook-options.ts";
import { INPUT_CLI_OPTIONS, INPUT_OPTIONS_HELP, INPUT_TLS_CLI_OPTIONS, INPUT_TLS_OPTIONS_HELP, inputGroupFromFlags, inputTlsFromFlags } from "../inputs-from-flags.ts";
import { parseCommandLine } from "../parse-options.ts";
import { normalizeProcessingArgv, PROCESSING_CLI_OPTIONS, PROCESSING_OPTIONS_HELP, processingStagesFromFlags } from "../processing-options.ts";
import { fileOutputFromFlags, ROTATION_CLI_OPTIONS, ROTATION_OPTIONS_HELP } from "../rotation-options.ts";
import { PRINT_PIPELINE_HELP, PRINT_PIPELINE_OPTION, runPipelineCommand, specFromFlags, withMetricsFlag } from "../run-pipeline.ts";
import { UsageError } from "../usage-error.ts";

export const CAPTURE_HELP = `Usage: probe capture (-i INTERFACE | -r FILE)... [options] -w FILE|- [FILTER...]

Capture packets from a live interface or replay a capture file, and write them as a
pcap or pcapng file (or to standard output with -w -, e.g. | tshark -r -).
With -F pcapng every input is its own interface (IDB); pcap needs one link type.

Input (the same on every capture-like command; docs/flags.md):
${INPUT_OPTIONS_HELP}${INPUT_TLS_OPTIONS_HELP}
Output:
  -w, --write FILE|-      write to FILE, or '-' for standard output (required)
  -F, --format FMT        pcap (default) or pcapng
      --nano              nanosecond timestamps (pcap magic a1b23c4d)
  -q, --quiet             no summary on standard error
${PRINT_PIPELINE_HELP}  -h, --help              this text

Processing (docs/stages.md):
${PROCESSING_OPTIONS_HELP}
Rotating files (docs/rotation.md):
${ROTATION_OPTIONS_HELP}
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

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const CAPTURE_OPTIONS = {
  ...INPUT_CLI_OPTIONS,
  ...INPUT_TLS_CLI_OPTIONS,
  write: { type: "string", short: "w" },
  format: { type: "string", short: "F" },
  nano: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
  ...PRINT_PIPELINE_OPTION,
  ...HOOK_CLI_OPTIONS,
  ...PROCESSING_CLI_OPTIONS,
  ...ROTATION_CLI_OPTIONS,
} as const;

export interface CaptureCommand {
  spec: PipelineSpec;
  printPipeline: boolean;
}

/** The pipeline a capture command line describes: inputs in the order given, processing stages, hooks, one (rotating) file output. */
export function parseCaptureCommand(rawArgv: string[]): CaptureCommand | "help" {
  const argv = normalizeProcessingArgv(rawArgv);
  const { values: v, positionals, tokens } = parseCommandLine("capture", argv, CAPTURE_OPTIONS);
  if (v.help) return "help";
  const group = inputGroupFromFlags("capture", v, { tokens, positionals }, { tls: inputTlsFromFlags("capture", v) });
  if (v.write === undefined || v.write === "") throw new UsageError("capture: -w FILE (or -w - for standard output) is required");
  if (v.format !== undefined && v.format !== "pcap" && v.format !== "pcapng") throw new UsageError(`capture: -F is pcap or pcapng, not '${v.format}'`);
  const hooks = hooksStageFromFlags(v);
  const format = (v.format ?? "pcap") as "pcap" | "pcapng";
  const spec = specFromFlags("capture", {
    inputs: group.inputs as PipelineSpec["inputs"],
    // Processing stages in command-line order, then hooks.
    stages: [...processingStagesFromFlags(v, argv), ...(hooks ? [hooks] : [])],
    outputs: [fileOutputFromFlags("capture", v, v.write, format)],
    precision: v.nano ? "nano" : "micro",
    ...(group.stopAfterPackets !== undefined ? { stopAfterPackets: group.stopAfterPackets } : {}),
    quiet: v.quiet ?? false,
  });
  return { spec: withMetricsFlag(spec, v.metrics), printPipeline: v["print-pipeline"] ?? false };
}

export async function runCapture(argv: string[]): Promise<number> {
  return runPipelineCommand(parseCaptureCommand(argv), CAPTURE_HELP, {
    onStarted: (runner) => {
      const { spec, stream } = runner;
      const only = spec.inputs.length === 1 ? spec.inputs[0] : undefined;
      if (spec.quiet || !stream || !only || only.kind === "file") return;
      const input = stream.inputs[0]!;
      process.stderr.write(`probe: listening on ${input.description}, link-type ${linktypeText(input.linktype)}, snapshot length ${input.snaplen} bytes\n`);
    },
  });
}
