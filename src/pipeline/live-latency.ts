// How long a live capture may hold packets before handing them over, chosen by who reads them:
// a stream someone watches (PCAP-over-IP, RPCAP, RT, udpstr, hooks' side effects) gets them
// within the default 10 ms; a pipeline that only writes files trades that latency for a ring
// that outlasts a stalled process, as tcpdump -w does.
import { BUFFERED_FLUSH_INTERVAL_MS } from "../capture/live-capture-source.ts";
import type { PipelineSpec } from "./spec.ts";

/** True when every output of the pipeline is a file (single or rotating): nobody reads it live. */
export function writesOnlyFiles(spec: PipelineSpec): boolean {
  return spec.outputs.length > 0 && spec.outputs.every((output) => output.kind === "file" || output.kind === "rotating-file");
}

/** The flush interval for the pipeline's live interface inputs; undefined keeps the default. */
export function liveFlushIntervalMs(spec: PipelineSpec): number | undefined {
  return writesOnlyFiles(spec) ? BUFFERED_FLUSH_INTERVAL_MS : undefined;
}
