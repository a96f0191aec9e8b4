// The input flags every capturing command shares, in the order given: -i NAME (an interface,
// rpcap://..., a PCAP-over-IP stream tcp:// TCP@ tls://, or an RT server rt://) and -r FILE,
// each repeatable and mixed; -f, -s and the capture settings apply to each.
import { parseRemoteSourceUrl } from "../capture/remote/index.ts";
import { parseRpcapUrl } from "../capture/remote/rpcap-source.ts";
import type { InputSpec } from "../pipeline/spec.ts";
import { UsageError } from "./usage-error.ts";

export interface InputFlags {
  filter: string;
  snaplen?: number | undefined;
  promiscuous?: boolean;
  bufferKiB?: number | undefined;
  immediate?: boolean;
  direction?: string | undefined;
  realtime?: boolean;
  reader?: string | undefined;
  /** --capture-engine for interfaces: ring or libpcap. */
  engine?: string | undefined;
  /** tls:// and rpcaps:// server verification; tls:// client certificate (mutual TLS). */
  tls?: { ca?: string | undefined; insecure?: boolean | undefined; cert?: string | undefined; key?: string | undefined };
  /** tcp:// and tls://: redial after a failure (default on). */
  reconnect?: boolean;
  /** tcp:// and tls://: redial after a clean close too (--reconnect-after-close). */
  reconnectAfterClose?: boolean;
}

type RawInput = Record<string, unknown> & { kind: InputSpec["kind"] };

/** One input per -i/-r, in command-line order. */
export function inputsFromFlags(ordered: readonly { name: string; value: string }[], flags: InputFlags): RawInput[] {
  const common = { ...(flags.filter ? { filter: flags.filter } : {}), ...(flags.snaplen !== undefined ? { snaplen: flags.snaplen } : {}) };
  return ordered.map(({ name, value }) => {
    if (name === "read") {
      return { kind: "file", path: value, ...common, ...(flags.realtime ? { realtime: true } : {}), ...(flags.reader ? { reader: flags.reader } : {}) };
    }
    let rpcap;
    let stream;
    try {
      rpcap = parseRpcapUrl(value);
      stream = parseRemoteSourceUrl(value);
    } catch (error) {
      throw new UsageError(`-i: ${(error as Error).message}`);
    }
    const tls = flags.tls ?? {};
    if (stream?.kind === "rt") {
      return { kind: "rt", url: value, ...(flags.filter ? { filter: flags.filter } : {}), ...(flags.reconnect === false ? { reconnect: false } : {}) };
    }
    if (stream) {
      return {
        kind: "pcap-over-ip",
        url: value,
        ...(flags.filter ? { filter: flags.filter } : {}),
        ...(flags.reconnect === false ? { reconnect: false } : {}),
        ...(flags.reconnectAfterClose && flags.reconnect !== false ? { reconnectAfterCleanEnd: true } : {}),
        ...(tls.ca ? { tlsCa: tls.ca } : {}),
        ...(tls.cert ? { tlsCert: tls.cert } : {}),
        ...(tls.key ? { tlsKey: tls.key } : {}),
        ...(tls.insecure ? { insecure: true } : {}),
      };
    }
    if (rpcap) {
      return {
        kind: "rpcap",
        url: value,
        ...common,
        ...(flags.promiscuous === false ? { promiscuous: false } : {}),
        ...(tls.ca ? { tlsCa: tls.ca } : {}),
        ...(tls.insecure ? { insecure: true } : {}),
      };
    }
    return {
      kind: "interface",
      device: value,
      ...common,
      ...(flags.promiscuous === false ? { promiscuous: false } : {}),
      ...(flags.bufferKiB !== undefined ? { bufferKiB: flags.bufferKiB } : {}),
      ...(flags.immediate ? { immediate: true } : {}),
      ...(flags.direction !== undefined ? { direction: flags.direction } : {}),
      ...(flags.engine !== undefined ? { engine: flags.engine } : {}),
    };
  });
}
