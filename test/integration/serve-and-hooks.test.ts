// The default serve mode (what `npm start` runs), hooks on every forwarding command, PCAP-over-IP
// as an input (`probe capture -i tcp://`) and merging (`probe pcap-over-ip --from ... --from ...`).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileFilter } from "../../src/capture/libpcap/compile-filter.ts";
import { RpcapClient } from "../../src/protocols/rpcap/index.ts";
import { openLoopbackFlow } from "../support/loopback-traffic.ts";
import { connectStreamClient } from "../support/pcap-stream-client.ts";
import { runProbe, runTool, startProbeUntil, waitFor } from "../support/probe-binary.ts";
import { vectorPath } from "../support/fixtures.ts";
import { processesStoppedAfterEach } from "../support/process-cleanup.ts";
import { freeTcpPort } from "../support/free-port.ts";

let dir: string;
let dropBig: string;
const procs = processesStoppedAfterEach();
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "probe-serve-"));
  dropBig = join(dir, "drop-big.js");
  writeFileSync(dropBig, 'export default function (pkt, ctx) { ctx.tag("seen"); if (pkt.caplen > 100) return "drop"; }\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("default serve mode", () => {
  test("probe (no command) serves PCAP-over-IP and RPCAP from one capture and says how to read them", async () => {
    const flow = await openLoopbackFlow();
    try {
      const poip = freeTcpPort();
      const rpcap = freeTcpPort();
      const s = await startProbeUntil(["-i", "lo", "-f", `udp dst port ${flow.port}`, "--pcap-over-ip", `127.0.0.1:${poip}`, "--rpcap", `127.0.0.1:${rpcap}`], /Ctrl-C to stop/, { procs, timeoutMs: 15_000 });
      expect(s.log()).toContain(`tshark -i TCP@127.0.0.1:${poip}`);
      expect(s.log()).toContain(`probe capture -i rpcap://127.0.0.1:${rpcap}/lo`);
      const stream = await connectStreamClient(poip);
      const client = await RpcapClient.connect({ host: "127.0.0.1", port: rpcap });
      await client.authenticate(); // NULL auth: loopback-only serve mode
      await client.open("lo");
      const viaRpcap: number[] = [];
      await client.startCapture({ filter: compileFilter(`udp dst port ${flow.port}`, 1, 65535), onBatch: (b) => viaRpcap.push(b.count) });
      await Bun.sleep(300);
      await flow.send([10, 20, 30]);
      await waitFor(() => stream.packets.length === 3 && viaRpcap.reduce((a, b) => a + b, 0) === 3, 5000, "both outputs");
      client.close();
      stream.close();
    } finally {
      flow.close();
    }
  });
});

describe("hooks on every forwarding command", () => {
  test("pcap-over-ip --hook: consumers see only what the hook passes", async () => {
    const flow = await openLoopbackFlow();
    try {
      const s = await startProbeUntil(["pcap-over-ip", "-i", "lo", "-f", `udp dst port ${flow.port}`, "--listen", "127.0.0.1:0", "--hook", dropBig], /capturing on lo/, { procs, timeoutMs: 15_000 });
      const p = Number(/serving PCAP-over-IP on 127\.0\.0\.1:(\d+)/.exec(s.log())?.[1]);
      const stream = await connectStreamClient(p);
      await Bun.sleep(200);
      await flow.send([10, 500, 20, 900, 30]);
      await waitFor(() => stream.packets.length >= 3, 5000, "hooked packets");
      await Bun.sleep(200);
      expect(stream.packets.map((x) => x.len)).toEqual([52, 62, 72]);
      stream.close();
    } finally {
      flow.close();
    }
  });

  test("rpcapd --hook: an RPCAP client receives only what the hook passes", async () => {
    const flow = await openLoopbackFlow();
    try {
      const s = await startProbeUntil(["rpcapd", "-n", "-4", "-b", "127.0.0.1", "-p", "0", "--hook", dropBig], /rpcapd listening on 127\.0\.0\.1:(\d+)/, { procs, timeoutMs: 15_000 });
      const p = Number(s.match[1]);
      const client = await RpcapClient.connect({ host: "127.0.0.1", port: p });
      await client.authenticate();
      await client.open("lo");
      const lens: number[] = [];
      await client.startCapture({
        filter: compileFilter(`udp dst port ${flow.port}`, 1, 65535),
        onBatch: (b) => {
          const v = new DataView(b.bytes.buffer, b.bytes.byteOffset);
          let o = 0;
          for (let i = 0; i < b.count; i++) {
            lens.push(v.getUint32(o + 12, true));
            o += 16 + v.getUint32(o + 8, true);
          }
        },
      });
      await Bun.sleep(300);
      await flow.send([10, 500, 20]);
      await waitFor(() => lens.length >= 2, 5000, "hooked packets");
      await Bun.sleep(200);
      expect(lens).toEqual([52, 62]);
      client.close();
    } finally {
      flow.close();
    }
  });

  test("forward --hook: the collector receives only what the hook passes", async () => {
    const input = join(dir, "in.pcap");
    await runTool(["editcap", "-F", "pcap", vectorPath("rpcap-passive-udp.pcap"), input]);
    const out = join(dir, "collected.pcap");
    const c = await startProbeUntil(["collect", "--report-seconds", "0", "--udpstr-listen", "127.0.0.1:0", "-w", out], /receiving udpstr on [^\s]+:(\d+)/, { procs, timeoutMs: 15_000 });
    const p = Number(c.match[1]);
    const r = await runProbe(["forward", "--udpstr", `127.0.0.1:${p}`, "-r", input, "--hook", dropBig]);
    expect(r.exitCode).toBe(0);
    await Bun.sleep(300);
    c.proc.kill("SIGINT");
    await c.proc.exited;
    const expected = (await runTool(["tshark", "-r", input, "-Y", "frame.len <= 100", "-T", "fields", "-e", "frame.len"])).trim();
    const got = (await runTool(["tshark", "-r", out, "-T", "fields", "-e", "frame.len"])).trim();
    expect(got).toBe(expected);
    expect(got.split("\n").length).toBeGreaterThan(5);
  });
});

describe("PCAP-over-IP as input", () => {
  test("probe capture -i tcp://HOST:PORT reads a stream (socat serving a file)", async () => {
    const file = vectorPath("rpcap-active.pcap");
    const p = freeTcpPort();
    const socat = Bun.spawn(["socat", "-u", `FILE:${file}`, `TCP-LISTEN:${p},reuseaddr,bind=127.0.0.1`], { stderr: "ignore" });
    procs.push(socat);
    await Bun.sleep(300);
    const out = join(dir, "from-tcp.pcap");
    const r = await runProbe(["capture", "-q", "-i", `TCP@127.0.0.1:${p}`, "-w", out]);
    expect(r.exitCode).toBe(0);
    const fields = (f: string) => runTool(["tshark", "-r", f, "-T", "fields", "-e", "frame.len", "-e", "frame.time_epoch"]);
    expect(await fields(out)).toBe(await fields(file));
  });

  test("pcap-over-ip --from A --from B merges two live streams in timestamp order", async () => {
    const flowA = await openLoopbackFlow();
    const flowB = await openLoopbackFlow();
    try {
      const pa = freeTcpPort();
      const pb = freeTcpPort();
      const pm = freeTcpPort();
      await Promise.all([
        startProbeUntil(["pcap-over-ip", "-i", "lo", "-f", `udp dst port ${flowA.port}`, "--listen", `127.0.0.1:${pa}`], /capturing on lo/, { procs, timeoutMs: 15_000 }),
        startProbeUntil(["pcap-over-ip", "-i", "lo", "-f", `udp dst port ${flowB.port}`, "--listen", `127.0.0.1:${pb}`], /capturing on lo/, { procs, timeoutMs: 15_000 }),
      ]);
      const m = await startProbeUntil(["pcap-over-ip", "--from", `tcp://127.0.0.1:${pa}`, "--from", `TCP@127.0.0.1:${pb}`, "--listen", `127.0.0.1:${pm}`], /merging 2 streams/, { procs, timeoutMs: 15_000 });
      const merged = await connectStreamClient(pm);
      await Bun.sleep(300);
      for (let i = 0; i < 10; i++) {
        await (i % 2 ? flowA : flowB).send([10 + i]);
        await Bun.sleep(5);
      }
      await waitFor(() => merged.packets.length === 10, 10_000, "merged packets");
      const lens = merged.packets.map((x) => x.len - 42);
      expect(lens).toEqual(Array.from({ length: 10 }, (_, i) => 10 + i));
      merged.close();
    } finally {
      flowA.close();
      flowB.close();
    }
  });
});
