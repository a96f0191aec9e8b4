// `probe capture`: capture from interfaces, remote streams or files (-i and -r, repeatable and
// mixed: merged in timestamp order), optionally filter, and write a pcap/pcapng file,
// rotating files (-G, -C, %-names: docs/rotation.md) or standard output, through processing
// stages (--anonymize-*, --truncate-headers, --checksums, --direction-*: docs/stages.md) and
// operator hooks (--hook). Ctrl-C ends it with complete files and a summary. The flags become a PipelineSpec; src/pipeline/runner.ts runs it.
import { linktypeText } from "../../capture/libpcap/index.ts";
import { MAXIMUM_SNAPLEN } from "../../packet/packet-batch.ts";
import type { PipelineSpec } from "../../pipeline/spec.ts";
import { HOOK_CLI_OPTIONS, HOOK_OPTIONS_HELP, hooksStageFromFlags } from "../hook-options.ts";
import { inputsFromFlags } from "../inputs-from-flags.ts";
import { inOrder, parseCommandLine, parseInteger } from "../parse-options.ts";
import { normalizeProcessingArgv, PROCESSING_CLI_OPTIONS, PROCESSING_OPTIONS_HELP, processingStagesFromFlags } from "../processing-options.ts";
import { fileOutputFromFlags, ROTATION_CLI_OPTIONS, ROTATION_OPTIONS_HELP } from "../rotation-options.ts";
import { PRINT_PIPELINE_HELP, PRINT_PIPELINE_OPTION, runPipelineCommand, specFromFlags, withMetricsFlag } from "../run-pipeline.ts";
import { UsageError } from "../usage-error.ts";

export const CAPTURE_HELP = `Usage: probe capture (-i INTERFACE | -r FILE)... [options] -w FILE|- [FILTER...]

Capture packets from a live interface or replay a capture file, and write them as a
pcap or pcapng file (or to standard output with -w -, e.g. | tshark -r -). -i and -r may
be repeated and mixed: the inputs are merged in timestamp order (files exactly as
mergecap does; live inputs within a 1 s reordering window, later records counted).
With -F pcapng every input is its own interface (IDB); pcap needs one link type.

Options:
  -i, --interface NAME    capture on NAME (see 'probe list'); or on a remote interface
                          behind an RPCAP daemon: rpcap://[USER:PASS@]HOST[:PORT]/IFACE
                          (rpcaps:// for TLS; NULL authentication without USER); or read
                          a PCAP-over-IP stream: tcp://HOST:PORT, TCP@HOST:PORT, tls://HOST:PORT;
                          or a libtrace RT server: rt://HOST:PORT[?state=FILE] (acknowledges
                          only what is written; docs/rt.md)
      --tls-ca FILE       tls:// and rpcaps://: trust this CA for the server certificate
                          (default: the built-in public CAs); always verified
      --tls-insecure      tls:// and rpcaps://: do not verify it (logged)
      --tls-cert FILE     tls://: client certificate for a server that requires one...
      --tls-key FILE      ...and its key
      --no-reconnect      tcp:// and tls://: end on a failure instead of redialling
                          (0.5 s doubling to 30 s); a clean close ends the capture...
      --reconnect-after-close
                          ...unless this is given: redial after the server closed the
                          stream cleanly too (Wireshark's extcap path sets it)
      --capture-engine E  who reads -i INTERFACE: ring (default: Linux's packet ring
                          read directly, least CPU) or libpcap; ring falls back to
                          libpcap for 'any', non-Ethernet links and --immediate
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
  interface: { type: "string", short: "i", multiple: true },
  read: { type: "string", short: "r", multiple: true },
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
  "reconnect-after-close": { type: "boolean" },
  "capture-engine": { type: "string" },
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
  if (v.filter !== undefined && positionals.length > 0) {
    throw new UsageError("capture: give the filter either with -f or as trailing words, not both");
  }
  const ordered = inOrder(tokens, ["interface", "read"]);
  if (ordered.length === 0) throw new UsageError("capture: give -i INTERFACE or -r FILE (each may be repeated)");
  if (v.write === undefined || v.write === "") throw new UsageError("capture: -w FILE (or -w - for standard output) is required");
  if (v.format !== undefined && v.format !== "pcap" && v.format !== "pcapng") throw new UsageError(`capture: -F is pcap or pcapng, not '${v.format}'`);
  if (v.direction !== undefined && !["in", "out", "inout"].includes(v.direction)) throw new UsageError(`capture: -Q is in, out or inout, not '${v.direction}'`);
  if (v.reader !== undefined && v.reader !== "probe" && v.reader !== "libpcap") throw new UsageError(`capture: --reader is probe or libpcap, not '${v.reader}'`);
  if ((v["tls-cert"] === undefined) !== (v["tls-key"] === undefined)) throw new UsageError("capture: --tls-cert and --tls-key go together");
  if (v["no-reconnect"] && v["reconnect-after-close"]) throw new UsageError("capture: --no-reconnect and --reconnect-after-close contradict each other");
  const hooks = hooksStageFromFlags(v);
  const count = parseInteger("-c", v.count, 1, Number.MAX_SAFE_INTEGER);
  const format = (v.format ?? "pcap") as "pcap" | "pcapng";
  const spec = specFromFlags("capture", {
    inputs: inputsFromFlags(ordered, {
      filter: v.filter ?? positionals.join(" "),
      snaplen: parseInteger("-s", v.snaplen, 1, MAXIMUM_SNAPLEN),
      promiscuous: !v["no-promiscuous"],
      bufferKiB: parseInteger("-B", v["buffer-size"], 0, 4 * 1024 * 1024),
      immediate: v.immediate ?? false,
      direction: v.direction,
      realtime: v.realtime ?? false,
      reader: v.reader,
      tls: { ca: v["tls-ca"], insecure: v["tls-insecure"], cert: v["tls-cert"], key: v["tls-key"] },
      reconnect: !v["no-reconnect"],
      reconnectAfterClose: v["reconnect-after-close"] ?? false,
      engine: v["capture-engine"],
    }) as PipelineSpec["inputs"],
    // Processing stages in command-line order, then hooks.
    stages: [...processingStagesFromFlags(v, argv), ...(hooks ? [hooks] : [])],
    outputs: [fileOutputFromFlags("capture", v, v.write, format)],
    precision: v.nano ? "nano" : "micro",
    ...(count !== undefined ? { stopAfterPackets: count } : {}),
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
