// Active-mode RPCAP as capture sources (libpcap#960): probes running an active rpcapd
// (libpcap's `rpcapd -a`, probe's `rpcapd --active`) dial in; this side accepts the TCP
// connection and then acts as the RPCAP client on it: AUTH, OPEN, STARTCAP (the daemon connects
// back for data, as libpcap's rpcapd does in active mode). Each probe is one CaptureSource,
// named by its address (or a configured name); when a probe reconnects, the same source picks
// the stream up again, so outputs built on it (a PCAP-over-IP listener, a file) carry on.
import type { TCPSocketListener } from "bun";
import { RpcapClient } from "../../protocols/rpcap/index.ts";
import { unmapIPv4 } from "../../protocols/ip-address.ts";
import type { BpfInstruction } from "../../packet/bpf/index.ts";
import { MAXIMUM_SNAPLEN, type PacketBatch } from "../../packet/packet-batch.ts";
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "../capture-source.ts";
import { CaptureError } from "../errors.ts";
import { compileFilter } from "../libpcap/compile-filter.ts";
import { UdpstrReassembler, type UdpstrReassemblerCounters } from "../../protocols/udpstr/index.ts";
import { createBatchFilter, type BatchFilter } from "../packet-filter.ts";
import type { BpfProgram } from "../../packet/bpf/index.ts";
import type { Logger } from "../../logging/index.ts";
import { insecureWarning, type TlsClientSettings } from "../../config/tls-client.ts";

/**
 * Probes connected or remembered at once. Each holds a control and a data connection and an
 * output per probe in the collector; 64 matches rpcapd's default session cap. A connection past
 * the cap is closed at once (logged), so a flood of dialling peers costs nothing that grows.
 */
export const MAX_ACTIVE_PROBES = 64;

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
  maxProbes?: number;
  /** A probe seen for the first time: the caller starts the source and wires its outputs. */
  onProbe(source: RpcapActivePeerSource): void;
  log: Logger;
}

/** Accepts active rpcapd connections and hands each to its probe's source. */
export class RpcapActiveListener {
  private listener: Pick<TCPSocketListener<{ client: RpcapClient }>, "port" | "stop"> | null = null;
  private readonly sources = new Map<string, RpcapActivePeerSource>();

  constructor(private readonly options: RpcapActiveListenerOptions) {}

  get port(): number | undefined {
    return this.listener?.port;
  }

  get probes(): readonly RpcapActivePeerSource[] {
    return [...this.sources.values()];
  }

  async listen(): Promise<void> {
    const tls = this.options.tls;
    if (tls?.insecure) this.options.log.warn(insecureWarning(`active connections on ${this.options.host}:${this.options.port}`));
    this.listener = tls
      ? await RpcapClient.listenForActiveTls(this.options.host, this.options.port, tls, (client) => this.accept(client), (peer, reason) =>
          this.options.log.warn(`refused active connection from ${peer}: ${reason}`),
        )
      : RpcapClient.listenForActive(this.options.host, this.options.port, (client) => this.accept(client));
  }

  /** Stops listening and stops every probe's source. */
  async stop(): Promise<void> {
    this.listener?.stop(true);
    this.listener = null;
    await Promise.all([...this.sources.values()].map((source) => source.stop()));
  }

  private accept(client: RpcapClient): void {
    const address = unmapIPv4(client.peerHost);
    const base = this.options.names?.get(address) ?? address;
    // Probes behind one address (NAT, or several on one host) are told apart by arrival: the
    // first free name among base, base-2, ... ("#" would end an rpcap:// URL). A probe that
    // reconnects takes the first name not connected now: its own when alone at its address.
    let name = base;
    for (let n = 2; this.sources.get(name)?.connected; n++) name = `${base}-${n}`;
    let source = this.sources.get(name);
    if (source && !source.everCaptured) {
      // Its first connection never got to capture (refused auth, bad interface): its outputs
      // were never set up, so this connection starts afresh.
      void source.stop();
      this.sources.delete(name);
      source = undefined;
    }
    if (!source) {
      if (this.sources.size >= (this.options.maxProbes ?? MAX_ACTIVE_PROBES)) {
        this.options.log.warn(`refused active connection from ${address}: ${this.sources.size} probes already (limit ${this.options.maxProbes ?? MAX_ACTIVE_PROBES})`);
        client.close();
        return;
      }
      source = new RpcapActivePeerSource(name, address, this.options, this.options.log);
      this.sources.set(name, source);
      source.attach(client);
      this.options.onProbe(source);
      return;
    }
    source.attach(client);
  }
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

  /** Resolves once the first connection captures (its link type fixes the stream's). */
  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    this.handlers = handlers;
    if (this.client && !this.client.isClosed) void this.run(this.client);
    return this.firstStart.promise;
  }

  /** A (re)connection from this probe: it replaces any previous one. */
  attach(client: RpcapClient): void {
    if (this.stopped) {
      client.close();
      return;
    }
    const previous = this.client;
    this.client = client;
    if (previous && !previous.isClosed) previous.close();
    void client.whenClosed.then((error) => {
      if (this.client !== client || this.stopped || !this.info) return;
      this.log.warn(`probe ${this.name} disconnected${error ? ` (${oneLine(error.message)})` : ""}; its stream resumes when it reconnects`);
    });
    if (this.handlers) void this.run(client);
  }

  private async run(client: RpcapClient): Promise<void> {
    const handlers = this.handlers!;
    try {
      await client.authenticate(this.settings.username, this.settings.password);
      const device = this.settings.device ?? (await this.chooseDevice(client));
      const { linktype } = await client.open(device);
      if (this.info && linktype !== this.info.linktype) {
        throw new Error(`interface ${device} has link type ${linktype}, the stream so far ${this.info.linktype}`);
      }
      const snaplen = this.settings.snaplen ?? MAXIMUM_SNAPLEN;
      const filter = this.settings.filter ? compileFilter(this.settings.filter, linktype, snaplen) : [];
      if (this.client !== client || this.stopped) return;
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
      this.connections++;
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
  maxProbes?: number;
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
