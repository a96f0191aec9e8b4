// Certificate verification on every TLS client probe has (issue 15, libpcap#1080): tls://
// PCAP-over-IP input, rpcaps:// capture (RpcapClient), pcap-over-ip --connect-tls. Each is
// tried against servers holding certificates made by openssl in the test: good, wrong host,
// expired, self-signed, and a good one checked against an unrelated CA; --tls-insecure accepts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { TCPSocketListener } from "bun";
import { join } from "node:path";
import { PcapOverIpSource, RemoteSourceError, parseRemoteSourceUrl } from "../../src/capture/remote/index.ts";
import { RpcapClient, RpcapTlsError } from "../../src/protocols/rpcap/index.ts";
import { PcapOverIpServer } from "../../src/outputs/pcap-over-ip/index.ts";
import { memoryLogger } from "../../src/logging/index.ts";
import { makeTestCertificates, REFUSAL_PATTERN, type ServerCertKind, type TestCertificates } from "../support/tls-certs.ts";
import { collect, pcapStream, startStreamServer, taggedRecords, until, within, ETHERNET } from "../support/remote-source-helpers.ts";
import { runProbe } from "../support/probe-binary.ts";
import { startTestDaemon } from "../support/rpcapd-harness.ts";
import { RpcapCaptureSource } from "../../src/capture/remote/rpcap-source.ts";
import { CaptureError } from "../../src/capture/errors.ts";
import { openLoopbackFlow } from "../support/loopback-traffic.ts";

let certs: TestCertificates;
beforeAll(async () => {
  certs = await makeTestCertificates();
});
afterAll(() => certs.remove());

const REFUSED: Exclude<ServerCertKind, "good">[] = ["wrong-host", "expired", "self-signed"];

/** A TLS listener on 127.0.0.1:0 holding `kind`'s certificate; counts bytes received. */
function tlsSink(kind: ServerCertKind): { listener: TCPSocketListener<undefined>; received: () => number } {
  let received = 0;
  const { cert, key } = certs.server(kind);
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: Bun.file(cert), key: Bun.file(key) },
    socket: { data: (_s, chunk) => void (received += chunk.byteLength) },
  });
  return { listener, received: () => received };
}

describe("tls:// PCAP-over-IP input", () => {
  async function read(kind: ServerCertKind, settings: { tlsCa?: string; insecure?: boolean }) {
    const server = startStreamServer((c) => c.write(pcapStream({ linktype: ETHERNET }, taggedRecords("t", 2, 1, 1))), certs.server(kind));
    const log = memoryLogger();
    const source = new PcapOverIpSource({ address: parseRemoteSourceUrl(`tls://127.0.0.1:${server.port}`)!, headerTimeoutMs: 5000, log, ...settings });
    const out = collect();
    try {
      const result = await within(source.start(out.handlers).then(() => "started", (e: unknown) => e), 10_000, "start");
      if (result === "started") await until(() => out.records.length === 2, "records");
      return { result, log };
    } finally {
      await source.stop();
      server.stop();
    }
  }

  test("good certificate signed by --tls-ca: the stream arrives", async () => {
    expect((await read("good", { tlsCa: certs.ca })).result).toBe("started");
  });

  for (const kind of REFUSED) {
    test(`${kind}: refused with the reason named`, async () => {
      const { result } = await read(kind, { tlsCa: certs.ca });
      expect(result).toBeInstanceOf(RemoteSourceError);
      expect((result as RemoteSourceError).code).toBe("tls-failed");
      expect((result as Error).message).toMatch(REFUSAL_PATTERN[kind]);
    });
  }

  test("good certificate, unrelated CA: refused as unknown CA", async () => {
    const { result } = await read("good", { tlsCa: certs.otherCa });
    expect((result as Error).message).toMatch(/unknown CA/);
  });

  test("--tls-insecure accepts a self-signed certificate and says so once", async () => {
    const { result, log } = await read("self-signed", { insecure: true });
    expect(result).toBe("started");
    expect(log.lines.filter((l) => l.includes("--tls-insecure"))).toHaveLength(1);
  });

  test("an unreadable --tls-ca is one error naming the flag", async () => {
    const { result } = await read("good", { tlsCa: join(certs.dir, "missing.pem") });
    expect((result as RemoteSourceError).code).toBe("tls-settings");
    expect((result as Error).message).toContain("--tls-ca");
  });
});

describe("rpcaps:// client (RpcapClient)", () => {
  async function dial(kind: ServerCertKind, tls: { ca?: string; insecure?: boolean }): Promise<unknown> {
    const sink = tlsSink(kind);
    try {
      const client = await within(RpcapClient.connect({ host: "127.0.0.1", port: sink.listener.port, tls }).then((c) => c, (e: unknown) => e), 10_000, "connect");
      if (client instanceof RpcapClient) {
        client.close();
        return "connected";
      }
      return client;
    } finally {
      sink.listener.stop(true);
    }
  }

  test("good certificate signed by the CA: connected", async () => {
    expect(await dial("good", { ca: certs.ca })).toBe("connected");
  });

  for (const kind of REFUSED) {
    test(`${kind}: refused with the reason named`, async () => {
      const error = await dial(kind, { ca: certs.ca });
      expect(error).toBeInstanceOf(RpcapTlsError);
      expect((error as Error).message).toMatch(REFUSAL_PATTERN[kind]);
    });
  }

  test("no CA given: the built-in public CAs do not include the test CA", async () => {
    expect(((await dial("good", {})) as Error).message).toMatch(/unknown CA/);
  });

  test("--tls-insecure: connected to a self-signed server", async () => {
    expect(await dial("self-signed", { insecure: true })).toBe("connected");
  });
});

describe("rpcaps:// capture against probe's own TLS daemon", () => {
  test("good certificate and --tls-ca: control and data connections verified, packets arrive", async () => {
    const daemon = await startTestDaemon({ tls: certs.server("good") });
    const flow = await openLoopbackFlow();
    const source = new RpcapCaptureSource({
      address: { tls: true, host: "127.0.0.1", port: daemon.port, device: "lo" },
      filter: `udp dst port ${flow.port}`,
      tls: { ca: certs.ca },
    });
    let packets = 0;
    try {
      await source.start({ onBatch: (b) => void (packets += b.count), onEnd: () => {} });
      await Bun.sleep(300);
      await flow.send([10, 20, 30], { gapMs: 5 });
      await until(() => packets === 3, "packets over rpcaps://");
    } finally {
      await source.stop();
      flow.close();
      await daemon.stop();
    }
  });

  test("expired certificate: start() fails with one CaptureError naming the reason", async () => {
    const daemon = await startTestDaemon({ tls: certs.server("expired") });
    const source = new RpcapCaptureSource({ address: { tls: true, host: "127.0.0.1", port: daemon.port, device: "lo" }, tls: { ca: certs.ca } });
    try {
      const error = await source.start({ onBatch: () => {}, onEnd: () => {} }).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(CaptureError);
      expect((error as Error).message).toMatch(/^rpcaps:\/\/127\.0\.0\.1:\d+\/lo: cannot connect: TLS: server certificate has expired$/);
    } finally {
      await source.stop().catch(() => {});
      await daemon.stop();
    }
  });

  test("probe capture -i rpcaps:// with a self-signed daemon and no CA: one line, exit 1", async () => {
    const daemon = await startTestDaemon({ tls: certs.server("self-signed") });
    try {
      const r = await runProbe(["capture", "-i", `rpcaps://127.0.0.1:${daemon.port}/lo`, "-w", join(certs.dir, "rpcaps.pcap")]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/^probe: rpcaps:\/\/127\.0\.0\.1:\d+\/lo: cannot connect: TLS: server certificate is self-signed[^\n]*\n$/);
    } finally {
      await daemon.stop();
    }
  });
});

describe("pcap-over-ip --connect-tls (PcapOverIpServer)", () => {
  async function push(kind: ServerCertKind, connectTls: { ca?: string; insecure?: boolean }) {
    const sink = tlsSink(kind);
    const log = memoryLogger();
    const server = new PcapOverIpServer({
      listen: [],
      connect: [{ host: "127.0.0.1", port: sink.listener.port }],
      allow: [],
      connectTls,
      precision: "micro",
      maxQueueBytes: 1 << 20,
      slowConsumer: "drop",
      log,
    });
    server.attach({ linktype: 1, snaplen: 65535, precision: "micro", description: "test" });
    server.connectOut();
    try {
      await until(() => sink.received() >= 24 || log.lines.some((l) => l.includes("TLS:")), "header or refusal");
      await Bun.sleep(100);
      return { received: sink.received(), log };
    } finally {
      await server.stop();
      sink.listener.stop(true);
    }
  }

  test("good certificate: the consumer gets the pcap header", async () => {
    expect((await push("good", { ca: certs.ca })).received).toBe(24);
  });

  for (const kind of REFUSED) {
    test(`${kind}: nothing is sent, the reason is logged`, async () => {
      const { received, log } = await push(kind, { ca: certs.ca });
      expect(received).toBe(0);
      expect(log.lines.join("\n")).toMatch(REFUSAL_PATTERN[kind]);
    });
  }

  test("--tls-insecure: a self-signed consumer gets the stream, one warning", async () => {
    const { received, log } = await push("self-signed", { insecure: true });
    expect(received).toBe(24);
    expect(log.lines.filter((l) => l.includes("--tls-insecure"))).toHaveLength(1);
  });
});

describe("probe capture -i tls:// on the command line", () => {
  test("mutual TLS: --tls-cert/--tls-key present a client certificate; without them the server refuses", async () => {
    const server = startStreamServer((c) => {
      c.write(pcapStream({ linktype: ETHERNET }, taggedRecords("m", 2, 1, 1)));
      c.end();
    }, { ...certs.server("good"), ca: certs.ca });
    try {
      const out = join(certs.dir, "mutual.pcap");
      const client = certs.server("good");
      const ok = await runProbe(["capture", "-q", "-i", `tls://127.0.0.1:${server.port}`, "--tls-ca", certs.ca, "--tls-cert", client.cert, "--tls-key", client.key, "-c", "2", "-w", out]);
      expect(ok.stderr).toBe("");
      expect(ok.exitCode).toBe(0);
      const without = await runProbe(["capture", "-q", "--no-reconnect", "-i", `tls://127.0.0.1:${server.port}`, "--tls-ca", certs.ca, "-c", "2", "-w", out]);
      expect(without.exitCode).toBe(1);
      expect(without.stderr).toMatch(/^probe: tls:\/\/127\.0\.0\.1:\d+: [^\n]+\n$/);
    } finally {
      server.stop();
    }
  });

  test("a plain (non-TLS) server: 'no TLS from HOST', not a certificate refusal (tls:// and rpcaps://, --tls-insecure too)", async () => {
    const server = startStreamServer((c) => c.write(pcapStream({ linktype: ETHERNET }, taggedRecords("p", 3, 1, 1))));
    const daemon = await startTestDaemon({});
    const noTls = "no TLS from 127.0.0.1 (is it a plain server? drop the TLS scheme or option, or dial its TLS port)";
    try {
      const out = join(certs.dir, "plain.pcap");
      for (const extra of [[], ["--tls-insecure"]]) {
        const stream = await runProbe(["capture", "-q", "--no-reconnect", "-i", `tls://127.0.0.1:${server.port}`, ...extra, "-w", out]);
        expect(stream.exitCode).toBe(1);
        // Besides the --tls-insecure warning (its own line), exactly the one line.
        const lines = (text: string) => text.split("\n").filter((l) => !l.includes("--tls-insecure: the server certificate is not verified"));
        expect(lines(stream.stderr)).toEqual([`probe: tls://127.0.0.1:${server.port}: TLS: ${noTls}`, ""]);
        const rpcaps = await runProbe(["capture", "-q", "-i", `rpcaps://127.0.0.1:${daemon.port}/lo`, ...extra, "-c", "1", "-w", out]);
        expect(rpcaps.exitCode).toBe(1);
        expect(lines(rpcaps.stderr)).toEqual([`probe: rpcaps://127.0.0.1:${daemon.port}/lo: cannot connect: TLS: ${noTls}`, ""]);
      }
    } finally {
      server.stop();
      await daemon.stop();
    }
  });

  test("--tls-ca reads the stream; without it, one line naming the reason and exit 1", async () => {
    const server = startStreamServer((c) => {
      c.write(pcapStream({ linktype: ETHERNET }, taggedRecords("c", 3, 1, 1)));
      c.end();
    }, certs.server("good"));
    try {
      const out = join(certs.dir, "cli.pcap");
      const ok = await runProbe(["capture", "-q", "-i", `tls://127.0.0.1:${server.port}`, "--tls-ca", certs.ca, "-c", "3", "-w", out]);
      expect(ok.stderr).toBe("");
      expect(ok.exitCode).toBe(0);
      const refused = await runProbe(["capture", "-q", "-i", `tls://127.0.0.1:${server.port}`, "-w", out]);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toMatch(/^probe: tls:\/\/127\.0\.0\.1:\d+: TLS: server certificate is signed by an unknown CA.*\n$/);
    } finally {
      server.stop();
    }
  });
});
