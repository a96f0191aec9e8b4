// The one pipeline (issue 10): stages run once per batch before the fan-out, so a stateful hook
// behind one PCAP-over-IP consumer and two RPCAP clients counts each packet once and every
// consumer gets the same packets; several -r inputs merge in mergecap's order (ties included) with one pcapng
// IDB per input; `probe run FILE` equals the command line; --print-pipeline reads back.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileFilter } from "../../src/capture/libpcap/compile-filter.ts";
import { RpcapClient } from "../../src/protocols/rpcap/index.ts";
import { openLoopbackFlow } from "../support/loopback-traffic.ts";
import { connectStreamClient } from "../support/pcap-stream-client.ts";
import { runProbe, runTool, startProbeUntil, waitFor } from "../support/probe-binary.ts";
import { vectorPath } from "../support/fixtures.ts";
import { processesStoppedAfterEach } from "../support/process-cleanup.ts";
import { taggedPcap } from "../support/synthetic-pcap.ts";
import { freeTcpPort } from "../support/free-port.ts";

let dir: string;
let countingHook: string;
const procs = processesStoppedAfterEach();
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "probe-pipeline-"));
  countingHook = join(dir, "every-second.js");
  // Stateful: counts in ctx.state and drops every second packet it sees. Run twice per packet
  // (the bug this guards against), it would count double and hand consumers different packets.
  writeFileSync(countingHook, 'export default function (pkt, ctx) { ctx.state.n = (ctx.state.n ?? 0) + 1; if (ctx.state.n % 2 === 0) return "drop"; }\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Payload lengths (IPv4/UDP frame len - 42) of an RPCAP batch's records, appended to `into`. */
function collectLens(into: number[]) {
  return (b: { bytes: Uint8Array; count: number }) => {
    const v = new DataView(b.bytes.buffer, b.bytes.byteOffset);
    let o = 0;
    for (let i = 0; i < b.count; i++) {
      into.push(v.getUint32(o + 12, true) - 42);
      o += 16 + v.getUint32(o + 8, true);
    }
  };
}

describe("stages run once per batch, before the fan-out", () => {
  test("a stateful hook behind 1 PCAP-over-IP consumer and 2 RPCAP clients: same packets for all, counters = packets captured", async () => {
    const flow = await openLoopbackFlow();
    try {
      const poip = freeTcpPort();
      const rpcap = freeTcpPort();
      const s = await startProbeUntil(
        ["-i", "lo", "-f", `udp dst port ${flow.port}`, "--pcap-over-ip", `127.0.0.1:${poip}`, "--rpcap", `127.0.0.1:${rpcap}`, "--hook", countingHook],
        /Ctrl-C to stop/,
        { procs, timeoutMs: 15_000 },
      );
      const stream = await connectStreamClient(poip);
      const clients: RpcapClient[] = [];
      const lens: number[][] = [[], []];
      for (const into of lens) {
        const client = await RpcapClient.connect({ host: "127.0.0.1", port: rpcap });
        await client.authenticate();
        await client.open("lo");
        await client.startCapture({ filter: compileFilter(`udp dst port ${flow.port}`, 1, 65535), onBatch: collectLens(into) });
        clients.push(client);
      }
      await Bun.sleep(300);
      const sizes = Array.from({ length: 20 }, (_, i) => 10 + i);
      await flow.send(sizes, { gapMs: 2 });
      await waitFor(() => stream.packets.length >= 10 && lens[0]!.length >= 10 && lens[1]!.length >= 10, 5000, "every consumer");
      await Bun.sleep(300);
      const viaPoip = stream.packets.map((p) => p.len - 42);
      expect(viaPoip).toEqual(sizes.filter((_, i) => i % 2 === 0));
      expect(lens[0]).toEqual(viaPoip);
      expect(lens[1]).toEqual(viaPoip);
      for (const client of clients) client.close();
      stream.close();
      s.proc.kill("SIGTERM");
      await s.proc.exited;
      await Bun.sleep(50);
      // The hook saw each captured packet once: 20, not 60.
      expect(s.log()).toContain("20 packets captured");
      expect(s.log()).toMatch(/hook every-second\.js: 20 packets, 10 passed, 10 dropped/);
    } finally {
      flow.close();
    }
  });

  test("rpcapd: two clients on one interface share one capture whose hook runs once per packet", async () => {
    const flow = await openLoopbackFlow();
    try {
      const s = await startProbeUntil(["rpcapd", "-n", "-4", "-b", "127.0.0.1", "-p", "0", "--hook", countingHook], /rpcapd listening on 127\.0\.0\.1:(\d+)/, { procs, timeoutMs: 15_000 });
      const p = Number(s.match[1]);
      const lens: number[][] = [[], []];
      const clients: RpcapClient[] = [];
      for (const into of lens) {
        const client = await RpcapClient.connect({ host: "127.0.0.1", port: p });
        await client.authenticate();
        await client.open("lo");
        await client.startCapture({ filter: compileFilter(`udp dst port ${flow.port}`, 1, 65535), onBatch: collectLens(into) });
        clients.push(client);
      }
      await Bun.sleep(300);
      await flow.send(Array.from({ length: 10 }, (_, i) => 10 + i), { gapMs: 2 });
      await waitFor(() => lens[0]!.length >= 5 && lens[1]!.length >= 5, 5000, "both clients");
      await Bun.sleep(300);
      // The hook runs on the shared capture (all of lo), so which of the flow's packets it drops
      // depends on other traffic on lo; what matters: both clients got the very same ones.
      expect(lens[0]).toEqual(lens[1]!);
      for (const client of clients) client.close();
    } finally {
      flow.close();
    }
  });
});

describe("several inputs", () => {
  const a = vectorPath("rpcap-active.pcap");
  const fields = (file: string, ...names: string[]) => runTool(["tshark", "-r", file, "-T", "fields", ...names.flatMap((n) => ["-e", n])]);
  /** The records of a pcap file: everything after its 24-byte file header. */
  const records = (file: string) => readFileSync(file).subarray(24);

  // Three inputs that interleave and tie (same start, steps of 0, 100 or 250 µs, so a third of
  // the steps repeat a timestamp within an input and many land on another input's), one of them
  // nanoseconds with some sub-microsecond fractions; each large enough to span several read
  // batches, so ties also meet across batch edges. Each frame says which input and record it is.
  const RECORDS_PER_INPUT = 6000;
  let overlapping: { micro1: string; nano: string; nanoPcapng: string; micro2: string };
  beforeAll(async () => {
    let seed = 21;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const input = (name: string, precision: "micro" | "nano") => {
      const unit = precision === "nano" ? 1000 : 1;
      const limit = 1_000_000 * unit;
      let sec = 1_700_000_000;
      let frac = 0;
      const list = Array.from({ length: RECORDS_PER_INPUT }, (_, i) => {
        frac += [0, 100, 250][Math.floor(random() * 3)]! * unit;
        // One nanosecond record in ten is 1 ns past the microsecond: it interleaves, never ties.
        const offBy = precision === "nano" && random() < 0.1 ? 1 : 0;
        if (frac >= limit) {
          sec++;
          frac -= limit;
        }
        return { sec, frac: frac + offBy, tag: `${name}:${String(i).padStart(5, "0")}:padding-to-span-batches` };
      });
      const file = join(dir, `${name}.pcap`);
      writeFileSync(file, taggedPcap(list, precision));
      return file;
    };
    overlapping = { micro1: input("in-a", "micro"), nano: input("in-b", "nano"), micro2: input("in-c", "micro"), nanoPcapng: join(dir, "in-b.pcapng") };
    await runTool(["editcap", "-F", "pcapng", overlapping.nano, overlapping.nanoPcapng]);
  });

  test("the crafted inputs overlap and tie (else the comparisons below prove nothing)", async () => {
    const { micro1, nano, micro2 } = overlapping;
    const theirs = join(dir, "ties.pcapng");
    await runTool(["mergecap", "-F", "pcapng", "-w", theirs, micro1, nano, micro2]);
    const lines = (await fields(theirs, "frame.time_epoch", "data.data")).trim().split("\n").map((l) => l.split("\t"));
    const input = (hex: string) => Buffer.from(hex, "hex").toString().slice(0, 4);
    let crossTies = 0;
    let switches = 0;
    for (let i = 1; i < lines.length; i++) {
      const [t0, d0] = lines[i - 1]!;
      const [t1, d1] = lines[i]!;
      if (input(d0!) !== input(d1!)) {
        switches++;
        if (t0 === t1) crossTies++;
      }
    }
    expect(lines.length).toBe(3 * RECORDS_PER_INPUT);
    expect(switches).toBeGreaterThan(1000);
    expect(crossTies).toBeGreaterThan(500);
  });

  test("repeated -r, pcapng out: mergecap's order, ties included; one IDB per input and each packet's interface", async () => {
    const { micro1, nanoPcapng, micro2 } = overlapping;
    const ours = join(dir, "merged.pcapng");
    const theirs = join(dir, "mergecap.pcapng");
    const r = await runProbe(["capture", "-q", "--nano", "-r", micro1, "-r", nanoPcapng, "-r", micro2, "-F", "pcapng", "-w", ours]);
    expect(r.exitCode).toBe(0);
    await runTool(["mergecap", "-F", "pcapng", "-w", theirs, micro1, nanoPcapng, micro2]);
    const order = await fields(ours, "frame.time_epoch", "data.data");
    expect(order.trim().split("\n").length).toBe(3 * RECORDS_PER_INPUT);
    expect(order).toBe(await fields(theirs, "frame.time_epoch", "data.data"));
    // Interface ids and names: every record of input i on interface i.
    const ids = (await fields(ours, "frame.interface_id", "frame.interface_name")).trim().split("\n");
    const counts = new Map<string, number>();
    for (const line of ids) counts.set(line, (counts.get(line) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({
      "0\tin-a.pcap": RECORDS_PER_INPUT,
      "1\tin-b.pcapng": RECORDS_PER_INPUT,
      "2\tin-c.pcap": RECORDS_PER_INPUT,
    });
  });

  test("repeated -r, pcap out: records byte for byte those of mergecap (nanosecond and microsecond files)", async () => {
    const { micro1, nano, micro2 } = overlapping;
    const oursNano = join(dir, "merged-nano.pcap");
    const theirsNano = join(dir, "mergecap-nano.pcap");
    expect((await runProbe(["capture", "-q", "--nano", "-r", micro1, "-r", nano, "-r", micro2, "-w", oursNano])).exitCode).toBe(0);
    await runTool(["mergecap", "-F", "nsecpcap", "-w", theirsNano, micro1, nano, micro2]);
    expect(records(oursNano).byteLength).toBe(records(theirsNano).byteLength);
    expect(Buffer.compare(records(oursNano), records(theirsNano))).toBe(0);
    // Microsecond output: nanoseconds truncated on the way out, the order still decided in ns.
    const oursMicro = join(dir, "merged-micro.pcap");
    const theirsMicro = join(dir, "mergecap-micro.pcap");
    expect((await runProbe(["capture", "-q", "-r", nano, "-r", micro1, "-w", oursMicro])).exitCode).toBe(0);
    await runTool(["mergecap", "-F", "pcap", "-w", theirsMicro, nano, micro1]);
    expect(Buffer.compare(records(oursMicro), records(theirsMicro))).toBe(0);
  });

  test("-i (PCAP-over-IP streams) and -r mixed merge in mergecap's order, ties included, each input its own interface", async () => {
    const { micro1, nano, micro2 } = overlapping;
    const ports = [freeTcpPort(), freeTcpPort()];
    const files = [micro1, nano];
    ports.forEach((p, i) => {
      const socat = Bun.spawn(["socat", "-u", `FILE:${files[i]}`, `TCP-LISTEN:${p},reuseaddr,bind=127.0.0.1`], { stderr: "ignore" });
      procs.push(socat);
    });
    await Bun.sleep(300);
    const ours = join(dir, "mixed-live.pcapng");
    const theirs = join(dir, "mixed-mergecap.pcapng");
    const r = await runProbe(["capture", "-q", "--nano", "-i", `tcp://127.0.0.1:${ports[0]}`, "-r", micro2, "-i", `TCP@127.0.0.1:${ports[1]}`, "-F", "pcapng", "-w", ours]);
    expect(r.exitCode).toBe(0);
    await runTool(["mergecap", "-F", "pcapng", "-w", theirs, micro1, micro2, nano]);
    const order = await fields(ours, "frame.time_epoch", "data.data");
    expect(order.trim().split("\n").length).toBe(3 * RECORDS_PER_INPUT);
    expect(order).toBe(await fields(theirs, "frame.time_epoch", "data.data"));
    const names = new Set((await fields(ours, "frame.interface_id", "frame.interface_name")).trim().split("\n"));
    expect([...names].sort()).toEqual([`0\t127.0.0.1:${ports[0]}`, "1\tin-c.pcap", `2\t127.0.0.1:${ports[1]}`]);
  });

  test("-r inputs of different link types: pcap output refused with a clear line, pcapng accepted", async () => {
    const raw = join(dir, "raw.pcap");
    // The same packets as link type 101 (raw IP): editcap strips nothing, so use -T rawip on a copy.
    await runTool(["editcap", "-T", "rawip", a, raw]);
    const refused = await runProbe(["capture", "-r", a, "-r", raw, "-w", join(dir, "mixed.pcap")]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain("-F pcapng");
    expect(refused.stderr).not.toContain("    at ");
    const ok = await runProbe(["capture", "-r", a, "-r", raw, "-F", "pcapng", "-w", join(dir, "mixed.pcapng")]);
    expect(ok.exitCode).toBe(0);
    // Both inputs hold the same 61 packets: 61 Ethernet on interface 0, 61 raw IP on interface 1.
    const alone = (await runTool(["capinfos", "-c", "-M", a])).match(/Number of packets:\s+(\d+)/)?.[1];
    expect(alone).toBe("61");
    const linktypes = (await runTool(["capinfos", "-E", join(dir, "mixed.pcapng")])).split("\n").slice(1).map((l) => l.trim());
    expect(linktypes).toEqual(["File encapsulation:  Per packet", "Encapsulation in use by packets (# of pkts):", "Ethernet (61)", "Raw IP (61)", ""]);
    const perInterface = (await fields(join(dir, "mixed.pcapng"), "frame.interface_id", "frame.encap_type", "frame.interface_name")).trim().split("\n");
    const counts = new Map<string, number>();
    for (const line of perInterface) counts.set(line, (counts.get(line) ?? 0) + 1);
    // Wiretap encapsulation numbers: 1 Ethernet, 7 raw IP.
    expect(Object.fromEntries(counts)).toEqual({ "0\t1\trpcap-active.pcap": 61, "1\t7\traw.pcap": 61 });
  });
});

describe("probe run and --print-pipeline", () => {
  test("--print-pipeline read back by probe run gives the same spec, and runs like the command line", async () => {
    const direct = join(dir, "direct.pcapng");
    const viaFile = join(dir, "via-file.pcapng");
    const args = ["capture", "-r", vectorPath("rpcap-passive-udp.pcap"), "-F", "pcapng", "-c", "7", "--hook", countingHook];
    const printed = await runProbe([...args, "-w", viaFile, "--print-pipeline"]);
    expect(printed.exitCode).toBe(0);
    const specFile = join(dir, "p.yaml");
    writeFileSync(specFile, printed.stdout);
    const again = await runProbe(["run", specFile, "--print-pipeline"]);
    expect(again.stdout).toBe(printed.stdout);
    expect((await runProbe([...args, "-w", direct])).exitCode).toBe(0);
    const run = await runProbe(["run", specFile]);
    expect(run.exitCode).toBe(0);
    expect(run.stderr).toContain("7 packets captured");
    expect(readFileSync(viaFile).length).toBeGreaterThan(100);
    const packets = (f: string) => runTool(["tshark", "-r", f, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len"]);
    expect(await packets(viaFile)).toBe(await packets(direct));
  });

  test("JSON spec files run too", async () => {
    const out = join(dir, "json.pcap");
    const spec = join(dir, "p.json");
    writeFileSync(spec, JSON.stringify({ inputs: [{ kind: "file", path: vectorPath("rpcap-active.pcap") }], outputs: [{ kind: "file", path: out }], quiet: true }));
    const r = await runProbe(["run", spec]);
    expect(r.exitCode).toBe(0);
    expect((await runTool(["capinfos", "-c", out])).replace(/\s+/g, " ")).toMatch(/Number of packets: \d+/);
  });

  const malformed: [string, string, RegExp][] = [
    ["unknown output kind", "inputs:\n  - kind: file\n    path: a.pcap\noutputs:\n  - kind: carrier-pigeon\n", /outputs\[0\]\.kind \(line 5\)/],
    ["wrong type, nested", "inputs:\n  - kind: file\n    path: a.pcap\noutputs:\n  - kind: file\n    path: b.pcap\n    format: pcapx\n", /outputs\[0\]\.format \(line 7\)/],
    ["unknown key", "inputs:\n  - kind: file\n    path: a.pcap\n    colour: blue\noutputs:\n  - kind: file\n    path: b.pcap\n", /inputs\[0\].*colour|colour.*line 4/],
    ["no outputs", "inputs:\n  - kind: file\n    path: a.pcap\n", /outputs/],
    ["not YAML", "inputs: [\n  - kind: file\n", /not valid YAML/],
    ["not JSON", '{"inputs": [}', /not valid JSON/],
    ["a list, not a mapping", "- 1\n- 2\n", /a pipeline is a mapping/],
  ];
  for (const [what, text, message] of malformed) {
    test(`malformed spec file: ${what} is one clear line, exit 2`, async () => {
      const file = join(dir, `bad-${what.replace(/\W+/g, "-")}.${text.startsWith("{") ? "json" : "yaml"}`);
      writeFileSync(file, text);
      const r = await runProbe(["run", file]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toContain(file);
      expect(r.stderr).not.toContain("    at ");
    });
  }
});

describe("errors a user causes: one line naming the flag or address", () => {
  test("a port in use names the port", async () => {
    const holder = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await runProbe(["pcap-over-ip", "-i", "lo", "--listen", `127.0.0.1:${holder.port}`]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`127.0.0.1:${holder.port}`);
      expect(r.stderr).toContain("in use");
      expect(r.stderr).not.toContain("    at ");
    } finally {
      holder.stop(true);
    }
  });

  test("a missing -w names -w; an unreachable tcp:// input names the address", async () => {
    const w = await runProbe(["capture", "-r", vectorPath("rpcap-active.pcap")]);
    expect(w.exitCode).toBe(2);
    expect(w.stderr).toContain("-w");
    expect(w.stderr).not.toContain("writeTarget");
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const free = closed.port;
    closed.stop(true);
    const t = await runProbe(["capture", "-i", `tcp://127.0.0.1:${free}`, "-w", join(dir, "t.pcap")]);
    expect(t.exitCode).toBe(1);
    expect(t.stderr).toContain(`127.0.0.1:${free}`);
    expect(t.stderr).not.toContain("    at ");
  });
});
