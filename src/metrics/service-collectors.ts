// Collectors over the counters probe's long-running parts already keep: the capture hub's
// inputs and consumers, an RPCAP daemon's sessions and AUTH outcomes, the active collector's
// probes. (Outputs' own counters() reach metrics through pipeline-collector.ts.) Each reads a structural view (no imports from the parts), so metrics stays a leaf
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
    // Every count is read before the kernel stats are awaited: packets keep arriving meanwhile,
    // and an output count read later could exceed the input count read earlier.
    const captures = hub.captureSnapshots();
    const totals = [...hub.consumerTotals()];
    const kernel = await Promise.all(captures.map((c) => c.stats().then((s) => s.kernel, () => undefined)));
    const byInput = (pick: (i: number) => number | undefined): MetricSample[] =>
      boundSeries(
        captures.flatMap((c, i) => {
          const value = pick(i);
          return value === undefined ? [] : [{ labels: { input: c.interface }, value }];
        }),
        "input",
      );
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

/** What activeProbesCollector reads (src/capture/remote's RpcapActiveListener). */
export interface ActiveProbesView {
  readonly probes: readonly { name: string; connected: boolean; connections: number; packetsDelivered: number }[];
  /** Connections accepted that have not reached STARTCAP yet. */
  readonly pendingConnections?: number;
  /** Connections turned away since start, by why (src/capture/remote's RpcapActiveListener). */
  readonly totals?: { refusedNotAllowed: number; refusedPerAddress: number; evicted: number; setupTimedOut: number; refusedFull: number };
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
      ...(listener.totals
        ? [
            { name: "rpcap_active_connections_pending", help: "Active-mode connections accepted and still setting up (not capturing yet).", type: "gauge" as const, samples: [{ value: listener.pendingConnections ?? 0 }] },
            {
              name: "rpcap_active_connections_turned_away",
              help: "Active-mode connections closed before capturing, by reason: not-allowed (--allow), per-address (cap), evicted (for a newer one), setup-timeout, full (every name connected).",
              type: "counter" as const,
              samples: [
                { labels: { reason: "not-allowed" }, value: listener.totals.refusedNotAllowed },
                { labels: { reason: "per-address" }, value: listener.totals.refusedPerAddress },
                { labels: { reason: "evicted" }, value: listener.totals.evicted },
                { labels: { reason: "setup-timeout" }, value: listener.totals.setupTimedOut },
                { labels: { reason: "full" }, value: listener.totals.refusedFull },
              ],
            },
          ]
        : []),
    ];
  };
}

/** The figures of one udpstr stream (src/protocols/udpstr's UdpstrReassemblerCounters), as metrics reads them. */
interface UdpstrStreamFigures {
  readonly datagramsReceived: number;
  readonly datagramsLost: number;
  readonly datagramsLate: number;
  readonly datagramsMalformed: number;
  readonly strayDatagrams: number;
  readonly recordsDelivered: number;
  readonly recordsLost: number;
  readonly recordsMalformed: number;
}

/** What udpstrCollector reads (src/capture/udpstr-source.ts's UdpstrSource and its sender table). */
export interface UdpstrCounterView {
  /** Senders in the table now, named "ADDR:PORT". */
  senders(): { sender: string; counters: UdpstrStreamFigures }[];
  /** Every evicted sender's figures summed. */
  evicted(): UdpstrStreamFigures;
  table(): {
    active: number;
    sendersAdmitted: number;
    sendersEvictedIdle: number;
    sendersReplaced: number;
    strangerDatagrams: number;
    overCapDatagrams: number;
    unknownMalformedDatagrams: number;
  };
}

/**
 * A udpstr receiver: per sender (label `sender`, "ADDR:PORT"; the evicted ones summed as
 * "evicted"; past MAX_SERIES_PER_FAMILY the smallest folded into "other") datagrams received,
 * lost, late, malformed and stray, records delivered, lost and malformed; the senders tracked now
 * and admitted, evicted by reason; datagrams that reached no sender's stream, by reason.
 */
export function udpstrCollector(view: UdpstrCounterView): MetricsCollector {
  return (): MetricFamily[] => {
    const senders = [...view.senders(), { sender: "evicted", counters: view.evicted() }];
    const t = view.table();
    const perSender = (name: string, help: string, pick: (c: UdpstrStreamFigures) => number): MetricFamily => ({
      name,
      help,
      type: "counter",
      samples: boundSeries(senders.map((s) => ({ labels: { sender: s.sender }, value: pick(s.counters) })), "sender"),
    });
    return [
      perSender("udpstr_datagrams_received", "udpstr datagrams read into a sender's stream.", (c) => c.datagramsReceived),
      perSender("udpstr_datagrams_lost", "Datagrams missing from a sender's seqno sequence.", (c) => c.datagramsLost),
      perSender("udpstr_datagrams_late", "Datagrams behind a sender's sequence (reordered or duplicated), dropped.", (c) => c.datagramsLate),
      perSender("udpstr_datagrams_malformed", "Datagrams with an unusable udpstr header, skipped.", (c) => c.datagramsMalformed),
      perSender("udpstr_datagrams_stray", "Datagrams that broke a sender's sequence while it went on: dropped whole.", (c) => c.strayDatagrams),
      perSender("udpstr_records_delivered", "Complete records reassembled from a sender's stream.", (c) => c.recordsDelivered),
      perSender("udpstr_records_lost", "Records of a sender's stream known to be lost.", (c) => c.recordsLost),
      perSender("udpstr_records_malformed", "Record headers with impossible lengths, skipped.", (c) => c.recordsMalformed),
      { name: "udpstr_senders", help: "udpstr senders tracked now.", type: "gauge", samples: [{ value: t.active }] },
      { name: "udpstr_senders_admitted", help: "udpstr senders ever admitted to the table.", type: "counter", samples: [{ value: t.sendersAdmitted }] },
      {
        name: "udpstr_senders_evicted",
        help: "udpstr senders evicted, by reason (idle; replaced while the table was full).",
        type: "counter",
        samples: [
          { labels: { reason: "idle" }, value: t.sendersEvictedIdle },
          { labels: { reason: "replaced" }, value: t.sendersReplaced },
        ],
      },
      {
        name: "udpstr_datagrams_refused",
        help: "udpstr datagrams that reached no sender's stream, by reason.",
        type: "counter",
        samples: [
          { labels: { reason: "stranger" }, value: t.strangerDatagrams },
          { labels: { reason: "over_cap" }, value: t.overCapDatagrams },
          { labels: { reason: "malformed_unknown_sender" }, value: t.unknownMalformedDatagrams },
        ],
      },
    ];
  };
}
