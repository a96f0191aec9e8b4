// PipelineRunner: the path a packet takes through probe.
//
//   inputs ──(one, or several merged in timestamp order)──▶ stop-after count
//     ──▶ [live: bounded stage queue] ──▶ stages, ONCE per batch ──▶ every output
//   outputs (src/outputs/registry.ts builds them): file, rotating files, PCAP-over-IP readers,
//     udpstr, RT, and the RPCAP daemon, whose sessions are consumers too: a session that OPENs
//     an interface the pipeline captures joins this stream after the stages; one that OPENs
//     another interface gets a CaptureHub capture running its own copy of the stages once per
//     batch. Per session, after the stages: its BPF filter, snaplen and sampling.
//
// Outputs bound their own queues (a slow consumer drops, counted, and never stalls the others);
// replayed files instead wait for the slowest output and lose nothing. Every command builds a
// PipelineSpec and runs it here; `probe run FILE` does the same from a file. One command does
// not yet: `probe collect --rpcap-active-listen` wires its per-probe files and listeners by
// hand (docs/pipeline.md, "The path a packet takes"); the `rpcap-active` input is its pipeline form.
import type { CaptureSource, CaptureStats } from "../capture/capture-source.ts";
import { combineFilters } from "../capture/combine-filters.ts";
import { RemoteSourceError } from "../capture/remote/remote-source-error.ts";
import type { Logger } from "../logging/index.ts";
import type { PipelineEvent, PipelineOutput, StreamDescription, StreamInput } from "./output.ts";
import { isLentBatch, ownedBatch, takeRecords, type PacketBatch } from "../packet/packet-batch.ts";
import { asUserFacing, ProbeError } from "../packet/probe-error.ts";
import { ConsumerQueue } from "./consumer-queue.ts";
import { DEFAULT_MERGE_WINDOW_MS, isMergedBatch, MergedSource } from "./merge/index.ts";
import { buildInput, buildStages, type BuiltInput, type OutputBuilder } from "./registry.ts";
import { inputName, type OutputSpec, type PipelineSpec } from "./spec.ts";
import { StopProgress } from "./stop-progress.ts";
import { nextTurnSink, StageChain } from "./stage-chain.ts";
import type { PacketStage } from "./stage.ts";
import { liveFlushIntervalMs } from "./live-latency.ts";
import { MetricsBindError, MetricsRegistry, pipelineCollector, processCollector, startMetricsServer, type MetricsCollector, type MetricsServer } from "../metrics/index.ts";

/**
 * Merge window when every input is a file: a file always delivers its next record, so waiting
 * for it costs no latency, only memory, which MergedSource bounds per input (8 MiB high-water
 * mark). One day (under setTimeout's 2^31 ms limit) makes the order exactly mergecap's.
 */
export const FILE_MERGE_WINDOW_MS = 86_400_000;

/**
 * How often the runner looks for loss to tell outputs about (PipelineEvent): kernel drops of each
 * live input, drops in front of the stages, records the merge let out of order. One pcap_stats
 * call a second is nothing; an output that cuts a file on loss hears of it within a second.
 */
export const LOSS_POLL_INTERVAL_MS = 1000;

export interface RunnerOptions {
  log: Logger;
  /** Builds each output of the spec: src/outputs/registry.ts's buildOutput (outputs sit above the pipeline). */
  buildOutput: OutputBuilder;
  /** Reload hook files on change and SIGHUP (default true). */
  reloadHooks?: boolean;
  /**
   * A stop asked for while the inputs start (SIGINT before the first active probe has dialled
   * in, or while a remote stream is still being reached): start() gives up, stops what it
   * started and throws StartStopped instead of waiting for an input that may never come.
   */
  stopSignal?: AbortSignal;
}

/** PipelineRunner.start gave up because RunnerOptions.stopSignal fired: a clean stop, not a failure. */
export class StartStopped extends Error {
  constructor() {
    super("stopped while the inputs were starting");
  }
}

/** `starting`, or StartStopped as soon as `signal` fires (a later rejection of `starting` is ignored). */
async function unlessStopped<T>(starting: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return starting;
  if (signal.aborted) throw new StartStopped();
  starting.catch(() => undefined);
  const stopped = Promise.withResolvers<never>();
  const onAbort = () => stopped.reject(new StartStopped());
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([starting, stopped.promise]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * `metrics: HOST:PORT` in the spec (--metrics on every pipeline command): the process, the
 * runner's input, stages and outputs, and whatever collectors an output offers
 * (`metricsCollectors()`: rpcapd's sessions, AUTH outcomes and the captures its clients opened).
 */
function startRunnerMetrics(runner: PipelineRunner, address: { host: string; port: number }, log: Logger): MetricsServer {
  const registry = new MetricsRegistry();
  registry.register(processCollector());
  const inputs = runner.spec.inputs;
  registry.register(
    pipelineCollector({
      inputLabel: inputs.length === 0 ? undefined : inputs.length === 1 ? inputName(inputs[0]!) : "merged",
      get packetsIn() {
        return runner.packetsIn;
      },
      inputStats: () => runner.inputStats(),
      stages: runner.stageList,
      outputs: runner.outputs,
    }),
  );
  // Inputs are built after the metrics server starts, so their collectors are looked up at each scrape.
  registry.register(async () => (await Promise.all(runner.inputMetricsCollectors().map((collect) => collect()))).flat());
  for (const output of runner.outputs) {
    const offering = output as PipelineOutput & { metricsCollectors?: () => MetricsCollector[] };
    for (const collector of offering.metricsCollectors?.() ?? []) registry.register(collector);
  }
  try {
    return startMetricsServer({ host: address.host, port: address.port, registry, log });
  } catch (error) {
    if (error instanceof MetricsBindError) throw new ProbeError("metrics-listen", "runtime", error.message);
    throw error;
  }
}

/** An output as an operator named it: its kind and where it writes or listens. */
export function outputLabel(output: PipelineOutput, spec: OutputSpec | undefined): string {
  if (!spec) return output.name;
  const at = (a: { host?: string | undefined; port: number }) => `${a.host ?? "*"}:${a.port}`;
  switch (spec.kind) {
    case "file":
      return spec.path === "-" ? "file - (standard output)" : `file ${spec.path}`;
    case "pcap-over-ip":
    case "rt":
      return [spec.kind, ...spec.listen.map(at), ...("connect" in spec ? spec.connect.map((c) => `to ${at(c)}`) : [])].join(" ");
    case "rpcapd":
      return spec.listen ? `rpcapd ${at(spec.listen)}` : "rpcapd (active)";
    case "udpstr":
      return `udpstr to ${at(spec.target)}`;
    default:
      return output.name;
  }
}

/** Why the run ended by itself (signals are the caller's). */
export type RunEnd = { reason: "end-of-input" | "count" } | { reason: "failed"; error: Error };

export class PipelineRunner {
  private source: CaptureSource | undefined;
  private merged: MergedSource | undefined;
  private inputs: BuiltInput[] = [];
  private stageQueue: ConsumerQueue | undefined;
  private live = false;
  private received = 0;
  private lossTimer: ReturnType<typeof setInterval> | undefined;
  /** What the last loss poll saw, so each event carries only what is new. */
  private readonly lossSeen = { stages: 0, merge: 0 };
  /** Kernel drops already reported, by input index. */
  private readonly kernelSeen: number[] = [];
  private stopping = false;
  /** Writes each output (by index) has not finished, of those the runner waits for. */
  private readonly writesPending: number[] = [];
  private finalStats: CaptureStats | undefined;
  private readonly endSignal = Promise.withResolvers<RunEnd>();
  /** Settles when the inputs end, the count is reached, or an output fails. */
  readonly ended: Promise<RunEnd> = this.endSignal.promise;
  stream: StreamDescription | undefined;

  private constructor(
    readonly spec: PipelineSpec,
    private readonly stages: StageChain,
    readonly outputs: readonly PipelineOutput[],
    private readonly options: RunnerOptions,
  ) {}

  /**
   * Builds and starts everything, in the order that keeps failures cheap: stages first (a hook
   * that does not compile ends the run before a file is truncated), then outputs (listeners
   * bound, so their ports go into the captures' own-traffic filter), then inputs, then the
   * outputs start with the stream's description. Any failure stops what was started.
   */
  static async start(spec: PipelineSpec, options: RunnerOptions): Promise<PipelineRunner> {
    const log = options.log;
    const reload = options.reloadHooks ?? true;
    const inputNames = spec.inputs.map(inputName);
    const stages = new StageChain(await buildStages(spec.stages, { inputNames, log, reload }));
    let runner: PipelineRunner | undefined;
    const prepared: PipelineOutput[] = [];
    const ownTraffic: string[] = [];
    try {
      const createStages = spec.stages.length > 0
        ? (device: string) => buildStages(spec.stages, { inputNames: [device], log, reload })
        : undefined;
      for (const outputSpec of spec.outputs) {
        const built = await options.buildOutput(outputSpec, {
          log,
          spec,
          createStages,
          fail: (error) => runner?.fail(error),
          finish: () => runner?.finish(),
          inputStats: () => runner?.inputStats() ?? Promise.resolve({ delivered: 0 }),
        });
        prepared.push(built.output);
        if (built.ownTraffic) ownTraffic.push(built.ownTraffic);
      }
      runner = new PipelineRunner(spec, stages, prepared, options);
      if (spec.metrics) runner.metrics = startRunnerMetrics(runner, spec.metrics, log);
      const exclusion = combineFilters(...ownTraffic);
      if (exclusion && spec.inputs.some((i) => i.kind === "interface")) log.info(`leaving own traffic out of the capture: ${exclusion}`);
      await runner.startInputs(exclusion);
    } catch (error) {
      await runner?.metrics?.stop();
      await Promise.allSettled(prepared.map((o) => o.stop()));
      await runner?.source?.stop().catch(() => undefined);
      stages.close();
      throw error;
    }
    return runner;
  }

  /** The metrics collectors the inputs offer (a udpstr receiver's senders). */
  inputMetricsCollectors(): MetricsCollector[] {
    return this.inputs.flatMap((input) => input.metricsCollectors?.() ?? []);
  }

  /** Packets that came in (before the stages). */
  get packetsIn(): number {
    return this.received;
  }

  /** Kernel and delivery stats of the input (the merge's when several). */
  async inputStats(): Promise<CaptureStats> {
    return this.finalStats ?? (await this.source?.stats()) ?? { delivered: 0 };
  }

  /** SIGHUP: stages (hook files) and outputs (rpcapd's -f file) reread their configuration. */
  reload(): void {
    this.stages.reload();
    for (const output of this.outputs) {
      const reloadable = output as PipelineOutput & { reload?: () => Promise<void> };
      void reloadable.reload?.();
    }
  }

  /**
   * Stops the inputs, lets what is queued through the stages and out, stops the outputs. Each
   * part is a step of `progress`, so a stop that hangs can name the part that did not stop.
   */
  async stop(progress: StopProgress = new StopProgress()): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.lossTimer);
    const metrics = this.metrics;
    if (metrics) await progress.step("the metrics endpoint", () => metrics.stop());
    const source = this.source;
    if (source) {
      // A file input waits for the outputs to take each batch: when one never does (a pipe
      // nobody reads), the input cannot stop either, and the line should name the output.
      const waitingFor = this.outputs.flatMap((o, i) => ((this.writesPending[i] ?? 0) > 0 ? [`output ${outputLabel(o, this.spec.outputs[i])}`] : []));
      const waiting = waitingFor.length > 0 ? ` (waiting for ${waitingFor.join(", ")} to take its packets)` : "";
      this.finalStats = await progress.step(`input ${source.description}${waiting}`, () => source.stop());
    }
    const stageQueue = this.stageQueue;
    if (stageQueue) await progress.step("the stages (batches queued for them)", () => stageQueue.drained());
    await Promise.allSettled(this.outputs.map((o, i) => progress.step(`output ${outputLabel(o, this.spec.outputs[i])}`, () => o.stop())));
    // Counted before the hooks are released (a released hook reports itself disabled).
    this.stageSummary = this.stages.summaryLines();
    this.stages.close();
  }

  private stageSummary: string[] | undefined;
  /** The --metrics endpoint, when the spec asks for one. */
  private metrics: MetricsServer | undefined;

  /** The stages, in order (for metrics). */
  get stageList(): readonly PacketStage[] {
    return this.stages.stages;
  }

  /** What happened, for standard error at the end (after stop()). */
  summaryLines(): string[] {
    const lines: string[] = [];
    if (this.source) {
      lines.push(`${this.received} packet${this.received === 1 ? "" : "s"} captured`);
      const kernel = this.finalStats?.kernel;
      if (this.live && kernel) {
        lines.push(`${kernel.received} packets received by filter`);
        lines.push(`${kernel.dropped} packets dropped by kernel`);
      }
    }
    const stageDrops = this.stageQueue?.counters.droppedPackets ?? 0;
    if (stageDrops > 0) lines.push(`${stageDrops} packets dropped by probe (stages too slow)`);
    if (this.merged) {
      const c = this.merged.counters;
      if (c.outOfOrder > 0) lines.push(`${c.outOfOrder} packets arrived later than the ${this.mergeWindowMs()} ms merge window and went out of order`);
    }
    for (const input of this.inputs) lines.push(...(input.summaryLines?.() ?? []));
    // Without inputs (an rpcapd output alone) the stages ran in the daemon's own captures, which
    // log their counters as each ends; the pipeline's copy saw nothing.
    if (this.spec.inputs.length > 0) lines.push(...(this.stageSummary ?? this.stages.summaryLines()));
    for (const output of this.outputs) lines.push(...(output.summaryLines?.() ?? []));
    return lines;
  }

  /** Tells outputs about loss since the last poll (see LOSS_POLL_INTERVAL_MS). */
  private async pollLoss(): Promise<void> {
    const events: PipelineEvent[] = [];
    if (this.live && this.source) {
      // One source, or each running live input of a merge (the merge has no kernel counters).
      const running = this.merged?.sourceStatuses.map((s) => s.state === "running") ?? [true];
      const polled = this.merged ? this.inputs.map((input, i) => (input.live && running[i] ? input.source : undefined)) : [this.source];
      for (const [index, source] of polled.entries()) {
        if (!source) continue;
        const kernel = (await source.stats().catch(() => undefined))?.kernel?.dropped;
        const seen = this.kernelSeen[index] ?? 0;
        if (kernel !== undefined && kernel > seen) {
          events.push({ kind: "kernel-drop", input: index, packets: kernel - seen });
          this.kernelSeen[index] = kernel;
        }
      }
    }
    const stages = this.stageQueue?.counters.droppedPackets ?? 0;
    if (stages > this.lossSeen.stages) {
      events.push({ kind: "queue-drop", output: "stages", packets: stages - this.lossSeen.stages });
      this.lossSeen.stages = stages;
    }
    const merge = this.merged?.counters.outOfOrder ?? 0;
    if (merge > this.lossSeen.merge) {
      events.push({ kind: "merge-gap", packets: merge - this.lossSeen.merge });
      this.lossSeen.merge = merge;
    }
    if (this.stopping) return;
    for (const event of events) for (const output of this.outputs) output.event?.(event);
  }

  /** The inputs ended by themselves: the run ends, unless an output serves on until a signal. */
  private inputsEnded(): void {
    const serving = this.outputs.filter((o) => o.keepsRunAfterInputsEnd);
    if (serving.length === 0) {
      this.endSignal.resolve({ reason: "end-of-input" });
      return;
    }
    this.options.log.info(`the input has ended; ${serving.map((o) => o.name).join(", ")} serving on until SIGINT or SIGTERM`);
  }

  /**
   * A stream input redialled: outputs hear of it at once, before the new stream's first batch
   * (a rotating file starts a new file whose first packet says why). With live inputs behind a
   * stage queue, batches of the old stream still queued there reach the outputs after it.
   */
  private inputReconnected(index: number): void {
    if (this.stopping || !this.gateOpen) return;
    const event: PipelineEvent = { kind: "input-reconnect", input: index };
    for (const output of this.outputs) output.event?.(event);
  }

  private fail(error: Error): void {
    this.endSignal.resolve({ reason: "failed", error });
  }

  /** An output's work is done (rpcapd's inetd session ended): the run ends as at end of input. */
  private finish(): void {
    this.endSignal.resolve({ reason: "end-of-input" });
  }

  private mergeWindowMs(): number {
    return this.spec.merge.windowMs ?? (this.inputs.every((i) => !i.live) ? FILE_MERGE_WINDOW_MS : DEFAULT_MERGE_WINDOW_MS);
  }

  private async startInputs(ownTraffic: string): Promise<void> {
    const spec = this.spec;
    if (spec.inputs.length === 0) {
      // Only an rpcapd output: its sessions open their own captures.
      this.stream = { inputs: [], precision: spec.precision };
      for (const output of this.outputs) await output.start(this.stream);
      return;
    }
    if (spec.inputs.length > 1 && spec.inputs.some((i) => i.kind === "rt")) {
      // An rt input acknowledges what its consumer took; in a merge that is what the merge holds,
      // not what the outputs wrote, and a reliable sender would release unwritten packets.
      throw new ProbeError("rt-input-merged", "usage", "an rt:// input must be the pipeline's only input (it acknowledges only what the outputs wrote)");
    }
    const context = { precision: spec.precision, ownTraffic, log: this.options.log, flushIntervalMs: liveFlushIntervalMs(spec) };
    this.inputs = spec.inputs.map((input, index) => buildInput(input, { ...context, reconnected: () => this.inputReconnected(index) }));
    this.live = this.inputs.some((i) => i.live);
    const several = this.inputs.length > 1;
    if (several) {
      this.merged = new MergedSource(this.inputs.map((i) => i.source), {
        windowMs: this.mergeWindowMs(),
        allowMixedLinktypes: true,
        precision: spec.precision,
        log: this.options.log,
      });
    }
    const source = this.merged ?? this.inputs[0]!.source;
    this.source = source;
    if (this.live && !this.stages.empty) {
      // Live inputs never wait: batches queue (bounded, drops counted) in front of the stages,
      // which run a turn of the event loop later, never inside the capture's callback.
      this.stageQueue = new ConsumerQueue(nextTurnSink((batch) => this.process(batch)), undefined, (error) => this.fail(error));
    }
    const outputsReady = Promise.withResolvers<void>();
    this.gate = outputsReady.promise;
    // Giving up during start: batches waiting at the gate are let go (and dropped) before the
    // inputs are stopped, because a merge drains what it holds before it ends and would wait
    // behind a closed gate forever ("an input that cannot start" hung one run in eight).
    const abandonStart = async (stop: () => Promise<unknown>): Promise<void> => {
      this.stopping = true;
      outputsReady.resolve();
      await stop();
    };
    let info;
    try {
      info = await unlessStopped(
        source.start({
          onBatch: (batch) => this.accept(batch),
          onEnd: (reason, error) => {
            if (error) this.fail(error);
            else if (!this.stopping) this.inputsEnded();
            void reason;
          },
        }),
        this.options.stopSignal,
      );
    } catch (error) {
      if (error instanceof StartStopped) {
        await abandonStart(() => source.stop());
        throw error;
      }
      const where = several ? undefined : source.description;
      // A remote stream that cannot be reached or is not a pcap stream is the peer's doing.
      if (error instanceof RemoteSourceError) throw new ProbeError(error.code, "runtime", error.message, { cause: error });
      throw asUserFacing(error, where) ?? error;
    }
    if (this.merged) {
      // An input that could not start at all ends the run (a missing file, a refused stream),
      // unless it is a stream that redials by itself.
      for (const status of this.merged.sourceStatuses) {
        const input = spec.inputs[status.index]!;
        const redials = input.kind === "pcap-over-ip" && input.reconnect;
        if (status.state === "failed" && !status.info && !redials) {
          const merged = this.merged;
          await abandonStart(() => merged.stop());
          const error = status.error ?? new Error("failed");
          throw asUserFacing(error, status.description) ?? new ProbeError("input-failed", "runtime", `${status.description}: ${error.message}`, { cause: error });
        }
      }
    }
    if (info.warning && !info.warning.includes("different link types")) this.options.log.warn(info.warning);
    const infos = this.merged ? this.merged.sourceInfos : [info];
    // The ring engine handing an interface to libpcap ('any', non-Ethernet, --immediate) says why.
    for (const known of infos) if (known?.engineNote) this.options.log.info(known.engineNote);
    const inputs: StreamInput[] = spec.inputs.map((input, i) => {
      const known = infos[i];
      return {
        name: inputName(input),
        linktype: known?.linktype ?? info.linktype,
        snaplen: known?.snaplen ?? info.snaplen,
        description: known?.description ?? this.inputs[i]!.source.description,
      };
    });
    // Outputs write the spec's precision; batches of the other precision are converted there.
    this.stream = { inputs, precision: spec.precision };
    try {
      // Stages that depend on the link type (direction filters) are readied for every input's
      // (a filter that does not compile for one of them ends the run here, before any output starts).
      this.stages.prepare(inputs.map((i) => i.linktype));
      for (const output of this.outputs) await output.start(this.stream);
    } catch (error) {
      await abandonStart(() => source.stop());
      throw error;
    }
    this.gateOpen = true;
    outputsReady.resolve();
    if (this.outputs.some((o) => o.event)) this.lossTimer = setInterval(() => void this.pollLoss(), LOSS_POLL_INTERVAL_MS);
  }

  private gate: Promise<void> = Promise.resolve();
  private gateOpen = false;

  /** A batch from the input: counted, cut at the stop-after count, queued (live) or processed (files). */
  private accept(batch: PacketBatch): void | Promise<void> {
    // Still taken while stopping: what a merge held, or a live capture's last batch, goes out.
    const limit = this.spec.stopAfterPackets;
    if (limit !== undefined) {
      if (this.received >= limit) return;
      if (this.received + batch.count >= limit) {
        batch = takeRecords(batch, limit - this.received);
        queueMicrotask(() => this.endSignal.resolve({ reason: "count" }));
      }
    }
    this.received += batch.count;
    if (isMergedBatch(batch)) batch = { ...batch, meta: { ...batch.meta, inputs: batch.sourceIndexes } };
    if (this.stageQueue) {
      this.stageQueue.offer(batch);
      return;
    }
    return this.process(batch);
  }

  /** The stages, once, then every output; a promise when the outputs want the caller to wait (files). */
  private process(batch: PacketBatch): void | Promise<void> {
    if (!this.gateOpen) {
      const kept = ownedBatch(batch); // held until the outputs are ready
      return this.gate.then(() => (this.gateOpen ? this.process(kept) : undefined));
    }
    if (!this.stages.empty) {
      batch = this.stages.apply(batch);
      if (batch.count === 0) return;
    }
    let pending: Promise<void>[] | undefined;
    // A lent batch goes as it is to the outputs that take lent batches; the others share one copy.
    let owned: PacketBatch | undefined;
    for (let i = 0; i < this.outputs.length; i++) {
      const output = this.outputs[i]!;
      const given = output.takesLentBatches || !isLentBatch(batch) ? batch : (owned ??= ownedBatch(batch));
      const result = output.write(given);
      if (result && !this.live) {
        // Counted so a stop that hangs on this wait can name the output behind it.
        this.writesPending[i] = (this.writesPending[i] ?? 0) + 1;
        (pending ??= []).push(result.finally(() => this.writesPending[i]!--));
      }
    }
    if (pending) return Promise.all(pending).then(() => undefined);
  }

}
