// The runner's and the services' collectors, encoded and judged by Debian's prometheus_client:
// counter/gauge per counter key, two outputs of one kind told apart, peer labels bounded, an
// async collector past its deadline skipped and counted.
import { describe, expect, test } from "bun:test";
import {
  activeProbesCollector,
  encodePrometheusText,
  MAX_SERIES_PER_FAMILY,
  MetricsRegistry,
  pipelineCollector,
  rpcapdCollector,
} from "../../src/metrics/index.ts";
import { parsePrometheusText } from "../support/prometheus-parser.ts";

async function judged(registry: MetricsRegistry) {
  return parsePrometheusText(encodePrometheusText(await registry.collect()));
}

describe("pipelineCollector", () => {
  test("input, kernel, stage and output counters; levels are gauges; a second file output is file#2", async () => {
    const registry = new MetricsRegistry();
    registry.register(
      pipelineCollector({
        inputLabel: "lo",
        packetsIn: 12,
        inputStats: async () => ({ kernel: { received: 15, dropped: 2, interfaceDropped: 1 } }),
        stages: [{ name: "filter", counters: () => ({ packets_in: 12, packets_out: 7 }) }],
        outputs: [
          { name: "file", counters: () => ({ packets_written: 7, bytes_written: 700 }) },
          { name: "file", counters: () => ({ packets_written: 5, bytes_written: 500 }) },
          { name: "pcap-over-ip", counters: () => ({ consumers: 2, packets_sent: 14, "Bad Key": 1 }) },
        ],
      }),
    );
    const samples = await judged(registry);
    const find = (name: string, labels: Record<string, string> = {}) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    expect(find("probe_input_packets_received_total", { input: "lo" })?.value).toBe(12);
    expect(find("probe_input_packets_dropped_by_kernel_total")?.value).toBe(2);
    expect(find("probe_stage_packets_out_total", { stage: "filter" })?.value).toBe(7);
    expect(find("probe_output_packets_written_total", { output: "file" })?.value).toBe(7);
    expect(find("probe_output_packets_written_total", { output: "file#2" })?.value).toBe(5);
    expect(find("probe_output_consumers", { output: "pcap-over-ip" })?.type).toBe("gauge");
    expect(find("probe_output_packets_sent_total", { output: "pcap-over-ip" })?.type).toBe("counter");
    expect(samples.some((s) => s.name.includes("Bad"))).toBe(false);
  });
});

describe("pipelineCollector: labelled keys", () => {
  test("rotations__REASON keys are one family with a reason label; other __ keys keep their name", async () => {
    const registry = new MetricsRegistry();
    registry.register(
      pipelineCollector({
        inputLabel: undefined,
        packetsIn: 0,
        inputStats: async () => ({}),
        stages: [],
        outputs: [
          { name: "file", counters: () => ({ rotations__size: 4, rotations__packets: 2, odd__key: 1 }) },
          { name: "rt", counters: () => ({ fifo_oldest_unacked_age_seconds: 2.5, fifo_capacity_bytes: 1024 }) },
        ],
      }),
    );
    const samples = await judged(registry);
    const rotations = samples.filter((s) => s.name === "probe_output_rotations_total");
    expect(rotations.map((s) => [s.labels.reason, s.value, s.type])).toEqual([["size", 4, "counter"], ["packets", 2, "counter"]]);
    expect(samples.find((s) => s.name === "probe_output_odd__key_total")?.value).toBe(1);
    expect(samples.find((s) => s.name === "probe_output_fifo_oldest_unacked_age_seconds")?.type).toBe("gauge");
    expect(samples.find((s) => s.name === "probe_output_fifo_capacity_bytes")?.type).toBe("gauge");
  });
});

describe("service collectors", () => {
  test("rpcapd sessions and AUTH outcomes", async () => {
    const registry = new MetricsRegistry();
    registry.register(rpcapdCollector({ sessionCount: 3, totals: { sessionsOpened: 9, sessionsRefused: 2, authSucceeded: 6, authFailed: 4 } }));
    const samples = await judged(registry);
    expect(samples.find((s) => s.name === "probe_rpcap_auth_failures_total")?.value).toBe(4);
    expect(samples.find((s) => s.name === "probe_rpcap_sessions")?.value).toBe(3);
  });

  test("active probes: per-probe series bounded, the rest summed as probe=\"other\"", async () => {
    const probes = Array.from({ length: 100 }, (_, i) => ({ name: `p${i}`, connected: i % 2 === 0, connections: 1, packetsDelivered: i }));
    const registry = new MetricsRegistry();
    registry.register(activeProbesCollector({ probes }));
    const samples = await judged(registry);
    const perProbe = samples.filter((s) => s.name === "probe_rpcap_active_probe_packets_received_total");
    expect(perProbe).toHaveLength(MAX_SERIES_PER_FAMILY);
    expect(perProbe.reduce((n, s) => n + s.value, 0)).toBe((99 * 100) / 2);
    expect(samples.find((s) => s.name === "probe_rpcap_active_probes_connected")?.value).toBe(50);
  });

  test("an async collector that never answers is skipped after the deadline and counted", async () => {
    const registry = new MetricsRegistry();
    registry.register(() => new Promise(() => {}));
    registry.register(rpcapdCollector({ sessionCount: 1, totals: { sessionsOpened: 1, sessionsRefused: 0, authSucceeded: 1, authFailed: 0 } }));
    const samples = await judged(registry);
    expect(samples.find((s) => s.name === "probe_metrics_collector_errors")?.value).toBe(1);
    expect(samples.find((s) => s.name === "probe_rpcap_sessions")?.value).toBe(1);
  }, 10_000);
});
