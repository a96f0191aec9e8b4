// The pipeline runner's counters as metrics: what came in (and what the kernel dropped), each
// stage's and each output's flat counters (PacketStage.counters(), PipelineOutput.counters()).
// Read through a structural view, so metrics imports nothing from the pipeline.
import type { MetricFamily, MetricSample, MetricType } from "./metric-family.ts";
import type { MetricsCollector } from "./metrics-registry.ts";

export interface PipelineCounterView {
  /** The input's name ("lo", "file a.pcap"), or "merged" for several. */
  readonly inputLabel: string | undefined;
  readonly packetsIn: number;
  inputStats(): Promise<{ kernel?: { received: number; dropped: number; interfaceDropped: number } }>;
  readonly stages: readonly { name: string; counters(): Readonly<Record<string, number>> }[];
  readonly outputs: readonly { name: string; counters(): Readonly<Record<string, number>> }[];
}

/**
 * Counter keys that are levels, not totals: exported as gauges. Every other key of a stage's or
 * output's counters() is a running total (a counter, `_total` added by the encoder).
 */
const GAUGE_KEYS = new Set([
  "consumers",
  "clients",
  "sessions",
  "shared_captures",
  "queue_bytes",
  "queued_bytes",
  "files_open",
  "fifo_used_bytes",
  "fifo_records_held",
  "fifo_capacity_bytes",
  "fifo_oldest_unacked_age_seconds",
]);

/**
 * Keys of the form `FAMILY__VALUE` are one family with a label: `rotations__size` is
 * `output_rotations_total{reason="size"}`. The family names the label; a `__` key whose family
 * is not here is exported under its whole name, as any other key.
 */
const LABELLED_KEYS: Readonly<Record<string, string>> = {
  rotations: "reason",
};

export function pipelineCollector(runner: PipelineCounterView): MetricsCollector {
  return async (): Promise<MetricFamily[]> => {
    // The synchronous counts first, in pipeline order (input, stages, outputs), so a scrape never
    // shows an output ahead of its input; the kernel's counters come from the Worker after.
    const families: MetricFamily[] = [];
    const input = runner.inputLabel;
    const packetsIn = runner.packetsIn;
    const parts = [...flatCounters("stage", runner.stages), ...flatCounters("output", runner.outputs)];
    if (input !== undefined) {
      const kernel = (await runner.inputStats().catch(() => ({}) as { kernel?: undefined })).kernel;
      const labels = { input };
      families.push({ name: "input_packets_received", help: "Packets the pipeline's input delivered (before the stages).", type: "counter", samples: [{ labels, value: packetsIn }] });
      if (kernel) {
        families.push(
          { name: "input_packets_seen_by_kernel", help: "Packets the kernel filter saw (pcap_stats ps_recv).", type: "counter", samples: [{ labels, value: kernel.received }] },
          { name: "input_packets_dropped_by_kernel", help: "Packets dropped because the capture buffer was full (ps_drop).", type: "counter", samples: [{ labels, value: kernel.dropped }] },
          { name: "input_packets_dropped_by_interface", help: "Packets dropped by the interface or driver (ps_ifdrop).", type: "counter", samples: [{ labels, value: kernel.interfaceDropped }] },
        );
      }
    }
    families.push(...parts);
    return families;
  };
}

/**
 * One family per counter key: `stage_packets_out{stage="filter"}`, `output_packets_sent{output="pcap-over-ip"}`.
 * Two parts of one kind are told apart by position ("file", "file#2").
 */
function flatCounters(kind: "stage" | "output", parts: PipelineCounterView["stages"]): MetricFamily[] {
  const byKey = new Map<string, MetricSample[]>();
  const seen = new Map<string, number>();
  for (const part of parts) {
    const n = (seen.get(part.name) ?? 0) + 1;
    seen.set(part.name, n);
    const label = n === 1 ? part.name : `${part.name}#${n}`;
    let counters: Readonly<Record<string, number>>;
    try {
      counters = part.counters();
    } catch {
      continue;
    }
    for (const [key, value] of Object.entries(counters)) {
      if (!/^[a-z][a-z0-9_]*$/.test(key) || !Number.isFinite(value)) continue;
      const split = key.indexOf("__");
      const labelName = split > 0 ? LABELLED_KEYS[key.slice(0, split)] : undefined;
      const family = labelName ? key.slice(0, split) : key;
      const labels = labelName ? { [kind]: label, [labelName]: key.slice(split + 2) } : { [kind]: label };
      const samples = byKey.get(family) ?? [];
      samples.push({ labels, value });
      byKey.set(family, samples);
    }
  }
  return [...byKey].map(([key, samples]) => {
    const type: MetricType = GAUGE_KEYS.has(key) ? "gauge" : "counter";
    return { name: `${kind}_${key}`, help: `${kind === "stage" ? "Stage" : "Output"} counter ${key}.`, type, samples };
  });
}
