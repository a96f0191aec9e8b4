// Prometheus text exposition format 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats):
//   # HELP probe_x_total Help text with \\ and \n escaped.
//   # TYPE probe_x_total counter
//   probe_x_total{label="value with \" \\ \n escaped"} 42
// Pure: families in, text out. Judged in tests by Debian's python3-prometheus-client parser.
import type { MetricFamily } from "./metric-family.ts";

/** The prefix every exported name carries. */
export const METRICS_PREFIX = "probe_";

const NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function escapeLabelValue(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** The exported name of a family: prefix, name, and `_total` for counters. */
export function exportedName(family: Pick<MetricFamily, "name" | "type">, prefix = METRICS_PREFIX): string {
  return `${prefix}${family.name}${family.type === "counter" ? "_total" : ""}`;
}

/**
 * Encodes families as exposition text. Families with the same name are merged (their samples
 * concatenated, the first help/type kept). Throws on an invalid metric or label name: names
 * come from probe's code, never from a peer (label values may, and are escaped).
 */
export function encodePrometheusText(families: readonly MetricFamily[], prefix = METRICS_PREFIX): string {
  const merged = new Map<string, { family: MetricFamily; samples: MetricFamily["samples"][number][] }>();
  for (const family of families) {
    const name = exportedName(family, prefix);
    if (!NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    const entry = merged.get(name);
    if (entry) entry.samples.push(...family.samples);
    else merged.set(name, { family, samples: [...family.samples] });
  }
  const lines: string[] = [];
  for (const [name, { family, samples }] of merged) {
    lines.push(`# HELP ${name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${name} ${family.type}`);
    for (const sample of samples) {
      const labels = Object.entries(sample.labels ?? {});
      let text = name;
      if (labels.length > 0) {
        const parts = labels.map(([key, value]) => {
          if (!LABEL_NAME.test(key) || key.startsWith("__")) throw new Error(`invalid label name ${JSON.stringify(key)}`);
          return `${key}="${escapeLabelValue(value)}"`;
        });
        text += `{${parts.join(",")}}`;
      }
      lines.push(`${text} ${formatValue(sample.value)}`);
    }
  }
  return lines.length ? `${lines.join("\n")}\n` : "";
}
