// The spellings an operator uses to name a PCAP-over-IP stream to read from:
//
//   tcp://HOST:PORT      plain TCP
//   TCP@HOST:PORT        the same, as Wireshark/dumpcap spell a TCP "pipe" interface (-i TCP@...)
//   tls://HOST:PORT      the stream wrapped in TLS ("PCAP-over-TLS", NetworkMiner's "Use SSL")
//   rt://HOST:PORT       libtrace's RT protocol (probe rt, WDCap); not PCAP-over-IP: see
//                        src/capture/remote/rt-source.ts. rt://HOST:PORT?state=FILE keeps the
//                        receiver's (stream id, last sequence) in FILE so a restart drops duplicates.
//
// HOST may be a name, an IPv4 address or an IPv6 address in brackets ([::1]:57012).
// Source: docs/spec/pcap-over-ip.md. The port is always required: NETRESEC's tools
// default to 57012 and Wireshark to 19000, so no default would be right for everyone.
import { isIP } from "node:net";

export type RemoteSourceKind = "tcp" | "tls" | "rt";

/** Where a PCAP-over-IP stream is read from. */
export interface RemoteSourceAddress {
  kind: RemoteSourceKind;
  /** Host name or address, IPv6 without brackets. */
  host: string;
  /** 1..65535 (0 cannot be connected to). */
  port: number;
  /** rt only: ?state=FILE. */
  statePath?: string;
}

/** Prefixes, matched case-insensitively, and the transport each names. */
const REMOTE_PREFIXES = [
  { prefix: "tcp://", kind: "tcp" },
  { prefix: "tls://", kind: "tls" },
  { prefix: "tcp@", kind: "tcp" },
  { prefix: "rt://", kind: "rt" },
] as const satisfies readonly { prefix: string; kind: RemoteSourceKind }[];

/** Longest host name DNS allows (RFC 1035 section 2.3.4); longer text is a typo or an attack on logs. */
const MAX_HOST_NAME_CHARS = 253;
const HOST_NAME_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/**
 * Parses a remote source name. Returns undefined when `text` is not written as a remote source
 * at all (an interface or file name, say), and throws Error with a message for the operator when
 * it is (it has one of the prefixes) but the host or port is malformed.
 */
export function parseRemoteSourceUrl(text: string): RemoteSourceAddress | undefined {
  const lower = text.toLowerCase();
  const match = REMOTE_PREFIXES.find((p) => lower.startsWith(p.prefix));
  if (!match) return undefined;
  let rest = text.slice(match.prefix.length);
  let statePath: string | undefined;
  if (match.kind === "rt" && rest.includes("?")) {
    const query = new URLSearchParams(rest.slice(rest.indexOf("?") + 1));
    rest = rest.slice(0, rest.indexOf("?"));
    for (const key of query.keys()) if (key !== "state") throw new Error(`'${text}': unknown option '${key}' (rt:// takes ?state=FILE)`);
    statePath = query.get("state") || undefined;
    if (query.has("state") && !statePath) throw new Error(`'${text}': ?state= needs a file name`);
  }
  const { host, portText } = splitHostPort(text, rest);
  if (!/^\d{1,5}$/.test(portText)) throw new Error(`'${text}': want ${match.prefix}HOST:PORT with a numeric port`);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new Error(`'${text}': port must be 1 to 65535`);
  return { kind: match.kind, host, port, ...(statePath ? { statePath } : {}) };
}

function splitHostPort(text: string, rest: string): { host: string; portText: string } {
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    const host = close < 0 ? "" : rest.slice(1, close);
    if (close < 0 || isIP(host) !== 6) throw new Error(`'${text}': a bracketed host must be an IPv6 address`);
    if (rest[close + 1] !== ":") throw new Error(`'${text}': missing :PORT after the IPv6 address`);
    return { host, portText: rest.slice(close + 2) };
  }
  const colon = rest.lastIndexOf(":");
  if (colon < 0) throw new Error(`'${text}': missing :PORT`);
  const host = rest.slice(0, colon);
  if (host.includes(":")) throw new Error(`'${text}': write an IPv6 address in brackets, [ADDRESS]:PORT`);
  if (!host) throw new Error(`'${text}': missing host`);
  if (isIP(host) !== 4 && (host.length > MAX_HOST_NAME_CHARS || !HOST_NAME_PATTERN.test(host))) {
    throw new Error(`'${text}': '${host}' is not a host name or IPv4 address`);
  }
  return { host, portText: rest.slice(colon + 1) };
}

/** The canonical text of an address, for logs and descriptions ("tls://[::1]:57012"). */
export function formatRemoteSourceUrl(address: RemoteSourceAddress): string {
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return `${address.kind}://${host}:${address.port}`;
}
