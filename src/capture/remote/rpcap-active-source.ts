// Active-mode RPCAP as capture sources (libpcap#960): probes running an active rpcapd
// (libpcap's `rpcapd -a`, probe's `rpcapd --active`) dial in; this side accepts the TCP
// connection and then acts as the RPCAP client on it: AUTH, OPEN, STARTCAP (the daemon connects
// back for data, as libpcap's rpcapd does in active mode). Each probe is one CaptureSource,
// named by its address (or a configured name); when a probe reconnects, the same source picks
// the stream up again, so outputs built on it (a PCAP-over-IP listener, a file) carry on.
import type { TCPSocketListener } from "bun";
import { RpcapClient } from "../../protocols/rpcap/index.ts";
import { unmapIPv4 } from "../../net/ip-address.ts";
import type { BpfInstruction } from "../../packet/bpf/index.ts";
import { MAXIMUM_SNAPLEN, type PacketBatch } from "../../packet/packet-batch.ts";
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "../capture-source.ts";
import { CaptureError } from "../errors.ts";
import { compileFilter } from "../libpcap/compile-filter.ts";
import { UdpstrReassembler, type UdpstrReassemblerCounters } from "../../protocols/udpstr/index.ts";
import { createBatchFilter, type BatchFilter } from "../packet-filter.ts";
import type { BpfProgram } from "../../packet/bpf/index.ts";
import type { Logger } from "../../logging/index.ts";
import { insecureWarning, type TlsClientSettings } from "../../net/tls-client.ts";
import { addressAllowed, type Cidr } from "../../net/addresses.ts";

/**
 * Probes named at once (capturing, or remembered after they left so their stream resumes). Each
 * holds a control and a data connection and outputs in the collector; 64 matches rpcapd's default
 * session cap. Only a probe whose connection reached STARTCAP takes a name: a peer that never
 * captures never counts. When every name is taken, the probe that left longest ago is forgotten
 * for a new one; with all 64 connected, the newcomer is refused (logged).
 */
export const MAX_ACTIVE_PROBES = 64;

/**
 * Connections from one address (IPv4, or the IPv6 address as reported), setting up or
 * capturing. Below {@link MAX_ACTIVE_PROBES} so one host cannot take every slot; 8 leaves room
 * for several probes behind one NAT address.
 */
export const MAX_ACTIVE_CONNECTIONS_PER_ADDRESS = 8;

/**
 * Connections still setting up (TLS handshake, AUTH, OPEN, STARTCAP) at once. When all are
 * taken, a new connection puts out the oldest one that has not yet answered AUTH (a real probe
 * answers within milliseconds), so a flood of silent peers cannot keep a probe out.
 */
export const MAX_PENDING_ACTIVE_CONNECTIONS = 64;

/**
 * A connection that has not reached STARTCAP (its capture running) this long after it was
 * accepted is closed and its slot freed. A probe answers AUTH, OPEN and STARTCAP in a few
 * round trips (plus one password hash, ~0.2 s); 10 s is generous on any link a capture can use
 * and frees a silent peer's slot long before libpcap's 90 s RPCAP_TIMEOUT_INIT would.
 */
export const ACTIVE_PROBE_SETUP_TIMEOUT_MS = 10_000;

/** Marker libpcap-derived daemons (ExtraHop's, probe's -i) put on the preselected interface. */
const PRESELECTED_SUFFIX = ";preselected";

export interface ActiveCaptureSettings {
  /** Interface to OPEN; undefined = the probe's preselected one, else the first it lists. */
  device?: string;
  /** Capture filter run on the probe (compiled here for the link type the probe reports). */
  filter?: string;
  snaplen?: number;
  promiscuous?: boolean;
  /** Password authentication; undefined = NULL authentication. */
  username?: string;
  password?: string;
  /**
   * UDP data channel read as udpstr (ExtraHop's `rpcapd -t MTU`, probe's `rpcapd -t`): the
   * probe packs records into datagrams; they are reassembled here (losses counted).
   */
  udpstr?: boolean;
}

export interface RpcapActiveListenerOptions extends ActiveCaptureSettings {
  host: string;
  port: number;
  /**
   * Probes dial in with TLS (`rpcapd --active -S`): this side is the TLS client, as libpcap's
   * collector is, and verifies each probe's certificate against its address (--tls-ca,
   * --tls-insecure). Undefined = plain TCP.
   */
  tls?: TlsClientSettings;
  /** Names for probe addresses ("10.0.0.5" -> "edge-1"); others are named by their address. */
  names?: ReadonlyMap<string, string>;
  /** Only peers in these blocks may dial in (checked at TCP accept); empty or undefined = anyone. */
  allow?: readonly Cidr[];
  /** Default {@link MAX_ACTIVE_PROBES}. */
  maxProbes?: number;
  /** Default {@link MAX_ACTIVE_CONNECTIONS_PER_ADDRESS}. */
  maxConnectionsPerAddress?: number;
  /** Default {@link ACTIVE_PROBE_SETUP_TIMEOUT_MS}. */
  setupTimeoutMs?: number;
  /** A probe seen for the first time: the caller starts the source and wires its outputs. */
  onProbe(source: RpcapActivePeerSource): void;
  /** A probe that left was forgotten to make room for a new one: the caller closes its outputs. */
  onForget?(source: RpcapActivePeerSource): void;
  log: Logger;
}

/** A connection from TCP accept until its capture runs (or it ends): counted, with a deadline. */
interface PendingConnection {
  address: string;
  acceptedAt: number;
  /** Closes the connection (the raw socket during a TLS handshake, then the client). */
  cancel: () => void;
  /** The peer answered AUTH: it speaks RPCAP (kept longer than a silent peer when evicting). */
  answeredAuth: boolean;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Accepts active rpcapd connections and hands each to its probe's source. Every connection is
 * bounded from TCP accept: by --allow, per address, in number while setting up (earliest
 * eviction of silent peers), and by a setup deadline; a name is taken only at STARTCAP.
 */
export class RpcapActiveListener {
  private listener: { readonly port: number | undefined; stop(closeActiveConnections?: boolean): void } | null = null;
  private readonly sources = new Map<string, RpcapActivePeerSource>();
  private readonly pending = new Set<PendingConnection>();
  /** Since start, for logs and tests: connections refused at accept, evicted, timed out. */
  readonly totals = { refusedNotAllowed: 0, refusedPerAddress: 0, evicted: 0, setupTimedOut: 0, refusedFull: 0 };

  constructor(private readonly options: RpcapActiveListenerOptions) {}

  get port(): number | undefined {
    return this.listener?.port;
  }

  /** Probes that have captured (connected now or waiting to reconnect). */
  get probes(): readonly RpcapActivePeerSource[] {
    return [...this.sources.values()].filter((source) => source.everCaptured);
  }

  /** Connections accepted that have not reached STARTCAP yet. */
  get pendingConnections(): number {
    return this.pending.size;
  }

  private get maxProbes(): number {
    return this.options.maxProbes ?? MAX_ACTIVE_PROBES;
  }

  async listen(): Promise<void> {
    const tls = this.options.tls;
    const { host, port, log } = this.options;
    if (tls?.insecure) log.warn(insecureWarning(`active connections on ${host}:${port}`));
    const admit = (peer: string, cancel: () => void) => this.admit(peer, cancel);
    this.listener = tls
      ? await RpcapClient.listenForActiveTls<PendingConnection>(host, port, tls, (client, ticket) => this.accept(client, ticket), (peer, reason, ticket) => {
          this.release(ticket);
          log.warn(`refused active connection from ${peer}: ${reason}`);
        }, admit)
      : RpcapClient.listenForActive<PendingConnection>(host, port, (client, ticket) => this.accept(client, ticket), admit);
  }

  /** Stops listening and stops every probe's source. */
  async stop(): Promise<void> {
    this.listener?.stop(true);
    this.listener = null;
    for (const ticket of [...this.pending]) {
      this.release(ticket);
      ticket.cancel();
    }
    await Promise.all([...this.sources.values()].map((source) => source.stop()));
  }

  /** At TCP accept, before a byte is read: the allow list, the per-address cap, the pending cap. */
  private admit(peer: string, cancel: () => void): PendingConnection | null {
    const address = unmapIPv4(peer);
    const { allow, log } = this.options;
    if (allow && allow.length > 0 && !addressAllowed(address, allow)) {
      this.totals.refusedNotAllowed++;
      log.warn(`refused active connection from ${address}: not in --allow`);
      return null;
    }
    const perAddress = this.options.maxConnectionsPerAddress ?? MAX_ACTIVE_CONNECTIONS_PER_ADDRESS;
    const fromAddress = this.connectionsFrom(address);
    if (fromAddress >= perAddress) {
      this.totals.refusedPerAddress++;
      log.warn(`refused active connection from ${address}: ${fromAddress} connections from this address already (limit ${perAddress} per address)`);
      return null;
    }
    if (this.pending.size >= MAX_PENDING_ACTIVE_CONNECTIONS) {
      const victim = this.evictionCandidate();
      this.totals.evicted++;
      log.warn(`${this.pending.size} active connections setting up: closing the oldest from ${victim.address} (${victim.answeredAuth ? "still setting up" : "has not answered AUTH"}) to admit ${address}`);
      this.release(victim);
      victim.cancel();
    }
    const setupTimeoutMs = this.options.setupTimeoutMs ?? ACTIVE_PROBE_SETUP_TIMEOUT_MS;
    const ticket: PendingConnection = {
      address,
      acceptedAt: performance.now(),
      cancel,
      answeredAuth: false,
      timer: setTimeout(() => {
        if (!this.pending.has(ticket)) return;
        this.totals.setupTimedOut++;
        log.warn(`active connection from ${address}: not capturing within ${setupTimeoutMs} ms; closed`);
        this.release(ticket);
        ticket.cancel();
      }, setupTimeoutMs),
    };
    this.pending.add(ticket);
    return ticket;
  }

  /** Oldest pending connection that has not answered AUTH, else the oldest of all. */
  private evictionCandidate(): PendingConnection {
    let silent: PendingConnection | undefined;
    let oldest: PendingConnection | undefined;
    for (const ticket of this.pending) {
      if (!oldest || ticket.acceptedAt < oldest.acceptedAt) oldest = ticket;
      if (!ticket.answeredAuth && (!silent || ticket.acceptedAt < silent.acceptedAt)) silent = ticket;
    }
    return (silent ?? oldest)!;
  }

  /** Connections from `address` setting up or capturing now. */
  private connectionsFrom(address: string): number {
    let count = 0;
    for (const ticket of this.pending) if (ticket.address === address) count++;
    for (const source of this.sources.values()) if (source.address === address && source.capturing) count++;
    return count;
  }

  /** A pending connection's count and deadline given back (it captures, failed or closed). */
  private release(ticket: PendingConnection): void {
    if (!this.pending.delete(ticket)) return;
    clearTimeout(ticket.timer);
  }

  private accept(client: RpcapClient, ticket: PendingConnection): void {
    if (!this.pending.has(ticket)) {
      // Evicted or timed out during its TLS handshake.
      client.close();
      return;
    }
    ticket.cancel = () => client.close();
    void client.whenClosed.then(() => this.release(ticket));
    const address = ticket.address;
    const base = this.options.names?.get(address) ?? address;
    // Probes behind one address (NAT, or several on one host) are told apart by arrival: the
    // first free name among base, base-2, ... ("#" would end an rpcap:// URL). A probe that
    // reconnects takes the first name not connected now: its own when alone at its address.
    let name = base;
    for (let n = 2; this.sources.get(name)?.connected; n++) name = `${base}-${n}`;
    const existing = this.sources.get(name);
    if (existing?.everCaptured) {
      existing.attach(client, this.connectionEvents(ticket, existing));
      return;
    }
    // A name no probe has captured under yet: a fresh source, forgotten again if this
    // connection never captures (it then never counted against MAX_ACTIVE_PROBES).
    if (existing) void existing.stop();
    const source = new RpcapActivePeerSource(name, address, this.options, this.options.log);
    this.sources.set(name, source);
    void client.whenClosed.then(() => {
      if (!source.everCaptured && this.sources.get(name) === source) {
        this.sources.delete(name);
        // After its run has reported why the connection ended (a few promise turns later).
        setImmediate(() => void source.stop());
      }
    });
    source.attach(client, this.connectionEvents(ticket, source));
    this.options.onProbe(source);
  }

  /** What a source tells the listener about one connection's progress. */
  private connectionEvents(ticket: PendingConnection, source: RpcapActivePeerSource): ConnectionEvents {
    return {
      answeredAuth: () => void (ticket.answeredAuth = true),
      mayCapture: () => this.claimName(source),
      capturing: () => this.release(ticket),
    };
  }

  /**
   * Called before a source's first STARTCAP: throws when every name is held by a connected
   * probe; forgets the probe that left longest ago when every name is taken otherwise.
   */
  private claimName(source: RpcapActivePeerSource): void {
    if (source.everCaptured) return;
    const named = this.probes;
    if (named.length < this.maxProbes) return;
    const departed = named.filter((p) => !p.connected).sort((a, b) => a.lastSeenAt - b.lastSeenAt)[0];
    if (!departed) {
      this.totals.refusedFull++;
      throw new Error(`${named.length} probes connected already (limit ${this.maxProbes})`);
    }
    this.options.log.warn(`${named.length} probes known (limit ${this.maxProbes}): forgetting ${departed.label}, disconnected longest, for ${source.label}`);
    this.sources.delete(departed.name);
    void departed.stop();
    this.options.onForget?.(departed);
  }
}

/** Progress of one connection, reported by its source to the listener. */
interface ConnectionEvents {
  answeredAuth(): void;
  /** Throws when the listener has no name slot for a first capture. */
  mayCapture(): void;
  capturing(): void;
}

/** One probe's packets, across its reconnections. */
export class RpcapActivePeerSource implements CaptureSource {
  readonly description: string;
  private client: RpcapClient | null = null;
  private handlers: CaptureHandlers | null = null;
  private info: CaptureInfo | null = null;
  private delivered = 0;
  private stopped = false;
  /** Extra readers of this probe's packets (passive RPCAP re-serving), each with its filter. */
  private readonly taps = new Set<{ handlers: CaptureHandlers; filter?: BatchFilter }>();
  /** The first capture's start, which start() reports. */
  private readonly firstStart = Promise.withResolvers<CaptureInfo>();
  /** Completed connections (the first one included). */
  connections = 0;
  /** The connection whose capture is running (null before the first STARTCAP). */
  private capturingClient: RpcapClient | null = null;
  private leftAt = 0;
  /** The listener's view of each connection (absent for sources used without one). */
  private readonly events = new WeakMap<RpcapClient, ConnectionEvents>();

  constructor(
    readonly name: string,
    readonly address: string,
    private readonly settings: ActiveCaptureSettings,
    private readonly log: Logger,
  ) {
    this.description = `rpcap active probe ${name}`;
    this.firstStart.promise.catch(() => {});
  }

  /** "edge-1 (10.0.0.5)", or the address alone when it is the name. */
  get label(): string {
    return this.name === this.address ? this.name : `${this.name} (${this.address})`;
  }

  /** Packets this probe has delivered, over all its connections. */
  get packetsDelivered(): number {
    return this.delivered;
  }

  /** The stream's link type, snap length and precision, fixed by the first capture. */
  get captureInfo(): CaptureInfo | null {
    return this.info;
  }

  /** Whether one of this probe's connections has reached STARTCAP (its stream exists). */
  get everCaptured(): boolean {
    return this.info !== null;
  }

  /** Whether a control connection from this probe is open now. */
  get connected(): boolean {
    return this.client !== null && !this.client.isClosed;
  }

  /** Whether the open connection reached STARTCAP (not only connected and setting up). */
  get capturing(): boolean {
    return this.connected && this.capturingClient === this.client;
  }

  /** When this probe last had a connection open (performance.now() ms; for forgetting the oldest). */
  get lastSeenAt(): number {
    return this.connected ? performance.now() : this.leftAt;
  }

  /** Resolves once the first connection captures (its link type fixes the stream's). */
  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    this.handlers = handlers;
    if (this.client && !this.client.isClosed) void this.run(this.client);
    return this.firstStart.promise;
  }

  /** A (re)connection from this probe: it replaces any previous one. */
  attach(client: RpcapClient, events?: ConnectionEvents): void {
    if (this.stopped) {
      client.close();
      return;
    }
    if (events) this.events.set(client, events);
    const previous = this.client;
    this.client = client;
    if (previous && !previous.isClosed) previous.close();
    void client.whenClosed.then((error) => {
      if (this.client !== client) return;
      this.leftAt = performance.now();
      if (this.stopped || !this.info) return;
      this.log.warn(`probe ${this.name} disconnected${error ? ` (${oneLine(error.message)})` : ""}; its stream resumes when it reconnects`);
    });
    if (this.handlers) void this.run(client);
  }

  private async run(client: RpcapClient): Promise<void> {
    const handlers = this.handlers!;
    const events = this.events.get(client);
    try {
      await client.authenticate(this.settings.username, this.settings.password);
      events?.answeredAuth();
      const device = this.settings.device ?? (await this.chooseDevice(client));
      const { linktype } = await client.open(device);
      if (this.info && linktype !== this.info.linktype) {
        throw new Error(`interface ${device} has link type ${linktype}, the stream so far ${this.info.linktype}`);
      }
      const snaplen = this.settings.snaplen ?? MAXIMUM_SNAPLEN;
      const filter = this.settings.filter ? compileFilter(this.settings.filter, linktype, snaplen) : [];
      if (this.client !== client || this.stopped) return;
      events?.mayCapture();
      const deliver = (batch: PacketBatch) => {
        if (this.client !== client || this.stopped) return;
        this.delivered += batch.count;
        void handlers.onBatch(batch);
        for (const tap of this.taps) {
          const mine = tap.filter ? tap.filter(batch) : batch;
          if (mine.count > 0) void tap.handlers.onBatch(mine);
        }
      };
      await client.startCapture({
        snaplen,
        promiscuous: this.settings.promiscuous ?? true,
        filter: filter as readonly BpfInstruction[],
        ...(this.settings.udpstr ? { udp: true, onDatagram: this.udpstrReader(linktype, snaplen, deliver) } : { serverOpen: true }),
        onBatch: deliver,
      });
      if (this.client !== client || this.stopped || client.isClosed) return;
      this.connections++;
      this.capturingClient = client;
      events?.capturing();
      const info = this.info ?? { linktype, snaplen, precision: "micro" as const, description: `${this.description} (${device})` };
      this.info = info;
      this.log.info(`probe ${this.label} capturing on ${device}${this.connections > 1 ? `, connection ${this.connections}: stream resumed` : ""}`);
      this.firstStart.resolve(info);
    } catch (error) {
      const message = `probe ${this.label}: ${oneLine((error as Error).message)}; connection closed`;
      client.close();
      // Before the first capture, start()'s caller reports the failure; after it, we do.
      if (this.info) this.log.warn(message);
      else this.firstStart.reject(new CaptureError("capture-failed", message));
    }
  }

  /**
   * udpstr datagrams to batches: records completed by the datagrams of one event-loop turn go
   * out as one batch; a datagram lost cuts only the records it carried (counted, logged at stop).
   */
  private udpstrReader(linktype: number, snaplen: number, deliver: (batch: PacketBatch) => void): (datagram: Uint8Array) => void {
    const reassembler = new UdpstrReassembler({ linktype, snaplen });
    this.udpstrCounters.push(reassembler.counters);
    let scheduled = false;
    return (datagram) => {
      reassembler.push(datagram);
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        const taken = reassembler.take();
        if (taken) deliver(taken.batch);
      });
    };
  }

  /** udpstr loss counters of every connection so far (empty without udpstr). */
  readonly udpstrCounters: UdpstrReassemblerCounters[] = [];

  /** The interface a probe preselected (ExtraHop-style -i), else the first it lists. */
  private async chooseDevice(client: RpcapClient): Promise<string> {
    const interfaces = await client.findAllInterfaces();
    const chosen = interfaces.find((i) => i.description.endsWith(PRESELECTED_SUFFIX)) ?? interfaces[0];
    if (!chosen) throw new Error("the probe lists no interfaces");
    return chosen.name;
  }

  /**
   * Another reader of this probe's packets, as its own CaptureSource (a CaptureHub's factory
   * hands these out when the collector re-serves probes over passive RPCAP). Its filter runs
   * here, in userland, on what the probe sends; it ends when the probe's source stops.
   */
  openTap(filter?: string | readonly BpfInstruction[]): CaptureSource {
    const probe = this;
    let entry: { handlers: CaptureHandlers; filter?: BatchFilter } | null = null;
    let delivered = 0;
    return {
      description: `${this.description} (re-served)`,
      async start(handlers) {
        const info = await probe.firstStart.promise;
        entry = {
          handlers: { onBatch: (batch) => void ((delivered += batch.count), handlers.onBatch(batch)), onEnd: handlers.onEnd },
          ...(filter !== undefined && filter.length > 0 ? { filter: createBatchFilter(filter as string | BpfProgram, info.linktype, info.snaplen) } : {}),
        };
        probe.taps.add(entry);
        return info;
      },
      async setFilter(next) {
        if (!entry || !probe.info) throw new CaptureError("capture-failed", "not started");
        entry.filter = createBatchFilter(next as string | BpfProgram, probe.info.linktype, probe.info.snaplen);
      },
      stats: async () => ({ delivered }),
      async stop() {
        if (entry) probe.taps.delete(entry);
        entry = null;
        return { delivered };
      },
    };
  }

  async setFilter(filter: string | readonly BpfInstruction[]): Promise<void> {
    const client = this.client;
    if (!client || client.isClosed || !this.info) throw new CaptureError("capture-failed", `${this.description}: not connected`);
    const program = typeof filter === "string" ? compileFilter(filter, this.info.linktype, this.info.snaplen) : [...filter];
    await client.updateFilter(program);
  }

  async stats(): Promise<CaptureStats> {
    const client = this.client;
    if (!client || client.isClosed) return { delivered: this.delivered };
    try {
      const s = await client.stats();
      return { delivered: this.delivered, kernel: { received: s.ifrecv, dropped: s.krnldrop, interfaceDropped: s.ifdrop } };
    } catch {
      return { delivered: this.delivered };
    }
  }

  async stop(): Promise<CaptureStats> {
    if (this.stopped) return { delivered: this.delivered };
    this.stopped = true;
    this.client?.close();
    this.firstStart.reject(new CaptureError("capture-failed", `${this.description}: stopped`));
    this.handlers?.onEnd("stopped");
    for (const tap of [...this.taps]) tap.handlers.onEnd("stopped");
    this.taps.clear();
    return { delivered: this.delivered };
  }
}

/** Peer-supplied text (server error messages) on one line, without control characters. */
function oneLine(text: string): string {
  return JSON.stringify(text.slice(0, 200)).slice(1, -1);
}

export interface RpcapActiveInputOptions extends ActiveCaptureSettings {
  host: string;
  port: number;
  /** As RpcapActiveListenerOptions.tls. */
  tls?: TlsClientSettings;
  names?: ReadonlyMap<string, string>;
  allow?: readonly Cidr[];
  maxProbes?: number;
  maxConnectionsPerAddress?: number;
  setupTimeoutMs?: number;
  log: Logger;
}

/**
 * Every probe that dials in, as one CaptureSource: the pipeline's `rpcap-active` input (hooks,
 * rotation, metrics and every output apply to all probes' packets together). start() resolves
 * once the first probe captures; its link type is the stream's, and a probe that captures
 * another is left out (logged). Per-probe outputs are `probe collect --rpcap-active-listen`'s.
 */
export class RpcapActiveInputSource implements CaptureSource {
  readonly description: string;
  private listener: RpcapActiveListener | null = null;
  private info: CaptureInfo | null = null;
  private delivered = 0;
  private stopped = false;
  private handlers: CaptureHandlers | null = null;

  constructor(private readonly options: RpcapActiveInputOptions) {
    this.description = `rpcap active probes on ${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}`;
  }

  /** The probes seen so far (for metrics and logs). */
  get probes(): readonly RpcapActivePeerSource[] {
    return this.listener?.probes ?? [];
  }

  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    this.handlers = handlers;
    const first = Promise.withResolvers<CaptureInfo>();
    const log = this.options.log;
    this.listener = new RpcapActiveListener({
      ...this.options,
      onProbe: (probe) => {
        probe
          .start({
            onBatch: (batch) => {
              if (this.stopped || !this.info || batch.linktype !== this.info.linktype) return;
              this.delivered += batch.count;
              return handlers.onBatch(batch);
            },
            onEnd: () => {},
          })
          .then(
            (info) => {
              if (!this.info) {
                this.info = { ...info, description: this.description };
                first.resolve(this.info);
              } else if (info.linktype !== this.info.linktype) {
                log.warn(`probe ${probe.label}: link type ${info.linktype} differs from the stream's ${this.info.linktype}; its packets are left out`);
              }
            },
            (error: Error) => log.warn(error.message),
          );
      },
    });
    try {
      await this.listener.listen();
    } catch (error) {
      throw new CaptureError("capture-failed", `${this.description}: cannot listen (${(error as Error).message.split("\n")[0]})`);
    }
    log.info(`accepting active rpcapd connections on ${this.options.host}:${this.listener.port}`);
    return first.promise;
  }

  async setFilter(filter: string | readonly BpfInstruction[]): Promise<void> {
    for (const probe of this.probes) if (probe.connected) await probe.setFilter(filter);
  }

  async stats(): Promise<CaptureStats> {
    return { delivered: this.delivered };
  }

  async stop(): Promise<CaptureStats> {
    if (!this.stopped) {
      this.stopped = true;
      await this.listener?.stop();
      this.handlers?.onEnd("stopped");
    }
    return { delivered: this.delivered };
  }
}
