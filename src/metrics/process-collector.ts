// The process metrics every Prometheus exporter offers (CPU seconds, resident memory, open
// file descriptors, start time), so an operator sees probe's own cost next to its traffic.
import { readdirSync } from "node:fs";
import type { MetricFamily } from "./metric-family.ts";
import type { MetricsCollector } from "./metrics-registry.ts";

export function processCollector(): MetricsCollector {
  const startSeconds = Date.now() / 1000 - process.uptime();
  return (): MetricFamily[] => {
    const cpu = process.cpuUsage();
    let fds = Number.NaN;
    try {
      fds = readdirSync("/proc/self/fd").length;
    } catch {
      // not Linux, or /proc not mounted: the gauge says NaN rather than a wrong number
    }
    return [
      { name: "process_cpu_seconds", help: "User and system CPU time spent by probe.", type: "counter", samples: [{ value: (cpu.user + cpu.system) / 1e6 }] },
      { name: "process_resident_memory_bytes", help: "Resident memory of probe.", type: "gauge", samples: [{ value: process.memoryUsage.rss() }] },
      { name: "process_open_fds", help: "Open file descriptors of probe.", type: "gauge", samples: [{ value: fds }] },
      { name: "process_start_time_seconds", help: "Start time of probe since the Unix epoch.", type: "gauge", samples: [{ value: Math.floor(startSeconds) }] },
    ];
  };
}
