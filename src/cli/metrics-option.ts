// `--metrics HOST:PORT` for long-running commands: parses the flag, registers the process
// collector and the command's own, and binds the endpoint. The pipeline runner and commands
// that predate it call the same function.
import { hostPortFlag } from "./parse-options.ts";
import type { Logger } from "../logging/index.ts";
import { MetricsBindError, MetricsRegistry, processCollector, startMetricsServer, type MetricsCollector, type MetricsServer } from "../metrics/index.ts";
import { CommandFailure } from "./usage-error.ts";

export const METRICS_CLI_OPTION = { metrics: { type: "string" } } as const;

export const METRICS_OPTION_HELP = `      --metrics HOST:PORT  Prometheus metrics at http://HOST:PORT/metrics (no authentication:
                           keep it on loopback or a management network)
`;

/** Starts the endpoint when the flag is given; undefined when it is not. */
export function startMetricsOption(flag: string | undefined, collectors: readonly MetricsCollector[], log: Logger): { server: MetricsServer; registry: MetricsRegistry } | undefined {
  if (flag === undefined) return undefined;
  const address = hostPortFlag("--metrics", flag);
  const registry = new MetricsRegistry();
  registry.register(processCollector());
  for (const collector of collectors) registry.register(collector);
  try {
    return { server: startMetricsServer({ host: address.host, port: address.port, registry, log }), registry };
  } catch (error) {
    if (error instanceof MetricsBindError) throw new CommandFailure(error.message);
    throw error;
  }
}
