// The udpstr output (`probe forward --udpstr`): records densely packed into ExtraHop udpstr
// datagrams for a collector, never an IP fragment. A full socket buffer drops datagrams
// (counted); a bounded queue keeps a live capture from ever waiting on the socket.
import { openUdpDataChannel, type DataChannel } from "../../daemon/data-channel.ts";
import type { PacketBatch } from "../../packet/packet-batch.ts";
import { ConsumerQueue } from "../../pipeline/consumer-queue.ts";
import { IovLayout, UdpstrPacker } from "../../protocols/udpstr/index.ts";
import type { OutputContext } from "../../pipeline/output-context.ts";
import type { PipelineOutput } from "../../pipeline/output.ts";

export interface UdpstrOutputOptions {
  host: string;
  port: number;
  mtu: number;
  sendBufferBytes: number;
}

/**
 * The kernel reports one ICMP port unreachable per datagram or so while no collector listens:
 * the first is logged at once, then at most one line (with the count) a minute.
 */
const SEND_ERROR_LOG_INTERVAL_MS = 60_000;

export class UdpstrOutput implements PipelineOutput {
  readonly name = "udpstr";
  private channel: DataChannel | undefined;
  private queue: ConsumerQueue | undefined;
  private sendErrors = 0;
  private sendErrorLoggedAt = -Infinity;

  constructor(
    private readonly options: UdpstrOutputOptions,
    private readonly context: OutputContext,
  ) {}

  async start(): Promise<void> {
    const o = this.options;
    // Dense packing: datagrams are udpstr any collector reads, but not limited by ExtraHop's
    // 32-slot iovec, so small packets fill datagrams to the MTU.
    const packer = new UdpstrPacker({ mtuBytes: o.mtu, iovLayout: IovLayout.DENSE });
    const channel = await openUdpDataChannel({
      host: o.host,
      port: o.port,
      kind: "udpstr",
      sendBufferBytes: o.sendBufferBytes,
      packer: { pack: (batch, npkt) => packer.push(batch, npkt), flush: () => packer.flush() },
      onSendError: (error) => this.sendErrorReported(error),
    });
    this.channel = channel;
    this.queue = new ConsumerQueue({ write: (batch) => channel.write(batch) });
    this.context.log.info(`forwarding as udpstr (mtu ${o.mtu}) to ${o.host}:${o.port}`);
  }

  /** A report from the kernel on an earlier datagram; sending goes on (the collector may come up later). */
  private sendErrorReported(error: Error): void {
    this.sendErrors++;
    const now = performance.now();
    if (now - this.sendErrorLoggedAt < SEND_ERROR_LOG_INTERVAL_MS) return;
    this.sendErrorLoggedAt = now;
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ECONNREFUSED" ? "nothing listens there (ICMP port unreachable)" : error.message;
    this.context.log.warn(`udpstr to ${this.options.host}:${this.options.port}: ${why}; still sending (${this.sendErrors} such reports so far)`);
  }

  write(batch: PacketBatch): Promise<void> {
    this.queue!.offer(batch);
    return this.queue!.drained();
  }

  async stop(): Promise<void> {
    await this.queue?.drained();
    this.channel?.close();
  }

  counters() {
    const c = this.channel;
    return {
      packets_sent: c?.packetsSent ?? 0,
      datagrams_sent: c?.datagramsSent ?? 0,
      bytes_sent: c?.bytesSent ?? 0,
      datagrams_dropped: c?.sendFailures ?? 0,
      packets_dropped: this.queue?.counters.droppedPackets ?? 0,
    };
  }

  summaryLines(): string[] {
    const c = this.counters();
    return [
      `${c.packets_sent} packets forwarded in ${c.datagrams_sent} datagrams (${c.bytes_sent} bytes), ` +
        `${c.datagrams_dropped} datagrams dropped (socket buffer full), ${c.packets_dropped} packets dropped (queue)`,
    ];
  }
}
