// The outputs' registry: one builder per output kind of the PipelineSpec, handed to the runner
// (RunnerOptions.buildOutput) by the commands. Outputs sit above the pipeline: the pipeline knows
// only the contract (OutputBuilder, PipelineOutputContext in src/pipeline/registry.ts).
import type { PreparedOutput } from "../pipeline/output-context.ts";
import type { PipelineOutput } from "../pipeline/output.ts";
import type { OutputBuilder, PipelineOutputContext } from "../pipeline/registry.ts";
import type { OutputSpec } from "../pipeline/spec.ts";
import { CaptureFileOutput } from "./capture-file/capture-file-output.ts";

type Of<U, K> = Extract<U, { kind: K }>;

type KindBuilder<K extends OutputSpec["kind"]> = (spec: Of<OutputSpec, K>, context: PipelineOutputContext) => Promise<PreparedOutput<PipelineOutput>>;

export const OUTPUTS: { [K in OutputSpec["kind"]]: KindBuilder<K> } = {
  file: async (spec, context) => ({ output: new CaptureFileOutput(spec.path, spec.format, context) }),
  // A full disk (with onDiskFull "stop") or an unwritable directory ends the run: one line, exit 1.
  "rotating-file": async (spec, context) =>
    ({ output: (await import("./rotating-file/rotating-file-spec.ts")).buildRotatingFileOutput(spec, { logger: context.log, onFatal: (error) => context.fail(error) }) }),
  // Outputs that bring sockets, TLS and the daemon's auth load only when a spec uses them, so
  // a capture to a file starts as fast as before the pipeline existed.
  "pcap-over-ip": async (spec, context) =>
    (await import("./pcap-over-ip/pcap-over-ip-output.ts")).PcapOverIpOutput.prepare(
      {
        listen: spec.listen,
        connect: spec.connect,
        allow: spec.allow,
        tls: spec.tls,
        connectTls: spec.connectTls,
        slowConsumer: spec.slowConsumer,
        queueBytes: spec.queueBytes,
        precision: context.spec.precision,
        ...(spec.onlyDirection ? { onlyDirection: spec.onlyDirection } : {}),
      },
      context,
    ),
  rpcapd: async (spec, context) => {
    // Sessions that OPEN an interface the pipeline captures join its stream.
    const joinable = new Map<string, number>();
    context.spec.inputs.forEach((input, index) => {
      if (input.kind === "interface" && !joinable.has(input.device)) joinable.set(input.device, index);
    });
    return (await import("./rpcapd/rpcapd-output.ts")).RpcapdOutput.prepare(spec, context, joinable, context.createStages);
  },
  udpstr: async (spec, context) => ({
    output: new (await import("./udpstr/udpstr-output.ts")).UdpstrOutput({ host: spec.target.host, port: spec.target.port, mtu: spec.mtu, sendBufferBytes: spec.sendBufferBytes }, context),
    // The datagrams sent would otherwise be captured again when they leave by a captured
    // interface (-i lo with a collector on loopback: each packet forwarded again, without end).
    ownTraffic: `not (udp and dst host ${spec.target.host} and dst port ${spec.target.port})`,
  }),
  rt: async (spec, context) => (await import("./rt/rt-output.ts")).prepareRtOutput(spec, context),
};

/** The runner's RunnerOptions.buildOutput: the builder of the spec entry's kind. */
export const buildOutput: OutputBuilder = (spec, context) => {
  return (OUTPUTS[spec.kind] as KindBuilder<typeof spec.kind>)(spec, context);
};

