// IP addresses as text and bytes (RFC 4291 parsing, RFC 5952 formatting) and address blocks
// (CIDR): the one parser behind the RPCAP sockaddr codec, --allow, --anonymize-prefix and
// rpcapd's host list.

/**
 * The IPv4 address inside an IPv4-mapped IPv6 one ("::ffff:10.1.2.3" -> "10.1.2.3"), as a
 * dual-stack listener reports IPv4 peers; any other text is returned unchanged.
 */
export function unmapIPv4(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** The 4 bytes of a dotted quad ("192.0.2.1"), or undefined for anything else. */
export function ipv4Bytes(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    out[i] = Number(part);
  }
  return out;
}

/**
 * The 16 bytes of RFC 4291 text (with "::" and an optional trailing dotted quad), or undefined
 * for anything else. A dotted quad counts only as the last 32 bits ("1.2.3.4::" is refused).
 */
export function ipv6Bytes(text: string): Uint8Array | undefined {
  const lastColon = text.lastIndexOf(":");
  if (lastColon < 0) return undefined;
  let v4: Uint8Array | undefined;
  let groupsText = text;
  if (text.slice(lastColon + 1).includes(".")) {
    v4 = ipv4Bytes(text.slice(lastColon + 1));
    if (!v4) return undefined;
    groupsText = `${text.slice(0, lastColon + 1)}0:0`; // two placeholder groups, overwritten below
  }
  const halves = groupsText.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string) => (part === "" ? [] : part.split(":"));
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const group = groups[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
    const value = parseInt(group, 16);
    out[2 * i] = value >> 8;
    out[2 * i + 1] = value & 0xff;
  }
  if (v4) out.set(v4, 12);
  return out;
}

/** Dotted quad to 4 bytes; RangeError on anything else. */
export function parseIPv4(text: string): Uint8Array {
  const bytes = ipv4Bytes(text);
  if (!bytes) throw new RangeError(`not an IPv4 address: ${JSON.stringify(text)}`);
  return bytes;
}

/** RFC 4291 text (with "::" and an optional trailing dotted quad) to 16 bytes; RangeError otherwise. */
export function parseIPv6(text: string): Uint8Array {
  const bytes = ipv6Bytes(text);
  if (!bytes) throw new RangeError(`not an IPv6 address: ${JSON.stringify(text)}`);
  return bytes;
}

/** 4 bytes for IPv4 text, 16 for IPv6 (text with a ':'), undefined when it is neither. */
export function ipAddressBytes(text: string): Uint8Array | undefined {
  return text.includes(":") ? ipv6Bytes(text) : ipv4Bytes(text);
}

const IPV4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] as const;

/**
 * A peer's address as one family: 4 bytes for IPv4 and for IPv4-mapped IPv6 (::ffff:a.b.c.d in
 * any spelling, what a dual-stack listener reports for IPv4 peers), else 16. "[v6]" brackets and
 * a zone ("%eth0") are dropped, as rpcapd's sock_cmpaddr compares sin6_addr only. Undefined when
 * the text is not an address.
 */
export function peerAddressBytes(text: string): Uint8Array | undefined {
  if (!text.includes(":")) return ipv4Bytes(text);
  const v6 = ipv6Bytes(text.replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, ""));
  if (!v6) return undefined;
  return IPV4_MAPPED_PREFIX.every((byte, i) => v6[i] === byte) ? v6.subarray(12) : v6;
}

/** True when two peer addresses name the same host in any spelling ({@link peerAddressBytes}); false when either is not an address. */
export function sameAddress(a: string, b: string): boolean {
  const x = peerAddressBytes(a);
  const y = peerAddressBytes(b);
  return x !== undefined && y !== undefined && x.byteLength === y.byteLength && x.every((byte, i) => byte === y[i]);
}

/** An address block: the address bytes (4 or 16) and how many leading bits of them count. */
export interface AddressBlock {
  bytes: Uint8Array;
  prefix: number;
}

/** What {@link parseAddressBlock} found: a block, or which half of the text is wrong. */
export type AddressBlockResult =
  | ({ kind: "block" } & AddressBlock)
  | { kind: "bad-address" }
  | { kind: "bad-prefix"; maxPrefix: 32 | 128 };

/**
 * "ADDRESS/BITS" (10.0.0.0/8, 2001:db8::/32). BITS is decimal digits from 0 to 32 or 128; when
 * `prefixRequired` is false a bare ADDRESS is the block of that one address. Host bits set in
 * ADDRESS are kept (they do not count when matching).
 */
export function parseAddressBlock(text: string, options: { prefixRequired: boolean }): AddressBlockResult {
  const slash = text.indexOf("/");
  const bytes = ipAddressBytes(slash < 0 ? text : text.slice(0, slash));
  if (!bytes) return { kind: "bad-address" };
  const maxPrefix = bytes.byteLength === 4 ? 32 : 128;
  if (slash < 0 && !options.prefixRequired) return { kind: "block", bytes, prefix: maxPrefix };
  const prefixText = slash < 0 ? "" : text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d+$/.test(prefixText) || prefix > maxPrefix) return { kind: "bad-prefix", maxPrefix };
  return { kind: "block", bytes, prefix };
}

/** True when the first `prefix` bits of `a` and `b` are equal (both of one family). */
export function prefixMatches(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  const whole = prefix >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const bits = prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((a[whole] ?? 0) & mask) === ((b[whole] ?? 0) & mask);
}

export function formatIPv4(bytes: Uint8Array): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** RFC 5952 text: lowercase, no leading zeros, the first longest run of >= 2 zero groups as "::". */
export function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}
