// sample.js: keep 1 packet in N of every flow, drop the rest.
// A flow is the 5-tuple (protocol, addresses, ports) in both directions: ctx.sample(N) keys on
// pkt.flowHash, which the host computes so that A->B and B->A count as the same flow. The first
// packet of each flow is kept, then every Nth. Non-IP frames share one key.
const N = 10;

export default function (pkt, ctx) {
  return ctx.sample(N) ? "pass" : "drop";
}
