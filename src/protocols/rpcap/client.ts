// RpcapClient: the client side of RPCAP over a Bun socket, used by `probe capture -i
// rpcap://...` and by the tests. Requests go one at a time; each awaits its reply or an ERROR.
// Data arrives on a TCP data connection (the client connects, or listens for SERVEROPEN) or
// a UDP socket, and is decoded into PacketBatches.
import type { TCPSocketListener, TLSOptions } from "bun";
import { createServer, type Server as NetServer, type Socket as NetSocket } from "node:net";
import { enableKeepAlive } from "../../net/keepalive.ts";
import { socketLike, tlsClientOnAccepted } from "../../net/reversed-tls.ts";
import { tlsClientOptions, tlsHandshakeRefusal, type TlsClientSettings } from "../../net/tls-client.ts";
import type { BpfInstruction } from "../../packet/bpf/index.ts";
import { PacketBatchBuilder, type PacketBatch } from "../../packet/packet-batch.ts";
import { ProtocolError } from "../../packet/protocol-error.ts";
import {
  decodeAuthReply,
  decodeErrorText,
  decodeFindAllIfReply,
  decodeOpenReply,
  decodePacketPayload,
  decodeStartCapReply,
  decodeStatsReply,
  encodeAuthRequest,
  encodeMessage,
  encodeSamplingRequestPayload,
  encodeStartCapRequestPayload,
  encodeUpdateFilterPayload,
  type AuthReply,
  type RpcapMessage,
  type RpcapStats,
  type WireInterface,
} from "./codec.ts";
import { RpcapFramer } from "./framer.ts";
import { peerAddressBytes, sameAddress, unmapIPv4 } from "../../net/ip-address.ts";
import { RPCAP_HEADER_BYTES, RPCAP_REPLY_BIT, RpcapAuthType, RpcapMessageType, rpcapErrorName, rpcapMessageName, StartCapFlag } from "./wire.ts";

/** An ERROR message from the server, with its PCAP_ERR_* code. */
export class RpcapServerError extends Error {
  override readonly name = "RpcapServerError";
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** Largest reply we accept (FINDALLIF on a host with many interfaces stays far below). */
const CLIENT_MAX_PLEN = 16 * 1024 * 1024;
/** How long a request may wait for its reply. */
export const CLIENT_REPLY_TIMEOUT_MS = 15_000;

/** The server refused our TLS terms: its certificate did not verify (the message says why). */
export class RpcapTlsError extends Error {
  override readonly name = "RpcapTlsError";
}

export interface RpcapClientOptions {
  host: string;
  port: number;
  /**
   * rpcaps://: TLS on control and data connections. `true` verifies the server certificate
   * against the built-in public CAs; settings name a CA (--tls-ca) or opt out (--tls-insecure).
   * Unlike libpcap's client (libpcap#1080), the certificate is verified by default.
   */
  tls?: boolean | TlsClientSettings;
  /** TCP keepalive idle time on control and data connections; default TCP_KEEPALIVE_IDLE_MS (src/net/keepalive.ts). */
  keepaliveIdleMs?: number;
  /** An already-connected socket's data handler is wired by acceptActive(); otherwise we dial. */
}

export interface StartCaptureOptions {
  snaplen?: number;
  promiscuous?: boolean;
  filter?: readonly BpfInstruction[];
  /** UDP data channel (the server sends to our port). */
  udp?: boolean;
  /** Ask the server to connect to us (we listen). */
  serverOpen?: boolean;
  readTimeoutMs?: number;
  onBatch(batch: PacketBatch, npkts: number[]): void;
  /** For udpstr servers: datagrams are handed here raw instead of decoded as PACKET messages. */
  onDatagram?: (datagram: Uint8Array) => void;
  /** The data connection ended; `error` says why when it was refused (its TLS certificate). */
  onDataClosed?: (error?: Error) => void;
}

type Pending = { resolve(m: RpcapMessage): void; reject(e: Error): void; timer: ReturnType<typeof setTimeout> };

export class RpcapClient {
  /** The control connection: a Bun socket, or a node TLS socket behind the same two calls. */
  private socket: { write(bytes: Uint8Array): unknown; end(): void } | null = null;
  private readonly framer = new RpcapFramer(() => CLIENT_MAX_PLEN);
  private pending: Pending | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private dataCleanup: (() => void) | null = null;
  /** Unsolicited messages (e.g. an ERROR when the capture ends). */
  readonly unsolicited: RpcapMessage[] = [];
  version = 0;
  linktype = 1;
  private readonly closedSignal = Promise.withResolvers<Error | undefined>();
  /** Resolves once the control connection is closed (by either side), with the error if any. */
  readonly whenClosed: Promise<Error | undefined> = this.closedSignal.promise;

  /** Client TLS options built once from options.tls (undefined = plain TCP). */
  private readonly tls: TLSOptions | undefined;
  private readonly tlsSettings: TlsClientSettings | undefined;

  private constructor(private readonly options: RpcapClientOptions) {
    this.tlsSettings = options.tls === true ? {} : options.tls || undefined;
    this.tls = this.tlsSettings ? tlsClientOptions(options.host, this.tlsSettings) : undefined;
  }

  /** Dials the daemon (passive mode). */
  static async connect(options: RpcapClientOptions): Promise<RpcapClient> {
    const client = new RpcapClient(options);
    const ready = Promise.withResolvers<void>();
    const tls = client.tls;
    client.socket = await Bun.connect({
      hostname: options.host,
      port: options.port,
      ...(tls ? { tls } : {}),
      socket: {
        open: (socket) => {
          enableKeepAlive(socket, options.keepaliveIdleMs);
          if (!tls) ready.resolve();
        },
        // The certificate is judged by the shared TLS client rules (src/net/tls-client.ts);
        // with --tls-insecure Bun may still report a failed verification and carry on.
        handshake: (socket, success, authorizationError) => {
          const refusal = tlsHandshakeRefusal(options.host, client.tlsSettings!, success, authorizationError);
          if (refusal === undefined) return ready.resolve();
          ready.reject(new RpcapTlsError(`TLS: ${refusal}`));
          socket.end();
        },
        data: (_s, chunk) => client.onData(chunk),
        close: () => {
          client.onClose();
          ready.reject(new Error("connection closed by the server"));
        },
        error: (_s, error) => client.onClose(error),
        connectError: (_s, error) => ready.reject(error),
      },
    });
    await ready.promise;
    return client;
  }

  /**
   * Active mode: listens for daemons that dial in; a client per connection. `admit` is asked at
   * TCP accept, before a byte is read: null closes the connection at once; anything else is its
   * ticket, handed to `onClient` with the client (without `admit`, every connection is taken).
   * The `cancel` given to `admit` closes that connection later.
   */
  static listenForActive<T>(
    host: string,
    port: number,
    onClient: (client: RpcapClient, ticket: T) => void,
    admit: (peer: string, cancel: () => void) => T | null = () => undefined as T,
  ): TCPSocketListener<{ client: RpcapClient | null }> {
    return Bun.listen<{ client: RpcapClient | null }>({
      hostname: host,
      port,
      socket: {
        open: (socket) => {
          socket.data = { client: null };
          const ticket = admit(unmapIPv4(socket.remoteAddress), () => socket.end());
          if (ticket === null) return void socket.terminate();
          const client = new RpcapClient({ host: socket.remoteAddress, port: 0 });
          // A probe whose link dies without a FIN is noticed like a passive daemon's would be.
          enableKeepAlive(socket);
          client.socket = socket;
          socket.data = { client };
          onClient(client, ticket);
        },
        data: (socket, chunk) => socket.data.client?.onData(chunk),
        close: (socket) => socket.data.client?.onClose(),
        error: (socket, error) => socket.data.client?.onClose(error),
      },
    });
  }

  /**
   * Active mode over TLS, with libpcap's roles (src/net/reversed-tls.ts): the daemon dials in
   * and is the TLS server; this side is the TLS client and verifies the daemon's certificate
   * against its address (`settings`: --tls-ca, --tls-insecure). The data connection the daemon
   * opens back is verified the same way. A connection whose certificate is refused is closed and
   * reported through `onRefused` (peer address, reason). `admit` is asked at TCP accept, before
   * the handshake, as in {@link listenForActive}; each admitted connection then ends in exactly
   * one of `onClient` or `onRefused`, with its ticket.
   */
  static async listenForActiveTls<T>(
    host: string,
    port: number,
    settings: TlsClientSettings,
    onClient: (client: RpcapClient, ticket: T) => void,
    onRefused: (peer: string, reason: string, ticket: T) => void,
    admit: (peer: string, cancel: () => void) => T | null = () => undefined as T,
  ): Promise<{ readonly port: number; stop(closeActiveConnections?: boolean): void }> {
    tlsClientOptions(host, settings); // reads the CA file now: a missing one fails the listen, one line
    const accepted = new Set<NetSocket>();
    const server = createServer((raw) => {
      const peer = unmapIPv4(raw.remoteAddress ?? "");
      const ticket = admit(peer, () => raw.destroy());
      if (ticket === null) return void raw.destroy();
      accepted.add(raw);
      raw.once("close", () => accepted.delete(raw));
      raw.on("error", () => {}); // reported by the TLS socket above it
      enableKeepAlive(raw as unknown as { setKeepAlive(enable?: boolean, initialDelay?: number): boolean });
      tlsClientOnAccepted(raw, peer, settings).then(
        (secure) => {
          let client: RpcapClient;
          try {
            client = new RpcapClient({ host: peer, port: 0, tls: settings });
          } catch (error) {
            secure.destroy();
            return onRefused(peer, (error as Error).message, ticket);
          }
          client.socket = socketLike(secure, raw, undefined, {
            data: (_s, chunk) => client.onData(chunk),
            close: () => client.onClose(),
            error: (_s, error) => client.onClose(error),
          });
          onClient(client, ticket);
        },
        (error: Error) => onRefused(peer, error.message, ticket),
      );
    });
    await listenNet(server, host, port);
    return {
      port: (server.address() as { port: number }).port,
      stop: (closeActiveConnections = false) => {
        server.close();
        if (closeActiveConnections) for (const socket of accepted) socket.destroy();
      },
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The daemon's address: the host dialled, or the peer of an accepted active connection. */
  get peerHost(): string {
    return this.options.host;
  }

  /** Raw write for tests that misbehave on purpose. */
  writeRaw(bytes: Uint8Array): void {
    this.socket?.write(bytes);
  }

  /** Sends a request and waits for the reply of the expected type (or throws RpcapServerError). */
  request(type: number, payload?: Uint8Array, value = 0): Promise<RpcapMessage> {
    const run = () =>
      new Promise<RpcapMessage>((resolve, reject) => {
        if (this.closed || !this.socket) return reject(new Error("connection closed"));
        const timer = setTimeout(() => {
          this.pending = null;
          reject(new Error(`no reply to ${rpcapMessageName(type)} within ${CLIENT_REPLY_TIMEOUT_MS} ms`));
        }, CLIENT_REPLY_TIMEOUT_MS);
        this.pending = {
          resolve: (m) => {
            if (m.header.type === RpcapMessageType.ERROR) {
              reject(new RpcapServerError(m.header.value, `${rpcapErrorName(m.header.value)}: ${decodeErrorText(m.payload)}`));
            } else if (m.header.type !== (type | RPCAP_REPLY_BIT)) {
              reject(new ProtocolError("unexpected-reply", `expected ${rpcapMessageName(type | RPCAP_REPLY_BIT)}, got ${rpcapMessageName(m.header.type)}`));
            } else resolve(m);
          },
          reject,
          timer,
        };
        this.socket.write(encodeMessage(this.version, type, value, payload));
      });
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => {});
    return next;
  }

  async authenticate(username?: string, password?: string): Promise<AuthReply> {
    const payload = username === undefined
      ? encodeAuthRequest({ authType: RpcapAuthType.NULL, username: "", password: "" })
      : encodeAuthRequest({ authType: RpcapAuthType.PWD, username, password: password ?? "" });
    const reply = await this.request(RpcapMessageType.AUTH_REQ, payload);
    return decodeAuthReply(reply.payload);
  }

  async findAllInterfaces(): Promise<WireInterface[]> {
    const reply = await this.request(RpcapMessageType.FINDALLIF_REQ);
    return decodeFindAllIfReply(reply.header.value, reply.payload);
  }

  async open(device: string): Promise<{ linktype: number; tzoff: number }> {
    const reply = await this.request(RpcapMessageType.OPEN_REQ, new TextEncoder().encode(device));
    const result = decodeOpenReply(reply.payload);
    this.linktype = result.linktype;
    return result;
  }

  /** STARTCAP and the data channel; packets arrive through options.onBatch. */
  async startCapture(options: StartCaptureOptions): Promise<{ bufsize: number; dataPort: number }> {
    const flags = (options.promiscuous ? StartCapFlag.PROMISC : 0) | (options.udp ? StartCapFlag.DGRAM : 0) | (options.serverOpen ? StartCapFlag.SERVEROPEN : 0);
    const sink = new PacketMessageSink(this.linktype, options);
    let portdata = 0;
    if (options.udp) {
      const udp = await Bun.udpSocket({
        hostname: this.options.host.includes(":") ? "::" : "0.0.0.0",
        socket: { data: (_s, data) => (options.onDatagram ? options.onDatagram(new Uint8Array(data)) : sink.datagram(new Uint8Array(data))) },
      });
      portdata = udp.port;
      this.dataCleanup = () => udp.close();
    } else if (options.serverOpen && this.tlsSettings) {
      // Active mode over TLS: the daemon connects back and is the TLS server (reversed-tls.ts).
      const listener = await this.listenForTlsData(options, sink);
      portdata = listener.port;
      this.dataCleanup = () => listener.stop();
    } else if (options.serverOpen) {
      // The daemon connects back from the control connection's address, once; any other
      // connection to this port is someone else's and is closed unread. (A host given by name
      // is not resolved here: then the first connection is taken.)
      const daemonAddress = unmapIPv4(this.options.host);
      const known = peerAddressBytes(daemonAddress) !== undefined;
      let accepted = false;
      const listener = Bun.listen<{ ours: boolean }>({
        hostname: daemonAddress.includes(":") ? "::" : "0.0.0.0",
        port: 0,
        socket: {
          open: (socket) => {
            socket.data = { ours: !accepted && (!known || sameAddress(socket.remoteAddress, daemonAddress)) };
            if (!socket.data.ours) return void socket.end();
            accepted = true;
            enableKeepAlive(socket, this.options.keepaliveIdleMs);
          },
          data: (socket, chunk) => {
            if (socket.data.ours) sink.stream(chunk);
          },
          close: (socket) => {
            if (socket.data?.ours) options.onDataClosed?.();
          },
        },
      });
      portdata = listener.port;
      this.dataCleanup = () => listener.stop(true);
    }
    const payload = encodeStartCapRequestPayload({
      snaplen: options.snaplen ?? 65535,
      readTimeoutMs: options.readTimeoutMs ?? 250,
      flags,
      portdata,
      program: options.filter ?? [],
    });
    const reply = decodeStartCapReply((await this.request(RpcapMessageType.STARTCAP_REQ, payload)).payload);
    if (!options.udp && !options.serverOpen) {
      const settings = this.tlsSettings;
      let dataRefusal: RpcapTlsError | undefined;
      const data = await Bun.connect({
        hostname: this.options.host,
        port: reply.portdata,
        ...(this.tls ? { tls: this.tls } : {}),
        socket: {
          open: (socket) => enableKeepAlive(socket, this.options.keepaliveIdleMs),
          // The data connection's certificate is checked like the control connection's.
          handshake: (socket, success, authorizationError) => {
            const refusal = settings ? tlsHandshakeRefusal(this.options.host, settings, success, authorizationError) : undefined;
            if (refusal === undefined) return;
            dataRefusal = new RpcapTlsError(`data connection: TLS: ${refusal}`);
            socket.end();
          },
          data: (_s, chunk) => sink.stream(chunk),
          close: () => options.onDataClosed?.(dataRefusal),
        },
      });
      this.dataCleanup = () => data.end();
    }
    return { bufsize: reply.bufsize, dataPort: reply.portdata };
  }

  /** The TLS form of the SERVEROPEN data listener: one connection, from the daemon's address, verified. */
  private async listenForTlsData(options: StartCaptureOptions, sink: PacketMessageSink): Promise<{ port: number; stop(): void }> {
    const daemonAddress = unmapIPv4(this.options.host);
    const known = peerAddressBytes(daemonAddress) !== undefined;
    const settings = this.tlsSettings!;
    let taken: NetSocket | undefined;
    const server = createServer((raw) => {
      raw.on("error", () => {});
      if (taken || (known && !sameAddress(raw.remoteAddress ?? "", daemonAddress))) return void raw.destroy();
      taken = raw;
      server.close(); // one data connection per capture
      enableKeepAlive(raw as unknown as { setKeepAlive(enable?: boolean, initialDelay?: number): boolean }, this.options.keepaliveIdleMs);
      tlsClientOnAccepted(raw, daemonAddress, settings).then(
        (secure) => {
          socketLike(secure, raw, undefined, {
            data: (_s, chunk) => sink.stream(chunk),
            close: () => options.onDataClosed?.(),
          });
        },
        (error: Error) => options.onDataClosed?.(new RpcapTlsError(`data connection: ${error.message}`)),
      );
    });
    await listenNet(server, daemonAddress.includes(":") ? "::" : "0.0.0.0", 0);
    return {
      port: (server.address() as { port: number }).port,
      stop: () => {
        server.close();
        taken?.destroy();
      },
    };
  }

  async updateFilter(program: readonly BpfInstruction[]): Promise<void> {
    await this.request(RpcapMessageType.UPDATEFILTER_REQ, encodeUpdateFilterPayload(program));
  }

  async stats(): Promise<RpcapStats> {
    return decodeStatsReply((await this.request(RpcapMessageType.STATS_REQ)).payload);
  }

  async setSampling(method: number, value: number): Promise<void> {
    await this.request(RpcapMessageType.SETSAMPLING_REQ, encodeSamplingRequestPayload(method, value));
  }

  async endCapture(): Promise<void> {
    await this.request(RpcapMessageType.ENDCAP_REQ);
    this.dataCleanup?.();
    this.dataCleanup = null;
  }

  /** Sends CLOSE and ends the connection. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.socket?.write(encodeMessage(this.version, RpcapMessageType.CLOSE, 0));
    this.socket?.end();
    this.onClose();
  }

  private onData(chunk: Buffer): void {
    let messages: RpcapMessage[];
    try {
      messages = this.framer.push(chunk);
    } catch (error) {
      // A stream that does not frame is over: nothing after it can be trusted (STYLE.md 13).
      this.socket?.end();
      this.onClose(error as Error);
      return;
    }
    for (const m of messages) {
      const waiter = this.pending;
      if (waiter) {
        this.pending = null;
        clearTimeout(waiter.timer);
        waiter.resolve(m);
      } else this.unsolicited.push(m);
    }
  }

  private onClose(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closedSignal.resolve(error);
    this.dataCleanup?.();
    this.dataCleanup = null;
    const waiter = this.pending;
    this.pending = null;
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.reject(error ?? new Error("connection closed by the server"));
    }
  }
}

/** Decodes PACKET messages from a TCP stream or single datagrams into batches. */
class PacketMessageSink {
  private readonly framer = new RpcapFramer((type) => (type === RpcapMessageType.PACKET ? 20 + 262144 : 0));
  failed: Error | null = null;

  constructor(private readonly linktype: number, private readonly options: StartCaptureOptions) {}

  stream(chunk: Buffer): void {
    if (this.failed) return;
    try {
      this.deliver(this.framer.push(chunk));
    } catch (error) {
      this.failed = error as Error;
    }
  }

  datagram(bytes: Uint8Array): void {
    try {
      const framer = new RpcapFramer((type) => (type === RpcapMessageType.PACKET ? bytes.byteLength : 0));
      this.deliver(framer.push(bytes));
    } catch {
      // a bad datagram is skipped; the next one stands alone
    }
  }

  private deliver(messages: RpcapMessage[]): void {
    if (messages.length === 0) return;
    const builder = new PacketBatchBuilder(this.linktype, "micro", 64 * 1024);
    const npkts: number[] = [];
    for (const m of messages) {
      if (m.header.type !== RpcapMessageType.PACKET) continue;
      const { header, data } = decodePacketPayload(m.payload);
      builder.push(header.tsSec, header.tsUsec, header.len, data);
      npkts.push(header.npkt);
    }
    const batch = builder.take();
    if (batch) this.options.onBatch(batch, npkts);
  }
}

export { RPCAP_HEADER_BYTES };

/** node:net's listen as a promise: resolves when bound, rejects with the bind error. */
function listenNet(server: NetServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
