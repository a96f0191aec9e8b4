// PcapOverIpServer: serves one capture to any number of PCAP-over-IP consumers — listeners
// (plain TCP or TLS, optionally mutual TLS) and outbound --connect peers redialled with
// backoff. It is one consumer of the capture and fans each batch out to per-peer queues.
import type { Socket, TCPSocketListener } from "bun";
import type { CaptureInfo } from "../../capture/capture-source.ts";
import type { PacketBatch, TimestampPrecision } from "../../packet/packet-batch.ts";
import { addressAllowed, type Cidr, type HostPort } from "../../net/addresses.ts";
import type { Logger } from "../../logging/index.ts";
import { enableKeepAlive } from "../../net/keepalive.ts";
import { insecureWarning, tlsClientOptions, tlsHandshakeRefusal, TlsSettingsError, type TlsClientSettings } from "../../net/tls-client.ts";
import { encodePcapGlobalHeader } from "../../protocols/pcap/index.ts";
import { StreamConsumer, type SlowConsumerPolicy } from "./stream-consumer.ts";

export interface TlsFiles {
  cert: string;
  key: string;
  /** When set, clients must present a certificate signed by this CA (mutual TLS). */
  ca?: string;
}

export interface PcapOverIpServerOptions {
  listen: readonly HostPort[];
  connect: readonly HostPort[];
  /** Peers allowed to connect to a listener; empty = everyone who can reach it. */
  allow: readonly Cidr[];
  tls?: TlsFiles;
  /** TLS for --connect: the server certificate is verified (against `ca`, else the built-in public CAs) unless insecure. */
  connectTls?: TlsClientSettings;
  precision: TimestampPrecision;
  maxQueueBytes: number;
  slowConsumer: SlowConsumerPolicy;
  /** TCP keepalive idle time on every consumer connection; default TCP_KEEPALIVE_IDLE_MS (src/net/keepalive.ts). */
  keepaliveIdleMs?: number;
  log: Logger;
}

/** NETRESEC's default PCAP-over-IP port. */
export const PCAP_OVER_IP_DEFAULT_PORT = 57012;
/** First and longest wait before redialling a --connect peer that went away. */
export const CONNECT_BACKOFF_INITIAL_MS = 500;
export const CONNECT_BACKOFF_MAX_MS = 30_000;

/**
 * Per-socket state. Set in `open`, before any other handler can run: a client that resets at
 * once (or fails its TLS handshake) gets close/error events before it ever became a consumer.
 */
type PeerData = { peer: string; consumer?: StreamConsumer };

export class PcapOverIpServer {
  private readonly listeners: TCPSocketListener<PeerData>[] = [];
  private readonly consumers = new Set<StreamConsumer>();
  private header: Uint8Array | null = null;
  private stopped = false;
  private readonly redialTimers = new Set<ReturnType<typeof setTimeout>>();
  /** --connect targets already warned about --tls-insecure (one line each, not one per redial). */
  private readonly warnedInsecure = new Set<string>();
  /** Totals of consumers that have gone, so stats survive disconnects. */
  /** Since start; packetsSent/packetsDropped count consumers that have gone (add the live ones). */
  readonly totals = { consumersServed: 0, refused: 0, packetsSent: 0, packetsDropped: 0 };

  constructor(private readonly options: PcapOverIpServerOptions) {}

  /** Bound addresses after listen() (port 0 resolved). */
  get listening(): HostPort[] {
    return this.listeners.map((l) => ({ host: l.hostname, port: l.port }));
  }

  get connectedConsumers(): readonly StreamConsumer[] {
    return [...this.consumers];
  }

  /** Opens the listeners (so their real ports are known before the capture filter is built). */
  async listen(): Promise<void> {
    const tls = this.options.tls;
    for (const address of this.options.listen) {
      const listener = Bun.listen<PeerData>({
        hostname: address.host,
        port: address.port,
        ...(tls
          ? {
              tls: {
                cert: Bun.file(tls.cert),
                key: Bun.file(tls.key),
                ...(tls.ca ? { ca: Bun.file(tls.ca), requestCert: true, rejectUnauthorized: true } : {}),
              },
            }
          : {}),
        socket: {
          // Under TLS nothing may be written before the handshake, so the consumer starts there.
          open: (socket) => {
            socket.data = { peer: peerName(socket) };
            enableKeepAlive(socket, this.options.keepaliveIdleMs);
            if (!tls) this.accept(socket);
          },
          data: () => {}, // consumers send nothing we need; anything they send is ignored
          drain: (socket) => socket.data?.consumer?.onDrain(),
          // Bun passes the error when the kernel ended the connection (keepalive timeout, reset).
          close: (socket, error) => socket.data?.consumer?.close(closeReason(error)),
          error: (socket, error) => socket.data?.consumer?.close(`socket error: ${error.message}`),
          // authorizationError only matters when client certificates are required (--tls-ca):
          // without it Bun reports "unable to get issuer certificate" for every client.
          handshake: (socket, success, authorizationError) => {
            if (!success || (tls?.ca && authorizationError)) {
              const peer = socket.data?.peer ?? "a client";
              this.options.log.warn(`TLS handshake with ${peer} refused: ${authorizationError?.message ?? "failed"}`);
              socket.end();
              return;
            }
            this.accept(socket);
          },
        },
      });
      this.listeners.push(listener);
      this.options.log.info(`serving PCAP-over-${tls ? "TLS" : "IP"} on ${formatHostPort(listener.hostname, listener.port)}`);
    }
  }

  /** Starts dialling the --connect peers. */
  connectOut(): void {
    for (const peer of this.options.connect) this.dial(peer, CONNECT_BACKOFF_INITIAL_MS);
  }

  /** Called once the capture is open: every consumer starts with this header. */
  attach(info: CaptureInfo): void {
    this.header = encodePcapGlobalHeader({
      linktype: info.linktype,
      snaplen: info.snaplen,
      precision: this.options.precision,
      littleEndian: true,
    });
    const header = this.header;
    for (const consumer of this.consumers) consumer.sendHeader(header);
  }

  /** The capture's sink: one batch to every consumer's own queue. Never blocks. */
  offer(batch: PacketBatch): void {
    for (const consumer of this.consumers) consumer.offer(batch);
  }

  /**
   * A filter expression that leaves this server's own traffic out of the capture, so it does
   * not sniff its own stream and snowball: listener ports and --connect peers.
   */
  ownTrafficFilter(): string {
    const clauses = [
      ...this.listening.map((l) => `tcp port ${l.port}`),
      ...this.options.connect.map((c) => `(host ${c.host} and tcp port ${c.port})`),
    ];
    return clauses.length ? `not (${clauses.join(" or ")})` : "";
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.redialTimers) clearTimeout(timer);
    this.redialTimers.clear();
    for (const consumer of [...this.consumers]) consumer.close("server stopping");
    for (const listener of this.listeners) listener.stop(true);
  }

  private accept(socket: Socket<PeerData>): void {
    const peer = socket.data?.peer ?? peerName(socket);
    if (this.options.allow.length > 0 && !addressAllowed(socket.remoteAddress, this.options.allow)) {
      this.totals.refused++;
      this.options.log.warn(`refused ${peer}: not in --allow`);
      socket.end();
      return;
    }
    this.addConsumer(socket, peer);
  }

  private addConsumer(socket: Socket<PeerData>, peer: string, onGone?: () => void): StreamConsumer {
    const consumer = new StreamConsumer(socket as Socket<unknown>, {
      peer,
      precision: this.options.precision,
      maxQueueBytes: this.options.maxQueueBytes,
      slowConsumer: this.options.slowConsumer,
      onClosed: (gone, why) => {
        this.consumers.delete(gone);
        const c = gone.counters;
        this.totals.packetsSent += c.deliveredPackets;
        this.totals.packetsDropped += c.droppedPackets;
        this.options.log.info(`consumer ${gone.peer} gone (${why}): ${c.deliveredPackets} packets sent, ${c.droppedPackets} dropped`);
        onGone?.();
      },
    });
    socket.data = { peer, consumer };
    this.consumers.add(consumer);
    this.totals.consumersServed++;
    this.options.log.info(`consumer ${peer} connected`);
    if (this.header) consumer.sendHeader(this.header);
    return consumer;
  }

  private dial(peer: HostPort, backoffMs: number): void {
    if (this.stopped) return;
    const redial = (nextBackoffMs: number) => {
      if (this.stopped) return;
      const timer = setTimeout(() => {
        this.redialTimers.delete(timer);
        this.dial(peer, Math.min(nextBackoffMs * 2, CONNECT_BACKOFF_MAX_MS));
      }, nextBackoffMs);
      this.redialTimers.add(timer);
    };
    const target = formatHostPort(peer.host, peer.port);
    const connectTls = this.options.connectTls;
    let tls;
    try {
      tls = connectTls ? tlsClientOptions(peer.host, connectTls) : undefined;
    } catch (error) {
      if (!(error instanceof TlsSettingsError)) throw error;
      this.options.log.error(`--connect ${target}: ${error.message}; not dialling it`);
      return;
    }
    if (connectTls?.insecure && backoffMs === CONNECT_BACKOFF_INITIAL_MS && !this.warnedInsecure.has(target)) {
      this.warnedInsecure.add(target);
      this.options.log.warn(insecureWarning(`--connect ${target}`));
    }
    Bun.connect<PeerData>({
      hostname: peer.host,
      port: peer.port,
      data: { peer: target },
      ...(tls ? { tls } : {}),
      socket: {
        // A successful connection resets the backoff for the next time it drops. Under TLS
        // the stream starts once the handshake has succeeded.
        open: (socket) => {
          enableKeepAlive(socket, this.options.keepaliveIdleMs);
          if (!connectTls) this.addConsumer(socket, target, () => redial(CONNECT_BACKOFF_INITIAL_MS));
        },
        handshake: (socket, success, authorizationError) => {
          const refusal = connectTls ? tlsHandshakeRefusal(peer.host, connectTls, success, authorizationError) : undefined;
          if (refusal !== undefined) {
            // Bun closes the socket itself; the retry follows the failed attempt's backoff.
            this.options.log.warn(`--connect ${target}: TLS: ${refusal}; retrying in ${backoffMs} ms`);
            socket.end();
            redial(backoffMs);
            return;
          }
          this.addConsumer(socket, target, () => redial(CONNECT_BACKOFF_INITIAL_MS));
        },
        data: () => {},
        drain: (socket) => socket.data?.consumer?.onDrain(),
        close: (socket, error) => socket.data?.consumer?.close(closeReason(error)),
        error: (socket, error) => socket.data?.consumer?.close(`socket error: ${error.message}`),
        connectError: (_socket, error) => {
          this.options.log.warn(`cannot connect to ${target}: ${error.message}; retrying in ${backoffMs} ms`);
          redial(backoffMs);
        },
      },
    }).catch((error: Error) => {
      this.options.log.warn(`cannot connect to ${target}: ${error.message}; retrying in ${backoffMs} ms`);
      redial(backoffMs);
    });
  }
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** "HOST:PORT" of a connected socket's peer, read while the socket is open. */
function peerName(socket: Socket<unknown>): string {
  return formatHostPort(socket.remoteAddress ?? "?", (socket as unknown as { remotePort?: number }).remotePort ?? 0);
}

function closeReason(error: Error | undefined): string {
  if (!error) return "peer closed the connection";
  const code = (error as Error & { code?: unknown }).code;
  return `socket error: ${error.message}${typeof code === "string" && !error.message.includes(code) ? ` (${code})` : ""}`;
}
