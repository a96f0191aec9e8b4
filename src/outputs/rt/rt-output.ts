// The rt output kind of the PipelineSpec: an RtServer whose listeners are bound and whose fifo
// (a disk spool: recovered) is open before the inputs open, so the runner can leave the server's
// own connections out of live captures.
import { isLoopbackAddress } from "../../net/addresses.ts";
import { ProbeError } from "../../packet/probe-error.ts";
import type { OutputSpec } from "../../pipeline/spec.ts";
import type { OutputContext, PreparedOutput } from "../../pipeline/output-context.ts";
import { RtServer, RT_SERVER_DEFAULT_PORT } from "./rt-server.ts";

type RtOutputSpec = Extract<OutputSpec, { kind: "rt" }>;

export async function prepareRtOutput(spec: RtOutputSpec, context: OutputContext): Promise<PreparedOutput<RtServer>> {
  const listen = spec.listen.length > 0 ? spec.listen : [{ host: "127.0.0.1", port: RT_SERVER_DEFAULT_PORT }];
  for (const address of listen) {
    if (!isLoopbackAddress(address.host)) context.log.warn(`serving RT on ${address.host}:${address.port}: RT has no authentication`);
  }
  const server = new RtServer({
    listen,
    reliable: spec.reliable,
    queueBytes: spec.queueBytes,
    slowConsumer: spec.slowConsumer,
    fifo: {
      ...(spec.spool ? { directory: spec.spool } : {}),
      maxBytes: spec.spoolMaxBytes,
      policy: spec.spoolFull,
      fsyncMs: spec.spoolFsyncMs,
      ...(spec.spoolSegmentBytes ? { segmentBytes: spec.spoolSegmentBytes } : {}),
    },
    statusIntervalMs: spec.statusIntervalMs,
    ackTimeoutMs: spec.ackTimeoutMs,
    keepServing: spec.keepServing,
    log: context.log,
  });
  try {
    await server.prepare();
  } catch (error) {
    // A busy port or an unusable spool directory: a runtime failure (exit 1), one line.
    throw new ProbeError("rt-prepare-failed", "runtime", `rt: ${(error as Error).message}`, { cause: error });
  }
  const exclusion = server.ownTrafficFilter();
  return { output: server, ...(exclusion ? { ownTraffic: exclusion } : {}) };
}
