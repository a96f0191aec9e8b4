// Metrics: a pull-based registry of collectors over probe's existing counters, the Prometheus
// text encoder, and the `--metrics HOST:PORT` endpoint.
export { MAX_SERIES_PER_FAMILY, boundSeries, type MetricFamily, type MetricSample, type MetricType } from "./metric-family.ts";
export { METRICS_PREFIX, encodePrometheusText, exportedName } from "./prometheus-text.ts";
export { COLLECTOR_DEADLINE_MS, MetricsRegistry, type MetricsCollector } from "./metrics-registry.ts";
export { processCollector } from "./process-collector.ts";
export { METRICS_IDLE_TIMEOUT_SECONDS, METRICS_MAX_REQUEST_BODY_BYTES, MetricsBindError, startMetricsServer, type MetricsServer, type MetricsServerOptions } from "./metrics-server.ts";
export {
  activeProbesCollector,
  captureHubCollector,
  rpcapdCollector,
  udpstrCollector,
  type ActiveProbesView,
  type HubCounterView,
  type RpcapdCounterView,
  type UdpstrCounterView,
} from "./service-collectors.ts";
export { pipelineCollector, type PipelineCounterView } from "./pipeline-collector.ts";
