// Turns the source flags every capturing command shares (-i IFACE | rpcap://... | -r FILE,
// -f, -s, ...) into a CaptureSource, so each command names its source the same way.
import { basename } from "node:path";
import type { CaptureSource } from "../capture/capture-source.ts";
import { FileReplaySource } from "../capture/file-replay-source.ts";
import { LibpcapFileSource } from "../capture/libpcap-file-source.ts";
import { LiveCaptureSource } from "../capture/live-capture-source.ts";
import { parseRpcapUrl, RpcapCaptureSource } from "../capture/remote/rpcap-source.ts";
import { parseRemoteSourceUrl, PcapOverIpSource } from "../capture/remote/index.ts";
import { UsageError } from "./usage-error.ts";
import type { TlsClientSettings } from "../config/tls-client.ts";
import type { Logger } from "../logging/index.ts";

export interface SourceOptions {
  interface?: string | undefined;
  readFile?: string | undefined;
  filter: string;
  snaplen: number;
  promiscuous?: boolean;
  bufferKiB?: number;
  immediate?: boolean;
  precision?: "micro" | "nano";
  direction?: "inout" | "in" | "out";
  realtime?: boolean;
  reader?: "probe" | "libpcap";
  /** tls:// and rpcaps://: how the server certificate is verified (--tls-ca, --tls-insecure). */
  tls?: TlsClientSettings;
  /** tcp:// and tls://: redial after a failure (default true; a clean end still ends the input). */
  reconnect?: boolean;
  log?: Logger;
}

/**
 * The source, whether it is live (drops rather than waits), and the name hooks see as
 * pkt.interfaceName: the device, never a URL (an rpcap:// URL may hold a password).
 */
export function openSource(o: SourceOptions): { source: CaptureSource; live: boolean; name: string } {
  const filter = o.filter ? { filter: o.filter } : {};
  if (o.interface !== undefined) {
    let rpcap;
    try {
      rpcap = parseRpcapUrl(o.interface);
    } catch (error) {
      throw new UsageError(`-i: ${(error as Error).message}`);
    }
    let stream;
    try {
      stream = parseRemoteSourceUrl(o.interface);
    } catch (error) {
      throw new UsageError(`-i: ${(error as Error).message}`);
    }
    if (stream) {
      const tls = o.tls ?? {};
      const source = new PcapOverIpSource({
        address: stream,
        ...filter,
        ...(tls.ca ? { tlsCa: tls.ca } : {}),
        ...(tls.insecure ? { insecure: true } : {}),
        ...(tls.cert ? { tlsCert: tls.cert } : {}),
        ...(tls.key ? { tlsKey: tls.key } : {}),
        reconnect: o.reconnect === false ? false : { afterCleanEnd: false },
        ...(o.log ? { log: o.log } : {}),
      });
      return { live: true, name: `${stream.kind}://${stream.host}:${stream.port}`, source };
    }
    if (rpcap) {
      return {
        live: true,
        name: rpcap.device,
        source: new RpcapCaptureSource({
          address: rpcap,
          ...filter,
          snaplen: o.snaplen,
          promiscuous: o.promiscuous ?? true,
          ...(o.tls ? { tls: o.tls } : {}),
          ...(o.log ? { log: o.log } : {}),
        }),
      };
    }
    return {
      live: true,
      name: o.interface,
      source: new LiveCaptureSource({
        interface: o.interface,
        ...filter,
        snaplen: o.snaplen,
        promiscuous: o.promiscuous ?? true,
        bufferBytes: (o.bufferKiB ?? 0) * 1024,
        immediate: o.immediate ?? false,
        precision: o.precision ?? "micro",
        direction: o.direction ?? "inout",
      }),
    };
  }
  if (o.readFile === undefined) throw new UsageError("give -i INTERFACE or -r FILE");
  if (o.reader === "libpcap") {
    return { live: false, name: basename(o.readFile), source: new LibpcapFileSource({ path: o.readFile, ...filter, precision: o.precision ?? "micro" }) };
  }
  return { live: false, name: basename(o.readFile), source: new FileReplaySource({ path: o.readFile, ...filter, snaplen: o.snaplen, realtime: o.realtime ?? false }) };
}
