// The default serve mode (`probe` with no command, what `npm start` runs): one pipeline whose
// capture feeds a PCAP-over-IP server and an RPCAP daemon, both on loopback unless told
// otherwise, printing the exact commands that read from them. Hooks run once per batch before
// both: RPCAP clients that open the served interface join this capture.
import { chooseDefaultInterface } from "../../capture/default-interface.ts";
import { listInterfaces } from "../../capture/libpcap/devices.ts";
import { RPCAP_DEFAULT_PORT } from "../../config/rpcapd-config.ts";
import { RpcapdOutput } from "../../outputs/rpcapd/rpcapd-output.ts";
import { PcapOverIpOutput } from "../../outputs/pcap-over-ip/pcap-over-ip-output.ts";
import { PCAP_OVER_IP_DEFAULT_PORT } from "../../outputs/pcap-over-ip/pcap-over-ip-server.ts";
import { RtServer, RT_SERVER_DEFAULT_PORT } from "../../outputs/rt/rt-server.ts";
import type { PipelineSpec } from "../../pipeline/spec.ts";
import { INPUT_CLI_OPTIONS, INPUT_OPTIONS_HELP, INPUT_TLS_CLI_OPTIONS, INPUT_TLS_OPTIONS_HELP, inputGroupFromFlags, inputTlsFromFlags } from "../inputs-from-flags.ts";
import { HOOK_CLI_OPTIONS, HOOK_OPTIONS_HELP, hooksStageFromFlags } from "../hook-options.ts";
import { LOGGING_CLI_OPTIONS, LOGGING_OPTIONS_HELP, logConfigFromCommandFlags } from "../logging-options.ts";
import type { LogConfig } from "../../config/log-config.ts";
import { hostPortFlag, parseCommandLine } from "../parse-options.ts";
import { fileOutputFromFlags, hasRotationFlags, ROTATION_CLI_OPTIONS, ROTATION_OPTIONS_HELP } from "../rotation-options.ts";
import {
  normalizeProcessingArgv,
  ONLY_DIRECTION_CLI_OPTION,
  ONLY_DIRECTION_HELP,
  onlyDirectionOfTaggedStream,
  PROCESSING_CLI_OPTIONS,
  PROCESSING_OPTIONS_HELP,
  processingStagesFromFlags,
} from "../processing-options.ts";
import { PRINT_PIPELINE_HELP, PRINT_PIPELINE_OPTION, runPipelineCommand, specFromFlags, withMetricsFlag } from "../run-pipeline.ts";
import { UsageError } from "../usage-error.ts";

export const SERVE_HELP = `Usage: probe [-i INTERFACE | -r FILE]... [input flags] [--pcap-over-ip ADDR:PORT]
             [--rpcap ADDR:PORT] [--no-rpcap] [--users FILE] [--rt ADDR:PORT] [FILTER...]

With no command, probe serves one capture two ways at once:
  PCAP-over-IP on 127.0.0.1:${PCAP_OVER_IP_DEFAULT_PORT}  (tshark -i TCP@127.0.0.1:${PCAP_OVER_IP_DEFAULT_PORT})
  RPCAP        on 127.0.0.1:${RPCAP_DEFAULT_PORT}   (probe capture -i rpcap://127.0.0.1/IFACE -w -)
Both bind to loopback by default: neither protocol encrypts, and PCAP-over-IP has no
authentication. RPCAP allows NULL authentication on loopback unless --users is given.

Input (the same on every capture-like command; docs/flags.md):
${INPUT_OPTIONS_HELP}${INPUT_TLS_OPTIONS_HELP}  Without -i or -r: the first up, running, non-loopback interface. The filter applies
  to both outputs: RPCAP clients that open a served interface join this capture, after
  the hooks.

Serving:
      --pcap-over-ip A:P     where to serve PCAP-over-IP
      --rpcap A:P            where the RPCAP daemon listens
      --no-rpcap             serve PCAP-over-IP only
      --users FILE           RPCAP password file (then NULL authentication is refused)
      --rt A:P               also serve libtrace's RT protocol here, unreliable
                             (tracepktdump rt:A:P; 'probe rt' for the reliable mode)
  -w, --write FILE           also keep the packets on disk (rotating with the flags below,
                             or a %-conversion in FILE: docs/rotation.md)
  -F, --format FMT           pcap (default) or pcapng, for -w
  -h, --help                 this text
${PRINT_PIPELINE_HELP}${ONLY_DIRECTION_HELP}${LOGGING_OPTIONS_HELP}Processing (docs/stages.md):
${PROCESSING_OPTIONS_HELP}Rotating files, with -w:
${ROTATION_OPTIONS_HELP}${HOOK_OPTIONS_HELP}Hooks run once per batch, before both outputs: every consumer gets the same packets.
For everything else use 'probe pcap-over-ip' and 'probe rpcapd'.
`;

/** parseArgs definitions of the command's flags (test/integration/help-texts.test.ts checks --help lists each). */
export const SERVE_OPTIONS = {
  ...INPUT_CLI_OPTIONS,
  ...INPUT_TLS_CLI_OPTIONS,
  "pcap-over-ip": { type: "string" },
  rpcap: { type: "string" },
  "no-rpcap": { type: "boolean" },
  users: { type: "string" },
  rt: { type: "string" },
  help: { type: "boolean", short: "h" },
  ...PRINT_PIPELINE_OPTION,
  ...HOOK_CLI_OPTIONS,
  ...LOGGING_CLI_OPTIONS,
  ...PROCESSING_CLI_OPTIONS,
  ...ONLY_DIRECTION_CLI_OPTION,
  write: { type: "string", short: "w" },
  format: { type: "string", short: "F" },
  ...ROTATION_CLI_OPTIONS,
} as const;

export function parseServeCommand(rawArgv: string[]): { spec: PipelineSpec; printPipeline: boolean; logConfig: LogConfig } | "help" {
  const argv = normalizeProcessingArgv(rawArgv);
  const { values: v, positionals, tokens } = parseCommandLine("probe", argv, SERVE_OPTIONS);
  if (v.help) return "help";
  const parse = (flag: string, text: string | undefined, port: number) => (text ? hostPortFlag(flag, text, port) : { host: "127.0.0.1", port });
  const poipAddress = parse("--pcap-over-ip", v["pcap-over-ip"], PCAP_OVER_IP_DEFAULT_PORT);
  const rpcapAddress = parse("--rpcap", v.rpcap, RPCAP_DEFAULT_PORT);
  const rtAddress = v.rt !== undefined ? parse("--rt", v.rt, RT_SERVER_DEFAULT_PORT) : undefined;
  // main.ts sends only argv that starts with an option here, so trailing words are a filter.
  const group = inputGroupFromFlags("probe", v, { tokens, positionals }, {
    defaultInterface: () => chooseDefaultInterface(listInterfaces()),
    tls: inputTlsFromFlags("probe", v),
  });
  const hooks = hooksStageFromFlags(v);
  const only = onlyDirectionOfTaggedStream(v);
  if (v.write === undefined && (hasRotationFlags(v) || v.format !== undefined)) throw new UsageError("probe: -F and the rotation flags go with -w FILE");
  if (v.format !== undefined && v.format !== "pcap" && v.format !== "pcapng") throw new UsageError(`probe: -F is pcap or pcapng, not '${v.format}'`);
  const disk = v.write !== undefined ? [fileOutputFromFlags("probe", v, v.write, (v.format ?? "pcap") as "pcap" | "pcapng")] : [];
  const spec = specFromFlags("probe", {
    inputs: group.inputs as PipelineSpec["inputs"],
    stages: [...processingStagesFromFlags(v, argv), ...(hooks ? [hooks] : [])],
    outputs: [
      { kind: "pcap-over-ip", listen: [poipAddress], ...(only ? { onlyDirection: only } : {}) },
      ...(v["no-rpcap"]
        ? []
        : [{
            kind: "rpcapd" as const,
            listen: { host: rpcapAddress.host, port: rpcapAddress.port, ipv4Only: false },
            // NULL authentication on loopback unless a users file is given.
            nullAuth: !v.users,
            ...(v.users ? { usersFile: v.users } : {}),
            ...(only ? { onlyDirection: only } : {}),
          }]),
      ...(rtAddress ? [{ kind: "rt" as const, listen: [rtAddress] }] : []),
      ...disk,
    ],
    ...(group.stopAfterPackets !== undefined ? { stopAfterPackets: group.stopAfterPackets } : {}),
  });
  return { spec: withMetricsFlag(spec, v.metrics), printPipeline: v["print-pipeline"] ?? false, logConfig: logConfigFromCommandFlags("probe", v) };
}

export async function runServe(argv: string[]): Promise<number> {
  const command = parseServeCommand(argv);
  // With --log-format json every line of standard error must be JSON: the banner too.
  const jsonLog = command !== "help" && command.logConfig.logFormat === "json";
  return runPipelineCommand(command, SERVE_HELP, {
    onStarted: (runner, log) => {
      const { spec } = runner;
      const devices = spec.inputs.flatMap((input) => (input.kind === "interface" ? [input.device] : []));
      const served = spec.inputs.map((input) => (input.kind === "interface" ? input.device : input.kind === "file" ? input.path : "url" in input ? input.url : input.kind)).join(", ");
      const poip = runner.outputs.find((o): o is PcapOverIpOutput => o instanceof PcapOverIpOutput);
      const rpcap = runner.outputs.find((o): o is RpcapdOutput => o instanceof RpcapdOutput);
      const rpcapSpec = spec.outputs.find((o) => o.kind === "rpcapd");
      const listening = poip?.server.listening[0];
      const host = listening?.host ?? "127.0.0.1";
      const lines = [`probe is serving ${served}:`, `  tshark -i TCP@${host}:${listening?.port}`, `  nc ${host} ${listening?.port} | tcpdump -n -r -`];
      if (rpcap && rpcapSpec?.kind === "rpcapd") {
        for (const device of devices) lines.push(`  probe capture -i rpcap://${rpcapSpec.listen?.host ?? "127.0.0.1"}:${rpcap.port}/${device} -w - | tcpdump -n -r -`);
      }
      const rt = runner.outputs.find((o): o is RtServer => o instanceof RtServer)?.listening[0];
      if (rt) lines.push(`  tracepktdump rt:${rt.host.includes(":") ? `[${rt.host}]` : rt.host}:${rt.port}`);
      lines.push("Ctrl-C to stop.");
      if (jsonLog) for (const line of lines) log.info(line);
      else process.stderr.write(`${lines.join("\n")}\n`);
    },
  });
}
