// PcapOverIpSource: a PCAP-over-IP stream read as a CaptureSource. We connect to a server
// (NETRESEC's tools, PolarProxy, `tcpdump -U -w - | nc -l`, socat serving a file, another probe)
// and read a classic pcap file off the socket: the 24-byte global header, then records.
// Source for the behaviour: docs/spec/pcap-over-ip.md (there is no formal spec).
//
// Parsing is the pcap streaming reader's (src/protocols/pcap CaptureFileReader): it checks the
// magic, caplen <= snaplen, caplen <= len and a size cap before waiting for any record body, and
// after its first error emits nothing more. This file only binds it to a Bun socket:
//
//   connect (TCP, or TLS with a CA / insecure / client certificate)
//     -> opening: wait for the global header (HEADER_TIMEOUT covers connect + handshake + header)
//     -> streaming: chunks go to an inbox; one pump feeds the reader and hands batches over in
//        order; while a returned onBatch promise is pending the socket is paused, so the peer
//        sees TCP back-pressure instead of us buffering (socket.pause()/resume(), checked on
//        Bun 1.4.4: no data event fires while paused and the writer's send buffer fills)
//     -> closed: peer EOF on a record boundary = end of stream; garbage = a RemoteSourceError
//        "bad-stream" carrying the ProtocolError; with reconnect on, retriable endings dial
//        again with exponential backoff and the new stream must have the first one's linktype.
import type { Socket, SocketHandler, TLSOptions } from "bun";
import { enableKeepAlive, TCP_KEEPALIVE_IDLE_MS } from "../../net/keepalive.ts";
import { backoffDelayMs, RECONNECT_INITIAL_DELAY_MS, RECONNECT_MAX_DELAY_MS } from "../../net/reconnect-backoff.ts";
import { insecureWarning, tlsClientOptions, tlsHandshakeRefusal, TlsSettingsError, type TlsClientSettings } from "../../net/tls-client.ts";
import type { BpfInstruction } from "../../packet/bpf/index.ts";
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "../capture-source.ts";
import type { PacketBatch } from "../../packet/packet-batch.ts";
import { createBatchFilter, type BatchFilter } from "../packet-filter.ts";
import type { Logger } from "../../logging/index.ts";
import { silentLogger } from "../../logging/index.ts";
import { ProtocolError } from "../../packet/protocol-error.ts";
import {
  CaptureFileReader,
  DEFAULT_MAX_BLOCK_BYTES,
  LinktypeField,
  linktypeOf,
  pcapRecordsFromBatch,
  type PcapGlobalHeader,
} from "../../protocols/pcap/index.ts";
import { RemoteSourceError } from "./remote-source-error.ts";
import { formatRemoteSourceUrl, type RemoteSourceAddress } from "./remote-source-url.ts";

/**
 * Longest wait from dialling to a complete global header. A server writes the header as soon
 * as a client connects, so 10 s covers a slow TLS handshake over a long path. Caveat: a server
 * built as `tcpdump -U -w - | nc -l` may hold the header in stdio until the first packet is
 * flushed; raise `headerTimeoutMs` for such peers on quiet links.
 */
export const DEFAULT_HEADER_TIMEOUT_MS = 10_000;
/** The reconnect waits (src/net/reconnect-backoff.ts): 0.5 s doubling to 30 s, as the RT source's. */
export { RECONNECT_INITIAL_DELAY_MS, RECONNECT_MAX_DELAY_MS };
/**
 * TCP keepalive idle time (src/net/keepalive.ts). A quiet capture is legitimate, so there is
 * no idle timeout; keepalive finds a peer that vanished without a FIN within this + 10 s.
 */
export const KEEPALIVE_INITIAL_DELAY_MS = TCP_KEEPALIVE_IDLE_MS;
/** snaplen reported when the header says 0 ("no limit"): tcpdump's maximum, MAXIMUM_SNAPLEN. */
const SNAPLEN_WHEN_UNLIMITED = 262144;

export interface ReconnectOptions {
  /** Default RECONNECT_INITIAL_DELAY_MS. */
  initialDelayMs?: number;
  /** Default RECONNECT_MAX_DELAY_MS. */
  maxDelayMs?: number;
  /** Consecutive failed attempts before the source ends "failed"; default unlimited. */
  maxAttempts?: number;
  /**
   * Whether a clean end (the peer closed on a record boundary) is redialled too; default true.
   * Off, a clean end ends the source like the end of a file (socat serving a file), and only
   * failures (reset, timeout, a record cut short) are redialled.
   */
  afterCleanEnd?: boolean;
}

export interface PcapOverIpSourceOptions {
  address: RemoteSourceAddress;
  /** tls only: PEM file of the CA that signed the server certificate (else the built-in public CAs). */
  tlsCa?: string;
  /** tls only: client certificate and key PEM files, for servers that require mutual TLS. */
  tlsCert?: string;
  tlsKey?: string;
  /** tls only: accept any server certificate (encryption without authentication). */
  insecure?: boolean;
  /** tls only: name the certificate must carry (SNI too); default the host. */
  serverName?: string;
  /** Userland filter (tcpdump expression or BPF program) applied to received packets. */
  filter?: string | readonly BpfInstruction[];
  /** Default DEFAULT_HEADER_TIMEOUT_MS. */
  headerTimeoutMs?: number;
  /**
   * Reconnect when the stream drops (connection refused, closed, timed out). Streams we refuse
   * (bad bytes, pcapng, changed linktype) are not retried. Off by default.
   */
  reconnect?: boolean | ReconnectOptions;
  /** Cap on a record's caplen, checked before waiting for its body. Default DEFAULT_MAX_BLOCK_BYTES. */
  maxRecordBytes?: number;
  /** TCP keepalive idle time; default KEEPALIVE_INITIAL_DELAY_MS (a vanished peer is found within this + 10 s). */
  keepaliveIdleMs?: number;
  log?: Logger;
  /**
   * Called when a reconnected stream's header has been accepted, before any of its records are
   * delivered (the pipeline tells its outputs: a rotating file starts a new file).
   */
  onReconnected?: () => void;
}

/** Counters beyond CaptureStats. */
export interface PcapOverIpSourceCounters {
  /** Connections that delivered a global header (the first one included). */
  connections: number;
  /** Of those, how many were reconnections. */
  reconnects: number;
  /** Bytes read from all connections. */
  bytesReceived: number;
  /** Packets removed by the filter. */
  filteredOut: number;
}

type ConnectionPhase = "opening" | "streaming" | "closed";

/** One TCP/TLS connection and the reader of its stream. */
interface Connection {
  readonly id: number;
  phase: ConnectionPhase;
  socket: Socket<SocketData> | undefined;
  readonly reader: CaptureFileReader;
  /** Chunks received and not yet fed to the reader (owned: Bun hands each data event a new buffer). */
  readonly inbox: Uint8Array[];
  header: PcapGlobalHeader | undefined;
  /** Why the peer side went away (undefined = clean EOF); handled once the inbox is drained. */
  peerGone: { error: RemoteSourceError | undefined } | undefined;
  pump: Promise<void> | undefined;
  headerTimer: ReturnType<typeof setTimeout> | undefined;
  /** Settles the opening promise; cleared once the header arrived or the attempt failed. */
  opening: { resolve(header: PcapGlobalHeader): void; reject(error: RemoteSourceError): void } | undefined;
}

function isClosed(connection: Connection): boolean {
  return connection.phase === "closed";
}

interface SocketData {
  source: PcapOverIpSource;
  connection: Connection;
}

/** Socket callbacks: thin adapters into the source; all state is in socket.data. */
const socketHandlers: SocketHandler<SocketData> = {
  open(socket) {
    socket.data.source.onOpen(socket);
  },
  handshake(socket, success, authorizationError) {
    socket.data.source.onHandshake(socket, success, authorizationError);
  },
  data(socket, chunk) {
    socket.data.source.onData(socket.data.connection, chunk);
  },
  close(socket, error) {
    socket.data.source.onPeerGone(socket.data.connection, error);
  },
  error(socket, error) {
    socket.data.source.onPeerGone(socket.data.connection, error);
  },
  connectError(socket, error) {
    socket.data.source.onConnectFailed(socket.data.connection, error);
  },
};

export class PcapOverIpSource implements CaptureSource {
  readonly description: string;
  private readonly log: Logger;
  private readonly headerTimeoutMs: number;
  private readonly reconnect: Required<ReconnectOptions> | undefined;
  private handlers: CaptureHandlers | undefined;
  private info: CaptureInfo | undefined;
  /** The first stream's header: later streams must carry the same linktype. */
  private firstHeader: PcapGlobalHeader | undefined;
  private filterProgram: string | readonly BpfInstruction[] | undefined;
  private filter: BatchFilter | undefined;
  private current: Connection | undefined;
  private nextConnectionId = 1;
  private delivered = 0;
  private readonly counters: PcapOverIpSourceCounters = { connections: 0, reconnects: 0, bytesReceived: 0, filteredOut: 0 };
  /** Batches wait on this until start() has returned, so the caller sees the info first. */
  private gate: Promise<void> | undefined;
  private stopping = false;
  private ended = false;
  private stopped: Promise<CaptureStats> | undefined;
  private reconnecting: Promise<void> | undefined;
  private wakeSleeper: (() => void) | undefined;
  /** Client TLS options, built once at start() (tls:// only). */
  private tls: TLSOptions | undefined;

  constructor(private readonly options: PcapOverIpSourceOptions) {
    this.description = formatRemoteSourceUrl(options.address);
    this.log = options.log ?? silentLogger;
    this.headerTimeoutMs = options.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS;
    this.filterProgram = options.filter;
    const reconnect = options.reconnect;
    this.reconnect =
      reconnect === undefined || reconnect === false
        ? undefined
        : {
            initialDelayMs: RECONNECT_INITIAL_DELAY_MS,
            maxDelayMs: RECONNECT_MAX_DELAY_MS,
            maxAttempts: Number.POSITIVE_INFINITY,
            afterCleanEnd: true,
            ...(reconnect === true ? {} : reconnect),
          };
  }

  /**
   * Connects and resolves once the stream's global header has arrived, with the linktype,
   * snaplen and precision it declares. Rejects with RemoteSourceError when the first connection
   * fails (even with reconnect on, so a typo surfaces at once), and with the filter compiler's
   * error when the filter does not compile for the stream's linktype. A source whose start()
   * rejected is spent: make a new one to try again.
   */
  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    if (this.handlers || this.gate) throw new Error(`${this.description}: start() called twice`);
    if (this.stopping) throw new RemoteSourceError("stopped", `${this.description}: stopped`);
    if (this.options.address.kind === "tls") {
      try {
        this.tls = tlsClientOptions(this.options.address.host, this.tlsSettings());
      } catch (error) {
        if (error instanceof TlsSettingsError) throw new RemoteSourceError("tls-settings", `${this.description}: ${error.message}`);
        throw error;
      }
      if (this.options.insecure) this.log.warn(insecureWarning(this.description));
    }
    let openGate!: () => void;
    this.gate = new Promise((resolve) => (openGate = resolve));
    let header: PcapGlobalHeader;
    try {
      header = await this.openConnection();
    } catch (error) {
      openGate(); // nothing waits on it but a pump that will find its connection closed
      throw error;
    }
    this.firstHeader = header;
    const info: CaptureInfo = {
      linktype: header.linktype,
      snaplen: header.snaplen === 0 ? SNAPLEN_WHEN_UNLIMITED : header.snaplen,
      precision: header.precision,
      description: this.description,
    };
    try {
      if (this.filterProgram !== undefined) this.filter = createBatchFilter(this.filterProgram, info.linktype, info.snaplen);
    } catch (error) {
      this.closeConnection(this.current!, new RemoteSourceError("stopped", `${this.description}: bad filter`));
      openGate();
      throw error;
    }
    this.info = info;
    this.handlers = handlers;
    // A macrotask later, so the caller's `await start()` continuation runs before the first batch.
    setImmediate(openGate);
    return info;
  }

  /** Replaces the userland filter; takes effect from the next batch. */
  async setFilter(filter: string | readonly BpfInstruction[]): Promise<void> {
    if (this.info) this.filter = createBatchFilter(filter, this.info.linktype, this.info.snaplen);
    this.filterProgram = filter;
  }

  async stats(): Promise<CaptureStats> {
    return { delivered: this.delivered };
  }

  /** Connection counters (reconnects, bytes received, packets filtered out). */
  get connectionCounters(): Readonly<PcapOverIpSourceCounters> {
    return { ...this.counters };
  }

  /** Closes the connection, cancels any reconnect, waits for a delivery in progress; idempotent. */
  stop(): Promise<CaptureStats> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.wakeSleeper?.();
      const connection = this.current;
      if (connection) {
        this.closeConnection(connection, new RemoteSourceError("stopped", `${this.description}: stopped`));
        await connection.pump;
      }
      await this.reconnecting;
      this.finish("stopped");
      return { delivered: this.delivered };
    })();
    return this.stopped;
  }

  // ------------------------------------------------------------------------------------------
  // Connections

  /** Dials once; resolves with the stream's global header, rejects with RemoteSourceError. */
  private openConnection(): Promise<PcapGlobalHeader> {
    const { address } = this.options;
    const connection: Connection = {
      id: this.nextConnectionId++,
      phase: "opening",
      socket: undefined,
      reader: new CaptureFileReader({ maxBlockBytes: this.options.maxRecordBytes ?? DEFAULT_MAX_BLOCK_BYTES, adoptChunks: true }),
      inbox: [],
      header: undefined,
      peerGone: undefined,
      pump: undefined,
      headerTimer: undefined,
      opening: undefined,
    };
    this.current = connection;
    return new Promise<PcapGlobalHeader>((resolve, reject) => {
      connection.opening = { resolve, reject };
      connection.headerTimer = setTimeout(() => {
        const what = connection.socket ? "no pcap global header" : "no connection";
        this.closeConnection(
          connection,
          new RemoteSourceError("header-timeout", `${this.description}: ${what} within ${this.headerTimeoutMs} ms`),
        );
      }, this.headerTimeoutMs);
      Bun.connect<SocketData>({
        hostname: address.host,
        port: address.port,
        data: { source: this, connection },
        socket: socketHandlers,
        ...(this.tls ? { tls: this.tls } : {}),
      }).then(
        (socket) => {
          connection.socket ??= socket;
          if (connection.phase === "closed") socket.end();
        },
        (error: Error) => this.onConnectFailed(connection, error),
      );
    });
  }

  private tlsSettings(): TlsClientSettings {
    const o = this.options;
    return { ca: o.tlsCa, cert: o.tlsCert, key: o.tlsKey, insecure: o.insecure, serverName: o.serverName };
  }

  /** @internal socket adapter */
  onOpen(socket: Socket<SocketData>): void {
    const connection = socket.data.connection;
    connection.socket = socket;
    if (connection.phase === "closed") {
      socket.end();
      return;
    }
    enableKeepAlive(socket, this.options.keepaliveIdleMs ?? KEEPALIVE_INITIAL_DELAY_MS);
  }

  /** @internal socket adapter */
  onHandshake(socket: Socket<SocketData>, success: boolean, authorizationError: Error | null): void {
    // With insecure set, Bun reports the untrusted certificate but carries on: so do we.
    const refusal = tlsHandshakeRefusal(this.options.address.host, this.tlsSettings(), success, authorizationError);
    if (refusal === undefined) return;
    this.closeConnection(
      socket.data.connection,
      new RemoteSourceError("tls-failed", `${this.description}: TLS: ${refusal}`, { cause: authorizationError ?? undefined }),
    );
  }

  /** @internal socket adapter */
  onConnectFailed(connection: Connection, error: Error): void {
    this.closeConnection(
      connection,
      new RemoteSourceError("connect-failed", `${this.description}: cannot connect: ${socketErrorText(error)}`, { cause: error }),
    );
  }

  /** @internal socket adapter: the chunk is a fresh buffer per event, so it is queued as is. */
  onData(connection: Connection, chunk: Uint8Array): void {
    if (connection.phase === "closed") return;
    this.counters.bytesReceived += chunk.byteLength;
    connection.inbox.push(chunk);
    this.startPump(connection);
  }

  /** @internal socket adapter: close (error set when it failed) or error. */
  onPeerGone(connection: Connection, error?: Error): void {
    if (connection.phase === "closed" || connection.peerGone) return;
    connection.peerGone = {
      error: error
        ? new RemoteSourceError("socket-error", `${this.description}: socket error: ${socketErrorText(error)}`, { cause: error })
        : undefined,
    };
    this.startPump(connection); // handles the end once the inbox is drained
  }

  private startPump(connection: Connection): void {
    connection.pump ??= this.pump(connection).finally(() => {
      connection.pump = undefined;
      // Data or an EOF that arrived while the last delivery was settling.
      if (connection.phase !== "closed" && (connection.inbox.length > 0 || connection.peerGone)) this.startPump(connection);
    });
  }

  /** Feeds the inbox to the reader and hands batches over, one at a time, in stream order. */
  private async pump(connection: Connection): Promise<void> {
    for (;;) {
      if (connection.phase === "closed") return;
      const chunk = connection.inbox.shift();
      if (!chunk) {
        if (connection.peerGone && (await this.afterStart(connection))) this.peerEnded(connection, connection.peerGone.error);
        return;
      }
      const batches: PacketBatch[] = [];
      let failure: RemoteSourceError | undefined;
      try {
        connection.reader.push(chunk, (batch) => batches.push(batch));
      } catch (error) {
        failure = this.streamError(error);
      }
      if (connection.reader.format === "pcapng") {
        this.closeConnection(
          connection,
          new RemoteSourceError(
            "unsupported-format",
            `${this.description}: the peer sends pcapng; PCAP-over-IP carries classic pcap (convert with editcap -F pcap)`,
          ),
        );
        return;
      }
      if (!connection.header && connection.reader.pcapHeader) {
        const refused = this.headerArrived(connection, connection.reader.pcapHeader);
        if (refused) {
          this.closeConnection(connection, refused); // the batches of a refused stream are dropped
          return;
        }
      }
      // Records decoded before a bad one are good: deliver them, then end (nothing after the first decode error).
      if (batches.length > 0 && !(await this.deliver(connection, batches))) return;
      if (failure) {
        if (await this.afterStart(connection)) this.closeConnection(connection, failure);
        return;
      }
    }
  }

  /**
   * Once a stream has started, its end must reach the consumer after start() has returned (an
   * empty stream, or a bad first record, can end it in the same chunk as the header). Returns
   * false when the connection was closed meanwhile.
   */
  private async afterStart(connection: Connection): Promise<boolean> {
    if (connection.header) await this.gate;
    return !isClosed(connection);
  }

  /** Checks a new stream's header against the first one's; resolves the opening promise. */
  private headerArrived(connection: Connection, header: PcapGlobalHeader): RemoteSourceError | undefined {
    connection.header = header;
    const problem = linktypeProblem(header.linktype);
    if (problem) {
      return new RemoteSourceError("bad-linktype", `${this.description}: the stream's link type ${problem}; refusing a stream no reader could decode`);
    }
    const first = this.firstHeader;
    if (first && header.linktype !== first.linktype) {
      return new RemoteSourceError(
        "linktype-changed",
        `${this.description}: the reconnected stream has linktype ${header.linktype}, the first had ${first.linktype}`,
      );
    }
    if (first && header.precision !== first.precision) {
      this.log.info(`${this.description}: the reconnected stream has ${header.precision} timestamps; converting to ${first.precision}`);
    }
    clearTimeout(connection.headerTimer);
    connection.phase = "streaming";
    this.counters.connections++;
    if (first) this.options.onReconnected?.();
    const opening = connection.opening;
    connection.opening = undefined;
    opening?.resolve(header);
    return undefined;
  }

  /** Hands batches to the consumer, pausing the socket while a returned promise is pending. */
  private async deliver(connection: Connection, batches: readonly PacketBatch[]): Promise<boolean> {
    await this.gate;
    const precision = this.info!.precision;
    for (let batch of batches) {
      if (connection.phase === "closed") return false;
      if (batch.precision !== precision) batch = { ...batch, bytes: pcapRecordsFromBatch(batch, precision), precision };
      if (this.filter) {
        const kept = this.filter(batch);
        this.counters.filteredOut += batch.count - kept.count;
        batch = kept;
      }
      if (batch.count === 0) continue;
      this.delivered += batch.count;
      try {
        const pending = this.handlers!.onBatch(batch);
        if (pending) {
          connection.socket?.pause();
          try {
            await pending;
          } finally {
            // Re-read after the await: the connection may have been closed meanwhile.
            if (!isClosed(connection)) connection.socket?.resume();
          }
        }
      } catch (error) {
        const failure = new RemoteSourceError("consumer-failed", `${this.description}: consumer failed: ${(error as Error).message}`, {
          cause: error,
        });
        this.closeConnection(connection, failure);
        return false;
      }
    }
    return true;
  }

  /** The peer closed (or the socket failed) and everything it sent has been read. */
  private peerEnded(connection: Connection, error: RemoteSourceError | undefined): void {
    if (!error && connection.header) {
      try {
        connection.reader.end();
      } catch (cause) {
        const at = cause instanceof ProtocolError ? ` at byte ${cause.offset}` : "";
        error = new RemoteSourceError("closed", `${this.description}: the peer closed the stream in the middle of a record${at}`, { cause });
      }
    }
    if (!error && !connection.header) {
      error = new RemoteSourceError("closed", `${this.description}: the peer closed the connection before the pcap global header`);
    }
    this.closeConnection(connection, error);
  }

  private streamError(error: unknown): RemoteSourceError {
    if (error instanceof ProtocolError) {
      return new RemoteSourceError(
        "bad-stream",
        `${this.description}: not a valid pcap stream at byte ${error.offset}: ${error.message} (${error.code})`,
        { cause: error },
      );
    }
    return new RemoteSourceError("bad-stream", `${this.description}: ${(error as Error).message}`, { cause: error });
  }

  /**
   * The one place a connection ends: releases its timer and socket, then either fails the
   * opening attempt or decides what the source does next. `outcome` undefined = clean EOF.
   */
  private closeConnection(connection: Connection, outcome: RemoteSourceError | undefined): void {
    if (connection.phase === "closed") return;
    const wasOpening = connection.phase === "opening";
    connection.phase = "closed";
    clearTimeout(connection.headerTimer);
    connection.inbox.length = 0;
    connection.socket?.end();
    if (wasOpening) {
      const opening = connection.opening;
      connection.opening = undefined;
      opening?.reject(outcome ?? new RemoteSourceError("closed", `${this.description}: closed before the pcap global header`));
      return;
    }
    this.streamEnded(outcome);
  }

  /** A stream that had started has ended: reconnect, or end the source. */
  private streamEnded(error: RemoteSourceError | undefined): void {
    if (this.stopping || this.ended) return;
    if (error && !error.retriable) {
      this.finish("failed", error);
    } else if (this.reconnect && (error || this.reconnect.afterCleanEnd)) {
      const why = error ? error.message : `${this.description}: the peer closed the stream`;
      this.log.warn(`${why}; reconnecting in ${backoffDelayMs(this.reconnect, 1)} ms`);
      this.reconnecting = this.reconnectLoop(this.reconnect).finally(() => (this.reconnecting = undefined));
    } else {
      this.finish(error ? "failed" : "end-of-file", error);
    }
  }

  /** Dials with exponential backoff until a stream with the first one's linktype starts. */
  private async reconnectLoop(policy: Required<ReconnectOptions>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await this.sleep(backoffDelayMs(policy, attempt));
      if (this.stopping || this.ended) return;
      try {
        await this.openConnection();
        this.counters.reconnects++;
        this.log.info(`${this.description}: reconnected (attempt ${attempt})`);
        return;
      } catch (caught) {
        if (this.stopping || this.ended) return;
        const error = caught as RemoteSourceError;
        if (!error.retriable) {
          this.finish("failed", error);
          return;
        }
        if (attempt >= policy.maxAttempts) {
          this.finish(
            "failed",
            new RemoteSourceError(error.code, `${error.message} (gave up after ${attempt} reconnect attempts)`, { cause: error }),
          );
          return;
        }
        this.log.warn(`${error.message}; reconnect attempt ${attempt} failed, next in ${backoffDelayMs(policy, attempt + 1)} ms`);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeSleeper = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Ends the source once; onEnd only if start() had succeeded. */
  private finish(reason: "stopped" | "end-of-file" | "failed", error?: RemoteSourceError): void {
    if (this.ended) return;
    this.ended = true;
    this.wakeSleeper?.();
    if (this.current) this.closeConnection(this.current, error);
    this.handlers?.onEnd(reason, error);
  }
}

/**
 * LINKTYPE_* values readers know: the tcpdump.org link-layer header type registry's assigned
 * ranges (0-13 and 50-51 from the early DLT_* values, 99 up to LINKTYPE_HIGHEST_KNOWN). Wireshark
 * 4.x refuses a pcap file with any other value ("network type N unknown or unsupported"), and
 * with reserved bits set; a stream that declares one would be written out unreadable.
 */
const KNOWN_LINKTYPE_RANGES: readonly (readonly [number, number])[] = [
  [0, 13],
  [50, 51],
  [99, 299],
];
const LINKTYPE_HIGHEST_KNOWN = 299;

/** Why a pcap header's linktype word cannot be served or written, or undefined when it can. */
export function linktypeProblem(linktypeWord: number): string | undefined {
  const word = linktypeWord >>> 0;
  const hex = `0x${word.toString(16).padStart(8, "0")}`;
  if ((word & LinktypeField.RESERVED_MASK) !== 0) return `word ${hex} has reserved bits set (pcap: bits 16-25 must be 0)`;
  if ((word & LinktypeField.FCS_LENGTH_PRESENT) === 0 && word >>> LinktypeField.FCS_LENGTH_SHIFT !== 0) {
    return `word ${hex} has an FCS length without the FCS-present bit`;
  }
  const linktype = linktypeOf(word);
  if (!KNOWN_LINKTYPE_RANGES.some(([low, high]) => linktype >= low && linktype <= high)) {
    return `${linktype} is not a known LINKTYPE value (0-13, 50-51, 99-${LINKTYPE_HIGHEST_KNOWN})`;
  }
  return undefined;
}

/** A socket error in one line: Bun's message ("Failed to connect") with the errno name (ECONNREFUSED). */
function socketErrorText(error: Error): string {
  const code = (error as Error & { code?: unknown }).code;
  return typeof code === "string" && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
}
