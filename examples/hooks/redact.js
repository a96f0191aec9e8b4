// redact.js: keep the shape of the traffic, lose its content.
// - TCP and UDP payloads are zeroed (everything from the payload offset to the end of the
//   captured bytes, so Ethernet padding is cleared too: see CVE-2003-0001 "Etherleak").
// - IPv4 addresses keep their /24 (the last octet becomes 0); set ZERO_ADDRESSES to blank them.
// - IPv6 addresses keep their /64 (the interface identifier becomes 0).
// - The IPv4 header, TCP and UDP checksums are recomputed after the edits (ctx.fixChecksums).
// Not redacted: ICMP bodies (they quote the original IP header), non-IP frames, link headers.
const ZERO_ADDRESSES = false;

export default function (pkt, ctx) {
  const bytes = pkt.bytes;
  const payload = pkt.payloadOffset;
  if (payload !== undefined) bytes.fill(0, payload);
  const l3 = pkt.l3Offset;
  if (pkt.ipVersion === 4) {
    if (ZERO_ADDRESSES) bytes.fill(0, l3 + 12, l3 + 20);
    else {
      bytes[l3 + 15] = 0;
      bytes[l3 + 19] = 0;
    }
  } else if (pkt.ipVersion === 6) {
    bytes.fill(0, l3 + 16, l3 + 24);
    bytes.fill(0, l3 + 32, l3 + 40);
  }
  ctx.fixChecksums(pkt);
}
