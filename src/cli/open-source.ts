// Turns the source flags every capturing command shares (-i IFACE | rpcap://... | -r FILE,
// -f, -s, ...) into a CaptureSource, so each command names its source the same way.
import type { CaptureSource } from "../capture/capture-source.ts";
import { FileReplaySource } from "../capture/file-replay-source.ts";
import { LibpcapFileSource } from "../capture/libpcap-file-source.ts";
import { LiveCaptureSource } from "../capture/live-capture-source.ts";
import { parseRpcapUrl, RpcapCaptureSource } from "../capture/remote/rpcap-source.ts";
import { parseRemoteSourceUrl, PcapOverIpSource } from "../capture/remote/index.ts";
import { UsageError } from "./usage-error.ts";

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
}

export function openSource(o: SourceOptions): { source: CaptureSource; live: boolean } {
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
    if (stream) return { live: true, source: new PcapOverIpSource({ address: stream, ...filter }) };
    if (rpcap) {
      return {
        live: true,
        source: new RpcapCaptureSource({ address: rpcap, ...filter, snaplen: o.snaplen, promiscuous: o.promiscuous ?? true }),
      };
    }
    return {
      live: true,
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
    return { live: false, source: new LibpcapFileSource({ path: o.readFile, ...filter, precision: o.precision ?? "micro" }) };
  }
  return { live: false, source: new FileReplaySource({ path: o.readFile, ...filter, snaplen: o.snaplen, realtime: o.realtime ?? false }) };
}
