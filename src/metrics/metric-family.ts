// What a metric looks like between the parts of probe that count things and the exposition
// formats: a family (name, help, type) with samples, each a value and a small set of labels.
// Names are given without the application prefix and in base units (bytes, seconds); counters
// are named without `_total`, which the text encoder appends (Prometheus' OpenMetrics rule).

export type MetricType = "counter" | "gauge";

export interface MetricSample {
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily {
  /** snake_case, no prefix, no `_total`: "input_packets_received". */
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: readonly MetricSample[];
}

/**
 * Most series one family may have. Labels that a peer can multiply (consumers, clients, peer
 * addresses) would otherwise grow the scrape without bound; past this the smallest series are
 * summed into one whose varying label is "other".
 */
export const MAX_SERIES_PER_FAMILY = 32;

/**
 * Keeps the `max - 1` largest samples and sums the rest into one sample labelled
 * `{[label]: "other"}` (other labels of the folded samples are dropped). Order: largest first.
 */
export function boundSeries(samples: readonly MetricSample[], label: string, max = MAX_SERIES_PER_FAMILY): MetricSample[] {
  if (samples.length <= max) return [...samples];
  const sorted = [...samples].sort((a, b) => b.value - a.value);
  const kept = sorted.slice(0, max - 1);
  const rest = sorted.slice(max - 1).reduce((sum, s) => sum + s.value, 0);
  kept.push({ labels: { [label]: "other" }, value: rest });
  return kept;
}
