// What an output builder gets besides its spec: where to log, and how to end the run when the
// output cannot go on (a file that can no longer be written).
import type { Logger } from "../logging/index.ts";

export interface OutputContext {
  readonly log: Logger;
  /** Ends the pipeline with this error (printed as one line, exit 1). */
  fail(error: Error): void;
  /** Ends the pipeline normally (exit 0): an output whose work is done (rpcapd in inetd mode). */
  finish?(): void;
}

/**
 * A built output, ready to start. `ownTraffic` is a filter expression that leaves the output's
 * own sockets out of live captures (a PCAP-over-IP server must not sniff its own stream);
 * the runner adds it to every live interface input's filter.
 */
export interface PreparedOutput<O> {
  readonly output: O;
  readonly ownTraffic?: string;
}
