// `--metrics HOST:PORT`: serves the registry as Prometheus text on GET /metrics. Loopback unless
// the operator names another address; every other path or method gets a short 404/405, request
// bodies are refused, and idle connections are closed, so a scraper-shaped peer costs little.
//
// The path is read from the request target as Bun hands it over, not through `new URL()`: an
// HTTP/1.0 request has no Host header, so Bun gives the bare path ("/metrics"), and a Host such as
// "[::1" makes an absolute URL that URL refuses; both once ended in a 500 and no log line.
import { peerText, type Logger } from "../logging/index.ts";
import { ProbeError } from "../packet/probe-error.ts";
import { encodePrometheusText } from "./prometheus-text.ts";
import type { MetricsRegistry } from "./metrics-registry.ts";

/** Idle keep-alive connections are closed after this (a scraper comes back every 15–60 s). */
export const METRICS_IDLE_TIMEOUT_SECONDS = 30;
/** Requests with a body larger than this are refused before it is read (GET has none). */
export const METRICS_MAX_REQUEST_BODY_BYTES = 1024;

export interface MetricsServer {
  readonly host: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface MetricsServerOptions {
  host: string;
  port: number;
  registry: MetricsRegistry;
  log: Logger;
}

/** Binds the endpoint; rejects with one clear line when the address cannot be used. */
export function startMetricsServer(options: MetricsServerOptions): MetricsServer {
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: options.host,
      port: options.port,
      idleTimeout: METRICS_IDLE_TIMEOUT_SECONDS,
      maxRequestBodySize: METRICS_MAX_REQUEST_BODY_BYTES,
      async fetch(request) {
        if (requestPath(request.url) !== "/metrics") return new Response("not found: metrics are at /metrics\n", { status: 404 });
        if (request.method !== "GET" && request.method !== "HEAD") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
        let body: string;
        try {
          body = encodePrometheusText(await options.registry.collect());
        } catch (error) {
          options.log.error(`metrics: cannot encode: ${(error as Error).message}`);
          return new Response("metrics unavailable\n", { status: 500 });
        }
        return new Response(body, { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
      },
      // Anything that reaches here is a bug of ours, not the peer's: one line (the message may
      // carry request text, so escaped), never a stack, and a short 500 to the peer.
      error(error) {
        options.log.error(`metrics: unexpected error answering a request: ${peerText(error.message.split("\n")[0] ?? "")}`);
        return new Response("error\n", { status: 500 });
      },
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why = code === "EADDRINUSE" ? "address in use" : code === "EACCES" ? "permission denied" : code === "EADDRNOTAVAIL" ? "address not available here" : (error as Error).message.split("\n")[0];
    throw new MetricsBindError(`--metrics ${options.host}:${options.port}: cannot listen (${why})`);
  }
  const port = server.port ?? options.port;
  options.log.info(`metrics on http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}/metrics`);
  return {
    host: options.host,
    port,
    stop: async () => {
      await server.stop(true);
    },
  };
}

/**
 * The path of a request target as Bun gives it: the bare origin-form ("/metrics?x") when the
 * request had no Host (HTTP/1.0), else an absolute URL; the query is not part of the path.
 */
export function requestPath(target: string): string {
  let path = target;
  const scheme = path.startsWith("/") ? -1 : path.indexOf("://");
  if (scheme >= 0) {
    const slash = path.indexOf("/", scheme + 3);
    path = slash < 0 ? "/" : path.slice(slash);
  }
  const query = path.search(/[?#]/);
  return query < 0 ? path : path.slice(0, query);
}

/** The metrics address could not be bound; the message names the flag and address. */
export class MetricsBindError extends ProbeError {
  override readonly name = "MetricsBindError";
  constructor(message: string) {
    super("metrics-bind", "runtime", message);
  }
}
