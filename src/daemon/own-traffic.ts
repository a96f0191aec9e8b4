// The daemon must not capture its own connections: an unfiltered rpcap://host/lo client once
// received 763 MB in 4 s, each data packet captured, sent, and captured again. Like
// PCAP-over-IP's server (ownTrafficFilter there), every session's capture leaves out the
// daemon's control and data connections — all sessions' connections, not only its own, since
// two unfiltered sessions on one interface would otherwise feed each other the same way.
// The exclusion runs on each session's packets after the client's own BPF program (which
// stays the capture filter), as a filter expression recompiled only when connections change.
import { createBatchFilter, type BatchFilter } from "../capture/packet-filter.ts";

/** One connection of the daemon, as far as it is known (a data listener's peer port is not). */
export interface OwnConnection {
  protocol: "tcp" | "udp";
  /** The client's (or collector's) address. */
  peerAddress: string;
  /** Ports known on either end (0 = unknown). */
  ports: number[];
}

/** libpcap's filter syntax takes no IPv6 zone ("fe80::1%eth0"): the address alone matches. */
function filterHost(address: string): string {
  const zone = address.indexOf("%");
  return zone >= 0 ? address.slice(0, zone) : address;
}

/** `not (...)` over the connections, or "" when none has a port to match. */
export function ownTrafficFilter(connections: Iterable<OwnConnection>): string {
  const clauses = [...connections]
    .filter((c) => c.ports.some((p) => p > 0) && c.peerAddress.length > 0)
    .map((c) => {
      const ports = c.ports.filter((p) => p > 0).map((p) => `port ${p}`);
      return `(${c.protocol} and host ${filterHost(c.peerAddress)} and ${ports.join(" and ")})`;
    });
  return clauses.length > 0 ? `not (${clauses.join(" or ")})` : "";
}

/**
 * The daemon's live connections and, per link type and snaplen, the compiled filter that
 * leaves them out. Sessions add their control connection when they start and their data
 * connection when a capture starts, and remove them in close(); the set is bounded by the
 * session limit (two connections per session).
 */
export class OwnTraffic {
  private readonly connections = new Set<OwnConnection>();
  private generation = 0;
  private readonly compiled = new Map<string, { generation: number; filter: BatchFilter | null }>();

  constructor(private readonly onCompileError: (expression: string, error: Error) => void = () => {}) {}

  /** Registers a connection; the returned function removes it (idempotent). */
  add(connection: OwnConnection): () => void {
    this.connections.add(connection);
    this.generation++;
    return () => {
      if (this.connections.delete(connection)) this.generation++;
    };
  }

  /** Connections registered now. */
  get size(): number {
    return this.connections.size;
  }

  /** The current expression ("" when there is nothing to leave out). */
  get expression(): string {
    return ownTrafficFilter(this.connections);
  }

  /**
   * The filter for packets of `linktype` cut at `snaplen`, or null when nothing is to be left
   * out (or the link type has no IP: the expression does not compile, reported once per change).
   */
  filterFor(linktype: number, snaplen: number): BatchFilter | null {
    const key = `${linktype}/${snaplen}`;
    const cached = this.compiled.get(key);
    if (cached && cached.generation === this.generation) return cached.filter;
    const expression = this.expression;
    let filter: BatchFilter | null = null;
    if (expression) {
      try {
        filter = createBatchFilter(expression, linktype, snaplen);
      } catch (error) {
        this.onCompileError(expression, error as Error);
      }
    }
    this.compiled.set(key, { generation: this.generation, filter });
    return filter;
  }
}
