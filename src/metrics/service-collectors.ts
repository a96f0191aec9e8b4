// Collectors over the counters probe's long-running parts already keep: the capture hub's
// inputs and consumers, an RPCAP daemon's sessions and AUTH outcomes, a PCAP-over-IP server's
// consumers. Each reads a structural view (no imports from the parts), so metrics stays a leaf
// that commands and the pipeline runner wire: `registry.register(captureHubCollector(hub))`.
import { boundSeries, type MetricFamily, type MetricSample } from "./metric-family.ts";
import type { MetricsCollector } from "./metrics-registry.ts";

/** What captureHubCollector reads (src/pipeline/capture-hub.ts's CaptureHub). */
export interface HubCounterView {
  captureSnapshots(): {
    interface: string;
    packets: number;
    bytes: number;
    consumers: number;
    stats(): Promise<{ kernel?: { received: number; dropped: number; interfaceDropped: number } }>;
  }[];
  consumerTotals(): Map<string, { deliveredPackets: number; droppedPackets: number; queuedBytes: number; consumers: number }>;
}

/**
 * Per input (one per shared capture, labelled by interface): packets and bytes received, and
 * libpcap's kernel counters (seen, dropped by the buffer, dropped by the interface). Per output
 * kind (the consumers' labels: rpcap, pcap-over-ip): packets sent, dropped with reason
 * "queue_full", bytes queued now, consumers connected now.
 */
export function captureHubCollector(hub: HubCounterView): MetricsCollector {
  return async (): Promise<MetricFamily[]> => {
    const captures = hub.captureSnapshots();
    const kernel = await Promise.all(captures.map((c) => c.stats().then((s) => s.kernel, () => undefined)));
    const byInput = (pick: (i: number) => number | undefined): MetricSample[] =>
      boundSeries(
        captures.flatMap((c, i) => {
          const value = pick(i);
          return value === undefined ? [] : [{ labels: { input: c.interface }, value }];
        }),
        "input",
      );
    const totals = [...hub.consumerTotals()];
    const byOutput = (pick: (t: (typeof totals)[number][1]) => number, extra: Record<string, string> = {}): MetricSample[] =>
      totals.map(([output, t]) => ({ labels: { output, ...extra }, value: pick(t) }));
    return [
      { name: "input_packets_received", help: "Packets an input delivered to probe.", type: "counter", samples: byInput((i) => captures[i]!.packets) },
      { name: "input_bytes_received", help: "Captured bytes an input delivered to probe.", type: "counter", samples: byInput((i) => captures[i]!.bytes) },
      { name: "input_packets_seen_by_kernel", help: "Packets the kernel filter saw (pcap_stats ps_recv).", type: "counter", samples: byInput((i) => kernel[i]?.received) },
      { name: "input_packets_dropped_by_kernel", help: "Packets dropped because the capture buffer was full (ps_drop).", type: "counter", samples: byInput((i) => kernel[i]?.dropped) },
      { name: "input_packets_dropped_by_interface", help: "Packets dropped by the interface or driver (ps_ifdrop).", type: "counter", samples: byInput((i) => kernel[i]?.interfaceDropped) },
      { name: "output_packets_sent", help: "Packets handed to consumers of an output.", type: "counter", samples: byOutput((t) => t.deliveredPackets) },
      { name: "output_packets_dropped", help: "Packets an output dropped, by reason.", type: "counter", samples: byOutput((t) => t.droppedPackets, { reason: "queue_full" }) },
      { name: "output_queue_bytes", help: "Bytes queued for an output's consumers now.", type: "gauge", samples: byOutput((t) => t.queuedBytes) },
      { name: "output_consumers", help: "Consumers of an output now.", type: "gauge", samples: byOutput((t) => t.consumers) },
    ];
  };
}

/** What rpcapdCollector reads (src/daemon/rpcapd.ts's RpcapDaemon). */
export interface RpcapdCounterView {
  readonly sessionCount: number;
  readonly totals: { sessionsOpened: number; sessionsRefused: number; authSucceeded: number; authFailed: number };
}

export function rpcapdCollector(daemon: RpcapdCounterView): MetricsCollector {
  return (): MetricFamily[] => [
    { name: "rpcap_sessions", help: "RPCAP control connections open now.", type: "gauge", samples: [{ value: daemon.sessionCount }] },
    { name: "rpcap_sessions_opened", help: "RPCAP control connections admitted.", type: "counter", samples: [{ value: daemon.totals.sessionsOpened }] },
    { name: "rpcap_sessions_refused", help: "RPCAP control connections refused (host list, session caps).", type: "counter", samples: [{ value: daemon.totals.sessionsRefused }] },
    { name: "rpcap_auth_successes", help: "RPCAP AUTH requests accepted.", type: "counter", samples: [{ value: daemon.totals.authSucceeded }] },
    { name: "rpcap_auth_failures", help: "RPCAP AUTH requests refused.", type: "counter", samples: [{ value: daemon.totals.authFailed }] },
  ];
}

/** What pcapOverIpCollector reads (src/outputs/pcap-over-ip's PcapOverIpServer). */
export interface PcapOverIpCounterView {
  readonly connectedConsumers: readonly { peer: string; counters: { deliveredPackets: number; droppedPackets: number; queuedBytes: number } }[];
  readonly totals: { consumersServed: number; refused: number; packetsSent: number; packetsDropped: number };
}

/**
 * A PCAP-over-IP server's consumers: totals (gone and connected), clients now, and the
 * connected consumers' sent counts as top-N series (bounded: one per ephemeral port otherwise).
 */
export function pcapOverIpCollector(server: PcapOverIpCounterView): MetricsCollector {
  return (): MetricFamily[] => {
    const live = server.connectedConsumers;
    const sum = (pick: (c: (typeof live)[number]["counters"]) => number) => live.reduce((n, c) => n + pick(c.counters), 0);
    return [
      { name: "pcap_over_ip_packets_sent", help: "Packets written to PCAP-over-IP consumers.", type: "counter", samples: [{ value: server.totals.packetsSent + sum((c) => c.deliveredPackets) }] },
      { name: "pcap_over_ip_packets_dropped", help: "Packets dropped for slow PCAP-over-IP consumers.", type: "counter", samples: [{ labels: { reason: "queue_full" }, value: server.totals.packetsDropped + sum((c) => c.droppedPackets) }] },
      { name: "pcap_over_ip_queue_bytes", help: "Bytes queued for PCAP-over-IP consumers now.", type: "gauge", samples: [{ value: sum((c) => c.queuedBytes) }] },
      { name: "pcap_over_ip_clients", help: "PCAP-over-IP consumers connected now.", type: "gauge", samples: [{ value: live.length }] },
      { name: "pcap_over_ip_clients_served", help: "PCAP-over-IP consumers ever connected.", type: "counter", samples: [{ value: server.totals.consumersServed }] },
      { name: "pcap_over_ip_clients_refused", help: "PCAP-over-IP connections refused by --allow.", type: "counter", samples: [{ value: server.totals.refused }] },
      {
        name: "pcap_over_ip_client_packets_sent",
        help: "Packets sent to each connected consumer (largest first; the rest summed as consumer=\"other\").",
        type: "gauge",
        samples: boundSeries(live.map((c) => ({ labels: { consumer: c.peer }, value: c.counters.deliveredPackets })), "consumer"),
      },
    ];
  };
}

/** What activeProbesCollector reads (src/capture/remote's RpcapActiveListener). */
export interface ActiveProbesView {
  readonly probes: readonly { name: string; connected: boolean; connections: number; packetsDelivered: number }[];
}

/** `collect --rpcap-active-listen`: probes known and connected, and each probe's counts (top-N). */
export function activeProbesCollector(listener: ActiveProbesView): MetricsCollector {
  return (): MetricFamily[] => {
    const probes = listener.probes;
    return [
      { name: "rpcap_active_probes", help: "Active-mode probes known (connected or waiting to reconnect).", type: "gauge", samples: [{ value: probes.length }] },
      { name: "rpcap_active_probes_connected", help: "Active-mode probes connected now.", type: "gauge", samples: [{ value: probes.filter((p) => p.connected).length }] },
      {
        name: "rpcap_active_probe_packets_received",
        help: "Packets received from each active-mode probe (largest first; the rest summed as probe=\"other\").",
        type: "counter",
        samples: boundSeries(probes.map((p) => ({ labels: { probe: p.name }, value: p.packetsDelivered })), "probe"),
      },
      {
        name: "rpcap_active_probe_connections",
        help: "Connections from each active-mode probe that reached STARTCAP.",
        type: "counter",
        samples: boundSeries(probes.map((p) => ({ labels: { probe: p.name }, value: p.connections })), "probe"),
      },
    ];
  };
}
