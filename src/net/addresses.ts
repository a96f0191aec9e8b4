// Parsing of the address forms operators type: HOST:PORT (with [IPv6]:PORT), rpcapd's
// "HOST,PORT", and CIDR blocks for --allow, with matching of peer addresses against them.
import { parseAddressBlock, peerAddressBytes, prefixMatches } from "./ip-address.ts";

export interface HostPort {
  host: string;
  port: number;
}

/** Parses "HOST:PORT", "[v6]:PORT", or a bare "HOST" with `defaultPort`. Throws Error on nonsense. */
export function parseHostPort(text: string, defaultPort?: number): HostPort {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  let host: string;
  let portText: string | undefined;
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
  } else if ((text.match(/:/g) ?? []).length > 1) {
    host = text; // bare IPv6 without a port
  } else {
    const colon = text.lastIndexOf(":");
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
  }
  if (!host) throw new Error(`'${text}': missing host`);
  const port = portText === undefined ? defaultPort : Number(portText);
  if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535 || (portText !== undefined && !/^\d+$/.test(portText))) {
    throw new Error(`'${text}': want HOST:PORT with a port from 0 to 65535`);
  }
  return { host, port };
}

export interface Cidr {
  text: string;
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

/** "ADDRESS/BITS" or a bare ADDRESS (the block of that one address). Throws Error with the line for the user. */
export function parseCidr(text: string): Cidr {
  const block = parseAddressBlock(text, { prefixRequired: false });
  if (block.kind === "bad-address") throw new Error(`'${text}': not an IPv4 or IPv6 address or CIDR block`);
  if (block.kind === "bad-prefix") throw new Error(`'${text}': prefix length must be 0 to ${block.maxPrefix}`);
  return { text, family: block.bytes.byteLength === 4 ? 4 : 6, bytes: block.bytes, prefix: block.prefix };
}

/** True when `address` (as Bun reports a peer: IPv4, IPv6, or IPv4-mapped IPv6) is inside one block. */
export function addressAllowed(address: string, allowed: readonly Cidr[]): boolean {
  const bytes = peerAddressBytes(address);
  if (!bytes) return false;
  return allowed.some((cidr) => cidr.bytes.byteLength === bytes.byteLength && prefixMatches(bytes, cidr.bytes, cidr.prefix));
}

export function isLoopbackAddress(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}
