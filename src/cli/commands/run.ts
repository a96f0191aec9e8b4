// `probe run FILE`: run a pipeline file (YAML or JSON, the format --print-pipeline writes).
import { readPipelineFile } from "../../pipeline/pipeline-file.ts";
import { parseCommandLine } from "../parse-options.ts";
import { PRINT_PIPELINE_HELP, PRINT_PIPELINE_OPTION, runPipeline, withMetricsFlag } from "../run-pipeline.ts";
import { ExitCode, UsageError } from "../usage-error.ts";

export const RUN_HELP = `Usage: probe run FILE

Run the pipeline FILE describes (YAML or JSON): inputs (interface, file, rpcap, rpcap-active,
pcap-over-ip, udpstr, rt), stages run once per batch in order (snaplen, filter, sampling,
hooks, anonymize, truncate-headers, checksums, direction), outputs (file, rotating-file,
pcap-over-ip, rpcapd, udpstr, rt). docs/pipeline.md describes every kind. Every command prints its own
pipeline with --print-pipeline; start from one of those:
  probe capture -i eth0 -w out.pcapng -F pcapng --print-pipeline > p.yaml
  probe run p.yaml

${PRINT_PIPELINE_HELP}  -h, --help              this text
`;

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const RUN_OPTIONS = { help: { type: "boolean", short: "h" }, ...PRINT_PIPELINE_OPTION } as const;

export async function runRun(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseCommandLine("run", argv, RUN_OPTIONS);
  if (v.help) {
    process.stdout.write(RUN_HELP);
    return ExitCode.OK;
  }
  if (positionals.length !== 1) throw new UsageError("run: give one pipeline FILE");
  const spec = await readPipelineFile(positionals[0]!);
  return runPipeline(withMetricsFlag(spec, v.metrics), { printPipeline: v["print-pipeline"] ?? false });
}
