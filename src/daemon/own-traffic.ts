// A session must not capture its own connections: an unfiltered rpcap://host/lo client once
// received 763 MB in 4 s, each data packet captured, sent, and captured again. Like
// PCAP-over-IP's server (ownTrafficFilter there), the daemon leaves the session's control
// and data connections out of what it captures for that session, as a filter expression
// run on the session's own consumer (the client's BPF program stays the capture filter).

/** One connection of a session, as far as it is known when the capture starts. */
export interface OwnConnection {
  protocol: "tcp" | "udp";
  /** The client's (or collector's) address. */
  peerAddress: string;
  /** Ports known on either end; a TCP data listener's peer port is not yet known. */
  ports: number[];
}

/** libpcap's filter syntax takes no IPv6 zone ("fe80::1%eth0"): the address alone matches. */
function filterHost(address: string): string {
  const zone = address.indexOf("%");
  return zone >= 0 ? address.slice(0, zone) : address;
}

/** `not (...)` over the connections, or "" when none has a port to match. */
export function ownTrafficFilter(connections: readonly OwnConnection[]): string {
  const clauses = connections
    .filter((c) => c.ports.some((p) => p > 0) && c.peerAddress.length > 0)
    .map((c) => {
      const ports = c.ports.filter((p) => p > 0).map((p) => `port ${p}`);
      return `(${c.protocol} and host ${filterHost(c.peerAddress)} and ${ports.join(" and ")})`;
    });
  return clauses.length > 0 ? `not (${clauses.join(" or ")})` : "";
}
