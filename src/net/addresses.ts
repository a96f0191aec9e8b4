// Parsing of the address forms operators type: HOST:PORT (with [IPv6]:PORT), rpcapd's
// "HOST,PORT", and CIDR blocks for --allow, with matching of peer addresses against them.
import { isIP } from "node:net";
import { parseIPv4, parseIPv6, unmapIPv4 } from "./ip-address.ts";

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

export function parseCidr(text: string): Cidr {
  const [address, prefixText] = text.split("/");
  const family = isIP(address ?? "");
  if (family !== 4 && family !== 6) throw new Error(`'${text}': not an IPv4 or IPv6 address or CIDR block`);
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText))) {
    throw new Error(`'${text}': prefix length must be 0 to ${max}`);
  }
  return { text, family, bytes: addressBytes(address!), prefix };
}

/** True when `address` (as Bun reports a peer: IPv4, IPv6, or IPv4-mapped IPv6) is inside one block. */
export function addressAllowed(address: string, allowed: readonly Cidr[]): boolean {
  const plain = unmapIPv4(address);
  const family = isIP(plain);
  if (family === 0) return false;
  const bytes = addressBytes(plain);
  return allowed.some((cidr) => cidr.family === family && prefixMatches(bytes, cidr.bytes, cidr.prefix));
}

export function isLoopbackAddress(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

function prefixMatches(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  const whole = prefix >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const bits = prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((a[whole] ?? 0) & mask) === ((b[whole] ?? 0) & mask);
}

function addressBytes(address: string): Uint8Array {
  return isIP(address) === 4 ? parseIPv4(address) : parseIPv6(address);
}
