// `probe pcap-over-ip`: serve one capture (or several PCAP-over-IP streams merged with --from)
// as a PCAP-over-IP (or PCAP-over-TLS) stream to listeners' clients and to --connect peers.
// The flags become a PipelineSpec; src/pipeline/runner.ts runs it.
import { chooseDefaultInterface } from "../../capture/default-interface.ts";
import { listInterfaces } from "../../capture/libpcap/devices.ts";
import { parseCidr, type HostPort } from "../../net/addresses.ts";
import { PCAP_OVER_IP_DEFAULT_PORT } from "../../outputs/pcap-over-ip/pcap-over-ip-server.ts";
import type { PipelineSpec } from "../../pipeline/spec.ts";
import { parseByteSize, QUEUE_BYTES_BOUNDS } from "../byte-size.ts";
import { HOOK_CLI_OPTIONS, HOOK_OPTIONS_HELP, hooksStageFromFlags } from "../hook-options.ts";
import { INPUT_CLI_OPTIONS, INPUT_OPTIONS_HELP, inputGroupFromFlags, inputsFromFlags } from "../inputs-from-flags.ts";
import { hostPortFlag, parseCommandLine } from "../parse-options.ts";
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
import { PRINT_PIPELINE_HELP, PRINT_PIPELINE_OPTION, runPipelineCommand, specFromFlags, withMetricsFlag } from "../run-pipeline.ts";
import { UsageError } from "../usage-error.ts";

export const PCAP_OVER_IP_HELP = `Usage: probe pcap-over-ip [-i INTERFACE | -r FILE]... [options] [FILTER...]

Serve a live capture as a PCAP-over-IP stream: every consumer that connects gets a classic
pcap global header, then records as they are captured. Readers: tshark -i TCP@HOST:PORT,
Wireshark, NetworkMiner, Arkime, Zeek's pcapovertcp, nc HOST PORT | tcpdump -r -.

Input (the same on every capture-like command; docs/flags.md):
${INPUT_OPTIONS_HELP}  Without -i or -r: the first up, running, non-loopback interface. tls:// inputs take
  --tls-ca and --tls-insecure below, as --from does.
      --nano              nanosecond timestamps (pcap magic a1b23c4d), as 'probe capture
                          --nano' and tcpdump --nano; --nanoseconds is the old name

Merging (instead of -i and -r):
      --from URL           read a PCAP-over-IP stream (tcp://H:P, TCP@H:P, tls://H:P);
                           repeat to merge several in timestamp order (1 s reordering
                           window); a source that drops is redialled, the rest go on;
                           sources of different link types are refused

Serving:
      --listen ADDR:PORT   listen here (repeatable). Without --listen and --connect:
                           127.0.0.1:${PCAP_OVER_IP_DEFAULT_PORT}. PCAP-over-IP has no authentication:
                           a non-loopback address is your explicit choice.
      --connect HOST:PORT  dial out to a listening consumer and push the stream
                           (repeatable); redialled with backoff (0.5 s up to 30 s)
      --allow CIDR         only peers in CIDR may connect (repeatable)
      --tls-cert FILE      serve PCAP-over-TLS with this certificate...
      --tls-key FILE       ...and key
      --tls-ca FILE        require client certificates signed by this CA (mutual TLS)
      --connect-tls        use TLS for --connect: the server certificate is verified
                           against --tls-ca (else the built-in public CAs), host too
      --tls-insecure       with --connect-tls, tls:// -i and --from: do not verify the server
                           certificate (logged; --connect-insecure is the old name)
      --slow-consumer P    drop (default): a consumer that falls behind loses batches,
                           counted for it alone; disconnect: it is disconnected
      --queue-bytes SIZE   how far a consumer may fall behind (default 16MiB; 64KiB..1TiB;
                           SIZE as docs/flags.md: 16M = 16x10^6, 16MiB = 16x2^20)
${ONLY_DIRECTION_HELP}
Processing (docs/stages.md):
${PROCESSING_OPTIONS_HELP}
Logging:
${LOGGING_OPTIONS_HELP}
Hooks (every packet goes through them before any consumer sees it):
${HOOK_OPTIONS_HELP}
${PRINT_PIPELINE_HELP}  -h, --help               this text

The listeners' own traffic and the --connect peers' are left out of the capture, so probe
never captures its own stream.
`;

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const PCAP_OVER_IP_OPTIONS = {
  ...INPUT_CLI_OPTIONS,
  nano: { type: "boolean" },
  nanoseconds: { type: "boolean" },
  listen: { type: "string", multiple: true },
  connect: { type: "string", multiple: true },
  allow: { type: "string", multiple: true },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-ca": { type: "string" },
  "connect-tls": { type: "boolean" },
  "tls-insecure": { type: "boolean" },
  "connect-insecure": { type: "boolean" },
  "slow-consumer": { type: "string" },
  "queue-bytes": { type: "string" },
  from: { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
  ...PRINT_PIPELINE_OPTION,
  ...HOOK_CLI_OPTIONS,
  ...PROCESSING_CLI_OPTIONS,
  ...ONLY_DIRECTION_CLI_OPTION,
  ...LOGGING_CLI_OPTIONS,
} as const;

export function hostPorts(flag: string, values: string[] | undefined, defaultPort: number): HostPort[] {
  return (values ?? []).map((text) => hostPortFlag(flag, text, defaultPort));
}

export function parsePcapOverIpCommand(rawArgv: string[]): { spec: PipelineSpec; printPipeline: boolean; logConfig: LogConfig } | "help" {
  const argv = normalizeProcessingArgv(rawArgv);
  const { values: v, positionals, tokens } = parseCommandLine("pcap-over-ip", argv, PCAP_OVER_IP_OPTIONS);
  if (v.help) return "help";
  if ((v.interface !== undefined || v.read !== undefined) && v.from !== undefined) throw new UsageError("pcap-over-ip: give -i INTERFACE / -r FILE or --from URL..., not both");
  if ((v["tls-cert"] === undefined) !== (v["tls-key"] === undefined)) throw new UsageError("pcap-over-ip: --tls-cert and --tls-key go together");
  // --tls-ca serves two ends: client certificates on a TLS listener, and the server certificate
  // of --connect-tls peers and tls:// --from sources.
  const tlsInput = (v.interface ?? []).some((url) => /^tls:\/\//i.test(url));
  if (v["tls-ca"] !== undefined && v["tls-cert"] === undefined && !v["connect-tls"] && v.from === undefined && !tlsInput) {
    throw new UsageError("pcap-over-ip: --tls-ca needs --tls-cert and --tls-key (mutual TLS), --connect-tls, --from or a tls:// input");
  }
  const insecure = (v["connect-insecure"] || v["tls-insecure"]) ?? false;
  for (const cidr of v.allow ?? []) {
    try {
      parseCidr(cidr);
    } catch (error) {
      throw new UsageError(`--allow: ${(error as Error).message}`);
    }
  }
  if (v["slow-consumer"] !== undefined && v["slow-consumer"] !== "drop" && v["slow-consumer"] !== "disconnect") {
    throw new UsageError(`--slow-consumer is drop or disconnect, not '${v["slow-consumer"]}'`);
  }
  const inputTls = { ...(v["tls-ca"] ? { ca: v["tls-ca"] } : {}), ...(insecure ? { insecure: true } : {}) };
  const group = v.from
    ? undefined
    : inputGroupFromFlags("pcap-over-ip", v, { tokens, positionals }, { defaultInterface: () => chooseDefaultInterface(listInterfaces()), tls: inputTls });
  const inputs = group
    ? group.inputs
    : v.from!.map((url) => {
        const [input] = inputsFromFlags([{ name: "interface", value: url }], { filter: v.filter ?? positionals.join(" ") });
        if (input!.kind !== "pcap-over-ip") throw new UsageError(`--from: '${url}' is not tcp://HOST:PORT, TCP@HOST:PORT or tls://HOST:PORT`);
        // A source that drops is redialled; the merge goes on with the others meanwhile.
        return { ...input!, reconnect: true, reconnectAfterCleanEnd: true, ...(v["tls-ca"] ? { tlsCa: v["tls-ca"] } : {}), ...(insecure ? { insecure: true } : {}) };
      });
  const hooks = hooksStageFromFlags(v);
  const only = onlyDirectionOfTaggedStream(v);
  const spec = specFromFlags("pcap-over-ip", {
    inputs: inputs as PipelineSpec["inputs"],
    stages: [...processingStagesFromFlags(v, argv), ...(hooks ? [hooks] : [])],
    outputs: [
      {
        kind: "pcap-over-ip",
        listen: hostPorts("--listen", v.listen, PCAP_OVER_IP_DEFAULT_PORT),
        connect: hostPorts("--connect", v.connect, PCAP_OVER_IP_DEFAULT_PORT),
        allow: v.allow ?? [],
        ...(v["tls-cert"] && v["tls-key"] ? { tls: { cert: v["tls-cert"], key: v["tls-key"], ...(v["tls-ca"] ? { ca: v["tls-ca"] } : {}) } } : {}),
        ...(v["connect-tls"] ? { connectTls: { ...(v["tls-ca"] ? { ca: v["tls-ca"] } : {}), insecure } } : {}),
        ...(v["slow-consumer"] ? { slowConsumer: v["slow-consumer"] as "drop" | "disconnect" } : {}),
        ...(v["queue-bytes"] !== undefined ? { queueBytes: parseByteSize("--queue-bytes", v["queue-bytes"], QUEUE_BYTES_BOUNDS) } : {}),
        ...(only ? { onlyDirection: only } : {}),
      },
    ],
    precision: v.nano || v.nanoseconds ? "nano" : "micro",
    ...(group?.stopAfterPackets !== undefined ? { stopAfterPackets: group.stopAfterPackets } : {}),
  });
  return { spec: withMetricsFlag(spec, v.metrics), printPipeline: v["print-pipeline"] ?? false, logConfig: logConfigFromCommandFlags("pcap-over-ip", v) };
}

export async function runPcapOverIp(argv: string[]): Promise<number> {
  return runPipelineCommand(parsePcapOverIpCommand(argv), PCAP_OVER_IP_HELP, {
    onStarted: ({ spec }, log) => {
      const first = spec.inputs[0]!;
      if (spec.inputs.length > 1 || first.kind !== "interface") log.info(`merging ${spec.inputs.length} streams (${spec.inputs.map((i) => (i.kind === "pcap-over-ip" ? i.url : i.kind)).join(", ")})`);
      else log.info(`capturing on ${first.device}${first.filter ? ` with filter '${first.filter}'` : ""}`);
    },
  });
}
