// `probe pcap-over-ip` end to end: tshark reads it live as TCP@host:port; many consumers with
// one stalled; --connect redials; TLS and mutual TLS; --allow refuses.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { openLoopbackFlow, type LoopbackFlow } from "../support/loopback-traffic.ts";
import { runTool, spawnProbe, startProbeUntil, waitFor } from "../support/probe-binary.ts";
import { connectStreamClient } from "../support/pcap-stream-client.ts";

let dir: string;
const procs: Subprocess[] = [];
let flow: LoopbackFlow | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "probe-poip-"));
  // A throwaway CA, a server certificate and a client certificate for the TLS tests.
  const sh = (cmd: string) => runTool(["sh", "-c", cmd]);
  await sh(`cd ${dir} && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -subj /CN=probe-test-ca -days 1 2>/dev/null`);
  for (const name of ["server", "client"]) {
    await sh(
      `cd ${dir} && openssl req -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.csr -subj /CN=localhost 2>/dev/null && ` +
        `printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > ${name}.ext && ` +
        `openssl x509 -req -in ${name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out ${name}.pem -days 1 -extfile ${name}.ext 2>/dev/null`,
    );
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill("SIGTERM");
    await p.exited;
  }
  flow?.close();
  flow = undefined;
});

/** Starts probe pcap-over-ip and waits for its "serving ... on HOST:PORT" line. */
async function startServer(args: string[]): Promise<{ proc: Subprocess; port: number; log: () => string }> {
  const server = await startProbeUntil(["pcap-over-ip", "-i", "lo", ...args], /capturing on lo/, { procs });
  const match = /serving PCAP-over-(?:IP|TLS) on [^\s]+:(\d+)/.exec(server.log());
  if (!match) throw new Error(`server did not start: ${server.log()}`);
  return { proc: server.proc, port: Number(match[1]), log: server.log };
}

describe("PCAP-over-IP server", () => {
  test("tshark -i TCP@127.0.0.1:PORT reads every packet sent, bytes equal", async () => {
    flow = await openLoopbackFlow();
    const { port, log } = await startServer(["--listen", "127.0.0.1:0", "-f", `udp dst port ${flow.port}`]);
    expect(log()).toContain(`leaving own traffic out of the capture: not (tcp port ${port})`);
    const tshark = Bun.spawn(["tshark", "-i", `TCP@127.0.0.1:${port}`, "-c", "20", "-T", "fields", "-e", "frame.len", "-e", "udp.payload"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    // tshark starts slowly: send once it has connected (a fixed sleep was too short when loaded).
    await waitFor(() => /consumer \S+ connected/.test(log()) || tshark.exitCode !== null, 30_000, "tshark to connect");
    const sizes = Array.from({ length: 20 }, (_, i) => 5 + i * 70);
    await flow.send(sizes, { gapMs: 5 });
    const timer = setTimeout(() => tshark.kill(), 20_000);
    const out = await new Response(tshark.stdout).text();
    clearTimeout(timer);
    const rows = out.trim().split("\n").map((l) => l.split("\t"));
    expect(rows.length).toBe(20);
    rows.forEach(([len, payload], i) => {
      expect(Number(len)).toBe(42 + sizes[i]!);
      expect(payload!.replaceAll(":", "")).toBe(Buffer.from(flow!.sent[i]!).toString("hex"));
    });
  });

  test("three consumers, one stalled: the others lose nothing, the stalled one is cut off", async () => {
    flow = await openLoopbackFlow();
    const { port, log } = await startServer([
      "--listen", "127.0.0.1:0", "-f", `udp dst port ${flow.port}`, "--queue-bytes", "65536", "--slow-consumer", "disconnect",
    ]);
    const a = await connectStreamClient(port);
    const b = await connectStreamClient(port);
    const stalled = await connectStreamClient(port, { paused: true });
    await waitFor(() => a.bytesReceived >= 24 && b.bytesReceived >= 24, 5000, "headers");
    const total = 6000;
    for (let i = 0; i < total; i += 200) {
      await flow.send(Array(200).fill(1400));
      await Bun.sleep(2);
    }
    await waitFor(() => a.packets.length >= total && b.packets.length >= total, 20_000, "healthy consumers");
    expect(a.packets.length).toBe(total);
    expect(b.packets.length).toBe(total);
    expect(a.packets.every((p, i) => p.data[42] === (i & 0xff))).toBe(true);
    await waitFor(() => /consumer 127\.0\.0\.1:\d+ gone \(disconnected: fell more than 65536 bytes behind/.test(log()), 10_000, "stalled consumer cut off");
    expect(a.error).toBeUndefined();
    a.close();
    b.close();
    stalled.close();
  });

  test("a consumer can leave and come back", async () => {
    flow = await openLoopbackFlow();
    const { port } = await startServer(["--listen", "127.0.0.1:0", "-f", `udp dst port ${flow.port}`]);
    const first = await connectStreamClient(port);
    await Bun.sleep(100);
    await flow.send([10]);
    await waitFor(() => first.packets.length === 1, 5000, "first packet");
    first.close();
    const second = await connectStreamClient(port);
    await waitFor(() => second.bytesReceived >= 24, 5000, "header again");
    await flow.send([20]);
    await waitFor(() => second.packets.length === 1, 5000, "packet after reconnect");
    expect(second.packets[0]!.len).toBe(62);
    second.close();
  });

  test("--connect pushes to a listening consumer and redials after it goes away", async () => {
    flow = await openLoopbackFlow();
    const received: Uint8Array[][] = [];
    const sockets: { end(): void }[] = [];
    const collector = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          received.push([]);
          sockets.push(s);
        },
        data(_s, chunk) {
          received[received.length - 1]!.push(new Uint8Array(chunk));
        },
      },
    });
    try {
      const proc = spawnProbe(["pcap-over-ip", "-i", "lo", "-f", `udp dst port ${flow.port}`, "--connect", `127.0.0.1:${collector.port}`]);
      procs.push(proc);
      await waitFor(() => received.length === 1 && received[0]!.length > 0, 10_000, "first connection and header");
      sockets[0]!.end(); // the consumer goes away
      await waitFor(() => received.length === 2, 10_000, "redial");
      await waitFor(() => received[1]!.length > 0, 5000, "header on the new connection");
      await flow.send([100]);
      await waitFor(() => received[1]!.reduce((n, c) => n + c.byteLength, 0) >= 24 + 16 + 142, 5000, "packet on the new connection");
      const header = received[1]![0]!;
      expect(new DataView(header.buffer, header.byteOffset).getUint32(0, true)).toBe(0xa1b2c3d4);
    } finally {
      collector.stop(true);
    }
  });

  test("--allow refuses peers outside the blocks", async () => {
    const { port, log } = await startServer(["--listen", "127.0.0.1:0", "--allow", "10.0.0.0/8", "-f", "udp port 1"]);
    const client = await connectStreamClient(port);
    await waitFor(() => client.closed, 5000, "refused connection closed");
    expect(client.bytesReceived).toBe(0);
    expect(log()).toMatch(/refused 127\.0\.0\.1:\d+: not in --allow/);
  });

  test("PCAP-over-TLS: socat with TLS reads the stream; mutual TLS refuses a client without a certificate", async () => {
    flow = await openLoopbackFlow();
    const { port } = await startServer([
      "--listen", "127.0.0.1:0", "-f", `udp dst port ${flow.port}`,
      "--tls-cert", join(dir, "server.pem"), "--tls-key", join(dir, "server.key"), "--tls-ca", join(dir, "ca.pem"),
    ]);
    const out = join(dir, "tls.pcap");
    const socat = Bun.spawn(
      ["socat", "-u", `OPENSSL:127.0.0.1:${port},cafile=${join(dir, "ca.pem")},cert=${join(dir, "client.pem")},key=${join(dir, "client.key")},verify=1`, `CREATE:${out}`],
      { stdout: "ignore", stderr: "pipe" },
    );
    await Bun.sleep(500);
    await flow.send([33, 44, 55], { gapMs: 5 });
    await Bun.sleep(500);
    socat.kill();
    await socat.exited;
    const lens = await runTool(["tshark", "-r", out, "-T", "fields", "-e", "udp.length"]);
    expect(lens.trim().split("\n").map(Number)).toEqual([41, 52, 63]);

    // Without a client certificate the handshake fails and nothing is served.
    const anonymous = await connectStreamClient(port, { tls: { rejectUnauthorized: false } });
    await waitFor(() => anonymous.closed, 5000, "anonymous client closed");
    expect(anonymous.packets.length).toBe(0);
    expect(anonymous.bytesReceived).toBe(0);
  });
});
