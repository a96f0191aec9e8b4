// MetricsRegistry: pull-based. Parts of probe register collectors that read their existing
// counters (ConsumerQueue, stages, outputs, sessions) when a scrape asks, so the packet path
// pays nothing for metrics: no per-packet increments beyond the counters it already keeps.
import type { MetricFamily } from "./metric-family.ts";

/** Returns the current families of one part; called at scrape time, must be cheap and not throw. */
export type MetricsCollector = () => readonly MetricFamily[];

export class MetricsRegistry {
  private readonly collectors = new Set<MetricsCollector>();

  /** Adds a collector; the returned function removes it (idempotent). */
  register(collector: MetricsCollector): () => void {
    this.collectors.add(collector);
    return () => void this.collectors.delete(collector);
  }

  /**
   * Every registered collector's families. A collector that throws is skipped and reported as
   * `metrics_collector_errors` so one broken part never empties the scrape.
   */
  collect(): MetricFamily[] {
    const out: MetricFamily[] = [];
    let errors = 0;
    for (const collector of this.collectors) {
      try {
        out.push(...collector());
      } catch {
        errors++;
      }
    }
    out.push({ name: "metrics_collector_errors", help: "Collectors that failed during this scrape.", type: "gauge", samples: [{ value: errors }] });
    return out;
  }
}
