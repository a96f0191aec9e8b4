// Where the project's recorded test captures live. Every test that reads a recorded vector
// takes its path from here (test/fixtures/vectors; test/fixtures/README.md says how each was made).
import { join } from "node:path";

/** The recorded RPCAP/udpstr conformance captures and their manifests (`expected/NAME.json`). */
export const VECTORS_DIR = join(import.meta.dir, "..", "fixtures", "vectors");

/** Path of one recorded vector, e.g. `vectorPath("rpcap-passive-udp.pcap")`. */
export function vectorPath(name: string): string {
  return join(VECTORS_DIR, name);
}
