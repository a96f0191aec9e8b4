// The metrics text format judged by Debian's prometheus_client parser, the series bound, and
// the /metrics endpoint on a real loopback port.
import { describe, expect, test } from "bun:test";
import {
  MetricsRegistry,
  boundSeries,
  encodePrometheusText,
  processCollector,
  startMetricsServer,
  MetricsBindError,
  type MetricFamily,
} from "../../src/metrics/index.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { requestPath } from "../../src/metrics/metrics-server.ts";
import { parsePrometheusText } from "../support/prometheus-parser.ts";
import { connect } from "node:net";

/** Sends one raw request and reads until the server closes (bounded at 5 s). */
function rawHttp(port: number, request: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 5 s after ${JSON.stringify(request)}; got ${JSON.stringify(Buffer.concat(chunks).toString())}`));
    }, 5000);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString();
      const split = text.indexOf("\r\n\r\n");
      const [statusLine, ...lines] = text.slice(0, split).split("\r\n");
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      resolve({ status: Number(statusLine!.split(" ")[1]), headers, body: text.slice(split + 4) });
    });
  });
}

const families: MetricFamily[] = [
  {
    name: "input_packets_received",
    help: "Packets an input delivered.\nSecond line with a \\ backslash.",
    type: "counter",
    samples: [
      { labels: { input: "eth0" }, value: 1234 },
      { labels: { input: 'we"ird\\name\nx' }, value: 5 },
    ],
  },
  { name: "output_queue_bytes", help: "Bytes queued.", type: "gauge", samples: [{ labels: { output: "pcap-over-ip" }, value: 0 }, { value: 1.5e9 }] },
];

describe("Prometheus text", () => {
  test("counters get _total and the prefix; escaped label values survive the real parser", async () => {
    const text = encodePrometheusText(families);
    expect(text).toContain("# TYPE probe_input_packets_received_total counter");
    const parsed = await parsePrometheusText(text);
    const received = parsed.filter((s) => s.name === "probe_input_packets_received_total");
    expect(received.map((s) => [s.labels.input, s.value])).toEqual([
      ["eth0", 1234],
      ['we"ird\\name\nx', 5],
    ]);
    const queued = parsed.filter((s) => s.family === "probe_output_queue_bytes");
    expect(queued.map((s) => s.value)).toEqual([0, 1.5e9]);
    expect(queued[0]!.type).toBe("gauge");
  });

  test("invalid metric or label names are refused (they come from code, not peers)", () => {
    expect(() => encodePrometheusText([{ name: "bad-name", help: "", type: "gauge", samples: [] }])).toThrow("invalid metric name");
    expect(() => encodePrometheusText([{ name: "ok", help: "", type: "gauge", samples: [{ labels: { "a-b": "x" }, value: 1 }] }])).toThrow("invalid label name");
  });

  test("families of one name merge; an empty registry still scrapes", async () => {
    const text = encodePrometheusText([families[1]!, { ...families[1]!, samples: [{ labels: { output: "rpcapd" }, value: 7 }] }]);
    expect(text.match(/# TYPE/g)?.length).toBe(1);
    const parsed = await parsePrometheusText(text);
    expect(parsed.map((s) => s.value)).toEqual([0, 1.5e9, 7]);
    expect(encodePrometheusText([])).toBe("");
  });
});

describe("boundSeries", () => {
  test("keeps the largest and folds the rest into 'other', preserving the total", () => {
    const samples = Array.from({ length: 100 }, (_, i) => ({ labels: { consumer: `127.0.0.1:${40000 + i}` }, value: i }));
    const bounded = boundSeries(samples, "consumer", 10);
    expect(bounded.length).toBe(10);
    expect(bounded[0]!.value).toBe(99);
    expect(bounded[9]!.labels).toEqual({ consumer: "other" });
    expect(bounded.reduce((s, x) => s + x.value, 0)).toBe(samples.reduce((s, x) => s + x.value, 0));
    expect(boundSeries(samples.slice(0, 5), "consumer", 10).length).toBe(5);
  });
});

describe("/metrics endpoint", () => {
  test("serves the registry on loopback, parsed by prometheus_client; other paths 404", async () => {
    const registry = new MetricsRegistry();
    let received = 0;
    registry.register(() => [{ name: "input_packets_received", help: "Packets.", type: "counter", samples: [{ labels: { input: "lo" }, value: received }] }]);
    registry.register(processCollector());
    registry.register(() => {
      throw new Error("broken collector");
    });
    const log = memoryLogger();
    const server = startMetricsServer({ host: "127.0.0.1", port: 0, registry, log });
    try {
      received = 42;
      const response = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4");
      const parsed = await parsePrometheusText(await response.text());
      const value = (name: string) => parsed.find((s) => s.name === name)?.value;
      expect(value("probe_input_packets_received_total")).toBe(42);
      expect(value("probe_metrics_collector_errors")).toBe(1);
      expect(value("probe_process_resident_memory_bytes")).toBeGreaterThan(1e6);
      expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: "POST", body: "x" })).status).toBe(405);
      expect(log.lines.some((l) => l.includes(`127.0.0.1:${server.port}/metrics`))).toBe(true);
    } finally {
      await server.stop();
    }
  });

  test("HTTP/1.0 (no Host), odd Hosts and a query are answered; other methods get 405 with Allow; nothing logged", async () => {
    const registry = new MetricsRegistry();
    registry.register(() => [{ name: "input_packets_received", help: "Packets.", type: "counter", samples: [{ labels: { input: "lo" }, value: 7 }] }]);
    const log = memoryLogger();
    const server = startMetricsServer({ host: "127.0.0.1", port: 0, registry, log });
    try {
      const raw = (request: string) => rawHttp(server.port, request);
      // curl as the HTTP/1.0 client, with its Host header removed as a 1.0 client may.
      // Async: the server runs in this process, a synchronous spawn would starve it.
      const curl = Bun.spawn(["curl", "-sS", "--max-time", "5", "--http1.0", "-H", "Host:", "-D", "-", `http://127.0.0.1:${server.port}/metrics`], { stdout: "pipe", stderr: "pipe" });
      const [curlOut, curlCode] = await Promise.all([new Response(curl.stdout).text(), curl.exited]);
      expect(curlCode).toBe(0);
      expect(curlOut).toMatch(/^HTTP\/1\.[01] 200 OK\r\n/);
      const curlBody = curlOut.slice(curlOut.indexOf("\r\n\r\n") + 4);
      expect((await parsePrometheusText(curlBody)).find((x) => x.name === "probe_input_packets_received_total")?.value).toBe(7);
      const get10 = await raw("GET /metrics HTTP/1.0\r\n\r\n");
      expect(get10.status).toBe(200);
      expect((await parsePrometheusText(get10.body)).find((x) => x.name === "probe_input_packets_received_total")?.value).toBe(7);
      const head10 = await raw("HEAD /metrics HTTP/1.0\r\n\r\n");
      expect([head10.status, head10.body]).toEqual([200, ""]);
      for (const request of ["DELETE /metrics HTTP/1.0\r\n\r\n", "DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "PUT /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n"]) {
        const answer = await raw(request);
        expect([answer.status, answer.headers.allow]).toEqual([405, "GET, HEAD"]);
      }
      expect((await raw("GET /other HTTP/1.0\r\n\r\n")).status).toBe(404);
      expect((await raw("GET /metrics?x=1 HTTP/1.0\r\n\r\n")).status).toBe(200);
      // A Host that is no valid authority (Bun builds "http://[::1/metrics" from it).
      expect((await raw("GET /metrics HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n")).status).toBe(200);
      expect((await raw("GET /metrics HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n")).status).toBe(200);
      expect(log.lines.filter((l) => !l.includes("metrics on http://"))).toEqual([]);
    } finally {
      await server.stop();
    }
  });

  test("requestPath: origin-form and absolute targets, query cut", () => {
    expect(requestPath("/metrics")).toBe("/metrics");
    expect(requestPath("/metrics?a=/b")).toBe("/metrics");
    expect(requestPath("http://x/metrics#f")).toBe("/metrics");
    expect(requestPath("http://[::1/metrics")).toBe("/metrics");
    expect(requestPath("http://host")).toBe("/");
    expect(requestPath("*")).toBe("*");
    expect(requestPath("")).toBe("");
  });

  test("an address in use is one line naming the flag and address", () => {
    const registry = new MetricsRegistry();
    const first = startMetricsServer({ host: "127.0.0.1", port: 0, registry, log: memoryLogger() });
    try {
      let error: unknown;
      try {
        startMetricsServer({ host: "127.0.0.1", port: first.port, registry, log: memoryLogger() });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(MetricsBindError);
      expect((error as Error).message).toBe(`--metrics 127.0.0.1:${first.port}: cannot listen (address in use)`);
    } finally {
      void first.stop();
    }
  });
});
