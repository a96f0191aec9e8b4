// tag.js: label packets by protocol and well-known port, for pcapng comments and counters.
// The destination port wins over the source port, so replies carry the same tag as requests.
const TCP_PORTS = new Map([
  [53, "dns"],
  [80, "http"],
  [8080, "http"],
  [443, "tls"],
  [22, "ssh"],
  [2002, "rpcap"],
]);
const UDP_PORTS = new Map([
  [53, "dns"],
  [5353, "mdns"],
  [123, "ntp"],
  [443, "quic"],
  [67, "dhcp"],
  [68, "dhcp"],
]);
const ICMP = 1;
const TCP = 6;
const UDP = 17;
const ICMPV6 = 58;

export default function (pkt, ctx) {
  const protocol = pkt.protocol;
  if (protocol === ICMP || protocol === ICMPV6) {
    ctx.tag("icmp");
    return;
  }
  const ports = protocol === TCP ? TCP_PORTS : protocol === UDP ? UDP_PORTS : undefined;
  if (ports === undefined) return;
  const name = ports.get(pkt.dstPort) ?? ports.get(pkt.srcPort);
  if (name !== undefined) ctx.tag(name);
}
