// TCP keepalive on long-lived connections (PCAP-over-IP server and client, RPCAP client): a
// quiet capture is legitimate, so there is no idle timeout; keepalive is what finds a peer
// that vanished without a FIN (crash, cable pulled, NAT state expired) and frees its session.
//
// Bun 1.4.4's socket.setKeepAlive(true, idleMs) sets SO_KEEPALIVE, TCP_KEEPIDLE = idle seconds,
// TCP_KEEPINTVL = 1 s and TCP_KEEPCNT = 10 (seen with strace), so an idle connection to a peer
// that vanished is closed at most idle + 10 s after the last byte. A connection with data in
// flight is ended by TCP's retransmission timeout instead (net.ipv4.tcp_retries2, about 15 min
// by default), or earlier by the slow-consumer policy of the side that writes.

/** Idle time before the first keepalive probe: 30 s, long enough to cost nothing on busy links. */
export const TCP_KEEPALIVE_IDLE_MS = 30_000;
/** Probes Bun sends, 1 s apart, before the kernel gives up (fixed by Bun, see above). */
export const TCP_KEEPALIVE_PROBES = 10;
export const TCP_KEEPALIVE_PROBE_INTERVAL_MS = 1_000;

/** Longest time an idle connection to a vanished peer stays open, for an idle time of `idleMs`. */
export function keepaliveDetectionBoundMs(idleMs = TCP_KEEPALIVE_IDLE_MS): number {
  return idleMs + TCP_KEEPALIVE_PROBES * TCP_KEEPALIVE_PROBE_INTERVAL_MS;
}

/** Turns keepalive on for a Bun socket; whole seconds, at least 1 (TCP_KEEPIDLE is in seconds). */
export function enableKeepAlive(socket: { setKeepAlive(enable?: boolean, initialDelay?: number): boolean }, idleMs = TCP_KEEPALIVE_IDLE_MS): void {
  socket.setKeepAlive(true, Math.max(1_000, Math.round(idleMs / 1_000) * 1_000));
}
