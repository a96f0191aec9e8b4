// One PCAP-over-IP consumer connection: the classic pcap global header, then records, each
// batch one write. Its own bounded queue; when it falls behind, the slow-consumer policy says
// whether its batches are dropped (counted) or it is disconnected. Never affects the others.
import type { Socket } from "bun";
import type { PacketBatch, TimestampPrecision } from "../../packet/packet-batch.ts";
import { ConsumerQueue } from "../../pipeline/consumer-queue.ts";
import { pcapRecordsFromBatch } from "../../protocols/pcap/index.ts";
import { SocketWriter } from "../../net/socket-writer.ts";

export type SlowConsumerPolicy = "drop" | "disconnect";

export interface StreamConsumerOptions {
  peer: string;
  precision: TimestampPrecision;
  maxQueueBytes: number;
  slowConsumer: SlowConsumerPolicy;
  /** Called once when the consumer is finished (peer closed, error, or disconnected by policy). */
  onClosed(consumer: StreamConsumer, why: string): void;
}

export class StreamConsumer {
  private readonly writer: SocketWriter;
  private readonly queue: ConsumerQueue;
  private headerSent = false;
  private closed = false;
  readonly connectedAt = Date.now();

  constructor(private readonly socket: Socket<unknown>, private readonly options: StreamConsumerOptions) {
    this.writer = new SocketWriter(socket);
    this.queue = new ConsumerQueue(
      { write: (batch) => this.writer.write(pcapRecordsFromBatch(batch, options.precision)) },
      options.maxQueueBytes,
      (error) => this.close(`write failed: ${error.message}`),
    );
  }

  get peer(): string {
    return this.options.peer;
  }

  get counters() {
    return this.queue.counters;
  }

  /** Sends the pcap global header; records are only queued after it. */
  sendHeader(header: Uint8Array): void {
    if (this.headerSent || this.closed) return;
    this.headerSent = true;
    // 24 bytes into a fresh socket always fit the kernel buffer; if they did not, the records
    // queued after could overtake the remainder, so give up on this peer instead.
    const pending = this.writer.write(header);
    if (pending) {
      pending.catch(() => {});
      this.close("could not write the pcap header in one go");
    }
  }

  offer(batch: PacketBatch): void {
    if (!this.headerSent || this.closed) return;
    if (!this.queue.offer(batch) && this.options.slowConsumer === "disconnect") {
      this.close(`disconnected: fell more than ${this.options.maxQueueBytes} bytes behind (--slow-consumer disconnect)`);
    }
  }

  onDrain(): void {
    this.writer.onDrain();
  }

  /** Idempotent: ends the socket, discards the queue, reports once. */
  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.close();
    this.writer.onClose();
    this.socket.end();
    this.options.onClosed(this, why);
  }
}
