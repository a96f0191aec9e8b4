// MetricsRegistry: pull-based. Parts of probe register collectors that read their existing
// counters (ConsumerQueue, stages, outputs, sessions) when a scrape asks, so the packet path
// pays nothing for metrics: no per-packet increments beyond the counters it already keeps.
import type { MetricFamily } from "./metric-family.ts";

/**
 * Returns the current families of one part; called at scrape time, must be cheap. It may be
 * async where the counters live elsewhere (libpcap's pcap_stats runs in the capture Worker);
 * such a collector is given COLLECTOR_DEADLINE_MS before the scrape goes on without it.
 */
export type MetricsCollector = () => readonly MetricFamily[] | Promise<readonly MetricFamily[]>;

/** How long one scrape waits for an async collector (a stuck Worker must not hang Prometheus). */
export const COLLECTOR_DEADLINE_MS = 2_000;

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
  async collect(): Promise<MetricFamily[]> {
    const out: MetricFamily[] = [];
    let errors = 0;
    const results = await Promise.all(
      [...this.collectors].map(async (collector) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          const deadline = new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error("deadline")), COLLECTOR_DEADLINE_MS);
          });
          return await Promise.race([Promise.resolve().then(collector), deadline]);
        } catch {
          errors++;
          return [];
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    for (const families of results) out.push(...families);
    out.push({ name: "metrics_collector_errors", help: "Collectors that failed during this scrape.", type: "gauge", samples: [{ value: errors }] });
    return out;
  }
}
