// `probe capture` end to end, run as operators run it (the compiled dist/probe), with
// tshark, capinfos and tcpdump as judges of the files it writes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync, readFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLoopbackFlow } from "../support/loopback-traffic.ts";
import { runProbe, runTool, spawnProbe, spawnProbeLoggingToFile, waitFor, probeCommand } from "../support/probe-binary.ts";
import { VECTORS_DIR } from "../support/fixtures.ts";

const vectors = `${VECTORS_DIR}/`;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "probe-capture-"));
  chmodSync(dir, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** frame.len and the UDP payload of every frame, as tshark reads the file. */
async function tsharkFrames(file: string): Promise<{ len: number; payload: string }[]> {
  const out = await runTool(["tshark", "-r", file, "-T", "fields", "-e", "frame.len", "-e", "udp.payload"]);
  return out.trim().split("\n").filter(Boolean).map((line) => {
    const [len, payload = ""] = line.split("\t");
    return { len: Number(len), payload: payload.replaceAll(":", "") };
  });
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("live capture to a file", () => {
  // The ring engine's native code as built into the executable (the default), compiled by
  // TinyCC at start, and its JavaScript fallback.
  const WALKERS: { name: string; env: Record<string, string> }[] = [
    { name: "native", env: {} },
    { name: "native, TinyCC", env: { PROBE_RING_NATIVE: "tinycc" } },
    { name: "js", env: { PROBE_RING_WALKER: "js" } },
  ];
  for (const walker of WALKERS) test(`-c N on lo (${walker.name} ring walker) writes exactly the packets sent; tshark and capinfos agree`, async () => {
    const flow = await openLoopbackFlow();
    try {
      const out = join(dir, `live-${walker.name}.pcap`);
      const { proc, stderr } = spawnProbeLoggingToFile(["capture", "-i", "lo", "-c", "25", "-w", out, `udp dst port ${flow.port}`], join(dir, `live-${walker.name}.stderr`), {
        env: walker.env,
      });
      // The capture open before traffic (a fixed sleep was too short under load).
      await waitFor(() => stderr().includes("listening on lo") || proc.exitCode !== null, 10_000, "the capture to open");
      // The library the build embedded is loaded from a memfd of that name (ring-natives.ts);
      // TinyCC's code and the JavaScript walker map no such file.
      const maps = await Bun.file(`/proc/${proc.pid}/maps`).text();
      expect(maps.includes("/memfd:probe-ring-native.so")).toBe(walker.name === "native");
      const sizes = Array.from({ length: 30 }, (_, i) => 1 + i * 40);
      await flow.send(sizes, { gapMs: 2 });
      expect(await proc.exited).toBe(0);
      expect(stderr()).toContain("25 packets captured");
      // The compiled binary can compile the native walker (it says so when it cannot).
      expect(stderr()).not.toContain("native ring walker unavailable");
      const frames = await tsharkFrames(out);
      expect(frames.length).toBe(25);
      frames.forEach((f, i) => {
        expect(f.len).toBe(42 + sizes[i]!);
        expect(f.payload).toBe(hex(flow.sent[i]!));
      });
      const info = await runTool(["capinfos", "-M", "-c", "-t", "-E", out]);
      expect(info).toMatch(/Number of packets:\s+25/);
      expect(info).toMatch(/File type:\s+pcap\n/);
      expect(info).toMatch(/File encapsulation:\s+ether\n/);
    } finally {
      flow.close();
    }
  });

  test("Ctrl-C completes the file and prints the summary", async () => {
    const flow = await openLoopbackFlow();
    try {
      const out = join(dir, "sigint.pcapng");
      const logged = spawnProbeLoggingToFile(["capture", "-i", "lo", "-F", "pcapng", "-w", out, "-f", `udp dst port ${flow.port}`], join(dir, "sigint.stderr"));
      const proc = logged.proc;
      await waitFor(() => logged.stderr().includes("listening on lo") || proc.exitCode !== null, 10_000, "the capture to open");
      await flow.send(Array(40).fill(200), { gapMs: 1 });
      // All 40 written (the file is written batch by batch) before Ctrl-C.
      await waitFor(async () => (await tsharkFrames(out).catch(() => [])).length === 40, 10_000, "40 packets written");
      proc.kill("SIGINT");
      expect(await proc.exited).toBe(0);
      const stderr = logged.stderr();
      expect(stderr).toContain("40 packets captured");
      expect(stderr).toMatch(/\d+ packets received by filter/);
      expect(stderr).toContain("0 packets dropped by kernel");
      const info = await runTool(["capinfos", "-M", "-c", "-t", out]);
      expect(info).toMatch(/Number of packets:\s+40/);
      expect(info).toMatch(/pcapng/);
      expect((await tsharkFrames(out)).every((f) => f.len === 242)).toBe(true);
    } finally {
      flow.close();
    }
  });

  test("-w - streams a pcap that tshark reads from a pipe", async () => {
    const flow = await openLoopbackFlow();
    try {
      // A shell pipe, exactly as an operator types it.
      const probe = probeCommand().join(" ");
      const probeStderr = join(dir, "pipe.stderr");
      writeFileSync(probeStderr, "");
      const pipeline = Bun.spawn(
        ["sh", "-c", `${probe} capture -i lo -c 5 -w - 'udp dst port ${flow.port}' 2>${probeStderr} | tshark -r - -T fields -e udp.length`],
        { stdout: "pipe", stderr: "pipe" },
      );
      // The capture open before traffic (a fixed sleep was too short on a loaded machine).
      await waitFor(() => readFileSync(probeStderr, "utf8").includes("listening on lo") || pipeline.exitCode !== null, 10_000, "the capture to open");
      await flow.send([10, 20, 30, 40, 50], { gapMs: 2 });
      const out = await new Response(pipeline.stdout).text();
      expect(await pipeline.exited).toBe(0);
      expect(out.trim().split("\n").map(Number)).toEqual([18, 28, 38, 48, 58]);
    } finally {
      flow.close();
    }
  });
});

describe("files", () => {
  test("-r a vector -w out.pcap: tcpdump reads the same packets as from the original", async () => {
    const input = `${vectors}rpcap-passive-tcp.pcap`;
    const out = join(dir, "copy.pcap");
    const result = await runProbe(["capture", "-q", "-r", input, "-w", out]);
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    const original = await runTool(["tcpdump", "-r", input, "-nn", "-tt", "-x"]);
    const copy = await runTool(["tcpdump", "-r", out, "-nn", "-tt", "-x"]);
    expect(copy).toBe(original);
  });

  test("-r with a filter keeps what tcpdump's filter keeps", async () => {
    const input = `${vectors}rpcap-updatefilter.pcap`;
    const out = join(dir, "filtered.pcap");
    const result = await runProbe(["capture", "-q", "-r", input, "-w", out, "udp dst port 9997"]);
    expect(result.exitCode).toBe(0);
    const expected = await runTool(["tcpdump", "-r", input, "-nn", "-tt", "udp dst port 9997"]);
    const got = await runTool(["tcpdump", "-r", out, "-nn", "-tt"]);
    expect(got).toBe(expected);
    expect(got.trim().split("\n").length).toBe(8);
  });

  test("pcapng written by editcap is read; pcapng we write keeps every packet", async () => {
    const input = `${vectors}rpcap-active.pcap`;
    const ng = join(dir, "editcap.pcapng");
    await runTool(["editcap", "-F", "pcapng", input, ng]);
    const out = join(dir, "roundtrip.pcapng");
    const result = await runProbe(["capture", "-q", "-r", ng, "-F", "pcapng", "-w", out]);
    expect(result.exitCode).toBe(0);
    expect(await tsharkFrames(out)).toEqual(await tsharkFrames(input));
    const info = await runTool(["capinfos", "-M", "-t", out]);
    expect(info).toMatch(/pcapng/);
  });

  test("--nano writes a nanosecond pcap that keeps the timestamps", async () => {
    const input = `${vectors}rpcap-setsampling.pcap`;
    const out = join(dir, "nano.pcap");
    expect((await runProbe(["capture", "-q", "--nano", "-r", input, "-w", out])).exitCode).toBe(0);
    const bytes = readFileSync(out);
    expect(bytes.readUInt32LE(0)).toBe(0xa1b23c4d);
    const times = (f: string) => runTool(["tshark", "-r", f, "-T", "fields", "-e", "frame.time_epoch"]);
    expect(await times(out)).toBe(await times(input));
  });
});

describe("file readers and pacing", () => {
  test("--reader libpcap and the default reader write identical files", async () => {
    const input = join(dir, "mixed.pcapng");
    await runTool(["editcap", "-F", "pcapng", `${vectors}udpstr-extrahop.pcap`, input]);
    const ours = join(dir, "ours.pcap");
    const theirs = join(dir, "theirs.pcap");
    expect((await runProbe(["capture", "-q", "-r", input, "-w", ours, "udp"])).exitCode).toBe(0);
    expect((await runProbe(["capture", "-q", "--reader", "libpcap", "-r", input, "-w", theirs, "udp"])).exitCode).toBe(0);
    const a = readFileSync(ours);
    const b = readFileSync(theirs);
    expect(a.length).toBeGreaterThan(100_000);
    expect(a.equals(b)).toBe(true);
  });

  test("--realtime replays at the pace of the timestamps", async () => {
    // rpcap-updatefilter.pcap spans about 1.3 s; as fast as possible it takes a few ms.
    const input = `${vectors}rpcap-updatefilter.pcap`;
    const times = (await runTool(["tshark", "-r", input, "-T", "fields", "-e", "frame.time_relative"])).trim().split("\n");
    const spanSeconds = Number(times[times.length - 1]);
    expect(spanSeconds).toBeGreaterThan(1);
    const started = performance.now();
    const r = await runProbe(["capture", "-q", "--realtime", "-r", input, "-w", join(dir, "paced.pcap")]);
    const elapsed = (performance.now() - started) / 1000;
    expect(r.exitCode).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(spanSeconds * 0.9);
  });
});

describe("errors an operator can act on", () => {
  test("no such interface: exit 1 and the interface named", async () => {
    const r = await runProbe(["capture", "-i", "nosuch0", "-w", join(dir, "x.pcap")]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("nosuch0: no such interface");
  });

  test("bad filter: exit 1 with libpcap's message and the expression", async () => {
    const r = await runProbe(["capture", "-i", "lo", "-w", join(dir, "x.pcap"), "-f", "udp prot 53"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("'udp prot 53'");
    expect(r.stderr).toContain("syntax error");
  });

  // The ring engine needs libpcap only to compile filter expressions; the libpcap engine always.
  for (const [engine, filter] of [
    ["libpcap", []],
    ["ring", ["udp"]],
  ] as const) {
    test(`missing libpcap (${engine} engine${filter.length ? ", a filter" : ""}): exit 1 naming the Debian package`, async () => {
      const r = await runProbe(["capture", "--capture-engine", engine, "-i", "lo", "-w", join(dir, "x.pcap"), ...filter], {
        env: { PROBE_LIBPCAP: "/nonexistent/libpcap.so" },
        timeoutMs: 10_000,
      });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain("libpcap0.8");
      expect(r.stderr).toContain("/nonexistent/libpcap.so");
    });
  }

  test("no permission: exit 1 saying how to fix it", async () => {
    // An unprivileged user (nobody) without capabilities.
    const r = await runProbe(["capture", "-i", "lo", "-w", "-"], {
      prefix: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"],
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("permission");
    expect(r.stderr).toContain("setcap cap_net_raw,cap_net_admin=eip");
  });

  test("corrupt file: exit 1 with the offset and the reason", async () => {
    const original = readFileSync(`${vectors}rpcap-auth-null.pcap`);
    const corrupt = Buffer.from(original);
    corrupt.writeUInt32LE(0x7fffffff, 24 + 8); // first record's caplen
    const path = join(dir, "corrupt.pcap");
    writeFileSync(path, corrupt);
    const r = await runProbe(["capture", "-r", path, "-w", join(dir, "y.pcap")]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("corrupt capture file at byte 32");
    const truncated = join(dir, "truncated.pcap");
    writeFileSync(truncated, original.subarray(0, original.length - 7));
    const t = await runProbe(["capture", "-r", truncated, "-w", join(dir, "z.pcap")]);
    expect(t.exitCode).toBe(1);
    expect(t.stderr).toContain("truncated");
  });

  test("unreadable file and bad flags", async () => {
    const r = await runProbe(["capture", "-r", join(dir, "nope.pcap"), "-w", join(dir, "z.pcap")]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("no such file");
    const u = await runProbe(["capture", "-i", "lo"]);
    expect(u.exitCode).toBe(2);
    expect(u.stderr).toContain("-w");
    // -i and -r mix (issue 10): an input that cannot start ends the run, naming it.
    const both = await runProbe(["capture", "-i", "lo", "-r", join(dir, "x.pcap"), "-w", "-"]);
    expect(both.exitCode).toBe(1);
    expect(both.stderr).toContain("x.pcap");
    const unknown = await runProbe(["capture", "--frobnicate"]);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain("frobnicate");
  });
});

describe("help, version, list", () => {
  test("--help and --version", async () => {
    const help = await runProbe(["--help"]);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain("probe capture");
    const version = await runProbe(["--version"]);
    expect(version.stdout).toMatch(/^probe \d+\.\d+\.\d+\nlibpcap version 1\./);
    const captureHelp = await runProbe(["capture", "--help"]);
    expect(captureHelp.stdout).toContain("-w, --write");
  });

  test("list shows lo numbered with flags and addresses; --json parses", async () => {
    const text = await runProbe(["list"]);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/^\d+\.lo \[Up, Running, Loopback\]\n\s+inet 127\.0\.0\.1 netmask 255\.0\.0\.0/m);
    const json = JSON.parse((await runProbe(["list", "--json"])).stdout);
    const lo = json.find((d: { name: string }) => d.name === "lo");
    expect(lo.addresses[0]).toEqual({ family: "inet", addr: "127.0.0.1", netmask: "255.0.0.0" });
  });
});

test("the suite runs the compiled binary unless told otherwise", () => {
  expect(probeCommand()[0]!.endsWith(process.env.PROBE_TEST_SOURCE ? "bun" : "dist/probe")).toBe(true);
});
