// The registry: one builder per kind of input and stage of the PipelineSpec, and the contract
// an output's builder keeps (its table is src/outputs/registry.ts). To add a kind: its zod
// schema goes into the discriminated union in spec.ts, its builder into INPUTS, STAGES or
// src/outputs/registry.ts's OUTPUTS; the runner and every command pick it up unchanged.
import type { CaptureSource, CaptureStats } from "../capture/capture-source.ts";
import { combineFilters } from "../capture/combine-filters.ts";
import { FileReplaySource } from "../capture/file-replay-source.ts";
import { LibpcapFileSource } from "../capture/libpcap-file-source.ts";
import { LiveCaptureSource } from "../capture/live-capture-source.ts";
import { parseRemoteSourceUrl, PcapOverIpSource, RpcapActiveInputSource, RtSource } from "../capture/remote/index.ts";
import { parseRpcapUrl, RpcapCaptureSource } from "../capture/remote/rpcap-source.ts";
import { senderName, UdpstrSource } from "../capture/udpstr-source.ts";
import { parseCidr } from "../net/addresses.ts";
import { udpstrCollector, type MetricsCollector, type UdpstrCounterView } from "../metrics/index.ts";
import type { Logger } from "../logging/index.ts";
import type { OutputContext, PreparedOutput } from "./output-context.ts";
import type { PipelineOutput } from "./output.ts";
import { ProbeError } from "../packet/probe-error.ts";
import type { StagesFactory } from "./capture-hub.ts";
import type { InputSpec, OutputSpec, PipelineSpec, StageSpec } from "./spec.ts";
import { createFilterStage } from "./stages/filter.ts";
import { createHooksStage } from "./stages/hooks.ts";
import { createSamplingStage } from "./stages/sampling.ts";
import { buildProcessingStage } from "./stages/processing-spec.ts";
import { createSnaplenStage } from "./stages/snaplen.ts";
import type { StageContext } from "./stages/stage-context.ts";
import type { PacketStage } from "./stage.ts";

type Of<U, K> = Extract<U, { kind: K }>;

// ------------------------------------------------------------------------------------- inputs

export interface InputContext {
  readonly precision: "micro" | "nano";
  /** Own-traffic exclusions of the outputs, added to live interface captures. */
  readonly ownTraffic: string;
  readonly log: Logger;
  /** A stream input redialled and its new stream has started (outputs hear of it as input-reconnect). */
  readonly reconnected?: () => void;
  /** How long live interface captures may hold packets (live-latency.ts); undefined: their default. */
  readonly flushIntervalMs?: number;
}

export interface BuiltInput {
  readonly source: CaptureSource;
  /** Live inputs never wait for the pipeline (they drop, counted); files wait and lose nothing. */
  readonly live: boolean;
  /** Extra summary lines (a udpstr receiver's loss accounting per sender, an RT source's). */
  summaryLines?(): string[];
  /** Metrics of the input's own (a udpstr receiver's senders), read at each scrape. */
  metricsCollectors?(): MetricsCollector[];
}

type InputBuilder<K extends InputSpec["kind"]> = (spec: Of<InputSpec, K>, context: InputContext) => BuiltInput;

function remoteAddress<T>(flag: string, text: string, parse: (text: string) => T | undefined, want: string): T {
  let parsed: T | undefined;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new ProbeError("bad-url", "usage", `${flag}: ${(error as Error).message}`);
  }
  if (!parsed) throw new ProbeError("bad-url", "usage", `${flag}: '${text}' is not ${want}`);
  return parsed;
}

export const INPUTS: { [K in InputSpec["kind"]]: InputBuilder<K> } = {
  interface: (spec, context) => {
    const filter = combineFilters(spec.filter, context.ownTraffic);
    return {
      live: true,
      source: new LiveCaptureSource({
        interface: spec.device,
        ...(filter ? { filter } : {}),
        snaplen: spec.snaplen,
        promiscuous: spec.promiscuous,
        bufferBytes: spec.bufferKiB * 1024,
        immediate: spec.immediate,
        precision: context.precision,
        direction: spec.direction,
        engine: spec.engine,
        ...(context.flushIntervalMs !== undefined ? { flushIntervalMs: context.flushIntervalMs } : {}),
      }),
    };
  },
  file: (spec, context) => {
    const filter = spec.filter ? { filter: spec.filter } : {};
    const source = spec.reader === "libpcap"
      ? new LibpcapFileSource({ path: spec.path, ...filter, precision: context.precision })
      : new FileReplaySource({ path: spec.path, ...filter, snaplen: spec.snaplen, realtime: spec.realtime });
    return { live: false, source };
  },
  rpcap: (spec, context) => {
    const address = remoteAddress("-i", spec.url, parseRpcapUrl, "rpcap://HOST[:PORT]/IFACE");
    return {
      live: true,
      source: new RpcapCaptureSource({
        address,
        ...(spec.filter ? { filter: spec.filter } : {}),
        snaplen: spec.snaplen,
        promiscuous: spec.promiscuous,
        tls: { ca: spec.tlsCa, insecure: spec.insecure },
        log: context.log,
      }),
    };
  },
  "pcap-over-ip": (spec, context) => {
    const address = remoteAddress("-i", spec.url, parseRemoteSourceUrl, "tcp://HOST:PORT, TCP@HOST:PORT or tls://HOST:PORT");
    if (address.kind === "rt") throw new ProbeError("bad-url", "usage", `-i: '${spec.url}' is an RT server: use an input of kind rt`);
    return {
      live: true,
      source: new PcapOverIpSource({
        address,
        reconnect: spec.reconnect ? { afterCleanEnd: spec.reconnectAfterCleanEnd } : false,
        log: context.log,
        ...(context.reconnected ? { onReconnected: context.reconnected } : {}),
        ...(spec.tlsCa ? { tlsCa: spec.tlsCa } : {}),
        ...(spec.tlsCert ? { tlsCert: spec.tlsCert } : {}),
        ...(spec.tlsKey ? { tlsKey: spec.tlsKey } : {}),
        ...(spec.insecure ? { insecure: true } : {}),
        ...(spec.filter ? { filter: spec.filter } : {}),
      }),
    };
  },
  udpstr: (spec, context) => {
    const allow = spec.allow.map((text) => {
      try {
        return parseCidr(text);
      } catch (error) {
        throw new ProbeError("bad-cidr", "usage", `--allow: ${(error as Error).message}`);
      }
    });
    const source = new UdpstrSource({
      host: spec.listen.host,
      port: spec.listen.port,
      linktype: spec.linktype,
      receiveBufferBytes: spec.receiveBufferBytes,
      reportSeconds: spec.reportSeconds,
      allow,
      maxSenders: spec.maxSenders,
      maxSendersPerAddress: spec.maxSendersPerAddress,
      senderIdleSeconds: spec.senderIdleSeconds,
      ...(spec.filter ? { filter: spec.filter } : {}),
      log: context.log,
    });
    return { live: true, source, summaryLines: () => source.summaryLines(), metricsCollectors: () => [udpstrCollector(udpstrCounterView(source))] };
  },
  // The RT source acknowledges a batch only once the runner's onBatch settles, so it is read like
  // a file (live: false): the runner awaits the outputs' writes and nothing is dropped in front.
  rt: (spec, context) => {
    const address = remoteAddress("-i", spec.url, parseRemoteSourceUrl, "rt://HOST:PORT[?state=FILE]");
    if (address.kind !== "rt") throw new ProbeError("bad-url", "usage", `-i: '${spec.url}' is not rt://HOST:PORT[?state=FILE]`);
    const source = new RtSource({
      host: address.host,
      port: address.port,
      ...(spec.filter ? { filter: spec.filter } : {}),
      ...(address.statePath ? { statePath: address.statePath } : {}),
      reconnect: spec.reconnect,
      log: context.log,
    });
    return { live: false, source, summaryLines: () => [rtSourceSummary(source)] };
  },
  "rpcap-active": (spec, context) => ({
    live: true,
    source: new RpcapActiveInputSource({
      host: spec.listen.host,
      port: spec.listen.port,
      ...(spec.device ? { device: spec.device } : {}),
      ...(spec.filter ? { filter: spec.filter } : {}),
      snaplen: spec.snaplen,
      promiscuous: spec.promiscuous,
      udpstr: spec.udpstr,
      ...(spec.tls ? { tls: { ...(spec.tls.ca ? { ca: spec.tls.ca } : {}), insecure: spec.tls.insecure } } : {}),
      ...(spec.username !== undefined ? { username: spec.username, password: spec.password ?? "" } : {}),
      names: new Map(Object.entries(spec.probeNames)),
      allow: (spec.allow ?? []).map((text) => {
        try {
          return parseCidr(text);
        } catch (error) {
          throw new ProbeError("bad-cidr", "usage", `rpcap-active allow: ${(error as Error).message}`);
        }
      }),
      ...(spec.maxProbes !== undefined ? { maxProbes: spec.maxProbes } : {}),
      ...(spec.maxConnectionsPerAddress !== undefined ? { maxConnectionsPerAddress: spec.maxConnectionsPerAddress } : {}),
      ...(spec.setupTimeoutMs !== undefined ? { setupTimeoutMs: spec.setupTimeoutMs } : {}),
      log: context.log,
    }),
  }),
};

function rtSourceSummary(source: RtSource): string {
  const c = source.counters;
  return `${source.description}: ${c.delivered} packets written, ${c.duplicates} duplicates dropped, ${c.gaps} sequence gaps, ${c.acksSent} acknowledgements sent`;
}

export function buildInput(spec: InputSpec, context: InputContext): BuiltInput {
  return (INPUTS[spec.kind] as InputBuilder<typeof spec.kind>)(spec, context);
}

// ------------------------------------------------------------------------------------- stages

type StageBuilder<K extends StageSpec["kind"]> = (spec: Of<StageSpec, K>, context: StageContext) => PacketStage | Promise<PacketStage>;

export const STAGES: { [K in StageSpec["kind"]]: StageBuilder<K> } = {
  snaplen: (spec) => createSnaplenStage(spec.bytes),
  filter: (spec) => createFilterStage(spec.expression),
  sampling: (spec) => createSamplingStage(spec.method, spec.value),
  hooks: (spec, context) => {
    const { kind: _kind, files, ...settings } = spec;
    return createHooksStage(files, settings, context);
  },
  // Processing stages (docs/stages.md). Direction filters compile per link type when the stream
  // starts (the runner calls prepare() with every input's link type), so a bad one fails then.
  anonymize: (spec, context) => buildProcessingStage(spec, { log: context.log }),
  "truncate-headers": (spec) => buildProcessingStage(spec),
  checksums: (spec) => buildProcessingStage(spec),
  direction: (spec) => buildProcessingStage(spec),
};

/** Builds every stage in order; on failure, closes the ones already built. */
export async function buildStages(specs: readonly StageSpec[], context: StageContext): Promise<PacketStage[]> {
  const built: PacketStage[] = [];
  try {
    for (const spec of specs) built.push(await (STAGES[spec.kind] as StageBuilder<typeof spec.kind>)(spec, context));
  } catch (error) {
    for (const stage of built) stage.close?.();
    throw error;
  }
  return built;
}

// ------------------------------------------------------------------------------------ outputs

export interface PipelineOutputContext extends OutputContext {
  readonly spec: PipelineSpec;
  /** Kernel and delivery stats of the pipeline's input (for RPCAP STATS of joined sessions). */
  readonly inputStats: () => Promise<CaptureStats>;
  /** The stages again, for a capture an output opens itself (rpcapd OPEN of another interface). */
  readonly createStages: StagesFactory | undefined;
}

/**
 * Builds the output a spec entry declares. The table of builders is the outputs' own
 * (src/outputs/registry.ts: outputs sit above the pipeline, which only knows this contract);
 * commands hand it to the runner (RunnerOptions.buildOutput).
 */
export type OutputBuilder = (spec: OutputSpec, context: PipelineOutputContext) => Promise<PreparedOutput<PipelineOutput>>;

/** The structural view the udpstr metrics read: each sender's figures, the evicted ones summed. */
function udpstrCounterView(source: UdpstrSource): UdpstrCounterView {
  return {
    senders: () => source.senders.active.map((sender) => ({ sender: senderName(sender.address, sender.port), counters: sender.reassembler.counters })),
    evicted: () => source.senders.retired,
    table: () => ({ active: source.senders.size, ...source.senders.counters }),
  };
}
