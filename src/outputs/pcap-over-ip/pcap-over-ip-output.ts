// The PCAP-over-IP output: a server (listeners, plain or TLS, and --connect peers) that gives
// every consumer a classic pcap header and then the pipeline's records, each consumer behind
// its own bounded queue (drop or disconnect when it falls behind).
import { isLoopbackAddress, parseCidr, type HostPort } from "../../net/addresses.ts";
import { asUserFacing, ProbeError } from "../../packet/probe-error.ts";
import type { PacketBatch } from "../../packet/packet-batch.ts";
import type { OutputContext, PreparedOutput } from "../../pipeline/output-context.ts";
import type { PipelineOutput, StreamDescription } from "../../pipeline/output.ts";
import { formatHostPort, PcapOverIpServer, PCAP_OVER_IP_DEFAULT_PORT } from "./pcap-over-ip-server.ts";
import type { SlowConsumerPolicy } from "./stream-consumer.ts";
import { onlyDirection, type Direction } from "../../pipeline/stages/direction.ts";

export interface PcapOverIpOutputOptions {
  listen: readonly HostPort[];
  connect: readonly HostPort[];
  allow: readonly string[];
  tls?: { cert: string; key: string; ca?: string | undefined } | undefined;
  connectTls?: { ca?: string | undefined; insecure: boolean } | undefined;
  slowConsumer: SlowConsumerPolicy;
  queueBytes: number;
  precision: "micro" | "nano";
  /** --only-direction: send only the records a direction stage tagged so. */
  onlyDirection?: Direction | undefined;
}

export class PcapOverIpOutput implements PipelineOutput {
  /** Each client's ConsumerQueue copies what it holds; SocketWriter copies what the kernel did not take. */
  readonly takesLentBatches = true;
  readonly name = "pcap-over-ip";

  private constructor(
    readonly server: PcapOverIpServer,
    private readonly context: OutputContext,
    private readonly options: PcapOverIpOutputOptions,
  ) {}

  /**
   * Binds the listeners now (their ports go into the capture's own-traffic filter before the
   * capture opens): without `listen` and `connect`, 127.0.0.1:57012. A port in use is one line
   * naming it.
   */
  static async prepare(o: PcapOverIpOutputOptions, context: OutputContext): Promise<PreparedOutput<PcapOverIpOutput>> {
    const listen = o.listen.length === 0 && o.connect.length === 0 ? [{ host: "127.0.0.1", port: PCAP_OVER_IP_DEFAULT_PORT }] : o.listen;
    for (const address of listen) {
      if (!isLoopbackAddress(address.host)) {
        context.log.warn(`serving on ${formatHostPort(address.host, address.port)}: PCAP-over-IP has no authentication${o.allow.length ? "" : "; consider --allow or TLS"}`);
      }
    }
    const allow = o.allow.map((text) => {
      try {
        return parseCidr(text);
      } catch (error) {
        throw new ProbeError("bad-cidr", "usage", `--allow: ${(error as Error).message}`);
      }
    });
    const tls = o.tls ? { cert: o.tls.cert, key: o.tls.key, ...(o.tls.ca ? { ca: o.tls.ca } : {}) } : undefined;
    const server = new PcapOverIpServer({
      listen,
      connect: o.connect,
      allow,
      ...(tls ? { tls } : {}),
      ...(o.connectTls ? { connectTls: { ...(o.connectTls.ca ? { ca: o.connectTls.ca } : {}), insecure: o.connectTls.insecure } } : {}),
      precision: o.precision,
      maxQueueBytes: o.queueBytes,
      slowConsumer: o.slowConsumer,
      log: context.log,
    });
    try {
      await server.listen();
    } catch (error) {
      await server.stop();
      const where = `cannot serve PCAP-over-IP on ${listen.map((l) => formatHostPort(l.host, l.port)).join(", ")}`;
      throw asUserFacing(error, where) ?? new ProbeError("listen-failed", "runtime", `${where}: ${(error as Error).message}`, { cause: error });
    }
    const output = new PcapOverIpOutput(server, context, o);
    const exclusion = server.ownTrafficFilter();
    return { output, ...(exclusion ? { ownTraffic: exclusion } : {}) };
  }

  async start(stream: StreamDescription): Promise<void> {
    const linktypes = new Set(stream.inputs.map((i) => i.linktype));
    if (linktypes.size > 1) {
      const list = stream.inputs.map((i) => `${i.name} linktype ${i.linktype}`).join(", ");
      throw new ProbeError("linktype-mismatch", "usage", `PCAP-over-IP carries one link type, the inputs have several (${list})`);
    }
    const first = stream.inputs[0]!;
    this.server.attach({
      linktype: first.linktype,
      snaplen: Math.max(...stream.inputs.map((i) => i.snaplen)),
      precision: stream.precision,
      description: first.description,
    });
    this.server.connectOut();
    for (const l of this.server.listening) {
      const host = l.host === "0.0.0.0" || l.host === "::" ? "127.0.0.1" : l.host;
      this.context.log.info(readItWith(host, l.port, this.options.tls !== undefined, this.options.tls?.ca !== undefined));
    }
  }

  write(batch: PacketBatch): void {
    const only = this.options.onlyDirection;
    if (only) {
      batch = onlyDirection(batch, only);
      if (batch.count === 0) return;
    }
    this.server.offer(batch);
  }

  async stop(): Promise<void> {
    await this.server.stop();
  }

  counters() {
    // Consumers that have gone are in the server's totals: the counts never go back.
    let delivered = this.server.totals.packetsSent;
    let dropped = this.server.totals.packetsDropped;
    for (const c of this.server.connectedConsumers) {
      delivered += c.counters.deliveredPackets;
      dropped += c.counters.droppedPackets;
    }
    return {
      consumers: this.server.connectedConsumers.length,
      consumers_served: this.server.totals.consumersServed,
      consumers_refused: this.server.totals.refused,
      packets_sent: delivered,
      packets_dropped: dropped,
    };
  }
}

/** The hint printed per listener: tshark and nc cannot speak TLS, so a TLS listener gets TLS clients. */
function readItWith(host: string, port: number, tls: boolean, clientCertificates: boolean): string {
  const at = formatHostPort(host, port);
  if (!tls) return `read it with: tshark -i TCP@${at}   or: nc ${host} ${port} | tcpdump -n -r -`;
  // With --tls-ca the listener wants a client certificate too.
  const cert = clientCertificates ? " -cert CLIENT.pem -key CLIENT-KEY.pem" : "";
  const probeCert = clientCertificates ? " --tls-cert CLIENT.pem --tls-key CLIENT-KEY.pem" : "";
  return `read it with: probe capture -i tls://${at} --tls-ca CA.pem${probeCert} -w -   or: openssl s_client -quiet${cert} -connect ${at} | tcpdump -n -r -`;
}
