// IP addresses as text and bytes (RFC 4291 parsing, RFC 5952 formatting), shared by the RPCAP
// sockaddr codec, the interface list, and the CIDR matching of --allow.

/**
 * The IPv4 address inside an IPv4-mapped IPv6 one ("::ffff:10.1.2.3" -> "10.1.2.3"), as a
 * dual-stack listener reports IPv4 peers; any other text is returned unchanged.
 */
export function unmapIPv4(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** Dotted quad to 4 bytes; RangeError on anything else. */
export function parseIPv4(text: string): Uint8Array {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    throw new RangeError(`not an IPv4 address: ${JSON.stringify(text)}`);
  }
  return Uint8Array.from(parts, Number);
}

/** RFC 4291 text (with "::" and an optional trailing dotted quad) to 16 bytes; RangeError otherwise. */
export function parseIPv6(text: string): Uint8Array {
  const bad = () => new RangeError(`not an IPv6 address: ${JSON.stringify(text)}`);
  const halves = text.split("::");
  if (halves.length > 2) throw bad();
  const groupsOf = (part: string): number[] => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    pieces.forEach((piece, i) => {
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIPv4(piece);
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        throw bad();
      }
    });
    return out;
  };
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) throw bad();
  const groups = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
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
