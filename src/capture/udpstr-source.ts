// UdpstrSource: a udpstr receiver (what `probe forward --udpstr`, `probe rpcapd -t` and
// ExtraHop's rpcapd send) as a CaptureSource. Datagrams are reassembled into records across
// datagram boundaries (src/protocols/udpstr); losses are counted exactly and reported every
// `reportSeconds` and at the end.
import type { udp } from "bun";
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "./capture-source.ts";
import { setSocketBuffer } from "./libpcap/ffi.ts";
import { MAXIMUM_SNAPLEN } from "../packet/packet-batch.ts";
import type { BpfInstruction } from "../packet/bpf/index.ts";
import type { Logger } from "../logging/index.ts";
import { UdpstrReassembler, type UdpstrReassemblerCounters } from "../protocols/udpstr/index.ts";
import { createBatchFilter, type BatchFilter } from "./packet-filter.ts";

export interface UdpstrSourceOptions {
  host: string;
  port: number;
  /** Link type of the forwarded frames (udpstr does not carry it). */
  linktype: number;
  /** SO_RCVBUF in bytes; 0 = the kernel's default. */
  receiveBufferBytes: number;
  /** Interval of the live loss report; 0 = only the final one. */
  reportSeconds: number;
  filter?: string;
  log: Logger;
}

/** One line of the reassembler's counters (the live report and the summary). */
export function formatUdpstrReport(c: UdpstrReassemblerCounters): string {
  return (
    `datagrams received ${c.datagramsReceived}, lost ${c.datagramsLost}, late ${c.datagramsLate}, malformed ${c.datagramsMalformed}; ` +
    `records delivered ${c.recordsDelivered}, lost ${c.recordsLost}, malformed ${c.recordsMalformed}` +
    // Resynchronisations whose loss is unknown, and datagrams that jumped out of sequence alone.
    (c.seqnoJumps + c.npktJumps + c.strayDatagrams > 0
      ? `; seqno jumps ${c.seqnoJumps}, npkt jumps ${c.npktJumps}, stray datagrams ${c.strayDatagrams}`
      : "")
  );
}

export class UdpstrSource implements CaptureSource {
  readonly description: string;
  private readonly reassembler: UdpstrReassembler;
  private socket: udp.Socket<"buffer"> | undefined;
  private handlers: CaptureHandlers | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private filter: BatchFilter | undefined;
  private takeScheduled = false;
  private delivered = 0;
  private stopped: Promise<CaptureStats> | undefined;
  /** The last record when the stream stopped in its middle. */
  incompleteBytes = 0;

  constructor(private readonly options: UdpstrSourceOptions) {
    this.description = `udpstr ${options.host}:${options.port}`;
    this.reassembler = new UdpstrReassembler({ linktype: options.linktype });
  }

  get counters(): UdpstrReassemblerCounters {
    return this.reassembler.counters;
  }

  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    this.handlers = handlers;
    const o = this.options;
    if (o.filter) this.filter = createBatchFilter(o.filter, o.linktype, MAXIMUM_SNAPLEN);
    const socket = await Bun.udpSocket({
      hostname: o.host,
      port: o.port,
      socket: {
        data: (_socket, datagram) => {
          this.reassembler.push(datagram);
          // Datagrams arrive one callback each; completed records are cut into one batch per
          // turn of the event loop rather than one per datagram.
          if (!this.takeScheduled) {
            this.takeScheduled = true;
            setImmediate(() => this.deliver());
          }
        },
      },
    });
    // Bun exposes the fd at run time (checked on 1.4.4) but not in its types.
    this.socket = socket;
    if (o.receiveBufferBytes > 0) setSocketBuffer((socket as unknown as { fd: number }).fd, "receive", o.receiveBufferBytes);
    o.log.info(`receiving udpstr on ${o.host}:${socket.port}`);
    if (o.reportSeconds > 0) this.timer = setInterval(() => o.log.info(formatUdpstrReport(this.counters)), o.reportSeconds * 1000);
    return { linktype: o.linktype, snaplen: MAXIMUM_SNAPLEN, precision: "micro", description: this.description };
  }

  async setFilter(filter: string | readonly BpfInstruction[]): Promise<void> {
    this.filter = createBatchFilter(typeof filter === "string" ? filter : [...filter], this.options.linktype, MAXIMUM_SNAPLEN);
  }

  async stats(): Promise<CaptureStats> {
    return { delivered: this.delivered };
  }

  stop(): Promise<CaptureStats> {
    this.stopped ??= (async () => {
      clearInterval(this.timer);
      this.socket?.close();
      const incomplete = this.reassembler.finish();
      if (incomplete) this.incompleteBytes = incomplete.bytesReceived;
      this.deliver();
      this.handlers?.onEnd("stopped");
      return { delivered: this.delivered };
    })();
    return this.stopped;
  }

  /** The live report's line, with the incomplete last record if any (for the summary). */
  summaryLine(): string {
    return `${formatUdpstrReport(this.counters)}${this.incompleteBytes ? `; last record incomplete (${this.incompleteBytes} bytes)` : ""}`;
  }

  private deliver(): void {
    this.takeScheduled = false;
    const taken = this.reassembler.take();
    if (!taken) return;
    const batch = this.filter ? this.filter(taken.batch) : taken.batch;
    if (batch.count === 0) return;
    this.delivered += batch.count;
    void this.handlers?.onBatch(batch);
  }
}
