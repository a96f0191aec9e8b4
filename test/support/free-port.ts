// A loopback port nothing listens on, for a test that must name a port before its listener
// starts (a peer dials it, or the test checks that the number appears in probe's output): the
// kernel picks one (bind to port 0 on 127.0.0.1), the socket closes, the number is returned.
// Between the close and the test's own bind another process could take it; that is rare, and
// far rarer than a random pick from a fixed range colliding with a port in use. Where probe
// prints the port it listens on, prefer giving it 127.0.0.1:0 and reading the port from its log.

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freeTcpPort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}
