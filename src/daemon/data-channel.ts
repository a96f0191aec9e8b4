// RPCAP data channels: where a session's captured packets go. TCP (the daemon listens on a
// fresh or fixed port and accepts the one client, or connects out for SERVEROPEN/active mode),
// optionally TLS; or UDP, one PACKET message per datagram, or udpstr-packed when -t MTU is set.
// Each channel encodes a whole batch into one buffer and writes it at once (libpcap's daemon
// does one send() per packet).
import type { Socket, TCPSocketListener } from "bun";
import type { PacketBatch } from "../packet/packet-batch.ts";
import { SocketWriter } from "../net/socket-writer.ts";
import { setSocketBuffer } from "../capture/libpcap/ffi.ts";
import { unmapIPv4 } from "../net/ip-address.ts";
import { encodePacketMessages, encodePacketStreamInto, packetStreamBytes } from "../protocols/rpcap/index.ts";
import { connect as netConnect } from "node:net";
import { socketLike, tlsServerOnDialed, type SocketLikeHandlers } from "../net/reversed-tls.ts";

export interface DataChannel {
  readonly kind: "tcp" | "udp" | "udpstr";
  /** Encodes and sends one batch; a promise means "wait before the next" (TCP back-pressure). */
  write(batch: PacketBatch): void | Promise<void>;
  /** Packets handed to the network so far (svrcapt). */
  readonly packetsSent: number;
  /** Datagrams the kernel refused (EAGAIN/ENOBUFS) after retries: counted, never blocking. */
  readonly sendFailures: number;
  /** Datagrams (UDP) or writes (TCP) and bytes handed to the kernel. */
  readonly datagramsSent?: number;
  readonly bytesSent?: number;
  close(): void;
}

/** sendMany attempts for one batch's datagrams before the rest count as dropped. */
const UDP_SEND_ATTEMPTS = 3;

/** How long a passive TCP data listener waits for the client to connect. */
export const DATA_ACCEPT_TIMEOUT_MS = 10_000;

type TcpData = { channel?: TcpDataChannel };

class TcpDataChannel implements DataChannel {
  readonly kind = "tcp";
  readonly sendFailures = 0;
  packetsSent = 0;
  private npkt = 1;
  private readonly writer: SocketWriter;
  /** Where each batch is encoded before it is written (see write). */
  private scratch = new Uint8Array(0);
  closed = false;

  constructor(private readonly socket: Socket<TcpData>, private readonly onPeerGone: () => void) {
    this.writer = new SocketWriter(socket as Socket<unknown>);
    socket.data = { channel: this };
  }

  write(batch: PacketBatch): void | Promise<void> {
    if (this.closed) return;
    const size = packetStreamBytes(batch);
    // One buffer per channel, grown to the largest batch seen (a capture's batches are bounded
    // by its slot size), instead of a new one per batch; the writer copies what the kernel does
    // not take at once.
    if (this.scratch.byteLength < size) this.scratch = new Uint8Array(size);
    const bytes = encodePacketStreamInto(batch, this.npkt, this.scratch);
    this.npkt = (this.npkt + batch.count) % 2 ** 32;
    this.packetsSent += batch.count;
    return this.writer.write(bytes, true);
  }

  drain(): void {
    this.writer.onDrain();
  }

  peerClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.writer.onClose();
    this.onPeerGone();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.writer.onClose();
    this.socket.end();
  }
}

const tcpHandlers = {
  data: () => {}, // the client sends nothing on the data channel
  drain: (s: Socket<TcpData>) => s.data?.channel?.drain(),
  close: (s: Socket<TcpData>) => s.data?.channel?.peerClosed(),
  error: (s: Socket<TcpData>) => s.data?.channel?.peerClosed(),
};

export interface TlsOptions {
  cert: string;
  key: string;
}

/**
 * Passive TCP: listens on `port` (0 = ephemeral) of `host` and accepts exactly one connection,
 * from `expectedPeer` only. Resolves the port at once; `accepted` settles when the client connects.
 */
export function listenForDataClient(options: {
  host: string;
  port: number;
  expectedPeer: string;
  tls?: TlsOptions;
  onPeerGone: () => void;
}): { port: number; accepted: Promise<DataChannel>; cancel(): void } {
  let listener: TCPSocketListener<TcpData> | undefined;
  const accepted = Promise.withResolvers<DataChannel>();
  let done = false;
  const finish = () => {
    done = true;
    clearTimeout(timer);
    listener?.stop(false);
  };
  const take = (socket: Socket<TcpData>) => {
    if (done) return void socket.end();
    if (unmapIPv4(socket.remoteAddress) !== unmapIPv4(options.expectedPeer)) {
      socket.end(); // not our client: someone else scanning the port
      return;
    }
    finish();
    accepted.resolve(new TcpDataChannel(socket, options.onPeerGone));
  };
  listener = Bun.listen<TcpData>({
    hostname: options.host,
    port: options.port,
    ...(options.tls ? { tls: { cert: Bun.file(options.tls.cert), key: Bun.file(options.tls.key) } } : {}),
    socket: {
      ...tcpHandlers,
      open: (socket) => {
        if (!options.tls) take(socket);
      },
      handshake: (socket, success) => {
        if (success) take(socket);
        else socket.end();
      },
    },
  });
  const timer = setTimeout(() => {
    if (done) return;
    finish();
    accepted.reject(new Error(`data connection not made within ${DATA_ACCEPT_TIMEOUT_MS} ms`));
  }, DATA_ACCEPT_TIMEOUT_MS);
  accepted.promise.catch(() => {});
  return {
    port: listener.port,
    accepted: accepted.promise,
    cancel() {
      if (done) return;
      finish();
      accepted.reject(new Error("cancelled"));
    },
  };
}

/**
 * SERVEROPEN or active mode: the daemon connects to the client's data port. A port that
 * refuses is the peer's doing: the promise rejects with one line naming the address (Bun's
 * own error, rejected twice — by connectError and by Bun.connect — once reached the console
 * as an unhandled rejection with a page of program source).
 */
export function connectToDataClient(options: {
  host: string;
  port: number;
  /**
   * TLS: the daemon is the TLS server on the connection it opens, as libpcap's rpcapd is
   * (ssl_promotion(1, sockdata) whoever dialled; src/net/reversed-tls.ts).
   */
  tls?: TlsOptions | undefined;
  onPeerGone: () => void;
}): Promise<DataChannel> {
  const ready = Promise.withResolvers<DataChannel>();
  const address = options.host.includes(":") ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
  const refused = (error: Error) =>
    ready.reject(new Error(`cannot connect to the client's data port ${address}: ${(error as { code?: string }).code ?? error.message}`));
  if (options.tls) {
    const files = options.tls;
    const raw = netConnect({ host: options.host, port: options.port });
    raw.once("error", refused);
    raw.once("connect", () => {
      raw.off("error", refused);
      raw.on("error", () => {}); // reported by the TLS socket above it
      tlsServerOnDialed(raw, files).then(
        (secure) => {
          const socket = socketLike<TcpData>(secure, raw, {}, tcpHandlers as SocketLikeHandlers<TcpData>);
          ready.resolve(new TcpDataChannel(socket as unknown as Socket<TcpData>, options.onPeerGone));
        },
        (error: Error) => ready.reject(new Error(`data connection to ${address}: ${error.message}`)),
      );
    });
  } else {
    Bun.connect<TcpData>({
      hostname: options.host,
      port: options.port,
      socket: {
        ...tcpHandlers,
        open: (socket) => void ready.resolve(new TcpDataChannel(socket, options.onPeerGone)),
        connectError: (_s, error) => refused(error),
      },
    }).catch(refused);
  }
  // The session reads the outcome only once its capture is subscribed: until then a refusal
  // must not count as unhandled (Bun prints those with program source).
  ready.promise.catch(() => {});
  return ready.promise;
}

/** UDP: plain RPCAP (one PACKET message per datagram) or udpstr packing. */
export async function openUdpDataChannel(options: {
  host: string;
  port: number;
  /** Packs datagrams (udpstr); undefined = plain RPCAP over UDP. */
  packer?: { pack(batch: PacketBatch, firstNpkt: number): Uint8Array[]; flush(): Uint8Array[] };
  kind: "udp" | "udpstr";
  /** SO_SNDBUF in bytes (0 = the kernel default). */
  sendBufferBytes?: number;
  /**
   * The kernel's reports on earlier datagrams (ECONNREFUSED: ICMP port unreachable, nothing
   * listens at the destination). Sending goes on; without a handler Bun prints each report
   * as an error object on standard error.
   */
  onSendError?: (error: Error) => void;
}): Promise<DataChannel> {
  const socket = await Bun.udpSocket({
    hostname: options.host.includes(":") ? "::" : "0.0.0.0",
    // Bun 1.4.4 calls error(error) with the error alone, though its types say (socket, error).
    socket: { error: (...args: unknown[]) => options.onSendError?.(args.find((a): a is Error => a instanceof Error) ?? new Error("UDP send error")) },
  });
  // Bun exposes the fd at run time (checked on 1.4.4) but not in its types.
  if (options.sendBufferBytes) setSocketBuffer((socket as unknown as { fd: number }).fd, "send", options.sendBufferBytes);
  let npkt = 1;
  let packetsSent = 0;
  let sendFailures = 0;
  let datagramsSent = 0;
  let bytesSent = 0;
  let closed = false;
  const sendAll = (datagrams: Uint8Array[]) => {
    // sendMany takes [data, port, host, data, port, host, ...]; it returns how many went out.
    const args: (Uint8Array | number | string)[] = [];
    for (const d of datagrams) args.push(d, options.port, options.host);
    let sent = 0;
    // EAGAIN/ENOBUFS show as a short count (or a throw): retry the rest a few times at once,
    // then count what is left as dropped. Capture never waits on a full socket buffer.
    for (let attempt = 0; attempt < UDP_SEND_ATTEMPTS && sent < datagrams.length; attempt++) {
      try {
        sent += socket.sendMany(sent === 0 ? args : args.slice(sent * 3));
      } catch {
        // counted below
      }
    }
    for (let i = 0; i < sent; i++) bytesSent += datagrams[i]!.byteLength;
    datagramsSent += sent;
    sendFailures += datagrams.length - sent;
  };
  return {
    kind: options.kind,
    get packetsSent() {
      return packetsSent;
    },
    get sendFailures() {
      return sendFailures;
    },
    get datagramsSent() {
      return datagramsSent;
    },
    get bytesSent() {
      return bytesSent;
    },
    write(batch) {
      if (closed) return;
      if (options.packer) {
        sendAll(options.packer.pack(batch, npkt));
        // A partly filled datagram goes out when no packet is waiting: each batch is such a moment.
        sendAll(options.packer.flush());
      } else {
        const { bytes, ends } = encodePacketMessages(batch, npkt);
        const datagrams: Uint8Array[] = [];
        let start = 0;
        for (const end of ends) {
          datagrams.push(bytes.subarray(start, end));
          start = end;
        }
        sendAll(datagrams);
      }
      npkt = (npkt + batch.count) % 2 ** 32;
      packetsSent += batch.count;
    },
    close() {
      if (closed) return;
      closed = true;
      socket.close();
    },
  };
}
