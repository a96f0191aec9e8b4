// `--metrics HOST:PORT` on the long-running commands, scraped during a real run and judged by
// Debian's prometheus_client parser: counts must match the packets sent on loopback, the RPCAP
// sessions opened and the AUTH failures provoked.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RpcapClient } from "../../src/protocols/rpcap/index.ts";
import { openLoopbackFlow } from "../support/loopback-traffic.ts";
import { type RunningProbe, runProbe, startProbe, waitFor, waitForLine } from "../support/probe-binary.ts";
import { parsePrometheusText, type ParsedSample } from "../support/prometheus-parser.ts";
import { processesStoppedAfterEach } from "../support/process-cleanup.ts";
import { freeTcpPort } from "../support/free-port.ts";

let dir: string;
const procs = processesStoppedAfterEach();
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "probe-metrics-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** probe in the background, its log collected, stopped after the test. */
const started = (args: string[]): RunningProbe => startProbe(args, { procs });

/** The port the command logged for its metrics endpoint (--metrics 127.0.0.1:0). */
async function metricsPort(log: () => string): Promise<number> {
  await waitFor(() => /metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/.test(log()), 10_000, "metrics endpoint");
  return Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(log())![1]);
}

async function scrape(port: number): Promise<ParsedSample[]> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(response.status).toBe(200);
  return parsePrometheusText(await response.text());
}

/** The value of the sample `name` whose labels include `labels` (undefined if none). */
function value(samples: ParsedSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe("--metrics on long-running commands (the pipeline runner's endpoint)", () => {
  test("rpcapd: input and output packet counts equal what was sent; sessions and AUTH failures counted", async () => {
    const flow = await openLoopbackFlow();
    try {
      const daemon = started(["rpcapd", "-4", "-b", "127.0.0.1", "-p", "0", "-n", "--metrics", "127.0.0.1:0"]);
      const mport = await metricsPort(daemon.log);
      const port = Number((await waitForLine(daemon, /rpcapd listening on 127\.0\.0\.1:(\d+)/))?.[1]);
      const reader = started(["capture", "-i", `rpcap://127.0.0.1:${port}/lo`, "-c", "1000", "-w", join(dir, "m.pcap"), `udp dst port ${flow.port}`]);
      await waitFor(() => daemon.log().includes("capturing on lo"), 10_000, "session capturing");
      await Bun.sleep(300);
      await flow.send([10, 20, 30, 40, 50, 60, 70], { gapMs: 5 });
      let samples: ParsedSample[] = [];
      await waitFor(async () => {
        samples = await scrape(mport);
        return value(samples, "probe_output_packets_sent_total", { output: "rpcap" }) === 7;
      }, 10_000, "7 packets sent to the RPCAP consumer");
      // One capture opened for the session (its filter in the kernel): it delivered every packet.
      const inputs = samples.filter((s) => s.name === "probe_input_packets_received_total");
      expect(inputs.map((s) => s.value)).toEqual([7]);
      expect(value(samples, "probe_input_bytes_received_total")).toBe(7 * 42 + (10 + 20 + 30 + 40 + 50 + 60 + 70));
      expect(value(samples, "probe_input_packets_dropped_by_kernel_total")).toBe(0);
      expect(value(samples, "probe_output_packets_dropped_total", { output: "rpcap", reason: "queue_full" })).toBe(0);
      expect(value(samples, "probe_rpcap_sessions")).toBe(1);
      expect(value(samples, "probe_rpcap_sessions_opened_total")).toBe(1);
      expect(value(samples, "probe_rpcap_auth_failures_total")).toBe(0);
      // A password login on a daemon without --users is refused: one AUTH failure.
      const intruder = await RpcapClient.connect({ host: "127.0.0.1", port });
      expect(await intruder.authenticate("root", "guess").then(() => "ok", () => "refused")).toBe("refused");
      intruder.close();
      // The refused session closes a moment after the reply: wait for it rather than race it.
      await waitFor(async () => {
        samples = await scrape(mport);
        return value(samples, "probe_rpcap_sessions") === 1;
      }, 10_000, "the refused session closed");
      expect(value(samples, "probe_rpcap_auth_failures_total")).toBe(1);
      expect(value(samples, "probe_rpcap_auth_successes_total")).toBe(1);
      expect(value(samples, "probe_rpcap_sessions_opened_total")).toBe(2);
      expect(value(samples, "probe_process_resident_memory_bytes")).toBeGreaterThan(0);
      // The same counts as the rpcapd output's own counters (the runner's per-output families).
      expect(value(samples, "probe_output_auth_failures_total", { output: "rpcapd" })).toBe(1);
      expect(value(samples, "probe_output_sessions", { output: "rpcapd" })).toBe(1);
      reader.proc.kill("SIGINT");
      await reader.proc.exited;
    } finally {
      flow.close();
    }
  }, 30_000);

  test("serve mode: PCAP-over-IP consumer counts equal what was sent", async () => {
    const flow = await openLoopbackFlow();
    try {
      const poipPort = freeTcpPort();
      const serve = started(["-i", "lo", "-f", `udp dst port ${flow.port}`, "--pcap-over-ip", `127.0.0.1:${poipPort}`, "--no-rpcap", "--metrics", "127.0.0.1:0"]);
      const mport = await metricsPort(serve.log);
      const reader = started(["capture", "-i", `tcp://127.0.0.1:${poipPort}`, "-c", "5", "-w", join(dir, "s.pcap")]);
      await waitFor(async () => value(await scrape(mport), "probe_output_consumers", { output: "pcap-over-ip" }) === 1, 10_000, "reader connected");
      await flow.send([11, 22, 33, 44, 55], { gapMs: 5 });
      expect(await reader.proc.exited).toBe(0);
      let samples: ParsedSample[] = [];
      await waitFor(async () => {
        samples = await scrape(mport);
        return value(samples, "probe_output_packets_sent_total", { output: "pcap-over-ip" }) === 5;
      }, 10_000, "5 packets counted as sent (the reader has gone: its count stays)");
      expect(value(samples, "probe_input_packets_received_total")).toBe(5);
      expect(value(samples, "probe_input_packets_dropped_by_kernel_total")).toBe(0);
      expect(value(samples, "probe_output_consumers_served_total", { output: "pcap-over-ip" })).toBe(1);
      expect(value(samples, "probe_output_consumers", { output: "pcap-over-ip" })).toBe(0);
      expect(value(samples, "probe_output_packets_dropped_total", { output: "pcap-over-ip" })).toBe(0);
    } finally {
      flow.close();
    }
  }, 30_000);

  test("collect --rpcap-active-listen: per-probe packet and connection counts", async () => {
    const flow = await openLoopbackFlow();
    try {
      const collector = started([
        "collect", "--rpcap-active-listen", "127.0.0.1:0", "-i", "lo", "-f", `udp dst port ${flow.port}`,
        "-w", join(dir, "c.pcap"), "--metrics", "127.0.0.1:0",
      ]);
      const mport = await metricsPort(collector.log);
      const listenPort = Number((await waitForLine(collector, /accepting active rpcapd connections on 127\.0\.0\.1:(\d+)/))?.[1]);
      // A peer that dials in and says nothing: pending until the probe's arrival, then still pending.
      const { connect } = await import("node:net");
      const silent = connect({ host: "127.0.0.1", port: listenPort, localAddress: "127.0.12.1" });
      silent.on("error", () => {});
      await waitFor(async () => value(await scrape(mport), "probe_rpcap_active_connections_pending") === 1, 10_000, "one pending connection");
      started(["rpcapd", "-v", "--active", `127.0.0.1:${listenPort}`, "-n"]);
      await waitFor(() => collector.log().includes("capturing on lo"), 10_000, "probe capturing");
      await Bun.sleep(300);
      await flow.send([5, 6, 7, 8], { gapMs: 5 });
      let samples: ParsedSample[] = [];
      await waitFor(async () => {
        samples = await scrape(mport);
        return value(samples, "probe_rpcap_active_probe_packets_received_total", { probe: "127.0.0.1" }) === 4;
      }, 10_000, "4 packets from the probe");
      expect(value(samples, "probe_rpcap_active_probes_connected")).toBe(1);
      expect(value(samples, "probe_rpcap_active_probe_connections_total", { probe: "127.0.0.1" })).toBe(1);
      // The silent peer is still setting up (it never captures, so it is not a probe); nothing turned away.
      expect(value(samples, "probe_rpcap_active_probes")).toBe(1);
      expect(value(samples, "probe_rpcap_active_connections_pending")).toBe(1);
      expect(value(samples, "probe_rpcap_active_connections_turned_away_total", { reason: "evicted" })).toBe(0);
      silent.destroy();
    } finally {
      flow.close();
    }
  }, 30_000);

  test("capture -w with --rotate-packets, --checksums check, --anonymize-passphrase: rotations by reason, checksum and cache counts", async () => {
    const flow = await openLoopbackFlow();
    try {
      const capture = started([
        "capture", "-i", "lo", "-w", join(dir, "r-%N.pcap"), "--rotate-packets", "3", "--checksums", "check", "--anonymize-passphrase", "metrics test",
        "--metrics", "127.0.0.1:0", `udp dst port ${flow.port}`,
      ]);
      const mport = await metricsPort(capture.log);
      await Bun.sleep(500);
      // 10 packets, 3 a file: files of packets 1-3, 4-6 and 7-9 are closed by the count, the 10th is open.
      await flow.send([10, 11, 12, 13, 14, 15, 16, 17, 18, 19], { gapMs: 5 });
      let samples: ParsedSample[] = [];
      await waitFor(async () => {
        samples = await scrape(mport);
        return value(samples, "probe_output_packets_written_total", { output: "file" }) === 10;
      }, 10_000, "10 packets written");
      const rotations = samples.filter((s) => s.name === "probe_output_rotations_total");
      expect(rotations.every((s) => s.type === "counter" && s.labels.output === "file")).toBe(true);
      expect(value(samples, "probe_output_rotations_total", { output: "file", reason: "packets" })).toBe(3);
      expect(value(samples, "probe_output_rotations_total", { output: "file", reason: "size" })).toBe(0);
      expect(value(samples, "probe_output_rotations_total", { output: "file", reason: "loss" })).toBe(0);
      expect(value(samples, "probe_output_files_closed_total", { output: "file" })).toBe(3);
      // The IPv4 header checksum is computed in software even on lo: all 10 good. (UDP's may be
      // left to offload on lo, so only its total is fixed.)
      expect(value(samples, "probe_stage_ipv4_ok_total", { stage: "checksums" })).toBe(10);
      expect(value(samples, "probe_stage_ipv4_bad_total", { stage: "checksums" })).toBe(0);
      const udp = ["ok", "bad", "zero", "truncated", "fragment", "disabled"].map((k) => value(samples, `probe_stage_udp_${k}_total`, { stage: "checksums" }) ?? 0);
      expect(udp.reduce((a, b) => a + b, 0)).toBe(10);
      // 10 packets from 127.0.0.1 to 127.0.0.1: one address, encrypted once, then found in the cache.
      expect(value(samples, "probe_stage_packets_in_total", { stage: "anonymize" })).toBe(10);
      expect(value(samples, "probe_stage_encryptions_total", { stage: "anonymize" })).toBe(1);
      expect(value(samples, "probe_stage_ipv4_cache_hits_total", { stage: "anonymize" })).toBeGreaterThan(0);
    } finally {
      flow.close();
    }
  }, 30_000);

  test("reliable rt with a spool and no client: spool bytes, records held and the oldest unacked age", async () => {
    const flow = await openLoopbackFlow();
    try {
      const rt = started([
        "rt", "-i", "lo", "-f", `udp dst port ${flow.port}`, "--reliable", "--spool", join(dir, "spool"), "--spool-max-bytes", "4MiB",
        "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
      ]);
      const mport = await metricsPort(rt.log);
      await Bun.sleep(500);
      const sizes = [30, 40, 50, 60, 70];
      await flow.send(sizes, { gapMs: 5 });
      let samples: ParsedSample[] = [];
      await waitFor(async () => {
        samples = await scrape(mport);
        return value(samples, "probe_output_fifo_records_held", { output: "rt" }) === 5;
      }, 10_000, "5 records held for the absent client");
      const family = (name: string) => samples.find((s) => s.name === name);
      expect(family("probe_output_fifo_records_held")?.type).toBe("gauge");
      expect(family("probe_output_fifo_used_bytes")?.type).toBe("gauge");
      expect(family("probe_output_fifo_oldest_unacked_age_seconds")?.type).toBe("gauge");
      expect(value(samples, "probe_output_fifo_capacity_bytes", { output: "rt" })).toBe(4 * 1024 * 1024);
      // Each record holds at least its packet (42 bytes of headers + payload).
      const packetBytes = sizes.reduce((sum, n) => sum + 42 + n, 0);
      expect(value(samples, "probe_output_fifo_used_bytes", { output: "rt" })).toBeGreaterThanOrEqual(packetBytes);
      expect(value(samples, "probe_output_packets_sent_total", { output: "rt" })).toBe(0);
      // The oldest record waits on: its age grows between two scrapes a second and a half apart.
      const first = value(samples, "probe_output_fifo_oldest_unacked_age_seconds", { output: "rt" })!;
      await Bun.sleep(1_500);
      const later = value(await scrape(mport), "probe_output_fifo_oldest_unacked_age_seconds", { output: "rt" })!;
      expect(later).toBeGreaterThanOrEqual(first + 1);
      expect(later).toBeLessThan(60);
    } finally {
      flow.close();
    }
  }, 30_000);

  test("every pipeline command takes it: collect --udpstr-listen exposes its input and file output", async () => {
    const collector = started(["collect", "--udpstr-listen", "127.0.0.1:0", "-w", join(dir, "u.pcap"), "--metrics", "127.0.0.1:0"]);
    const mport = await metricsPort(collector.log);
    const samples = await scrape(mport);
    expect(samples.find((s) => s.name === "probe_input_packets_received_total")?.value).toBe(0);
    expect(value(samples, "probe_output_packets_written_total", { output: "file" })).toBe(0);
    expect(value(samples, "probe_metrics_collector_errors")).toBe(0);
  });

  test("a bad --metrics address is one line (exit 2); a port in use is one line (exit 1)", async () => {
    const bad = await runProbe(["rpcapd", "-n", "--metrics", "nowhere"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("--metrics:");
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const port = freeTcpPort();
      const busy = await runProbe(["rpcapd", "-4", "-b", "127.0.0.1", "-p", String(port), "-n", "--metrics", `127.0.0.1:${holder.port}`], { timeoutMs: 10_000 });
      expect(busy.exitCode).toBe(1);
      expect(busy.stderr).toContain(`--metrics 127.0.0.1:${holder.port}: cannot listen`);
      expect(busy.stderr).not.toMatch(/\n\s+at /);
    } finally {
      holder.stop(true);
    }
  });
});
