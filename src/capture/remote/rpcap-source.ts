// RpcapCaptureSource: a remote interface behind any RPCAP daemon (libpcap's rpcapd, ExtraHop's
// without -t, or probe's own) as a CaptureSource: `probe capture -i rpcap://HOST[:PORT]/IFACE`.
// The URL may carry credentials (rpcap://user:password@host/eth0); without them NULL auth is
// tried. rpcaps:// uses TLS on control and data connections.
import { RpcapClient } from "../../protocols/rpcap/index.ts";
import type { BpfInstruction } from "../../packet/bpf/index.ts";
import type { CaptureHandlers, CaptureInfo, CaptureSource, CaptureStats } from "../capture-source.ts";
import { CaptureError } from "../errors.ts";
import { compileFilter } from "../libpcap/compile-filter.ts";
import { MAXIMUM_SNAPLEN } from "../../packet/packet-batch.ts";
import { insecureWarning, type TlsClientSettings } from "../../net/tls-client.ts";
import { silentLogger, type Logger } from "../../logging/index.ts";

export interface RpcapSourceAddress {
  tls: boolean;
  host: string;
  port: number;
  device: string;
  username?: string;
  password?: string;
}

/** rpcapd's default port when the URL names none. */
const RPCAP_URL_DEFAULT_PORT = 2002;

/** Parses rpcap://[user:pass@]host[:port]/device (rpcaps:// for TLS); undefined if not such a URL. */
export function parseRpcapUrl(text: string): RpcapSourceAddress | undefined {
  const match = /^(rpcaps?):\/\//i.exec(text);
  if (!match) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`'${text}': not a valid rpcap:// URL (rpcap://HOST[:PORT]/INTERFACE)`);
  }
  const device = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!url.hostname || !device) throw new Error(`'${text}': want rpcap://HOST[:PORT]/INTERFACE`);
  const address: RpcapSourceAddress = {
    tls: match[1]!.toLowerCase() === "rpcaps",
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port ? Number(url.port) : RPCAP_URL_DEFAULT_PORT,
    device,
  };
  if (url.username) address.username = decodeURIComponent(url.username);
  if (url.password) address.password = decodeURIComponent(url.password);
  return address;
}

export interface RpcapSourceOptions {
  address: RpcapSourceAddress;
  filter?: string | readonly BpfInstruction[];
  snaplen?: number;
  promiscuous?: boolean;
  /** UDP data channel instead of TCP. */
  udp?: boolean;
  /** rpcaps:// only: how the server certificate is verified (--tls-ca, --tls-insecure); default the built-in public CAs. */
  tls?: TlsClientSettings;
  log?: Logger;
}

export class RpcapCaptureSource implements CaptureSource {
  readonly description: string;
  private client: RpcapClient | null = null;
  private delivered = 0;
  private stopped = false;
  private handlers: CaptureHandlers | null = null;

  constructor(private readonly options: RpcapSourceOptions) {
    const a = options.address;
    this.description = `${a.tls ? "rpcaps" : "rpcap"}://${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}/${a.device}`;
  }

  async start(handlers: CaptureHandlers): Promise<CaptureInfo> {
    this.handlers = handlers;
    const a = this.options.address;
    let client: RpcapClient;
    try {
      if (a.tls && this.options.tls?.insecure) (this.options.log ?? silentLogger).warn(insecureWarning(this.description));
      client = await RpcapClient.connect({ host: a.host, port: a.port, tls: a.tls ? (this.options.tls ?? {}) : false });
    } catch (error) {
      throw new CaptureError("capture-failed", `${this.description}: cannot connect: ${(error as Error).message}`);
    }
    this.client = client;
    try {
      await client.authenticate(a.username, a.password);
      const { linktype } = await client.open(a.device);
      const snaplen = this.options.snaplen ?? MAXIMUM_SNAPLEN;
      const filter = this.options.filter;
      const program = typeof filter === "string" ? (filter ? compileFilter(filter, linktype, snaplen) : []) : [...(filter ?? [])];
      await client.startCapture({
        snaplen,
        promiscuous: this.options.promiscuous ?? true,
        filter: program,
        udp: this.options.udp ?? false,
        onBatch: (batch) => {
          this.delivered += batch.count;
          void handlers.onBatch(batch);
        },
        onDataClosed: (error) => (error ? this.end("failed", new CaptureError("capture-failed", `${this.description}: ${error.message}`)) : this.end("stopped")),
      });
      return { linktype, snaplen, precision: "micro", description: this.description };
    } catch (error) {
      client.close();
      if (error instanceof CaptureError) throw error;
      throw new CaptureError("capture-failed", `${this.description}: ${(error as Error).message}`);
    }
  }

  async setFilter(filter: string | readonly BpfInstruction[]): Promise<void> {
    if (!this.client) throw new CaptureError("capture-failed", "not capturing");
    const program = typeof filter === "string" ? compileFilter(filter, this.client.linktype, this.options.snaplen ?? MAXIMUM_SNAPLEN) : [...filter];
    await this.client.updateFilter(program);
  }

  async stats(): Promise<CaptureStats> {
    if (!this.client || this.client.isClosed) return { delivered: this.delivered };
    const s = await this.client.stats();
    return { delivered: this.delivered, kernel: { received: s.ifrecv, dropped: s.krnldrop, interfaceDropped: s.ifdrop } };
  }

  async stop(): Promise<CaptureStats> {
    let stats: CaptureStats = { delivered: this.delivered };
    if (this.client && !this.client.isClosed && !this.stopped) {
      stats = await this.stats().catch(() => stats);
    }
    this.end("stopped");
    return stats;
  }

  private end(reason: "stopped" | "failed", error?: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.client?.close();
    this.handlers?.onEnd(reason, error);
  }
}
