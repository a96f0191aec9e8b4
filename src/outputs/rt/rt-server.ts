// RtServer: serves the pipeline's packets to libtrace RT clients (tracepktdump rt:HOST:PORT,
// tracesplit, any libtrace program; probe's own rt:// input), as a PipelineOutput.
//
// Unreliable (default): any number of clients; each gets packets from the moment it sends START;
// nothing is kept for a client that is not there; a client that falls behind more than
// queueBytes loses batches (counted for it alone) or is disconnected, by slowConsumer.
//
// Reliable (--reliable): one client at a time (the next one gets DENY_CONN "max connections
// reached"). Every packet goes into the fifo first (memory, or a disk spool with --spool) and
// stays there until the client acknowledges it; packets captured while no client is connected
// wait in the fifo; a client that (re)connects gets everything unacknowledged again. The client
// gets STATUS (the fifo's counters) every statusIntervalMs.
//
// Protocol notes and libtrace's quirks: docs/rt.md. Wire: src/protocols/rt.
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../../logging/index.ts";
import type { PacketBatch } from "../../packet/packet-batch.ts";
import { ProtocolError } from "../../packet/protocol-error.ts";
import {
  encodeDataMessages,
  encodeDeny,
  encodeStatus,
  encodeStreamAnnounce,
  END_DATA,
  HELLO_RELIABLE,
  HELLO_UNRELIABLE,
  RT_DATA_DLT,
  RT_MAX_CLIENT_BODY_BYTES,
  RT_SEQUENCE_MODULUS,
  RtDenyReason,
  RtFramer,
  RtServerSession,
  sequenceDistance,
  SpoolFullPolicyCode,
  type ProbeStart,
} from "../../protocols/rt/index.ts";
import type { PipelineEvent, PipelineOutput, StreamDescription } from "../../pipeline/output.ts";
import { DiskSpool, type SpoolRecovery } from "./fifo/disk-spool.ts";
import { MemoryFifo } from "./fifo/memory-fifo.ts";
// Defaults shared with the spec schema: how far an unreliable client may fall behind, the reliable fifo cap.
import { DEFAULT_RT_ACK_TIMEOUT_MS, DEFAULT_RT_FIFO_BYTES, DEFAULT_RT_QUEUE_BYTES } from "../../config/rt-config.ts";
import type { PacketFifo, SpoolFullPolicy } from "./fifo/packet-fifo.ts";
import { UnackedAge } from "./fifo/unacked-age.ts";

/** libtrace's COLLECTOR_PORT. */
export const RT_SERVER_DEFAULT_PORT = 3435;
/** A client must send START this soon after HELLO (libtrace sends it at once); frees slots held by silent peers. */
export const RT_START_TIMEOUT_MS = 10_000;
/** STATUS period in reliable mode: often enough to watch a fifo fill, rare enough to cost nothing. */
export const RT_STATUS_INTERVAL_MS = 1_000;
/** Unreliable: most clients served at once; each costs a socket and up to queueBytes of memory. */
export const RT_MAX_CLIENTS = 64;
/**
 * A denied connection gets DENY_CONN and a FIN, then is destroyed after this long whether or not
 * the peer closed its side: a peer that never closes would otherwise keep the socket (and stop()
 * would wait for it forever, as seen after a flood of 800 connections).
 */
export const RT_DENY_LINGER_MS = 1_000;
/** Bytes read from the fifo per send: one socket write of RT messages. */
const SEND_CHUNK_BYTES = 256 * 1024;
/**
 * --spool-full block: batches refused by a full fifo wait here for room, at most this many bytes
 * (file inputs wait on them; live capture never waits, so beyond this they are dropped, counted).
 */
export const RT_BLOCK_PENDING_BYTES = 64 * 1024 * 1024;
/** A full episode ends when the fifo is back under this share of its cap (hysteresis for the log). */
const FULL_EPISODE_END_RATIO = 0.9;

export interface RtServerOptions {
  listen: readonly { host: string; port: number }[];
  reliable: boolean;
  /** Unreliable: per-client bound. */
  queueBytes?: number;
  slowConsumer?: "drop" | "disconnect";
  /** Reliable fifo. Without `directory`, memory. */
  fifo?: { directory?: string; maxBytes: number; policy: SpoolFullPolicy; fsyncMs?: number; segmentBytes?: number };
  statusIntervalMs?: number;
  startTimeoutMs?: number;
  /** Reliable: close a client that leaves sent records unacknowledged this long (default DEFAULT_RT_ACK_TIMEOUT_MS; 0: never). */
  ackTimeoutMs?: number;
  /** After the inputs end (a replayed file), keep serving until a signal (default false). */
  keepServing?: boolean;
  log: Logger;
}

interface Client {
  id: number;
  socket: Socket;
  remote: string;
  session: RtServerSession;
  framer: RtFramer;
  probe: ProbeStart | undefined;
  /** Reliable: next fifo sequence to send. */
  nextSend: number;
  waitingDrain: boolean;
  startTimer?: ReturnType<typeof setTimeout>;
  statusTimer?: ReturnType<typeof setInterval>;
  /** Reliable: armed while records are outstanding; fires when no ACK advanced for ackTimeoutMs. */
  ackTimer?: ReturnType<typeof setTimeout>;
  /** Reliable: when an ACK last advanced (or the client started). */
  lastAckProgressMs: number;
  droppedPackets: number;
  invalidAcks: number;
  closed: boolean;
}

export class RtServer implements PipelineOutput {
  readonly name = "rt";
  private servers: Server[] = [];
  private readonly clients = new Set<Client>();
  /** Every open accepted socket, clients and denied peers alike: stop() destroys what is left. */
  private readonly sockets = new Set<Socket>();
  private reliableClient: Client | undefined;
  private fifo: PacketFifo | undefined;
  /** When the fifo's unacknowledged records were appended (the oldest unacked age metric). */
  private readonly unackedAge = new UnackedAge();
  private stream: StreamDescription | undefined;
  /** Unreliable: sequence of the next data message (wraps explicitly at 2^32). */
  private sequence = 0;
  private readonly unreliableStreamId = crypto.getRandomValues(new Uint8Array(8));
  private nextClientId = 1;
  private pending: PacketBatch[] = [];
  private pendingBytes = 0;
  private pendingWaiters: (() => void)[] = [];
  private fullEpisode = false;
  /** Fifo bytes handed to the reliable client so far (STATUS "out"). */
  private bytesOut = 0;
  private stopped = false;
  recovery: SpoolRecovery | undefined;
  /** Where the server listens (port 0 resolved). */
  listening: { host: string; port: number }[] = [];
  private readonly stats = {
    packetsIn: 0,
    packetsSent: 0,
    packetsDroppedSlowClient: 0,
    packetsDroppedFifoFull: 0,
    fullEpisodes: 0,
    clientsAccepted: 0,
    clientsDenied: 0,
    protocolErrors: 0,
    invalidAcks: 0,
    packetsTruncated: 0,
    kernelDrops: 0,
    ackTimeouts: 0,
  };

  constructor(private readonly options: RtServerOptions) {}

  /** The run goes on after the inputs end, so clients (the reliable one: the fifo) drain. */
  get keepsRunAfterInputsEnd(): boolean {
    return this.options.keepServing ?? false;
  }

  /**
   * Opens (and recovers) the fifo and binds the listeners, before the capture opens: the
   * command needs the bound ports to leave the server's own traffic out of the capture.
   * Idempotent; start() calls it when the command did not.
   */
  async prepare(): Promise<void> {
    if (this.prepared) return;
    this.prepared = true;
    if (this.options.reliable) {
      const fifo = this.options.fifo ?? { maxBytes: DEFAULT_RT_FIFO_BYTES, policy: "block" as const };
      if (fifo.directory) {
        const { spool, recovery } = DiskSpool.open({
          directory: fifo.directory,
          maxBytes: fifo.maxBytes,
          policy: fifo.policy,
          ...(fifo.fsyncMs ? { fsyncMs: fifo.fsyncMs } : {}),
          ...(fifo.segmentBytes ? { segmentBytes: fifo.segmentBytes } : {}),
          log: this.options.log,
        });
        this.fifo = spool;
        this.recovery = recovery;
        if (spool.counters.recordsHeld > 0) this.unackedAge.recovered(spool.nextSequence - 1);
        const r = recovery;
        this.options.log.info(
          r.created
            ? `spool ${fifo.directory}: new stream ${hex(spool.streamId)}`
            : `spool ${fifo.directory}: recovered ${r.records} unacknowledged records (${r.bytes} bytes; ${r.diskBytes} bytes on disk in ${r.segments} segments, sequences ${r.firstSequence}..${r.nextSequence - 1}) in ${r.durationMs.toFixed(0)} ms${r.cutBytes ? `, cut ${r.cutBytes} torn bytes` : ""}${r.damaged.length ? `, skipped ${r.damaged.length} damaged stretches (${r.lostRecords} records lost)` : ""}${r.leftAlone.length ? `, left ${r.leftAlone.length} files alone that are not probe's` : ""}`,
        );
      } else {
        this.fifo = new MemoryFifo({ maxBytes: fifo.maxBytes, policy: fifo.policy });
      }
    }
    try {
      for (const address of this.options.listen) await this.listenOn(address);
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  private prepared = false;

  async start(stream: StreamDescription): Promise<void> {
    this.stream = stream;
    const linktype = stream.inputs[0]?.linktype ?? 1;
    if (linktype === 0) this.options.log.warn("link type 0 (BSD loopback): libtrace 3.0.22 refuses RT data of type 2000; only probe clients can read this stream");
    await this.prepare();
    const held = this.recovery?.linktypes.filter((l) => l !== linktype) ?? [];
    if (held.length > 0) this.options.log.warn(`the spool holds packets of link type ${held.join(", ")}; this capture is ${linktype}: a probe receiver will stop at the change`);
    const what = stream.inputs.map((i) => i.description).join(" + ") || "nothing";
    const mode = this.options.reliable ? `reliable, ${this.options.fifo?.directory ? `spool ${this.options.fifo.directory}` : "memory fifo"}` : "unreliable";
    for (const l of this.listening) {
      const host = l.host.includes(":") ? `[${l.host}]` : l.host;
      this.options.log.info(`rt: serving ${what} on ${host}:${l.port} (${mode}); read it with: tracepktdump rt:${host}:${l.port}`);
    }
  }

  private listenOn(address: { host: string; port: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.accept(socket));
      server.once("error", (error: NodeJS.ErrnoException) => reject(new Error(`--listen ${address.host}:${address.port}: ${error.code === "EADDRINUSE" ? "address in use" : error.code ?? error.message}`)));
      server.listen(address.port, address.host, () => {
        const bound = server.address();
        this.listening.push({ host: address.host, port: typeof bound === "object" && bound ? bound.port : address.port });
        this.servers.push(server);
        resolve();
      });
    });
  }

  /** A BPF expression that leaves the server's own connections out of a capture, or "". */
  ownTrafficFilter(): string {
    return this.listening.map((l) => `not tcp port ${l.port}`).join(" and ");
  }

  /** The fifo's stream id (reliable) or this run's (unreliable), for logs and tests. */
  get streamId(): Uint8Array {
    return this.fifo?.streamId ?? this.unreliableStreamId;
  }

  // ---------------------------------------------------------------- clients

  private accept(socket: Socket): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    socket.on("error", () => {});
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    if (this.stopped) {
      socket.destroy();
      return;
    }
    const busy = this.options.reliable ? this.reliableClient !== undefined : this.clients.size >= RT_MAX_CLIENTS;
    if (busy) {
      this.stats.clientsDenied++;
      this.options.log.info(`rt client ${remote}: denied (${this.options.reliable ? "reliable mode serves one client" : `${RT_MAX_CLIENTS} clients already`})`);
      socket.end(encodeDeny(RtDenyReason.FULL));
      setTimeout(() => socket.destroy(), RT_DENY_LINGER_MS).unref?.();
      return;
    }
    const client: Client = {
      id: this.nextClientId++,
      socket,
      remote,
      session: new RtServerSession(),
      framer: new RtFramer(() => RT_MAX_CLIENT_BODY_BYTES),
      probe: undefined,
      nextSend: 0,
      waitingDrain: false,
      lastAckProgressMs: 0,
      droppedPackets: 0,
      invalidAcks: 0,
      closed: false,
    };
    this.clients.add(client);
    if (this.options.reliable) this.reliableClient = client;
    this.stats.clientsAccepted++;
    client.startTimer = setTimeout(() => this.closeClient(client, "no START within the start timeout"), this.options.startTimeoutMs ?? RT_START_TIMEOUT_MS);
    socket.on("data", (chunk: Buffer) => this.onData(client, chunk));
    socket.on("close", () => this.closeClient(client, "connection closed"));
    socket.on("drain", () => {
      client.waitingDrain = false;
      if (this.options.reliable) this.pump();
    });
    socket.write(this.options.reliable ? HELLO_RELIABLE : HELLO_UNRELIABLE);
    this.options.log.info(`rt client ${remote}: connected`);
  }

  private onData(client: Client, chunk: Buffer): void {
    if (client.closed) return;
    let messages;
    try {
      messages = client.framer.push(chunk);
    } catch (error) {
      this.protocolError(client, error as ProtocolError);
      return;
    }
    for (const message of messages) {
      const action = client.session.handle(message);
      if (!action) continue;
      if (action.kind === "close") {
        if (action.error) this.protocolError(client, action.error);
        else this.closeClient(client, action.reason);
        return;
      }
      if (action.kind === "start") this.handleStart(client, action.probe);
      else this.handleAck(client, action.sequence);
    }
  }

  private protocolError(client: Client, error: ProtocolError): void {
    this.stats.protocolErrors++;
    // Our own message text: numbers and type names only, never the peer's bytes.
    this.options.log.warn(`rt client ${client.remote}: ${error.code} at byte ${error.offset}: ${error.message}; closing it`);
    this.closeClient(client, error.code);
  }

  private handleStart(client: Client, probe: ProbeStart | undefined): void {
    if (client.startTimer) clearTimeout(client.startTimer);
    client.probe = probe;
    const linktype = this.stream?.inputs[0]?.linktype ?? 1;
    if (!this.options.reliable || !this.fifo) {
      if (probe) client.socket.write(encodeStreamAnnounce(this.unreliableStreamId, this.sequence, linktype));
      return;
    }
    const fifo = this.fifo;
    if (probe?.streamId && probe.lastSequence !== undefined && equalBytes(probe.streamId, fifo.streamId)) {
      // The client wrote through lastSequence before: that is an acknowledgement.
      const distance = sequenceDistance(probe.lastSequence, fifo.ackedThrough % RT_SEQUENCE_MODULUS);
      const through = fifo.ackedThrough + distance;
      if (distance > 0 && through < fifo.nextSequence) fifo.ack(through);
      this.unackedAge.release(fifo.ackedThrough);
    }
    client.nextSend = fifo.ackedThrough + 1;
    client.lastAckProgressMs = performance.now();
    if (probe) client.socket.write(encodeStreamAnnounce(fifo.streamId, client.nextSend % RT_SEQUENCE_MODULUS, linktype));
    const statusMs = this.options.statusIntervalMs ?? RT_STATUS_INTERVAL_MS;
    if (statusMs > 0) client.statusTimer = setInterval(() => client.socket.write(encodeStatus(this.status())), statusMs);
    this.options.log.info(`rt client ${client.remote}: started at sequence ${client.nextSend}, ${fifo.counters.recordsHeld} records waiting`);
    this.pump();
  }

  private handleAck(client: Client, wireSequence: number): void {
    const fifo = this.fifo;
    if (!this.options.reliable || !fifo) return; // an unreliable server has nothing to release
    // Map the u32 back into the fifo's sequence space relative to what is acknowledged.
    const distance = sequenceDistance(wireSequence, fifo.ackedThrough % RT_SEQUENCE_MODULUS);
    if (distance <= 0) return; // stale or repeated: libtrace acknowledges every message
    const through = fifo.ackedThrough + distance;
    if (through >= client.nextSend) {
      client.invalidAcks++;
      this.stats.invalidAcks++;
      if (client.invalidAcks === 1) this.options.log.warn(`rt client ${client.remote}: ACK for sequence ${wireSequence}, never sent; ignored (counted)`);
      return;
    }
    fifo.ack(through);
    client.lastAckProgressMs = performance.now();
    this.unackedAge.release(fifo.ackedThrough);
    this.flushPending();
    this.checkEpisodeEnd();
    this.pump();
  }

  private closeClient(client: Client, reason: string): void {
    if (client.closed) return;
    client.closed = true;
    client.session.close(reason);
    if (client.startTimer) clearTimeout(client.startTimer);
    if (client.statusTimer) clearInterval(client.statusTimer);
    if (client.ackTimer) clearTimeout(client.ackTimer);
    this.clients.delete(client);
    if (this.reliableClient === client) this.reliableClient = undefined;
    client.socket.destroy();
    const held = this.fifo ? `; ${this.fifo.counters.recordsHeld} records held for the next client` : "";
    this.options.log.info(`rt client ${client.remote}: ${reason}${client.droppedPackets ? ` (${client.droppedPackets} packets dropped: too slow)` : ""}${held}`);
  }

  // ---------------------------------------------------------------- data

  write(batch: PacketBatch): void | Promise<void> {
    if (this.stopped || batch.count === 0) return;
    this.stats.packetsIn += batch.count;
    if (!this.options.reliable) return this.broadcast(batch);
    if (this.pending.length > 0) return this.hold(batch);
    const droppedBefore = this.fifo!.counters.droppedOldestRecords;
    const result = this.fifo!.append(batch);
    if (result.kind === "appended") this.appendedToFifo();
    if (result.kind === "failed") {
      // The spool's disk refused the write: counted like a full fifo, logged once per episode.
      if (!this.fullEpisode) this.options.log.error(`rt spool write failed (${result.reason}); dropping packets until it works again`);
      this.beginEpisode();
      this.stats.packetsDroppedFifoFull += batch.count;
      return;
    }
    if (result.kind === "full") {
      this.beginEpisode();
      if (this.options.fifo?.policy === "block") return this.hold(batch);
      this.stats.packetsDroppedFifoFull += batch.count;
      return;
    }
    // drop-oldest made room by releasing unacknowledged records: that is a full episode too.
    if (this.fifo!.counters.droppedOldestRecords > droppedBefore) this.beginEpisode();
    else this.checkEpisodeEnd();
    this.pump();
  }

  /** Notes the append's time; drop-oldest may have released records without an ack. */
  private appendedToFifo(): void {
    const fifo = this.fifo!;
    this.unackedAge.appended(fifo.nextSequence - 1);
    this.unackedAge.release(fifo.ackedThrough);
  }

  private broadcast(batch: PacketBatch): void {
    const started = [...this.clients].filter((c) => c.session.state.kind === "streaming");
    const first = this.sequence;
    this.sequence = (this.sequence + batch.count) % RT_SEQUENCE_MODULUS;
    if (started.length === 0) return;
    const encoded = encodeDataMessages(batch.bytes, batch.count, RT_DATA_DLT + batch.linktype, batch.precision, first);
    this.stats.packetsTruncated += encoded.truncated;
    const limit = this.options.queueBytes ?? DEFAULT_RT_QUEUE_BYTES;
    for (const client of started) {
      if (client.socket.writableLength > 0 && client.socket.writableLength + encoded.bytes.byteLength > limit) {
        if (this.options.slowConsumer === "disconnect") {
          this.closeClient(client, "disconnected: too slow (--slow-consumer disconnect)");
          continue;
        }
        client.droppedPackets += batch.count;
        this.stats.packetsDroppedSlowClient += batch.count;
        continue;
      }
      client.socket.write(encoded.bytes);
      this.stats.packetsSent += batch.count;
    }
  }

  /** block policy: keep the batch (copied: the pipeline's batch is shared) until the fifo has room. */
  private hold(batch: PacketBatch): void | Promise<void> {
    if (this.pendingBytes + batch.bytes.byteLength > RT_BLOCK_PENDING_BYTES) {
      this.stats.packetsDroppedFifoFull += batch.count;
      return;
    }
    this.pending.push({ ...batch, bytes: batch.bytes.slice() });
    this.pendingBytes += batch.bytes.byteLength;
    return new Promise((resolve) => this.pendingWaiters.push(resolve));
  }

  private flushPending(): void {
    while (this.pending.length > 0) {
      const batch = this.pending[0]!;
      const result = this.fifo!.append(batch);
      if (result.kind === "full") return;
      if (result.kind === "appended") this.appendedToFifo();
      if (result.kind === "failed") this.stats.packetsDroppedFifoFull += batch.count;
      this.pending.shift();
      this.pendingBytes -= batch.bytes.byteLength;
    }
    const waiters = this.pendingWaiters;
    this.pendingWaiters = [];
    for (const wake of waiters) wake();
  }

  private beginEpisode(): void {
    if (this.fullEpisode) return;
    this.fullEpisode = true;
    this.stats.fullEpisodes++;
    const policy = this.options.fifo?.policy ?? "block";
    const what = { block: "holding new packets (bounded) until the client acknowledges", "drop-oldest": "dropping the oldest unacknowledged packets", "drop-new": "dropping new packets" }[policy];
    this.options.log.warn(`rt fifo full (${this.fifo!.counters.usedBytes} of ${this.fifo!.counters.capacityBytes} bytes): ${what} (--spool-full ${policy})`);
  }

  private checkEpisodeEnd(): void {
    if (!this.fullEpisode || this.pending.length > 0) return;
    const c = this.fifo!.counters;
    if (c.usedBytes > c.capacityBytes * FULL_EPISODE_END_RATIO) return;
    this.fullEpisode = false;
    this.options.log.info(`rt fifo has room again (${c.usedBytes} bytes used); ${this.stats.packetsDroppedFifoFull + c.droppedOldestRecords} packets dropped by the full-fifo policy so far`);
  }

  /**
   * Reliable: while records are outstanding, a timer checks that ACKs keep advancing; a client
   * that stopped reading or acknowledging is closed after ackTimeoutMs, so the one slot frees
   * itself. One timer per client, re-armed for the remaining time, not one per message.
   */
  private armAckTimer(client: Client): void {
    const timeoutMs = this.options.ackTimeoutMs ?? DEFAULT_RT_ACK_TIMEOUT_MS;
    const fifo = this.fifo;
    if (timeoutMs <= 0 || !fifo || client.closed || client.ackTimer) return;
    if (client.nextSend <= fifo.ackedThrough + 1) return; // nothing outstanding: a quiet stream is fine
    const remainingMs = Math.max(0, client.lastAckProgressMs + timeoutMs - performance.now());
    client.ackTimer = setTimeout(() => {
      client.ackTimer = undefined;
      if (client.closed || client.nextSend <= fifo.ackedThrough + 1) return;
      if (performance.now() - client.lastAckProgressMs < timeoutMs) {
        this.armAckTimer(client);
        return;
      }
      this.stats.ackTimeouts++;
      const outstanding = client.nextSend - fifo.ackedThrough - 1;
      this.closeClient(client, `no ACK for ${timeoutMs} ms with ${outstanding} records sent and unacknowledged (--ack-timeout-ms); closed to free the reliable slot`);
    }, remainingMs);
  }

  /** Reliable: send what the client has not been sent yet, while its socket takes it. */
  private pump(): void {
    const client = this.reliableClient;
    const fifo = this.fifo;
    if (!client || !fifo || client.closed || client.waitingDrain || client.session.state.kind !== "streaming") return;
    try {
      this.pumpInto(client, fifo);
    } finally {
      if (!client.closed) this.armAckTimer(client);
    }
  }

  private pumpInto(client: Client, fifo: PacketFifo): void {
    for (;;) {
      let chunk;
      try {
        chunk = fifo.read(client.nextSend, SEND_CHUNK_BYTES);
      } catch (error) {
        // A spool damaged under us (or a read error): this client cannot be served in order.
        this.options.log.error(`rt fifo read failed: ${(error as Error).message}; closing the client`);
        this.closeClient(client, "fifo read failed");
        return;
      }
      if (!chunk) return;
      const encoded = encodeDataMessages(chunk.records, chunk.count, RT_DATA_DLT + chunk.linktype, chunk.precision, chunk.firstSequence % RT_SEQUENCE_MODULUS);
      this.stats.packetsTruncated += encoded.truncated;
      this.stats.packetsSent += chunk.count;
      this.bytesOut += chunk.fifoBytes;
      // The ACK clock starts when records become outstanding: time spent quiet does not count.
      if (client.nextSend <= fifo.ackedThrough + 1) client.lastAckProgressMs = performance.now();
      client.nextSend = chunk.firstSequence + chunk.count;
      if (!client.socket.write(encoded.bytes)) {
        client.waitingDrain = true;
        return;
      }
    }
  }

  /** The fifo's counters as STATUS carries them. */
  status() {
    const c = this.fifo?.counters;
    const policy = this.options.fifo?.policy ?? "block";
    return {
      in: c?.bytesIn ?? 0,
      out: this.bytesOut,
      ack: c?.bytesAcked ?? 0,
      length: c?.capacityBytes ?? 0,
      used: c?.usedBytes ?? 0,
      droppedRecords: this.stats.packetsDroppedFifoFull + (c?.droppedOldestRecords ?? 0),
      fullEpisodes: this.stats.fullEpisodes,
      policy: SpoolFullPolicyCode[policy],
    };
  }

  event(event: PipelineEvent): void {
    if (event.kind !== "kernel-drop" || event.packets <= 0) return;
    this.stats.kernelDrops += event.packets;
    const input = this.stream?.inputs[event.input]?.name;
    this.options.log.warn(`capture lost ${event.packets} packets in the kernel${input ? ` (input ${input})` : ""} before the rt fifo saw them (not a sequence gap: they never got a number)`);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const client of [...this.clients]) {
      if (client.session.state.kind === "streaming") client.socket.write(END_DATA);
      client.socket.end();
      this.closeClient(client, "server stopping");
    }
    // Denied peers that never closed their side: server.close() waits for every connection.
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    if (this.pending.length > 0) {
      for (const batch of this.pending) this.stats.packetsDroppedFifoFull += batch.count;
      this.pending = [];
      const waiters = this.pendingWaiters;
      this.pendingWaiters = [];
      for (const wake of waiters) wake();
    }
    await this.fifo?.close();
  }

  counters(): Readonly<Record<string, number>> {
    const c = this.fifo?.counters;
    return {
      clients: this.clients.size,
      packets_in: this.stats.packetsIn,
      packets_sent: this.stats.packetsSent,
      packets_dropped_slow_client: this.stats.packetsDroppedSlowClient,
      packets_dropped_fifo_full: this.stats.packetsDroppedFifoFull + (c?.droppedOldestRecords ?? 0),
      fifo_full_episodes: this.stats.fullEpisodes,
      fifo_used_bytes: c?.usedBytes ?? 0,
      fifo_records_held: c?.recordsHeld ?? 0,
      fifo_capacity_bytes: c?.capacityBytes ?? 0,
      fifo_oldest_unacked_age_seconds: this.fifo ? this.unackedAge.ageSeconds(this.fifo.ackedThrough) : 0,
      fifo_disk_bytes_written: c?.diskBytesWritten ?? 0,
      clients_denied: this.stats.clientsDenied,
      protocol_errors: this.stats.protocolErrors,
      invalid_acks: this.stats.invalidAcks,
      packets_truncated: this.stats.packetsTruncated,
      kernel_drops: this.stats.kernelDrops,
      ack_timeouts: this.stats.ackTimeouts,
    };
  }

  summaryLines(): string[] {
    const c = this.counters();
    return [
      `rt: ${c.packets_in} packets in, ${c.packets_sent} sent, ${c.packets_dropped_slow_client} dropped for slow clients, ${c.packets_dropped_fifo_full} dropped by the full-fifo policy, ${c.fifo_records_held} held unacknowledged`,
    ];
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((v, i) => v === b[i]);
}
