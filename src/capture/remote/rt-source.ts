// RtSource: a libtrace RT server read as a CaptureSource (rt://HOST:PORT): probe's own
// `probe rt`, or any server speaking libtrace's RT protocol with pcap-typed data.
//
//   connect -> hello: the server's first message is HELLO (reliable flag) or DENY_CONN (reason)
//           -> send START (with probe's extension: the stream id and last sequence we wrote)
//           -> opening: a probe server answers METADATA "probe.stream" (stream id, next sequence,
//              link type); another server's first data message gives the link type
//           -> streaming: each socket read becomes one batch; the socket is paused while the
//              consumer's onBatch promise is pending (TCP back-pressure, nothing buffered here);
//              after it settles the state file is updated and, in reliable mode, one cumulative
//              ACK for the last sequence goes back. So the server releases only what the
//              consumer has written (`probe capture` resolves onBatch after its file write).
//
// Duplicates: a reliable server re-sends everything unacknowledged after a reconnect or its own
// restart. Records at or before the last sequence written in the same stream id are dropped
// (counted) and acknowledged again. A changed stream id means the sender's spool was recreated:
// sequence numbers start over and nothing is a duplicate. With `statePath` the (stream id, last
// sequence) pair survives our own restart (rt://HOST:PORT?state=FILE).
import { closeSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { backoffDelayMs, REMOTE_SOURCE_BACKOFF } from "../../net/reconnect-backoff.ts";
import type { BpfInstruction } from "../../packet/bpf/index.ts";
import type { Logger } from "../../logging/index.ts";
import { silentLogger } from "../../logging/index.ts";
import { MAXIMUM_SNAPLEN, PacketBatchBuilder, type PacketBatch } from "../../packet/packet-batch.ts";
import { ProtocolError } from "../../packet/protocol-error.ts";
import {
  CLOSE,
  decodeDeny,
  decodeHello,
  decodePcapData,
  decodeStatus,
  decodeStreamAnnounce,
  encodeAck,
  encodeStart,
  isPcapDataType,
  RT_DATA_DLT,
  RT_DATA_SIMPLE,
  RT_MAX_BODY_BYTES,
  RtDenyReason,
  RtFramer,
  RtType,
  rtTypeName,
  sequenceDistance,
  type RtMessage,
  type RtStatus,
} from "../../protocols/rt/index.ts";
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "../capture-source.ts";
import { createBatchFilter, type BatchFilter } from "../packet-filter.ts";
import { RemoteSourceError } from "./remote-source-error.ts";
import { createExclusive } from "../../sys/exclusive-file.ts";

/** Longest wait from dialling to HELLO: a server sends it on accept; covers a slow path. */
export const RT_HELLO_TIMEOUT_MS = 10_000;
/**
 * TCP keepalive idle time: a quiet capture is legitimate, so there is no idle timeout; keepalive
 * finds a sender that vanished without a FIN, and the reconnect takes over.
 */
export const RT_KEEPALIVE_INITIAL_DELAY_MS = 30_000;
/** Largest control body accepted from a server (STATUS is 40-64, METADATA small); data may use the whole u16. */
const MAX_SERVER_CONTROL_BODY_BYTES = 1024;

export interface RtSourceOptions {
  host: string;
  port: number;
  filter?: string | readonly BpfInstruction[];
  /** File that keeps (stream id, last sequence written) across our restarts; absent: memory only. */
  statePath?: string;
  helloTimeoutMs?: number;
  /**
   * After the stream has opened once, a dropped connection is dialled again with backoff
   * (REMOTE_SOURCE_BACKOFF: 0.5 s doubling to 30 s, as PCAP-over-IP's) instead of ending the
   * source: a reliable sender keeps everything unacknowledged meanwhile, and (stream id, last
   * sequence) carry over in memory, so nothing is lost or written twice. Default true.
   */
  reconnect?: boolean;
  log?: Logger;
}

export interface RtSourceCounters {
  received: number;
  delivered: number;
  duplicates: number;
  /** Sequences skipped by the server (dropped by its full-fifo policy, or lost by a memory fifo). */
  gaps: number;
  acksSent: number;
  lastStatus?: RtStatus;
}

interface ResumeState {
  streamId?: Uint8Array;
  lastSequence?: number;
}

export class RtSource implements CaptureSource {
  readonly description: string;
  readonly counters: RtSourceCounters = { received: 0, delivered: 0, duplicates: 0, gaps: 0, acksSent: 0 };
  private socket: Socket | undefined;
  private framer: RtFramer = this.newFramer();
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private stopping = false;
  private handlers: CaptureHandlers | undefined;
  private reliable = false;
  private phase: "hello" | "opening" | "streaming" | "closed" = "hello";
  private linktype: number | undefined;
  private builder: PacketBatchBuilder | undefined;
  private filter: BatchFilter | undefined;
  private state: ResumeState;
  private chain: Promise<void> = Promise.resolve();
  private opened = Promise.withResolvers<CaptureInfo>();
  private ended = false;
  private gapLogged = false;
  private serverEnded = false;
  /** Failed dials since the last HELLO, and the code of the last one (a changed code is logged). */
  private retries = 0;
  private retryCode: string | undefined;

  constructor(private readonly options: RtSourceOptions) {
    this.description = `rt://${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}`;
    this.state = options.statePath ? readState(options.statePath) : {};
  }

  private get log(): Logger {
    return this.options.log ?? silentLogger;
  }

  start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    this.handlers = handlers;
    this.opened.promise.catch(() => {});
    this.dial();
    return this.opened.promise;
  }

  /** Opens one connection; its events are ignored once a newer one replaces it. */
  private dial(): void {
    const socket = connect({ host: this.options.host, port: this.options.port });
    this.socket = socket;
    this.framer = this.newFramer();
    this.phase = "hello";
    socket.setNoDelay(true);
    socket.setKeepAlive(true, RT_KEEPALIVE_INITIAL_DELAY_MS);
    const current = () => this.socket === socket;
    const timeoutMs = this.options.helloTimeoutMs ?? RT_HELLO_TIMEOUT_MS;
    const helloTimer = setTimeout(() => {
      if (current() && this.phase === "hello") this.dropped(new RemoteSourceError("header-timeout", `${this.description}: no HELLO within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("close", () => clearTimeout(helloTimer));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (!current()) return;
      const code = this.phase === "hello" ? "connect-failed" : "socket-error";
      this.dropped(new RemoteSourceError(code, `${this.description}: ${error.code ?? error.message}`));
    });
    socket.on("close", () => {
      if (!current()) return;
      if (this.serverEnded && !this.reconnecting()) this.finish("end-of-file");
      else this.dropped(new RemoteSourceError("closed", `${this.description}: the server closed the connection`));
    });
    socket.on("data", (chunk: Buffer) => {
      if (current()) this.onData(chunk);
    });
  }

  private reconnecting(): boolean {
    return (this.options.reconnect ?? true) && this.linktype !== undefined && !this.stopping;
  }

  /**
   * The connection ended unasked: dial again with backoff (after the stream opened once, or at
   * any time when a server's slot is taken), or end the source. A refused first dial still ends
   * it, so a typo in the address surfaces at once.
   */
  private dropped(error: RemoteSourceError): void {
    if (this.phase === "closed") return;
    const busy = error.code === "server-busy" && (this.options.reconnect ?? true) && !this.stopping;
    if (!(this.reconnecting() || busy) || !error.retriable) {
      this.fail(error);
      return;
    }
    this.socket?.destroy();
    this.socket = undefined;
    this.phase = "hello";
    this.serverEnded = false;
    this.retries++;
    const delay = backoffDelayMs(REMOTE_SOURCE_BACKOFF, this.retries);
    // One line per change of state (the first failure, a different failure), not one per try:
    // a slot held for minutes would otherwise log every 30 s.
    if (this.retryCode !== error.code) {
      this.retryCode = error.code;
      this.log.warn(
        `${error.message}; dialling again in ${delay} ms, backing off to every ${REMOTE_SOURCE_BACKOFF.maxDelayMs / 1000} s (${this.state.lastSequence !== undefined ? `last sequence written ${this.state.lastSequence}` : "nothing written yet"}); logged again when this changes`,
      );
    }
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.stopping && this.phase !== "closed") this.dial();
    }, delay);
  }

  private newFramer(): RtFramer {
    // Data may use the whole u16; control messages, and anything before HELLO, are small.
    return new RtFramer((type) => (type >= RT_DATA_SIMPLE && this.phase !== "hello" ? RT_MAX_BODY_BYTES : MAX_SERVER_CONTROL_BODY_BYTES));
  }

  private onData(chunk: Buffer): void {
    if (this.phase === "closed") return;
    let messages: RtMessage[];
    try {
      messages = this.framer.push(chunk);
    } catch (error) {
      this.fail(new RemoteSourceError("bad-stream", `${this.description}: ${(error as Error).message}`, { cause: error }));
      return;
    }
    let lastSequence: number | undefined;
    try {
      for (const message of messages) {
        const seq = this.handleMessage(message);
        if (seq !== undefined) lastSequence = seq;
        if ((this.phase as string) === "closed") return;
      }
    } catch (error) {
      const cause = error instanceof ProtocolError ? error : undefined;
      if (error instanceof RemoteSourceError && error.code === "server-busy") this.dropped(error);
      else this.fail(error instanceof RemoteSourceError ? error : new RemoteSourceError("bad-stream", `${this.description}: ${(error as Error).message}`, { cause }));
      return;
    }
    const batch = this.builder?.take() ?? null;
    if (batch === null && lastSequence === undefined) return;
    this.deliver(batch, lastSequence);
  }

  /** Handles one message; returns the data sequence it carried (for the ACK), if any. */
  private handleMessage(message: RtMessage): number | undefined {
    if (this.phase === "hello") {
      if (message.type === RtType.DENY_CONN) {
        const reason = decodeDeny(message.body);
        if (reason === RtDenyReason.FULL) {
          // The slot frees up (the client in it leaves or times out): retried with backoff.
          throw new RemoteSourceError("server-busy", `${this.description}: connection denied: max connections reached (a reliable server serves one client)`);
        }
        const text = reason === RtDenyReason.AUTH ? "authentication failed" : reason === RtDenyReason.WRAPPER ? "rejected by TCP wrappers" : `reason ${reason}`;
        throw new RemoteSourceError("connect-failed", `${this.description}: connection denied: ${text}`);
      }
      if (message.type !== RtType.HELLO) throw new ProtocolError("no-hello", `first message is ${rtTypeName(message.type)}, not HELLO`, message.streamOffset);
      this.reliable = decodeHello(message.body, message.streamOffset).reliable;
      if (this.retries > 0) this.log.info(`${this.description}: connected after ${this.retries} ${this.retries === 1 ? "retry" : "retries"}`);
      this.retries = 0;
      this.retryCode = undefined;
      this.gapLogged = false;
      // After the first open, a new connection continues the stream (link type checked below).
      this.phase = this.linktype === undefined ? "opening" : "streaming";
      this.socket!.write(encodeStart({ ...this.state }));
      return undefined;
    }
    if (message.type >= RT_DATA_SIMPLE) return this.handleData(message);
    switch (message.type) {
      case RtType.METADATA: {
        const announce = decodeStreamAnnounce(message.body, message.streamOffset);
        if (announce) this.handleAnnounce(announce.streamId, announce.linktype);
        return undefined;
      }
      case RtType.STATUS:
        this.counters.lastStatus = decodeStatus(message.body, message.streamOffset);
        return undefined;
      case RtType.END_DATA:
        this.serverEnded = true;
        this.log.info(`${this.description}: the server ended the stream`);
        return undefined;
      case RtType.KEYCHANGE:
      case RtType.LOSTCONN:
      case RtType.SERVERSTART:
      case RtType.CLIENTDROP:
      case RtType.PAUSE_ACK:
      case RtType.OPTION:
      case RtType.DUCK:
        return undefined;
      default:
        throw new ProtocolError("unexpected-type", `a server may not send ${rtTypeName(message.type)}`, message.streamOffset);
    }
  }

  private handleAnnounce(streamId: Uint8Array, linktype: number): void {
    if (this.state.streamId && !equalBytes(this.state.streamId, streamId)) {
      this.log.warn(`${this.description}: the sender's stream id changed (its spool was recreated); sequence numbers start again`);
      this.state = {};
    }
    this.state.streamId = streamId;
    if (this.linktype !== undefined && linktype !== this.linktype) {
      throw new RemoteSourceError("linktype-changed", `${this.description}: link type changed from ${this.linktype} to ${linktype} after reconnecting`);
    }
    this.open(linktype);
  }

  private open(linktype: number): void {
    if (this.phase !== "opening") return;
    this.linktype = linktype;
    this.builder = new PacketBatchBuilder(linktype, "micro");
    if (this.options.filter) this.filter = createBatchFilter(this.options.filter as string, linktype, MAXIMUM_SNAPLEN);
    this.phase = "streaming";
    this.opened.resolve({ linktype, snaplen: MAXIMUM_SNAPLEN, precision: "micro", description: this.description });
  }

  private handleData(message: RtMessage): number {
    // libtrace takes 2001..2998 only (DLT_NULL, 2000, is refused: docs/rt.md quirk 5); probe's
    // own server sends 2000 for link type 0, so this reader takes it too.
    if (!isPcapDataType(message.type) && message.type !== RT_DATA_DLT) {
      throw new ProtocolError("unsupported-data", `RT data type ${message.type} is not pcap-typed (2000..2998); probe reads only those`, message.streamOffset);
    }
    const linktype = message.type - RT_DATA_DLT;
    const data = decodePcapData(message.body, MAXIMUM_SNAPLEN, message.streamOffset);
    if (this.phase === "opening") this.open(linktype);
    if (linktype !== this.linktype) {
      throw new RemoteSourceError("linktype-changed", `${this.description}: link type changed from ${this.linktype} to ${linktype} mid-stream`);
    }
    this.counters.received++;
    const last = this.state.lastSequence;
    if (last !== undefined) {
      const distance = sequenceDistance(message.sequence, last);
      if (distance <= 0) {
        this.counters.duplicates++;
        return message.sequence;
      }
      if (distance > 1 && this.reliable) {
        this.counters.gaps += distance - 1;
        if (!this.gapLogged) this.log.warn(`${this.description}: ${distance - 1} sequence numbers missing after ${last} (dropped by the sender's fifo policy or lost with a memory fifo)`);
        this.gapLogged = true;
      }
    }
    this.state.lastSequence = message.sequence;
    this.builder!.push(data.tsSec, data.tsUsec, data.len, message.body.subarray(data.dataOffset, data.dataOffset + data.caplen));
    return message.sequence;
  }

  /** In order: hand the batch over, wait for the consumer, record, acknowledge, read on. */
  private deliver(batch: PacketBatch | null, lastSequence: number | undefined): void {
    const socket = this.socket!;
    socket.pause();
    const state = { ...this.state };
    this.chain = this.chain.then(async () => {
      if (this.phase === "closed" && !this.serverEnded) return;
      if (batch) {
        const out = this.filter ? this.filter(batch) : batch;
        if (out.count > 0) {
          try {
            await this.handlers!.onBatch(out);
          } catch (error) {
            this.fail(new RemoteSourceError("consumer-failed", `${this.description}: ${(error as Error).message}`, { cause: error }));
            return;
          }
          this.counters.delivered += out.count;
        }
      }
      if (this.options.statePath && state.streamId && state.lastSequence !== undefined) {
        try {
          writeState(this.options.statePath, state);
        } catch (error) {
          // Without the state written, acknowledging would let the sender forget what a restart needs.
          this.fail(error instanceof RemoteSourceError ? error : new RemoteSourceError("consumer-failed", `rt state file ${this.options.statePath}: cannot write it (${(error as NodeJS.ErrnoException).code ?? "error"})`, { cause: error }));
          return;
        }
      }
      if (this.reliable && lastSequence !== undefined && !socket.destroyed) {
        socket.write(encodeAck(lastSequence));
        this.counters.acksSent++;
      }
      if (this.phase !== "closed" && !socket.destroyed) socket.resume();
    });
  }

  private fail(error: Error): void {
    if (this.phase === "closed") return;
    this.phase = "closed";
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.socket?.destroy();
    this.opened.reject(error);
    void this.chain.then(() => this.end("failed", error));
  }

  private finish(reason: "end-of-file" | "stopped"): void {
    const wasOpen = this.phase;
    this.phase = "closed";
    if (wasOpen === "hello" || wasOpen === "opening") this.opened.reject(new RemoteSourceError("closed", `${this.description}: the server ended before sending data`));
    void this.chain.then(() => this.end(reason));
  }

  private end(reason: "end-of-file" | "stopped" | "failed", error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.handlers?.onEnd(reason, error);
  }

  async setFilter(filter: string | readonly BpfInstruction[]): Promise<void> {
    if (this.linktype === undefined) throw new Error("rt source: not open yet");
    this.filter = createBatchFilter(filter as string, this.linktype, MAXIMUM_SNAPLEN);
  }

  async stats(): Promise<CaptureStats> {
    return { delivered: this.counters.delivered };
  }

  async stop(): Promise<CaptureStats> {
    this.stopping = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.phase !== "closed") {
      this.phase = "closed";
      this.opened.reject(new RemoteSourceError("stopped", `${this.description}: stopped`));
      this.opened.promise.catch(() => {});
      await this.chain;
      this.socket?.end(CLOSE);
    }
    this.end("stopped");
    return { delivered: this.counters.delivered };
  }
}

function readState(path: string): ResumeState {
  if (!existsSync(path)) return {};
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as { streamId?: unknown; lastSequence?: unknown };
    if (typeof parsed.streamId === "string" && /^[0-9a-f]{16}$/.test(parsed.streamId) && Number.isInteger(parsed.lastSequence)) {
      return { streamId: new Uint8Array(Buffer.from(parsed.streamId, "hex")), lastSequence: (parsed.lastSequence as number) >>> 0 };
    }
  } catch {
    // fall through
  }
  throw new RemoteSourceError("bad-stream", `rt state file ${path} is damaged; remove it to start afresh (duplicates are then possible)`);
}

/**
 * temp + rename: the state is the old one or the new one. No fsync: it covers kill -9, not power
 * loss. probe runs as root: the temp file is created O_EXCL|O_NOFOLLOW, never written through a
 * symbolic link; a regular one left by a crash is replaced, anything else refused in one line.
 */
function writeState(path: string, state: ResumeState): void {
  const temp = `${path}.tmp`;
  const { fd, refused } = createExclusive(temp, 0o600, (stats) => stats.isFile() && stats.nlink <= 1);
  if (refused) throw new RemoteSourceError("consumer-failed", `rt state file: ${temp} exists and is not a file probe wrote; left alone`);
  try {
    writeFileSync(fd, JSON.stringify({ streamId: Buffer.from(state.streamId!).toString("hex"), lastSequence: state.lastSequence }));
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((v, i) => v === b[i]);
}
