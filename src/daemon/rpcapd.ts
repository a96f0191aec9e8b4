// RpcapDaemon: the transport around RpcapSession. Passive listeners (plain or TLS) with the
// host list enforced before AUTH, active connections to collectors redialled forever, a cap
// on concurrent sessions, and reconfiguration (SIGHUP) without dropping live sessions.
import type { Socket, TCPSocketListener } from "bun";
import { listInterfaces, type CaptureInterface } from "../capture/libpcap/devices.ts";
import { LiveCaptureSource } from "../capture/live-capture-source.ts";
import { DEFAULT_MAX_SESSIONS_PER_ADDRESS, DEFAULT_PRESSURE_AUTH_TIMEOUT_MS } from "../config/index.ts";
import type { Logger } from "../logging/index.ts";
import type { PacketBatch } from "../packet/packet-batch.ts";
import { OrderedSocketWriter } from "../net/ordered-socket-writer.ts";
import type { SharedCaptures } from "../pipeline/capture-hub.ts";
import { ProtocolError } from "../packet/protocol-error.ts";
import { ProbeError } from "../packet/probe-error.ts";
import { unmapIPv4 } from "../net/ip-address.ts";
import { encodeError, maxRequestPlen, RpcapErrorCode, RpcapFramer, RpcapMessageType } from "../protocols/rpcap/index.ts";
import { ActiveDialer, type DialEvents } from "./active-dialer.ts";
import { connect as netConnect } from "node:net";
import { socketLike, tlsServerOnDialed, type SocketLikeHandlers } from "../net/reversed-tls.ts";
import { OwnTraffic } from "./own-traffic.ts";
import { connectToDataClient, listenForDataClient, openUdpDataChannel, type DataChannel } from "./data-channel.ts";
import { RpcapSession, type DataChannelRequest, type SessionAuthenticator, type SessionEnvironment } from "./session.ts";
import { peerKey } from "./auth/index.ts";
import { SessionSlots } from "./session-slots.ts";

/**
 * Decides AUTH requests, and may be told when the client has gone so that a check still waiting
 * is dropped (src/daemon/auth's Authenticator; a plain SessionAuthenticator ignores the signal).
 */
export interface DaemonAuthenticator {
  authenticate(request: Parameters<SessionAuthenticator["authenticate"]>[0] & { signal?: AbortSignal }): ReturnType<SessionAuthenticator["authenticate"]>;
}

export interface RpcapdOptions {
  /** Listen here (host undefined = every address); omitted in active-only mode. */
  listen?: { host?: string; port: number; ipv4Only: boolean };
  active: { host: string; port: number }[];
  tls?: { cert: string; key: string };
  /** Peers allowed to open passive connections; undefined = everyone. */
  isHostAllowed?: (address: string) => boolean;
  authenticator: DaemonAuthenticator;
  preselectedInterface?: string;
  /**
   * `--interfaces`: only these are listed by FINDALLIF and accepted by OPEN (libpcap#1301);
   * undefined = every local interface.
   */
  offeredInterfaces?: readonly string[];
  /**
   * What FINDALLIF lists and OPEN may open, and how OPEN learns a link type; default: this
   * host's libpcap interfaces. The active collector re-serves its probes through these.
   */
  interfaces?: { list(): CaptureInterface[]; linktype(device: string): Promise<number> };
  /** udpstr MTU for UDP data channels; 0 = plain RPCAP datagrams. */
  udpstrMtu: number;
  createUdpstrPacker?: (mtu: number) => { pack(batch: PacketBatch, firstNpkt: number): Uint8Array[]; flush(): Uint8Array[] };
  /** Fixed port for passive TCP data connections (libpcap#1120); 0 = ephemeral. */
  dataPort: number;
  authTimeoutMs: number;
  idleTimeoutMs: number;
  activeRetryMs: number;
  dataQueueBytes: number;
  maxControlPlen: number;
  maxSessions: number;
  /** Passive sessions from one address (IPv4, IPv6 /64); default DEFAULT_MAX_SESSIONS_PER_ADDRESS. */
  maxSessionsPerAddress?: number;
  /** Auth deadline while more than 3/4 of the slots are taken; default DEFAULT_PRESSURE_AUTH_TIMEOUT_MS. */
  pressureAuthTimeoutMs?: number;
  /** Where sessions subscribe: the pipeline's captures, its stages already applied. */
  hub: SharedCaptures;
  log: Logger;
}

/** A control connection this process was handed (inetd mode): write side and peer. */
export interface InheritedConnection {
  readonly peerAddress: string;
  /** Queues bytes for the peer (the caller bounds what the peer leaves unread). */
  send(bytes: Uint8Array): void;
  /** Ends the connection once what was sent is flushed. */
  end(): void;
}

/** Control replies a peer may leave unread before it is cut off. */
const MAX_UNREAD_CONTROL_BYTES = 1024 * 1024;

type ControlData = {
  session?: RpcapSession;
  framer?: RpcapFramer;
  writer?: OrderedSocketWriter;
  /** A passive TLS connection still in its handshake: counted per address, with a deadline. */
  handshake?: { key: string; timer: ReturnType<typeof setTimeout> };
};

export class RpcapDaemon {
  private listener: TCPSocketListener<ControlData> | null = null;
  private readonly sessions = new Set<RpcapSession>();
  private activeTargets: { host: string; port: number }[] = [];
  /** One dialer per active collector, keyed host:port. */
  private readonly dialers = new Map<string, ActiveDialer>();
  private stopped = false;
  /** Since start, for --metrics: control connections admitted and refused, AUTH outcomes. */
  readonly totals = { sessionsOpened: 0, sessionsRefused: 0, authSucceeded: 0, authFailed: 0 };
  /** Every session's control and data connections, left out of every session's capture. */
  private readonly ownTraffic = new OwnTraffic((expression, error) =>
    this.options.log.warn(`cannot leave the daemon's own connections out of a capture (${error.message}): ${expression}`),
  );
  /** Slot bookkeeping: per-address caps, the pressure deadline, what keeps a slot. */
  private readonly slots: SessionSlots<RpcapSession>;
  /** Each session's control writer, to tell it why the slot table puts it out. */
  private readonly writers = new WeakMap<RpcapSession, OrderedSocketWriter>();
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  /**
   * Passive TLS connections still in their handshake, per address key and in all. They hold no
   * session slot yet, so they are bounded here by the same numbers (per address, overall) and
   * given the pressure deadline: a TLS handshake takes milliseconds. When all are taken, the
   * oldest is put out for a newcomer.
   */
  private readonly handshaking = new Map<string, number>();
  private handshakingTotal = 0;
  /** The same connections in order of arrival (the first is the oldest, evicted first when full). */
  private readonly handshakingSockets = new Set<Socket<ControlData>>();
  /** Whether the last sweep found the slots under pressure (logged once per change). */
  private slotPressure = false;

  constructor(private options: RpcapdOptions) {
    this.activeTargets = [...options.active];
    this.slots = new SessionSlots({
      maxSessions: options.maxSessions,
      maxSessionsPerAddress: options.maxSessionsPerAddress ?? DEFAULT_MAX_SESSIONS_PER_ADDRESS,
      pressureAuthTimeoutMs: options.pressureAuthTimeoutMs ?? DEFAULT_PRESSURE_AUTH_TIMEOUT_MS,
      idleTimeoutMs: options.idleTimeoutMs,
    });
  }

  get port(): number | undefined {
    return this.listener?.port;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  async start(): Promise<void> {
    const listen = this.options.listen;
    if (listen) {
      const host = listen.host ?? (listen.ipv4Only ? "0.0.0.0" : "::");
      const tls = this.options.tls;
      try {
        this.listener = Bun.listen<ControlData>({
          hostname: host,
          port: listen.port,
          ...(tls ? { tls: { cert: Bun.file(tls.cert), key: Bun.file(tls.key) } } : {}),
          socket: this.handlers(false, tls !== undefined),
        });
      } catch (error) {
        const address = `${host.includes(":") ? `[${host}]` : host}:${listen.port}`;
        throw new ListenError(`rpcapd cannot listen on ${address}: ${describeListenFailure(error as Error)}`);
      }
      this.options.log.info(`rpcapd listening on ${host.includes(":") ? `[${host}]` : host}:${this.listener.port}${tls ? " (TLS)" : ""}`);
    }
    for (const target of this.activeTargets) this.dialActive(target);
    this.sweepTimer = setInterval(() => this.sweepSlots(), this.slots.sweepIntervalMs);
  }

  /** Puts out sessions whose slot is overdue (see session-slots.ts), each told why first. */
  private sweepSlots(): void {
    if (this.slots.underPressure !== this.slotPressure) {
      this.slotPressure = this.slots.underPressure;
      this.options.log.warn(
        this.slotPressure
          ? `${this.slots.size} of ${this.options.maxSessions} session slots taken: unauthenticated connections now have ${this.options.pressureAuthTimeoutMs ?? DEFAULT_PRESSURE_AUTH_TIMEOUT_MS} ms to log in`
          : `${this.slots.size} of ${this.options.maxSessions} session slots taken: the full auth timeout applies again`,
      );
    }
    for (const { session, reason } of this.slots.sweep()) {
      const preAuth = reason === "pre-auth deadline under pressure";
      const text = preAuth ? "The RPCAP initial timeout has expired (the server is busy)" : "The RPCAP runtime timeout has expired";
      this.writers.get(session)?.send(encodeError(0, preAuth ? RpcapErrorCode.INITTIMEOUT : RpcapErrorCode.RUNTIMETIMEOUT, text));
      session.close(reason);
    }
  }

  /** Applies new settings (SIGHUP): live sessions keep running; active targets are re-synced. */
  reconfigure(update: Pick<RpcapdOptions, "active" | "isHostAllowed" | "authenticator">): void {
    this.options = { ...this.options, ...update };
    const wanted = new Set(update.active.map(keyOf));
    for (const [key, dialer] of this.dialers) {
      if (!wanted.has(key)) {
        dialer.stop();
        this.dialers.delete(key);
      }
    }
    this.activeTargets = [...update.active];
    for (const target of update.active) this.dialActive(target);
    this.options.log.info(`configuration reloaded: ${update.active.length} active collector(s), ${this.sessions.size} live session(s) kept`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const dialer of this.dialers.values()) dialer.stop();
    this.dialers.clear();
    for (const session of [...this.sessions]) session.close("daemon stopping");
    this.listener?.stop(true);
  }

  private handlers(active: boolean, tls: boolean, onGone?: () => void) {
    const start = (socket: Socket<ControlData>) => this.startSession(socket, active, tls);
    return {
      open: (socket: Socket<ControlData>) => {
        socket.data = {};
        if (!tls) start(socket);
        else if (!active) this.awaitHandshake(socket);
      },
      // No client certificates are requested, so only a failed handshake counts; Bun reports
      // "unable to get issuer certificate" as authorizationError for every certless client.
      handshake: (socket: Socket<ControlData>, success: boolean, error: Error | null) => {
        this.handshakeOver(socket);
        if (!success) {
          this.options.log.warn(`TLS handshake with ${socket.remoteAddress} failed: ${error?.message ?? "refused"}`);
          socket.end();
          return;
        }
        start(socket);
      },
      data: (socket: Socket<ControlData>, chunk: Buffer) => {
        const { framer, session } = socket.data ?? {};
        if (framer && session) this.feed(framer, session, chunk);
      },
      drain: (socket: Socket<ControlData>) => socket.data?.writer?.onDrain(),
      close: (socket: Socket<ControlData>) => {
        this.handshakeOver(socket);
        socket.data?.session?.close("peer closed the control connection");
        onGone?.();
      },
      error: (socket: Socket<ControlData>, error: Error) => {
        socket.data?.session?.close(`socket error: ${error.message}`);
      },
    };
  }

  /** Frames a control chunk and hands the messages to the session (a framing error ends it). */
  private feed(framer: RpcapFramer, session: RpcapSession, chunk: Uint8Array): void {
    let messages;
    try {
      messages = framer.push(chunk);
    } catch (error) {
      if (error instanceof ProtocolError) session.framingError(error, framer.lastHeaderVersion);
      else session.close(`framing failed: ${(error as Error).message}`);
      return;
    }
    if (messages.some((m) => m.header.type === RpcapMessageType.STARTCAP_REQ)) this.slots.noteCaptureStart(session);
    if (messages.length > 0) session.receive(messages);
  }

  /**
   * inetd mode (libpcap's `rpcapd -i`): one session over a connection this process inherited
   * (standard input and output), without listening. The host list applies as for passive
   * connections. The caller feeds received bytes to `receive` and calls `peerClosed` at EOF;
   * `closed` resolves when the session ends, whoever ended it.
   */
  serveStream(stream: InheritedConnection): { receive(chunk: Uint8Array): void; peerClosed(): void; closed: Promise<void> } {
    const closed = Promise.withResolvers<void>();
    const peer = stream.peerAddress;
    if (this.options.isHostAllowed && !this.options.isHostAllowed(peer)) {
      this.options.log.warn(`refused ${peer}: not in the host list`);
      this.totals.sessionsRefused++;
      stream.send(encodeError(0, RpcapErrorCode.HOSTNOAUTH, "The host is not allowed to connect to this server"));
      stream.end();
      closed.resolve();
      return { receive() {}, peerClosed() {}, closed: closed.promise };
    }
    const gone = new AbortController();
    const environment = this.environment(gone.signal);
    const session = new RpcapSession(
      { send: (b) => stream.send(b), close: () => stream.end(), peerAddress: peer, tls: false, active: false },
      environment,
      (ended) => {
        this.sessions.delete(ended);
        this.slots.remove(ended);
        gone.abort();
        closed.resolve();
      },
    );
    const framer = new RpcapFramer((type) => maxRequestPlen(type, this.options.maxControlPlen));
    this.sessions.add(session);
    this.totals.sessionsOpened++;
    this.slots.add(session, peer, false);
    this.options.log.info(`session ${session.id} from ${peer} (inetd)`);
    return {
      receive: (chunk) => this.feed(framer, session, chunk),
      peerClosed: () => session.close("peer closed the control connection"),
      closed: closed.promise,
    };
  }

  private awaitHandshake(socket: Socket<ControlData>): void {
    const peer = socket.remoteAddress;
    // The host list is checked before the handshake, so hosts it refuses hold no handshake slot.
    if (this.options.isHostAllowed && !this.options.isHostAllowed(peer)) {
      this.options.log.warn(`refused ${peer}: not in the host list`);
      this.totals.sessionsRefused++;
      socket.end();
      return;
    }
    const key = peerKey(peer);
    const count = this.handshaking.get(key) ?? 0;
    const perAddress = this.options.maxSessionsPerAddress ?? DEFAULT_MAX_SESSIONS_PER_ADDRESS;
    if (count >= perAddress) {
      this.options.log.warn(`refused ${peer}: ${count} TLS handshakes pending from this address (limit ${perAddress})`);
      socket.end();
      return;
    }
    if (this.handshakingTotal >= this.options.maxSessions) {
      // Earliest eviction, as for the session slots: a handshake takes milliseconds, so the
      // oldest one pending is the likeliest to be a peer that will never finish it.
      const oldest = this.handshakingSockets.values().next().value;
      if (oldest) {
        this.options.log.warn(`${this.handshakingTotal} TLS handshakes pending: closing the oldest (${oldest.remoteAddress}) to admit ${peer}`);
        this.handshakeOver(oldest);
        oldest.end();
      }
    }
    this.handshaking.set(key, count + 1);
    this.handshakingTotal++;
    this.handshakingSockets.add(socket);
    const deadlineMs = this.options.pressureAuthTimeoutMs ?? DEFAULT_PRESSURE_AUTH_TIMEOUT_MS;
    const timer = setTimeout(() => {
      this.options.log.warn(`TLS handshake with ${peer} not done within ${deadlineMs} ms: closed`);
      this.handshakeOver(socket);
      socket.end();
    }, deadlineMs);
    socket.data = { ...socket.data, handshake: { key, timer } };
  }

  /** Releases a pending handshake's count and deadline (done, failed, timed out or closed). */
  private handshakeOver(socket: Socket<ControlData>): void {
    const pending = socket.data?.handshake;
    if (!pending) return;
    clearTimeout(pending.timer);
    socket.data.handshake = undefined;
    this.handshakingSockets.delete(socket);
    this.handshakingTotal--;
    const left = (this.handshaking.get(pending.key) ?? 1) - 1;
    if (left > 0) this.handshaking.set(pending.key, left);
    else this.handshaking.delete(pending.key);
  }

  private startSession(socket: Socket<ControlData>, active: boolean, tls: boolean): void {
    const peer = socket.remoteAddress;
    if (!active && this.options.isHostAllowed && !this.options.isHostAllowed(peer)) {
      this.options.log.warn(`refused ${peer}: not in the host list`);
      this.totals.sessionsRefused++;
      socket.write(encodeError(0, RpcapErrorCode.HOSTNOAUTH, "The host is not allowed to connect to this server"));
      socket.end();
      return;
    }
    if (!active) {
      const admission = this.slots.admit(peer);
      if (admission.evict) {
        const victim = admission.evict;
        this.options.log.warn(
          `every session slot is taken: closing session ${victim.id} (unauthenticated${victim.authFailures > 0 ? `, ${victim.authFailures} failed AUTH` : ", no AUTH yet"}) to admit ${peer}`,
        );
        this.writers.get(admission.evict)?.send(encodeError(0, RpcapErrorCode.INITTIMEOUT, "The RPCAP initial timeout has expired (the server is busy)"));
        admission.evict.close("pre-auth deadline under pressure (evicted for a new connection)");
      }
      if (admission.refusal) {
        this.options.log.warn(`refused ${peer}: ${admission.refusal}`);
        this.totals.sessionsRefused++;
        socket.write(encodeError(0, RpcapErrorCode.NETWORK, "Too many connections"));
        socket.end();
        return;
      }
    } else if (this.sessions.size >= this.options.maxSessions) {
      this.options.log.warn(`refused ${peer}: ${this.sessions.size} sessions already (limit ${this.options.maxSessions})`);
      this.totals.sessionsRefused++;
      socket.write(encodeError(0, RpcapErrorCode.NETWORK, "Too many connections"));
      socket.end();
      return;
    }
    let session: RpcapSession | undefined;
    const writer = new OrderedSocketWriter(socket as Socket<unknown>, MAX_UNREAD_CONTROL_BYTES, () =>
      session?.close("peer does not read its control connection"),
    );
    // Fires when the session ends, so an AUTH check still waiting for it is dropped unhashed.
    const gone = new AbortController();
    const environment = this.environment(gone.signal);
    session = new RpcapSession(
      { send: (b) => writer.send(b), close: () => writer.end(), peerAddress: unmapIPv4(peer), tls, active, localPort: socket.localPort, peerPort: socket.remotePort },
      environment,
      (closed) => {
        this.sessions.delete(closed);
        this.slots.remove(closed);
        gone.abort();
      },
    );
    const framer = new RpcapFramer((type) => maxRequestPlen(type, this.options.maxControlPlen));
    socket.data = { session, framer, writer };
    this.sessions.add(session);
    this.totals.sessionsOpened++;
    this.slots.add(session, peer, active);
    this.writers.set(session, writer);
    this.options.log.info(`session ${session.id} from ${peer}${active ? " (active)" : ""}`);
  }

  /** A session's environment; `gone` fires when it ends, so a pending AUTH check is dropped. */
  private environment(gone: AbortSignal): SessionEnvironment {
    const o = this.options;
    const authenticator = o.authenticator;
    const env: SessionEnvironment = {
      hub: o.hub,
      authenticator: {
        authenticate: async (request) => {
          const result = await authenticator.authenticate({ ...request, signal: gone });
          if (result.ok) this.totals.authSucceeded++;
          else this.totals.authFailed++;
          return result;
        },
      },
      listInterfaces: () => {
        const all = o.interfaces ? o.interfaces.list() : listInterfaces();
        const offered = o.offeredInterfaces;
        return offered ? all.filter((d) => offered.includes(d.name)) : all;
      },
      probeLinktype: async (device) => {
        if (o.interfaces) return o.interfaces.linktype(device);
        const probe = new LiveCaptureSource({ interface: device, snaplen: 64 });
        const info = await probe.start({ onBatch: () => {}, onEnd: () => {} });
        await probe.stop();
        return info.linktype;
      },
      openDataChannel: (request) => this.openDataChannel(request),
      idleTimeoutMs: o.idleTimeoutMs,
      authTimeoutMs: o.authTimeoutMs,
      dataQueueBytes: o.dataQueueBytes,
      ownTraffic: this.ownTraffic,
      log: o.log,
    };
    if (o.preselectedInterface) env.preselectedInterface = o.preselectedInterface;
    return env;
  }

  private async openDataChannel(request: DataChannelRequest): Promise<{ channel: Promise<DataChannel>; replyPortdata: number }> {
    if (request.udp) {
      const mtu = this.options.udpstrMtu;
      const packer = mtu > 0 ? this.options.createUdpstrPacker?.(mtu) : undefined;
      if (mtu > 0 && !packer) throw new Error("udpstr packing is not available");
      const channel = await openUdpDataChannel({
        host: request.peerAddress,
        port: request.portdata,
        ...(packer ? { packer } : {}),
        kind: packer ? "udpstr" : "udp",
      });
      return { channel: Promise.resolve(channel), replyPortdata: 0 };
    }
    if (request.serverOpens) {
      const channel = connectToDataClient({
        host: request.peerAddress,
        port: request.portdata,
        tls: request.tls ? this.options.tls : undefined,
        onPeerGone: request.onPeerGone,
      });
      return { channel, replyPortdata: 0 };
    }
    const listen = this.options.listen;
    const host = listen?.host ?? (listen?.ipv4Only ? "0.0.0.0" : "::");
    const server = listenForDataClient({
      host,
      port: this.options.dataPort,
      expectedPeer: request.peerAddress,
      ...(request.tls && this.options.tls ? { tls: this.options.tls } : {}),
      onPeerGone: request.onPeerGone,
    });
    return { channel: server.accepted, replyPortdata: server.port };
  }

  /** Starts the dialer of one collector (once: a known collector keeps its dialer). */
  private dialActive(target: { host: string; port: number }): void {
    const key = keyOf(target);
    if (this.stopped || this.dialers.has(key)) return;
    const dialer = new ActiveDialer(key, {
      retryMs: this.options.activeRetryMs,
      log: this.options.log,
      dial: (events) => {
        if (this.options.tls) return this.dialActiveTls(key, target, this.options.tls, events);
        const handlers = this.handlers(true, false, () => events.closed());
        Bun.connect<ControlData>({
          hostname: target.host,
          port: target.port,
          socket: {
            ...handlers,
            open: (socket) => {
              events.opened();
              handlers.open(socket);
            },
            connectError: (_socket, error) => events.failed(error),
          },
        }).catch((error: Error) => events.failed(error));
      },
    });
    this.dialers.set(key, dialer);
    dialer.start();
  }

  /**
   * Active mode over TLS (-S): this daemon dials the collector and is the TLS server on that
   * connection, as libpcap's rpcapd is (src/net/reversed-tls.ts); the collector verifies our
   * certificate. A failed handshake ends the connection and the dialer tries again later.
   */
  private dialActiveTls(key: string, target: { host: string; port: number }, files: { cert: string; key: string }, events: DialEvents): void {
    const raw = netConnect({ host: target.host, port: target.port });
    const failed = (error: Error) => events.failed(error);
    raw.once("error", failed);
    raw.once("connect", () => {
      raw.off("error", failed);
      raw.on("error", () => {}); // reported by the TLS socket above it, or seen as the close
      raw.once("close", () => events.closed());
      events.opened();
      tlsServerOnDialed(raw, files).then(
        (secure) => {
          if (this.stopped) return void secure.destroy();
          const handlers = this.handlers(true, true) as unknown as SocketLikeHandlers<ControlData>;
          const socket = socketLike<ControlData>(secure, raw, {}, handlers);
          this.startSession(socket as unknown as Socket<ControlData>, true, true);
        },
        // The collector that refuses our certificate just closes: say what it may have disliked.
        (error: Error) => this.options.log.warn(`collector ${key}: ${error.message} (does it run with -S, and trust the CA that signed -X?)`),
      );
    });
  }
}

/** The daemon could not open its listener (the operator's to fix): one line naming the address. */
export class ListenError extends ProbeError {
  override readonly name = "ListenError";
  constructor(message: string) {
    super("listen-failed", "runtime", message);
  }
}

function describeListenFailure(error: Error): string {
  switch ((error as { code?: string }).code) {
    case "EADDRINUSE":
      return "the port is in use (EADDRINUSE)";
    case "EADDRNOTAVAIL":
      return "no such local address (EADDRNOTAVAIL)";
    case "EACCES":
      return "permission denied (EACCES: ports below 1024 need CAP_NET_BIND_SERVICE)";
    default:
      return (error as { code?: string }).code ?? error.message;
  }
}

function keyOf(target: { host: string; port: number }): string {
  return `${target.host}:${target.port}`;
}
