// RpcapSession: one RPCAP control connection's state machine. Messages come in from the
// framer; replies go out through the ControlChannel; the session owns its capture
// subscription and data channel and releases them in close(), the one exit. A peer's fault
// gets an RPCAP error echoing its version and costs only this session.
import { validateBpfProgram, type BpfProgram } from "../packet/bpf/index.ts";
import type { CaptureInterface } from "../capture/libpcap/devices.ts";
import type { PacketBatch } from "../packet/packet-batch.ts";
import { peerText, type Logger } from "../logging/index.ts";
import type { SharedCaptures, Subscription } from "../pipeline/capture-hub.ts";
import { DEFAULT_FLUSH_INTERVAL_MS } from "../capture/live-capture-source.ts";
import { ProtocolError } from "../packet/protocol-error.ts";
import {
  decodeAuthRequest,
  decodeFilterBlock,
  decodeOpenRequest,
  decodeSamplingRequest,
  decodeStartCapRequest,
  encodeAuthReplyPayload,
  encodeError,
  encodeFindAllIfReplyPayload,
  encodeMessage,
  encodeOpenReplyPayload,
  encodeStartCapReplyPayload,
  encodeStatsReplyPayload,
  expectPlen,
  RPCAP_MAX_VERSION,
  RPCAP_MIN_VERSION,
  RPCAP_PKTHDR_BYTES,
  RPCAP_HEADER_BYTES,
  RPCAP_SAMPLING_BYTES,
  RPCAP_REPLY_BIT,
  RpcapAuthType,
  RpcapErrorCode,
  RpcapMessageType,
  rpcapMessageName,
  SamplingMethod,
  StartCapFlag,
  type RpcapMessage,
  type WireInterface,
} from "../protocols/rpcap/index.ts";
import type { DataChannel } from "./data-channel.ts";
import { OwnTraffic, ownTrafficFilter, type OwnConnection } from "./own-traffic.ts";
import { Sampler, type Sampling } from "./sampling.ts";

/** Decides AUTH requests (src/daemon/auth implements it). */
export interface SessionAuthenticator {
  authenticate(request: {
    peerAddress: string;
    authType: number;
    username: string;
    password: string;
  }): Promise<{ ok: true; user: string } | { ok: false; publicMessage: string; logDetail: string; pauseMs: number }>;
}

export interface ControlChannel {
  send(bytes: Uint8Array): void;
  /** Ends the connection after what was sent is flushed. */
  close(): void;
  readonly peerAddress: string;
  readonly tls: boolean;
  /** True when the daemon dialled out to the collector (active mode). */
  readonly active: boolean;
  /** This connection's ports (ours and the peer's), left out of the session's capture. */
  readonly localPort?: number;
  readonly peerPort?: number;
}

/** What the session needs from the daemon around it; injected so tests can swap pieces. */
export interface SessionEnvironment {
  /** The pipeline's shared captures: its stages (hooks...) have run once before a batch gets here. */
  hub: SharedCaptures;
  authenticator: SessionAuthenticator;
  listInterfaces(): CaptureInterface[];
  /** Opens the device briefly to learn its link type (and surface permission errors) at OPEN. */
  probeLinktype(device: string): Promise<number>;
  openDataChannel(request: DataChannelRequest): Promise<{ channel: Promise<DataChannel>; replyPortdata: number }>;
  preselectedInterface?: string;
  idleTimeoutMs: number;
  authTimeoutMs: number;
  dataQueueBytes: number;
  /** The daemon's connections, left out of every session's capture (one per session if absent). */
  ownTraffic?: OwnTraffic;
  log: Logger;
}

export interface DataChannelRequest {
  udp: boolean;
  /** The daemon connects to the client (SERVEROPEN, active mode, or UDP). */
  serverOpens: boolean;
  peerAddress: string;
  portdata: number;
  tls: boolean;
  onPeerGone(): void;
}

type SessionState =
  | { kind: "awaiting-auth" }
  | { kind: "ready"; user: string }
  | { kind: "opened"; user: string; device: string; linktype: number }
  | { kind: "capturing"; user: string; device: string; linktype: number; capture: SessionCapture }
  | { kind: "closed" };

/** What a STARTCAP asked for, kept for UPDATEFILTER (which subscribes again with a new filter). */
interface CaptureSettings {
  snaplen: number;
  promiscuous: boolean;
  direction: "inout" | "in" | "out";
  /** How long a packet may wait in the capture before it is sent: from the client's read_timeout. */
  flushIntervalMs: number;
}

interface SessionCapture extends CaptureSettings {
  subscription: Subscription;
  /** Removes this capture's data connection from the daemon's own traffic. */
  forgetDataConnection: () => void;
  channel: DataChannel | null;
}

/** Messages that may wait while one is handled (e.g. during a failed-auth pause). */
const MAX_PENDING_MESSAGES = 64;

/**
 * The longest a client's read_timeout may make the daemon hold packets before sending them. libpcap's
 * rpcapd opens its capture with the client's read_timeout (pcap_open_live(..., read_timeout)), and
 * libpcap's client asks for half of its own timeout: tcpdump's 1000 ms arrives as 500 ms.
 */
export const MAX_RPCAP_FLUSH_INTERVAL_MS = 1000;

/**
 * The flush interval of a session's capture for a STARTCAP read_timeout, as libpcap's rpcapd uses
 * it: packets wait at most that long (fewer, larger messages at low rates: at 20,000 packets/s a
 * 500 ms timeout sends ~8 batches a second instead of 100). 0 ("no timeout") gets the default
 * interval; the wait is capped at MAX_RPCAP_FLUSH_INTERVAL_MS, and never below the default
 * interval, so a client cannot make the capture wake more often than any other capture.
 */
export function flushIntervalForReadTimeout(readTimeoutMs: number): number {
  if (readTimeoutMs <= 0) return DEFAULT_FLUSH_INTERVAL_MS;
  return Math.min(Math.max(readTimeoutMs, DEFAULT_FLUSH_INTERVAL_MS), MAX_RPCAP_FLUSH_INTERVAL_MS);
}
/** libpcap's daemon tells clients to size their buffer for this many bytes at least. */
const MIN_REPLY_BUFSIZE = 262144;

export class RpcapSession {
  private state: SessionState = { kind: "awaiting-auth" };
  private authInProgress = false;
  private failedAuths = 0;
  private readonly queue: RpcapMessage[] = [];
  private working = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private sampling: Sampling = { method: "none" };
  private lastStats = { ifrecv: 0, ifdrop: 0, krnldrop: 0, svrcapt: 0 };
  private svrcaptTotal = 0;
  readonly id: number;
  private static nextId = 1;
  private readonly ownTraffic: OwnTraffic;
  private readonly controlConnection: OwnConnection;
  private readonly forgetControlConnection: () => void;

  constructor(
    private readonly control: ControlChannel,
    private readonly env: SessionEnvironment,
    private readonly onClosed: (session: RpcapSession) => void = () => {},
  ) {
    this.id = RpcapSession.nextId++;
    this.ownTraffic = env.ownTraffic ?? new OwnTraffic();
    this.controlConnection = { protocol: "tcp", peerAddress: control.peerAddress, ports: [control.localPort ?? 0, control.peerPort ?? 0] };
    this.forgetControlConnection = this.ownTraffic.add(this.controlConnection);
    this.armTimer(env.authTimeoutMs, RpcapErrorCode.INITTIMEOUT, "The RPCAP initial timeout has expired");
  }

  get stateName(): SessionState["kind"] {
    return this.state.kind;
  }

  /** An AUTH request of this session is being checked (waiting, pausing or hashing). */
  get authChecking(): boolean {
    return this.authInProgress;
  }

  /** AUTH requests of this session that failed (the slot table evicts such sessions first). */
  get authFailures(): number {
    return this.failedAuths;
  }

  /** Messages from the framer, handled one at a time in order. */
  receive(messages: RpcapMessage[]): void {
    for (const m of messages) {
      if (this.state.kind === "closed") return;
      if (this.queue.length >= MAX_PENDING_MESSAGES) {
        this.fail(RpcapErrorCode.NETWORK, 0, "too many requests without waiting for replies");
        return;
      }
      this.queue.push(m);
    }
    void this.work();
  }

  /** The framer refused the stream (e.g. a 4 GiB plen): error, then close. */
  framingError(error: ProtocolError, ver: number): void {
    this.env.log.warn(`session ${this.id} ${this.control.peerAddress}: ${error.message} (${error.code})`);
    this.fail(RpcapErrorCode.WRONGMSG, ver, `Malformed message: ${error.message}`);
  }

  /** Ends the session and releases everything it holds. Idempotent; the only cleanup path. */
  close(reason: string): void {
    if (this.state.kind === "closed") return;
    const previous = this.state;
    this.state = { kind: "closed" };
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
    if (previous.kind === "capturing") this.releaseCapture(previous.capture);
    this.forgetControlConnection();
    this.control.close();
    this.env.log.info(`session ${this.id} ${this.control.peerAddress} closed: ${reason}`);
    this.onClosed(this);
  }

  private async work(): Promise<void> {
    if (this.working) return;
    this.working = true;
    try {
      while (this.queue.length > 0 && this.state.kind !== "closed") {
        const message = this.queue.shift()!;
        try {
          await this.dispatch(message);
        } catch (error) {
          if (error instanceof ProtocolError) {
            this.env.log.warn(`session ${this.id}: bad ${rpcapMessageName(message.header.type)}: ${error.message} (${error.code})`);
            this.sendError(message.header.ver, errorCodeFor(message.header.type), `Malformed ${rpcapMessageName(message.header.type)}: ${error.message}`);
          } else {
            // A bug, not the peer's doing: one line at error, the stack only at debug level.
            this.env.log.error(`session ${this.id}: internal error handling ${rpcapMessageName(message.header.type)}: ${(error as Error).message}`);
            this.env.log.debug(`session ${this.id}: ${(error as Error).stack ?? error}`);
            this.fail(RpcapErrorCode.NETWORK, message.header.ver, "internal error");
          }
        }
      }
    } finally {
      this.working = false;
    }
  }

  private async dispatch(message: RpcapMessage): Promise<void> {
    const { header } = message;
    const state = this.state;
    if (state.kind === "awaiting-auth") return this.dispatchBeforeAuth(message);
    if (header.ver < RPCAP_MIN_VERSION || header.ver > RPCAP_MAX_VERSION) {
      return this.fail(RpcapErrorCode.WRONGVER, header.ver, `RPCAP version ${header.ver} is not supported`);
    }
    if (state.kind !== "capturing") {
      this.armTimer(this.env.idleTimeoutMs, RpcapErrorCode.RUNTIMETIMEOUT, "The RPCAP runtime timeout has expired");
    }
    switch (header.type) {
      case RpcapMessageType.FINDALLIF_REQ:
        return this.handleFindAllIf(message);
      case RpcapMessageType.OPEN_REQ:
        return this.handleOpen(message);
      case RpcapMessageType.STARTCAP_REQ:
        return this.handleStartCap(message);
      case RpcapMessageType.UPDATEFILTER_REQ:
        return this.handleUpdateFilter(message);
      case RpcapMessageType.STATS_REQ:
        return this.handleStats(message);
      case RpcapMessageType.ENDCAP_REQ:
        return this.handleEndCap(message);
      case RpcapMessageType.SETSAMPLING_REQ:
        return this.handleSetSampling(message);
      case RpcapMessageType.CLOSE:
        return this.close("client sent CLOSE");
      case RpcapMessageType.AUTH_REQ:
        return this.sendError(header.ver, RpcapErrorCode.WRONGMSG, "RPCAP_MSG_AUTH_REQ sent after authentication was completed");
      case RpcapMessageType.ERROR:
        this.env.log.warn(`session ${this.id}: client sent an error (${header.value})`);
        return;
      default:
        // libpcap's daemon closes here too (after an error whose text it garbles: see vectors).
        return this.fail(RpcapErrorCode.WRONGMSG, header.ver, `Unknown message type ${header.type}`);
    }
  }

  private async dispatchBeforeAuth(message: RpcapMessage): Promise<void> {
    const { header } = message;
    // Before and during AUTH only version 0 is spoken; anything else: error echoing it, close.
    if (header.ver !== 0) {
      return this.fail(RpcapErrorCode.WRONGVER, header.ver, "RPCAP version in requests in the authentication phase must be 0");
    }
    switch (header.type) {
      case RpcapMessageType.AUTH_REQ:
        return this.handleAuth(message);
      case RpcapMessageType.CLOSE:
        return this.close("client sent CLOSE before authenticating");
      case RpcapMessageType.ERROR:
        return;
      case RpcapMessageType.FINDALLIF_REQ:
      case RpcapMessageType.OPEN_REQ:
      case RpcapMessageType.STARTCAP_REQ:
      case RpcapMessageType.UPDATEFILTER_REQ:
      case RpcapMessageType.STATS_REQ:
      case RpcapMessageType.ENDCAP_REQ:
      case RpcapMessageType.SETSAMPLING_REQ:
      case RpcapMessageType.PACKET:
        return this.sendError(0, RpcapErrorCode.WRONGMSG, `RPCAP_MSG_${rpcapMessageName(header.type)} request sent before authentication was completed`);
      default:
        return this.sendError(0, RpcapErrorCode.WRONGMSG, `Unknown message type ${header.type}`);
    }
  }

  private async handleAuth(message: RpcapMessage): Promise<void> {
    const request = decodeAuthRequest(message.payload);
    if (request.authType !== RpcapAuthType.NULL && request.authType !== RpcapAuthType.PWD) {
      return this.sendError(0, RpcapErrorCode.AUTH_TYPE_NOTSUP, "Authentication type not recognized");
    }
    this.authInProgress = true;
    let result: Awaited<ReturnType<SessionAuthenticator["authenticate"]>>;
    try {
      result = await this.env.authenticator.authenticate({ peerAddress: this.control.peerAddress, ...request });
    } finally {
      this.authInProgress = false;
    }
    if (this.state.kind !== "awaiting-auth") return; // closed meanwhile
    if (!result.ok) {
      this.failedAuths++;
      this.env.log.warn(`session ${this.id} ${this.control.peerAddress}: authentication failed: ${result.logDetail}`);
      this.sendError(0, RpcapErrorCode.AUTH_FAILED, result.publicMessage);
      // The pause is a timer for this peer only: later messages wait in this session's queue.
      await new Promise((resolve) => setTimeout(resolve, result.pauseMs));
      return;
    }
    this.state = { kind: "ready", user: result.user };
    this.send(encodeMessage(0, RpcapMessageType.AUTH_REPLY, 0, encodeAuthReplyPayload(RPCAP_MIN_VERSION, RPCAP_MAX_VERSION)));
    this.armTimer(this.env.idleTimeoutMs, RpcapErrorCode.RUNTIMETIMEOUT, "The RPCAP runtime timeout has expired");
    this.env.log.info(`session ${this.id} ${this.control.peerAddress}: authenticated as ${peerText(result.user)}`);
  }

  private handleFindAllIf(message: RpcapMessage): void {
    expectPlen("FINDALLIF_REQ", message.payload, 0);
    let devices: CaptureInterface[];
    try {
      devices = this.env.listInterfaces();
    } catch (error) {
      return this.sendError(message.header.ver, RpcapErrorCode.FINDALLIF, (error as Error).message);
    }
    const pre = this.env.preselectedInterface;
    const wire: WireInterface[] = devices.map((d) => ({
      name: d.name,
      description: d.name === pre ? `${d.description};preselected` : d.description,
      flags: d.flags,
      addresses: d.addresses.map((a) => {
        const out: WireInterface["addresses"][number] = { addr: a.addr };
        if (a.scopeId) out.scopeId = a.scopeId;
        if (a.netmask) out.netmask = a.netmask;
        if (a.broadaddr) out.broadaddr = a.broadaddr;
        if (a.dstaddr) out.dstaddr = a.dstaddr;
        return out;
      }),
    }));
    if (pre) wire.sort((a, b) => Number(b.name === pre) - Number(a.name === pre));
    if (wire.length === 0) return this.sendError(message.header.ver, RpcapErrorCode.NOREMOTEIF, "No interfaces found!");
    this.send(encodeMessage(message.header.ver, RpcapMessageType.FINDALLIF_REPLY, wire.length, encodeFindAllIfReplyPayload(wire)));
  }

  private async handleOpen(message: RpcapMessage): Promise<void> {
    const ver = message.header.ver;
    const source = decodeOpenRequest(message.payload);
    // Only local interfaces: a URL, remote host or file path is refused (CVE-2019-15164 was
    // SSRF through an OPEN whose source made rpcapd connect elsewhere).
    const known = this.env.listInterfaces().some((d) => d.name === source);
    if (!known || /[:/\\]/.test(source)) {
      this.env.log.warn(`session ${this.id}: refused OPEN of ${peerText(source)} (not a local interface)`);
      return this.sendError(ver, RpcapErrorCode.OPEN, `'${source}' is not a local capture interface`);
    }
    if (this.env.preselectedInterface && source !== this.env.preselectedInterface) {
      return this.sendError(ver, RpcapErrorCode.OPEN, `this daemon captures only on ${this.env.preselectedInterface}`);
    }
    const current = this.state;
    if (current.kind === "capturing") this.releaseCapture(current.capture);
    let linktype: number;
    try {
      linktype = await this.env.probeLinktype(source);
    } catch (error) {
      if (this.state.kind === "closed") return;
      return this.sendError(ver, RpcapErrorCode.OPEN, (error as Error).message);
    }
    const after = this.state;
    if (after.kind === "closed" || after.kind === "awaiting-auth") return;
    this.state = { kind: "opened", user: after.user, device: source, linktype };
    this.send(encodeMessage(ver, RpcapMessageType.OPEN_REPLY, 0, encodeOpenReplyPayload(linktype, 0)));
  }

  private async handleStartCap(message: RpcapMessage): Promise<void> {
    const ver = message.header.ver;
    const state = this.state;
    if (state.kind !== "opened") {
      const why = state.kind === "capturing" ? "a capture is already running" : "no interface was opened (OPEN first)";
      return this.sendError(ver, RpcapErrorCode.STARTCAPTURE, `Cannot start capture: ${why}`);
    }
    const request = decodeStartCapRequest(message.payload);
    const program = request.filter.program;
    try {
      if (program.length > 0) validateBpfProgram(program);
    } catch (error) {
      return this.sendError(ver, RpcapErrorCode.STARTCAPTURE, `Invalid filter: ${(error as Error).message}`);
    }
    const udp = (request.flags & StartCapFlag.DGRAM) !== 0;
    if (udp && this.control.tls) {
      return this.sendError(ver, RpcapErrorCode.TLS_REQUIRED, "UDP data channels cannot be encrypted; use TCP with rpcaps://");
    }
    const direction = (request.flags & StartCapFlag.INBOUND) ? "in" : (request.flags & StartCapFlag.OUTBOUND) ? "out" : "inout";
    const snaplen = request.snaplen === 0 || request.snaplen > 262144 ? 262144 : request.snaplen;
    const serverOpens = udp || (request.flags & StartCapFlag.SERVEROPEN) !== 0 || this.control.active;
    const channelState: { channel: DataChannel | null } = { channel: null };
    let opened: Awaited<ReturnType<SessionEnvironment["openDataChannel"]>>;
    try {
      opened = await this.env.openDataChannel({
        udp,
        serverOpens,
        peerAddress: this.control.peerAddress,
        portdata: request.portdata,
        tls: this.control.tls,
        onPeerGone: () => this.dataPeerGone(),
      });
    } catch (error) {
      if (this.state.kind === "closed") return;
      return this.sendError(ver, RpcapErrorCode.STARTCAPTURE, `Cannot open the data connection: ${(error as Error).message}`);
    }
    // UDP and SERVEROPEN/active: we send to the client's portdata; passive TCP: the client
    // connects to the port we replied with.
    const dataConnection: OwnConnection = {
      protocol: udp ? "udp" : "tcp",
      peerAddress: this.control.peerAddress,
      ports: [serverOpens ? request.portdata : opened.replyPortdata],
    };
    const forgetDataConnection = this.ownTraffic.add(dataConnection);
    const settings: CaptureSettings = {
      snaplen,
      promiscuous: (request.flags & StartCapFlag.PROMISC) !== 0,
      direction,
      flushIntervalMs: flushIntervalForReadTimeout(request.readTimeoutMs),
    };
    let subscription: Subscription;
    try {
      subscription = await this.subscribe(state.device, state.linktype, program, settings, channelState);
    } catch (error) {
      forgetDataConnection();
      void opened.channel.then((c) => c.close(), () => {});
      if (this.state.kind === "closed") return;
      return this.sendError(ver, RpcapErrorCode.STARTCAPTURE, (error as Error).message);
    }
    if (this.state !== state) {
      forgetDataConnection();
      await subscription.unsubscribe();
      void opened.channel.then((c) => c.close(), () => {});
      return;
    }
    this.svrcaptTotal = 0; // svrcapt counts this capture's packets, like libpcap's TotCapt
    this.env.log.info(
      `session ${this.id}: leaving the daemon's own connections out of the capture on ${state.device} (${this.ownTraffic.size} now; this session's: ${ownTrafficFilter([this.controlConnection, dataConnection])})`,
    );
    const capture: SessionCapture = { subscription, forgetDataConnection, channel: null, ...settings };
    this.state = { kind: "capturing", user: state.user, device: state.device, linktype: state.linktype, capture };
    if (this.timer) clearTimeout(this.timer); // no idle timeout while capturing
    this.timer = null;
    const bufsize = Math.max(MIN_REPLY_BUFSIZE, snaplen + RPCAP_HEADER_BYTES + RPCAP_PKTHDR_BYTES);
    this.send(encodeMessage(ver, RpcapMessageType.STARTCAP_REPLY, 0, encodeStartCapReplyPayload(bufsize, opened.replyPortdata)));
    opened.channel.then(
      (channel) => {
        if (this.state.kind !== "capturing" || this.state.capture !== capture) return channel.close();
        capture.channel = channel;
        channelState.channel = channel;
        this.env.log.info(`session ${this.id}: capturing on ${state.device} to ${channel.kind} data channel`);
      },
      (error: Error) => {
        if (this.state.kind === "capturing" && this.state.capture === capture) {
          this.env.log.warn(`session ${this.id}: data channel failed: ${error.message}`);
          this.endCapture(capture);
        }
      },
    );
  }

  /** A capture subscription whose sink samples and writes to the data channel once it exists. */
  private subscribe(
    device: string,
    linktype: number,
    program: BpfProgram,
    settings: CaptureSettings,
    channelState: { channel: DataChannel | null },
  ): Promise<Subscription> {
    const { snaplen, promiscuous, direction, flushIntervalMs } = settings;
    const sampler = () => new Sampler(this.sampling);
    let activeSampler = sampler();
    let activeSampling = this.sampling;
    return this.env.hub.subscribe(
      {
        interface: device,
        ...(program.length > 0 ? { filter: program } : {}),
        snaplen,
        promiscuous,
        direction,
        flushIntervalMs,
      },
      {
        write: (batch: PacketBatch) => {
          const channel = channelState.channel;
          if (!channel) return; // data connection not up yet: nothing to send to
          if (activeSampling !== this.sampling) {
            activeSampling = this.sampling;
            activeSampler = sampler();
          }
          // The daemon's own connections go first, before sampling sees them.
          const exclude = this.ownTraffic.filterFor(linktype, snaplen);
          const visible = exclude ? exclude(batch) : batch;
          if (visible.count === 0) return;
          const kept = activeSampler.apply(visible);
          if (kept.count === 0) return;
          this.svrcaptTotal += kept.count;
          return channel.write(kept);
        },
      },
      {
        maxQueueBytes: this.env.dataQueueBytes,
        label: "rpcap",
        onEnd: (error) => {
          const s = this.state;
          if (s.kind === "capturing") {
            this.env.log.warn(`session ${this.id}: capture ended: ${error?.message ?? "source closed"}`);
            this.sendError(0, RpcapErrorCode.READEX, `Capture ended: ${error?.message ?? "source closed"}`);
            this.endCapture(s.capture);
          }
        },
        onSinkError: (error) => this.env.log.warn(`session ${this.id}: data channel write failed: ${error.message}`),
      },
    );
  }

  private async handleUpdateFilter(message: RpcapMessage): Promise<void> {
    const ver = message.header.ver;
    const state = this.state;
    if (state.kind !== "capturing") return this.sendError(ver, RpcapErrorCode.UPDATEFILTER, "No capture is running");
    const { program } = decodeFilterBlock(message.payload, 0);
    try {
      validateBpfProgram(program);
    } catch (error) {
      // An invalid program is refused and never installed; the running capture goes on.
      return this.sendError(ver, RpcapErrorCode.UPDATEFILTER, `Invalid filter: ${(error as Error).message}`);
    }
    const old = state.capture;
    const channelState = { channel: old.channel };
    let next: Subscription;
    try {
      next = await this.subscribe(state.device, state.linktype, program, old, channelState);
    } catch (error) {
      return this.sendError(ver, RpcapErrorCode.UPDATEFILTER, (error as Error).message);
    }
    if (this.state !== state) {
      await next.unsubscribe();
      return;
    }
    // Switch: the new subscription carries on the same data channel (npkt continues).
    const previous = old.subscription;
    old.subscription = next;
    void previous.unsubscribe();
    this.send(encodeMessage(ver, RpcapMessageType.UPDATEFILTER_REPLY, 0));
  }

  private async handleStats(message: RpcapMessage): Promise<void> {
    const ver = message.header.ver;
    expectPlen("STATS_REQ", message.payload, 0);
    const state = this.state;
    if (state.kind === "capturing") {
      try {
        const stats = await state.capture.subscription.captureStats();
        const drops = state.capture.subscription.counters.droppedPackets;
        this.lastStats = {
          ifrecv: stats.kernel?.received ?? stats.delivered,
          ifdrop: stats.kernel?.interfaceDropped ?? 0,
          // Kernel drops plus this session's own queue drops: both are packets the client lost.
          krnldrop: (stats.kernel?.dropped ?? 0) + drops,
          svrcapt: this.svrcaptTotal,
        };
      } catch (error) {
        if (this.state.kind === "closed") return;
        return this.sendError(ver, RpcapErrorCode.GETSTATS, (error as Error).message);
      }
    } else if (state.kind !== "opened") {
      return this.sendError(ver, RpcapErrorCode.GETSTATS, "No capture has been opened");
    }
    if (this.state.kind === "closed") return;
    this.send(encodeMessage(ver, RpcapMessageType.STATS_REPLY, 0, encodeStatsReplyPayload(this.lastStats)));
  }

  private handleEndCap(message: RpcapMessage): void {
    const ver = message.header.ver;
    const state = this.state;
    if (state.kind !== "capturing") return this.sendError(ver, RpcapErrorCode.ENDCAPTURE, "No capture is running");
    this.endCapture(state.capture);
    this.send(encodeMessage(ver, RpcapMessageType.ENDCAP_REPLY, 0));
  }

  private handleSetSampling(message: RpcapMessage): void {
    const ver = message.header.ver;
    expectPlen("SETSAMPLING_REQ", message.payload, RPCAP_SAMPLING_BYTES);
    const { method, value } = decodeSamplingRequest(message.payload);
    switch (method) {
      case SamplingMethod.NOSAMP:
        this.sampling = { method: "none" };
        break;
      case SamplingMethod.ONE_EVERY_N:
        // libpcap's client truncates the value and sends 0 for any n < 65536 on little-endian
        // hosts (pcap-rpcap.c: (uint16_t)htonl(value)); 0 and 1 both mean "every packet".
        this.sampling = { method: "one-every-n", n: Math.max(1, value) };
        break;
      case SamplingMethod.FIRST_AFTER_N_MS:
        this.sampling = { method: "first-after-ms", ms: value };
        break;
      default:
        return this.sendError(ver, RpcapErrorCode.SETSAMPLING, `Unknown sampling method ${method}`);
    }
    this.send(encodeMessage(ver, RpcapMessageType.SETSAMPLING_REPLY, 0));
  }

  private endCapture(capture: SessionCapture): void {
    const state = this.state;
    if (state.kind !== "capturing" || state.capture !== capture) return;
    this.releaseCapture(capture);
    this.state = { kind: "opened", user: state.user, device: state.device, linktype: state.linktype };
    this.armTimer(this.env.idleTimeoutMs, RpcapErrorCode.RUNTIMETIMEOUT, "The RPCAP runtime timeout has expired");
  }

  private releaseCapture(capture: SessionCapture): void {
    capture.forgetDataConnection();
    void capture.subscription.unsubscribe();
    capture.channel?.close();
    this.lastStats.svrcapt = this.svrcaptTotal;
  }

  private dataPeerGone(): void {
    const state = this.state;
    if (state.kind === "capturing") {
      this.env.log.info(`session ${this.id}: client closed the data connection`);
      this.endCapture(state.capture);
    }
  }

  private armTimer(ms: number, code: number, text: string): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.fail(code, 0, text);
    }, ms);
  }

  private send(bytes: Uint8Array): void {
    if (this.state.kind !== "closed") this.control.send(bytes);
  }

  private sendError(ver: number, code: number, text: string): void {
    this.send(encodeError(ver, code, text));
  }

  /** Error to the peer, then close this session. */
  private fail(code: number, ver: number, text: string): void {
    this.sendError(ver, code, text);
    this.close(text);
  }
}

function errorCodeFor(type: number): number {
  switch (type & ~RPCAP_REPLY_BIT) {
    case RpcapMessageType.OPEN_REQ:
      return RpcapErrorCode.OPEN;
    case RpcapMessageType.STARTCAP_REQ:
      return RpcapErrorCode.STARTCAPTURE;
    case RpcapMessageType.UPDATEFILTER_REQ:
      return RpcapErrorCode.UPDATEFILTER;
    case RpcapMessageType.SETSAMPLING_REQ:
      return RpcapErrorCode.SETSAMPLING;
    case RpcapMessageType.AUTH_REQ:
      return RpcapErrorCode.AUTH;
    default:
      return RpcapErrorCode.WRONGMSG;
  }
}
