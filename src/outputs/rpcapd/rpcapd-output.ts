// The RPCAP daemon as a pipeline output. Its sessions are the consumers: a client that OPENs an
// interface the pipeline already captures joins the pipeline's stream (after the shared
// stages); a client that OPENs any other interface gets a shared capture of it whose own copy
// of the stages runs once per captured batch before the fan-out to its sessions. What is per
// client — its BPF filter, snaplen and SETSAMPLING — runs after the stages, for that client.
import { existsSync, readFileSync } from "node:fs";
import type { CaptureInfo, CaptureStats } from "../../capture/capture-source.ts";
import type { LiveCaptureOptions } from "../../capture/live-capture-source.ts";
import { createBatchFilter, type BatchFilter } from "../../capture/packet-filter.ts";
import { parseRpcapdConfigFile } from "../../config/rpcapd-config.ts";
import type { Logger } from "../../logging/index.ts";
import type { OutputContext, PreparedOutput } from "../../pipeline/output-context.ts";
import type { PipelineOutput, StreamDescription } from "../../pipeline/output.ts";
import { selectRecords, type PacketBatch } from "../../packet/packet-batch.ts";
import { asUserFacing, ProbeError } from "../../packet/probe-error.ts";
import { CaptureHub, type SharedCaptures, type StagesFactory, type SubscribeOptions, type Subscription } from "../../pipeline/capture-hub.ts";
import { ConsumerQueue, type BatchSink } from "../../pipeline/consumer-queue.ts";
import { UdpstrPacker } from "../../protocols/udpstr/index.ts";
import { Authenticator, loadHostList, readHostListArgument } from "../../daemon/auth/index.ts";
import { RpcapDaemon } from "../../daemon/rpcapd.ts";
import { inetdPeerAddress } from "../../daemon/inetd-peer.ts";
import { captureHubCollector, rpcapdCollector, type MetricsCollector } from "../../metrics/index.ts";
import { onlyDirection, onlyDirectionStage, type Direction } from "../../pipeline/stages/direction.ts";

export interface RpcapdOutputOptions {
  listen?: { host?: string | undefined; port: number; ipv4Only: boolean } | undefined;
  active: readonly { host: string; port: number }[];
  tls?: { cert: string; key: string } | undefined;
  configFile?: string | undefined;
  hostListFile?: string | undefined;
  passiveClients: readonly string[];
  nullAuth: boolean;
  usersFile?: string | undefined;
  preselectedInterface?: string | undefined;
  /** --interfaces: the only interfaces listed and openable (libpcap#1301). */
  interfaces?: readonly string[] | undefined;
  /** inetd mode: serve the connection on standard input/output, then finish the run. */
  inetd?: boolean | undefined;
  udpstrMtu: number;
  dataPort: number;
  authTimeoutMs: number;
  idleTimeoutMs: number;
  activeRetryMs: number;
  dataQueueBytes: number;
  maxControlPlen: number;
  maxSessions: number;
  maxSessionsPerAddress: number;
  pressureAuthTimeoutMs: number;
  systemAccountsShareCapture: boolean;
  /** --only-direction: sessions get only the records a direction stage tagged so. */
  onlyDirection?: Direction | undefined;
}

/** Where the pipeline's own stream can be joined: interface name → pipeline input index. */
export type JoinableInputs = ReadonlyMap<string, number>;

/** rpcapd's -f file merged over the spec (rpcapd: the file wins). */
function withConfigFile(o: RpcapdOutputOptions): RpcapdOutputOptions {
  if (!o.configFile) return o;
  let text: string;
  try {
    text = readFileSync(o.configFile, "utf8");
  } catch (error) {
    throw new ProbeError("config-file", "usage", `-f ${o.configFile}: ${(error as Error).message}`);
  }
  try {
    const file = parseRpcapdConfigFile(text);
    return { ...o, active: file.active, passiveClients: file.passiveClients, nullAuth: file.nullAuth };
  } catch (error) {
    throw new ProbeError("config-file", "usage", `${o.configFile}: ${(error as Error).message}`);
  }
}

async function accessControl(o: RpcapdOutputOptions, log: Logger) {
  const hosts = [...o.passiveClients];
  if (o.hostListFile) {
    // A file, or the list itself as libpcap's rpcapd takes it (-l host1,host2).
    try {
      hosts.push(...readHostListArgument(o.hostListFile).hosts);
    } catch (error) {
      throw new ProbeError("host-list", "usage", (error as Error).message);
    }
  }
  const isHostAllowed = hosts.length > 0 ? await loadHostList(hosts, { warn: (m: string) => log.warn(m) }) : undefined;
  const authenticator = await Authenticator.create(
    { nullAuth: o.nullAuth, systemAccountsShareCapture: o.systemAccountsShareCapture, ...(o.usersFile ? { usersFile: o.usersFile } : {}) },
    { log },
  );
  return { isHostAllowed, authenticator };
}

type Joined = { queue: ConsumerQueue; input: number; filter: BatchFilter | undefined; options: SubscribeOptions };

/**
 * The captures sessions subscribe to: the pipeline's stream for an interface the pipeline
 * captures, else a shared capture (CaptureHub) running its own copy of the stages.
 */
class PipelineCaptures implements SharedCaptures {
  private stream: StreamDescription | undefined;
  private readonly started = Promise.withResolvers<void>();
  private readonly joined = new Set<Joined>();

  constructor(
    private readonly joinable: JoinableInputs,
    readonly hub: CaptureHub,
    private readonly inputStats: (() => Promise<CaptureStats>) | undefined,
    private readonly only: Direction | undefined,
  ) {}

  start(stream: StreamDescription): void {
    this.stream = stream;
    this.started.resolve();
  }

  async subscribe(capture: LiveCaptureOptions, sink: BatchSink, options: SubscribeOptions = {}): Promise<Subscription> {
    const input = this.joinable.get(capture.interface);
    if (input === undefined) return this.hub.subscribe(capture, sink, options);
    await this.started.promise;
    const description = this.stream!.inputs[input]!;
    const info: CaptureInfo = { linktype: description.linktype, snaplen: description.snaplen, precision: this.stream!.precision, description: description.description };
    const filter = capture.filter !== undefined && capture.filter !== "" ? createBatchFilter(capture.filter, info.linktype, info.snaplen) : undefined;
    const snaplen = capture.snaplen !== undefined && capture.snaplen < info.snaplen ? capture.snaplen : undefined;
    const perClient: BatchFilter | undefined =
      filter && snaplen !== undefined ? (b) => selectRecords(filter(b), () => snaplen)
      : filter ? filter
      : snaplen !== undefined ? (b) => selectRecords(b, () => snaplen)
      : undefined;
    const joined: Joined = { queue: new ConsumerQueue(sink, options.maxQueueBytes, options.onSinkError), input, filter: perClient, options };
    this.joined.add(joined);
    let left = false;
    return {
      info,
      counters: joined.queue.counters,
      captureStats: () => this.inputStats?.() ?? Promise.resolve({ delivered: joined.queue.counters.deliveredPackets }),
      drained: () => joined.queue.drained(),
      unsubscribe: async () => {
        if (left) return;
        left = true;
        joined.queue.close();
        this.joined.delete(joined);
      },
    };
  }

  /** One batch of the pipeline (after its stages) to every session that joined it. */
  offer(batch: PacketBatch): void {
    if (this.joined.size === 0) return;
    if (this.only) batch = onlyDirection(batch, this.only);
    if (batch.count === 0) return;
    const several = this.stream!.inputs.length > 1;
    for (const j of this.joined) {
      let mine = several ? selectInput(batch, j.input) : batch;
      if (j.filter && mine.count > 0) mine = j.filter(mine);
      if (mine.count > 0) j.queue.offer(mine);
    }
  }

  /** The pipeline ended: every joined session's capture ends with it. */
  end(): void {
    for (const j of [...this.joined]) j.options.onEnd?.();
  }
}

/**
 * Replies a peer may leave unread on standard output before its session is closed (the same
 * bound as a listening daemon's MAX_UNREAD_CONTROL_BYTES: control replies are small).
 */
const INETD_MAX_UNREAD_BYTES = 1024 * 1024;

/**
 * inetd mode (libpcap's `rpcapd -i`): one session over standard input/output (process.stdin
 * and process.stdout: Bun's `new net.Socket({ fd: 0 })` does not attach, measured); the run
 * finishes when the session ends. The peer address comes from getpeername(0) or REMOTE_ADDR.
 */
function serveInetd(daemon: RpcapDaemon, context: OutputContext): void {
  const peerAddress = inetdPeerAddress();
  if (!peerAddress) throw new ProbeError("inetd-stdin", "usage", "rpcapd -i (inetd mode): standard input is not a TCP connection");
  let ended = false;
  const connection = daemon.serveStream({
    peerAddress,
    send: (bytes) => {
      if (ended) return;
      if (process.stdout.writableLength > INETD_MAX_UNREAD_BYTES) {
        context.log.warn(`${peerAddress} does not read its control connection: closing`);
        connection.peerClosed();
        return;
      }
      process.stdout.write(bytes);
    },
    end: () => {
      if (ended) return;
      ended = true;
      process.stdout.end();
    },
  });
  const onData = (chunk: Buffer) => connection.receive(chunk);
  const onGone = () => connection.peerClosed();
  process.stdin.on("data", onData);
  process.stdin.on("end", onGone);
  process.stdin.on("error", onGone);
  process.stdout.on("error", onGone);
  void connection.closed.then(async () => {
    process.stdin.off("data", onData);
    process.stdin.pause();
    if (!ended) {
      ended = true;
      process.stdout.end();
    }
    // Let the last reply (an ERROR, CLOSE's end) reach the peer before the run ends.
    if (process.stdout.writableLength > 0) await new Promise<void>((resolve) => process.stdout.once("drain", () => resolve()));
    context.finish?.();
  });
}

function selectInput(batch: PacketBatch, input: number): PacketBatch {
  const inputs = batch.meta?.inputs;
  if (!inputs) return input === 0 ? batch : { ...batch, bytes: new Uint8Array(0), count: 0 };
  let index = 0;
  return selectRecords(batch, (_view, _offset, caplen) => (inputs[index++] === input ? caplen : -1));
}

export class RpcapdOutput implements PipelineOutput {
  readonly name = "rpcapd";

  private constructor(
    private readonly daemon: RpcapDaemon,
    private readonly captures: PipelineCaptures,
    private readonly options: RpcapdOutputOptions,
    private readonly context: OutputContext,
  ) {}

  /**
   * Builds the daemon and starts listening (and dialling active collectors), so a port in use
   * is reported before any capture opens. `createStages` builds a fresh copy of the pipeline's
   * stages for each interface a client opens that the pipeline does not capture itself.
   */
  static async prepare(
    spec: RpcapdOutputOptions,
    context: OutputContext & { inputStats?: () => Promise<CaptureStats> },
    joinable: JoinableInputs,
    createStages: StagesFactory | undefined,
  ): Promise<PreparedOutput<RpcapdOutput>> {
    const options = withConfigFile(spec);
    if (!options.listen && options.active.length === 0 && !options.inetd) throw new ProbeError("no-active", "usage", "rpcapd: -v needs at least one -a HOST,PORT");
    if (options.tls) {
      // Bun reports a missing key or certificate as a bare ENOENT at listen time: name the file.
      for (const [flag, file] of [["-K", options.tls.key], ["-X", options.tls.cert]] as const) {
        if (!existsSync(file)) throw new ProbeError("tls-file", "runtime", `${flag} ${file}: no such file (TLS needs a key and a certificate)`);
      }
    }
    const access = await accessControl(options, context.log);
    // --only-direction applies to the daemon's own captures too: after their copy of the stages.
    const only = spec.onlyDirection;
    const stagesOfCapture: StagesFactory | undefined = only
      ? async (device) => [...((await createStages?.(device)) ?? []), onlyDirectionStage(only)]
      : createStages;
    const captures = new PipelineCaptures(joinable, new CaptureHub(undefined, stagesOfCapture, (line) => context.log.info(line)), context.inputStats, only);
    const daemon = new RpcapDaemon({
      ...(options.listen ? { listen: { ...(options.listen.host ? { host: options.listen.host } : {}), port: options.listen.port, ipv4Only: options.listen.ipv4Only } } : {}),
      active: [...options.active],
      ...(options.tls ? { tls: options.tls } : {}),
      ...(access.isHostAllowed ? { isHostAllowed: access.isHostAllowed } : {}),
      authenticator: access.authenticator,
      ...(options.preselectedInterface ? { preselectedInterface: options.preselectedInterface } : {}),
      ...(options.interfaces ? { offeredInterfaces: options.interfaces } : {}),
      udpstrMtu: options.udpstrMtu,
      createUdpstrPacker: (mtu) => {
        const packer = new UdpstrPacker({ mtuBytes: mtu });
        return { pack: (batch, firstNpkt) => packer.push(batch, firstNpkt), flush: () => packer.flush() };
      },
      dataPort: options.dataPort,
      authTimeoutMs: options.authTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      activeRetryMs: options.activeRetryMs,
      dataQueueBytes: options.dataQueueBytes,
      maxControlPlen: options.maxControlPlen,
      maxSessions: options.maxSessions,
      maxSessionsPerAddress: options.maxSessionsPerAddress,
      pressureAuthTimeoutMs: options.pressureAuthTimeoutMs,
      hub: captures,
      log: context.log,
    });
    try {
      await daemon.start();
    } catch (error) {
      await daemon.stop();
      const l = options.listen;
      const where = `rpcapd cannot listen on ${l?.host ?? (l?.ipv4Only ? "0.0.0.0" : "[::]")}:${l?.port}`;
      throw asUserFacing(error, where) ?? new ProbeError("listen-failed", "runtime", `${where}: ${(error as Error).message}`, { cause: error });
    }
    if (options.inetd) serveInetd(daemon, context);
    return { output: new RpcapdOutput(daemon, captures, spec, context) };
  }

  /** The listening port (port 0 resolved), or undefined in active-only mode. */
  get port(): number | undefined {
    return this.daemon.port;
  }

  async start(stream: StreamDescription): Promise<void> {
    this.captures.start(stream);
  }

  /**
   * Sessions' ConsumerQueues copy what they hold; their sinks (session.ts, data-channel.ts) encode
   * each batch into RPCAP messages before returning.
   */
  readonly takesLentBatches = true;

  write(batch: PacketBatch): void {
    this.captures.offer(batch);
  }

  /** SIGHUP: reread the -f file, host list and users, and the open captures' hooks; live sessions keep running. */
  async reload(): Promise<void> {
    this.captures.hub.reload();
    try {
      const options = withConfigFile(this.options);
      const access = await accessControl(options, this.context.log);
      this.daemon.reconfigure({ active: [...options.active], authenticator: access.authenticator, ...(access.isHostAllowed ? { isHostAllowed: access.isHostAllowed } : {}) });
    } catch (error) {
      this.context.log.error(`reload failed, keeping the running configuration: ${(error as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.captures.end();
    await this.daemon.stop();
    await this.captures.hub.close();
  }

  counters() {
    const t = this.daemon.totals;
    return {
      sessions: this.daemon.sessionCount,
      shared_captures: this.captures.hub.captureCount,
      sessions_opened: t.sessionsOpened,
      sessions_refused: t.sessionsRefused,
      auth_successes: t.authSucceeded,
      auth_failures: t.authFailed,
    };
  }

  /** For --metrics: sessions and AUTH outcomes, and the captures clients opened (inputs and per-kind consumers). */
  metricsCollectors(): MetricsCollector[] {
    return [rpcapdCollector(this.daemon), captureHubCollector(this.captures.hub)];
  }
}
