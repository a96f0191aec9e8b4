// Active mode over TLS, probe <-> probe: `probe rpcapd --active HOST:PORT -S -K KEY -X CERT`
// dials `probe collect --rpcap-active-listen HOST:PORT -S --tls-ca CA`. As in libpcap
// (rpcapd/daemon.c daemon_serviceloop: ssl_promotion(1, ...) even in active mode;
// pcap-rpcap.c pcap_remoteact_accept_ex: ssl_promotion(0, ...)) the daemon that dialled is the
// TLS server and the collector that accepted is the TLS client, verifying the daemon's
// certificate. Judged on the wire by tshark (who sends the ClientHello) and by the packets
// collected; refusals (unknown CA, wrong host, expired, self-signed) named in one line each.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLoopbackFlow } from "../support/loopback-traffic.ts";
import { collectStderr, type RunningProbe, runProbe, runTool, startProbe, waitFor } from "../support/probe-binary.ts";
import { makeTestCertificates, REFUSAL_PATTERN, type TestCertificates } from "../support/tls-certs.ts";
import { processesStoppedAfterEach } from "../support/process-cleanup.ts";
import { freeTcpPort } from "../support/free-port.ts";

let dir: string;
let certs: TestCertificates;
const procs = processesStoppedAfterEach();
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "probe-active-tls-"));
  certs = await makeTestCertificates();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  certs.remove();
});

/** probe (no `command`) or `command` in the background, its log collected, stopped after the test. */
function started(command: string[], args: string[]): RunningProbe {
  if (command.length === 0) return startProbe(args, { procs });
  const proc = Bun.spawn([...command, ...args], { stdout: "ignore", stderr: "pipe" });
  procs.push(proc);
  return collectStderr(proc);
}

async function udpLengths(file: string): Promise<number[]> {
  const text = await runTool(["tshark", "-r", file, "-T", "fields", "-e", "udp.length"]);
  return text.trim() === "" ? [] : text.trim().split("\n").map(Number);
}

function daemon(listenPort: number, kind: "good" | "wrong-host" | "expired" | "self-signed") {
  const { cert, key } = certs.server(kind);
  return started([], ["rpcapd", "-v", "--active", `127.0.0.1:${listenPort}`, "-n", "-S", "-K", key, "-X", cert]);
}

describe("active mode with TLS (rpcapd --active -S, collect --rpcap-active-listen -S)", () => {
  test("the daemon is the TLS server on the connection it dialled; the collector verifies it; packets arrive", async () => {
    const flow = await openLoopbackFlow();
    const listenPort = freeTcpPort();
    const wire = join(dir, "wire.pcap");
    // The control connection on the wire, to see who speaks first in TLS.
    const sniffer = started(["tshark"], ["-i", "lo", "-f", `tcp port ${listenPort}`, "-w", wire]);
    try {
      await waitFor(() => sniffer.log().includes("Capturing on"), 15_000, "tshark capturing");
      const file = join(dir, "tls.pcap");
      const collector = started([], [
        "collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-S", "--tls-ca", certs.ca,
        "-i", "lo", "-f", `udp dst port ${flow.port}`, "-w", file,
      ]);
      await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
      const probe = daemon(listenPort, "good");
      await waitFor(() => collector.log().includes("capturing on lo"), 10_000, "probe capturing");
      await Bun.sleep(300); // the data connection (TLS too) follows STARTCAP's reply
      await flow.send([10, 20, 30, 40, 50], { gapMs: 5 });
      await waitFor(async () => (await udpLengths(file).catch(() => [])).length >= 5, 10_000, "5 packets written");
      probe.proc.kill("SIGTERM");
      await probe.proc.exited;
      collector.proc.kill("SIGTERM");
      expect(await collector.proc.exited).toBe(0);
      expect(await udpLengths(file)).toEqual([18, 28, 38, 48, 58]);
      expect(collector.log()).not.toContain("refused");
      sniffer.proc.kill("SIGINT");
      await sniffer.proc.exited;
      // The daemon sent the SYN (it dialled, from an ephemeral port to listenPort); the ClientHello
      // came from the collector (source port listenPort) and the ServerHello from the daemon.
      const fields = async (filter: string) =>
        (await runTool(["tshark", "-r", wire, "-Y", filter, "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport"])).trim().split("\n").filter(Boolean);
      expect(await fields("tcp.flags.syn == 1 && tcp.flags.ack == 0")).toEqual([expect.stringMatching(new RegExp(`^\\d+\\t${listenPort}$`))]);
      expect(await fields("tls.handshake.type == 1")).toEqual([expect.stringMatching(new RegExp(`^${listenPort}\\t\\d+$`))]);
      expect(await fields("tls.handshake.type == 2")).toEqual([expect.stringMatching(new RegExp(`^\\d+\\t${listenPort}$`))]);
      // Nothing of RPCAP in clear: no AUTH request's version/type bytes readable on the wire.
      expect(await fields("rpcap")).toEqual([]);
    } finally {
      flow.close();
    }
  }, 60_000);

  test("refused certificates are named in one line: unknown CA, wrong host, expired, self-signed", async () => {
    const listenPort = freeTcpPort();
    const collector = started([], ["collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-S", "--tls-ca", certs.ca, "-i", "lo", "-w", join(dir, "none.pcap")]);
    await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
    for (const kind of ["wrong-host", "expired", "self-signed"] as const) {
      const probe = daemon(listenPort, kind);
      await waitFor(() => new RegExp(`refused active connection from 127\\.0\\.0\\.1: .*${REFUSAL_PATTERN[kind].source}`).test(collector.log()), 10_000, `${kind} refused`);
      probe.proc.kill("SIGTERM");
      await probe.proc.exited;
    }
    expect(collector.log()).not.toContain("capturing on");
    // A collector trusting another CA refuses the good certificate: signed by an unknown CA.
    const otherPort = freeTcpPort();
    const other = started([], ["collect", "--rpcap-active-listen", `127.0.0.1:${otherPort}`, "-S", "--tls-ca", certs.otherCa, "-i", "lo", "-w", join(dir, "none2.pcap")]);
    await waitFor(() => other.log().includes("accepting active rpcapd connections"), 10_000, "second collector listening");
    const probe = daemon(otherPort, "good");
    await waitFor(() => /refused active connection from 127\.0\.0\.1: server certificate is signed by an unknown CA/.test(other.log()), 10_000, "unknown CA refused");
    probe.proc.kill("SIGTERM");
    await probe.proc.exited;
    expect(collector.log() + other.log()).not.toMatch(/\n\s+at /);
    expect(collector.proc.exitCode).toBeNull();
  }, 60_000);

  test("--tls-insecure accepts a self-signed probe (logged); a plain probe is not captured by a TLS collector", async () => {
    const flow = await openLoopbackFlow();
    try {
      const listenPort = freeTcpPort();
      const file = join(dir, "insecure.pcap");
      const collector = started([], [
        "collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-S", "--tls-insecure", "-i", "lo", "-f", `udp dst port ${flow.port}`, "-w", file,
      ]);
      await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
      expect(collector.log()).toContain("--tls-insecure");
      // Plain RPCAP toward a TLS collector: its bytes are no ClientHello reply; never captured.
      const plain = started([], ["rpcapd", "-v", "--active", `127.0.0.1:${listenPort}`, "-n"]);
      await waitFor(() => collector.log().includes("refused active connection from 127.0.0.1: TLS handshake failed: the peer does not speak TLS"), 15_000, "plain probe refused");
      plain.proc.kill("SIGTERM");
      await plain.proc.exited;
      expect(collector.log()).not.toContain("capturing on");
      const probe = daemon(listenPort, "self-signed");
      await waitFor(() => collector.log().includes("capturing on lo"), 10_000, "self-signed probe capturing");
      await Bun.sleep(300);
      await flow.send([11, 22], { gapMs: 5 });
      await waitFor(async () => (await udpLengths(file).catch(() => [])).length >= 2, 10_000, "2 packets written");
      probe.proc.kill("SIGTERM");
      await probe.proc.exited;
    } finally {
      flow.close();
    }
  }, 60_000);

  test("the rpcap-active pipeline input takes tls: {ca}: a probe dialling in with -S feeds the run", async () => {
    const flow = await openLoopbackFlow();
    try {
      const listenPort = freeTcpPort();
      const out = join(dir, "pipeline-tls.pcap");
      const pipelineFile = join(dir, "active-tls.json");
      await Bun.write(pipelineFile, JSON.stringify({
        inputs: [{ kind: "rpcap-active", listen: { host: "127.0.0.1", port: listenPort }, device: "lo", filter: `udp dst port ${flow.port}`, tls: { ca: certs.ca } }],
        outputs: [{ kind: "file", path: out }],
      }));
      const run = started([], ["run", pipelineFile]);
      await waitFor(() => run.log().includes("accepting active rpcapd connections"), 10_000, "run listening");
      const probe = daemon(listenPort, "good");
      await waitFor(() => run.log().includes("capturing on lo"), 10_000, "probe capturing");
      await Bun.sleep(300);
      await flow.send([9, 19, 29], { gapMs: 5 });
      await waitFor(async () => (await udpLengths(out).catch(() => [])).length >= 3, 10_000, "3 packets written");
      probe.proc.kill("SIGTERM");
      await probe.proc.exited;
      run.proc.kill("SIGTERM");
      expect(await run.proc.exited).toBe(0);
      expect(await udpLengths(out)).toEqual([17, 27, 37]);
    } finally {
      flow.close();
    }
  }, 30_000);

  test("issue 21: with -S, a peer outside --allow is closed before any handshake, peers that never handshake are freed at the setup deadline, then a probe with a good certificate captures", async () => {
    const listenPort = freeTcpPort();
    const collector = started([], [
      "collect", "--rpcap-active-listen", `127.0.0.1:${listenPort}`, "-S", "--tls-ca", certs.ca, "-i", "lo", "-w", join(dir, "allow-tls.pcap"),
      "--allow", "127.0.0.0/24", "--setup-timeout-ms", "500", "--max-per-address", "2",
    ]);
    await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000, "collector listening");
    /** A plain TCP peer from 127.0.0.1 that says nothing; resolves when the collector closes it. */
    const silent = async () => {
      const closed = Promise.withResolvers<void>();
      await Bun.connect({ hostname: "127.0.0.1", port: listenPort, socket: { data() {}, close: () => closed.resolve(), error: () => closed.resolve() } }).catch(() => closed.resolve());
      return closed.promise;
    };
    // Bun.connect cannot pick a source address: the outsider comes through node:net.
    const { connect } = await import("node:net");
    const outsider = Promise.withResolvers<void>();
    const raw = connect({ host: "127.0.0.1", port: listenPort, localAddress: "127.0.1.9" });
    raw.on("error", () => {});
    raw.once("close", () => outsider.resolve());
    await outsider.promise;
    expect(collector.log()).toContain("refused active connection from 127.0.1.9: not in --allow");
    expect(collector.log()).not.toContain("127.0.1.9: TLS");
    // Two plain-TCP peers from 127.0.0.1 that never answer the ClientHello: closed at 500 ms.
    await Promise.all([silent(), silent()]);
    expect(collector.log().match(/not capturing within 500 ms; closed/g)?.length).toBe(2);
    const probe = daemon(listenPort, "good");
    await waitFor(() => collector.log().includes("capturing on lo"), 10_000, "good probe capturing");
    probe.proc.kill("SIGTERM");
    await probe.proc.exited;
    collector.proc.kill("SIGTERM");
    expect(await collector.proc.exited).toBe(0);
  }, 30_000);

  test("flag mistakes are one line (exit 2)", async () => {
    const port = String(freeTcpPort());
    const noTls = await runProbe(["collect", "--rpcap-active-listen", `127.0.0.1:${port}`, "--tls-ca", "x.pem", "-w", join(dir, "x.pcap")]);
    expect(noTls.exitCode).toBe(2);
    expect(noTls.stderr.split("\n")[0]).toBe("probe: collect: --tls-ca and --tls-insecure go with -S (--tls)");
    const udp = await runProbe(["collect", "--rpcap-active-listen", `127.0.0.1:${port}`, "-S", "--udpstr", "-w", join(dir, "x.pcap")]);
    expect(udp.exitCode).toBe(2);
    expect(udp.stderr.split("\n")[0]).toBe("probe: collect: -S (--tls) cannot be combined with --udpstr: the UDP data channel has no TLS");
  });
});
