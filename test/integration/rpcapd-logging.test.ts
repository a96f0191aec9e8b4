// `probe rpcapd` logs as operators read them (issues 9 and 15), judged on a real run's
// output: peer text cannot forge a line, repeated lines are rate limited, JSON lines parse
// one by one, levels filter, --log-file and syslog (a Unix datagram socket of the test's
// own, bound by python3) receive the lines, -d logs to syslog and writes --pid-file, and a
// STARTCAP aimed at a closed port is one line naming the address, no stack or source.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  encodeOpenRequestPayload,
  encodeStartCapRequestPayload,
  RpcapClient,
  RpcapMessageType as T,
  RpcapServerError,
  StartCapFlag,
} from "../../src/protocols/rpcap/index.ts";
import { probeCommand, spawnProbe, spawnProbeLoggingToFile, waitFor } from "../support/probe-binary.ts";
import { processesStoppedAfterEach } from "../support/process-cleanup.ts";

// Each test starts a probe process; on a loaded 2-core machine that alone can take seconds.
setDefaultTimeout(30_000);

let dir: string;
const procs = processesStoppedAfterEach();
let daemons = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "probe-rpcapd-log-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A port that was free a moment ago, for runs whose log does not say where they listen. */
function releasedPort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

/**
 * rpcapd on 127.0.0.1, port 0; its port read from the "listening" log line (text or JSON).
 * With `quietPort` it listens on a released port instead (its log may not print the line).
 */
async function daemon(args: string[], quietPort?: number) {
  const { proc, stderr } = spawnProbeLoggingToFile(["rpcapd", "-4", "-b", "127.0.0.1", "-p", String(quietPort ?? 0), "-n", ...args], join(dir, `stderr-${++daemons}`));
  procs.push(proc);
  let port = quietPort ?? 0;
  if (quietPort === undefined) {
    await waitFor(() => /listening on 127\.0\.0\.1:\d+/.test(stderr()) || proc.exitCode !== null, 10_000, "rpcapd start");
    port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(stderr())?.[1]);
  } else {
    await waitFor(async () => {
      try {
        (await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })).end();
        return true;
      } catch {
        return proc.exitCode !== null;
      }
    }, 10_000, "rpcapd start");
  }
  return {
    proc,
    port,
    stderr,
    /** SIGTERM, then the whole standard error once the process has gone. */
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
      return stderr();
    },
  };
}

async function session(port: number) {
  const client = await RpcapClient.connect({ host: "127.0.0.1", port });
  await client.authenticate();
  return client;
}

/** A Unix datagram socket bound by python3 that prints each datagram as one JSON string per line. */
async function syslogCollector(path: string) {
  const proc = Bun.spawn(
    [
      "/usr/bin/python3",
      "-u",
      "-c",
      "import socket,sys,json\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint('ready',flush=True)\nwhile True:\n  d=s.recv(65536)\n  print(json.dumps(d.decode('utf-8','replace')),flush=True)",
      path,
    ],
    { stdout: "pipe", stderr: "ignore", stdin: "ignore" },
  );
  procs.push(proc);
  let out = "";
  void (async () => {
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) out += new TextDecoder().decode(chunk);
  })();
  await waitFor(() => out.startsWith("ready"), 5000, "python3 binding the syslog socket");
  return {
    datagrams: (): string[] =>
      out
        .split("\n")
        .slice(1)
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as string),
  };
}

const TEXT_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z probe-rpcapd (error|warn|info|debug): /;
const FORGED = "lo\n2026-12-01T00:00:00.000Z probe-rpcapd info: session 1 127.0.0.1: authenticated as admin";

describe("peer text in the log (issue 9)", () => {
  test("an OPEN whose name holds a newline and a forged line stays one quoted, escaped line", async () => {
    const d = await daemon([]);
    const client = await session(d.port);
    await expect(client.request(T.OPEN_REQ, encodeOpenRequestPayload(FORGED))).rejects.toThrow(RpcapServerError);
    client.close();
    const stderr = await d.stop();
    const lines = stderr.trimEnd().split("\n");
    for (const line of lines) expect(line).toMatch(TEXT_LINE);
    expect(lines.filter((l) => l.startsWith("2026-12-01T00:00:00.000Z"))).toHaveLength(0);
    expect(lines.some((l) => l.includes('refused OPEN of "lo\\n2026-12-01T00:00:00.000Z probe-rpcapd info:'))).toBe(true);
  });

  test("repeated lines are rate limited: 200 refused OPENs print at most 20 lines and a count", async () => {
    const d = await daemon([]);
    const client = await session(d.port);
    for (let i = 0; i < 200; i++) {
      await expect(client.request(T.OPEN_REQ, encodeOpenRequestPayload(`nosuch${i}`))).rejects.toThrow(RpcapServerError);
    }
    client.close();
    const stderr = await d.stop();
    const refused = stderr.split("\n").filter((l) => l.includes("refused OPEN") && !l.includes("suppressed"));
    expect(refused.length).toBeLessThanOrEqual(20);
    expect(stderr).toMatch(/suppressed 180 similar lines in \d+ ms, like: session \d+: refused OPEN of "nosuch\d+"/);
  });
});

describe("a STARTCAP aimed at a closed port (issue 9)", () => {
  test("one line naming the address, no stack trace or program source", async () => {
    const d = await daemon([]);
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const closedPort = closed.port;
    closed.stop(true);
    const client = await session(d.port);
    await client.open("lo");
    const payload = encodeStartCapRequestPayload({ snaplen: 128, readTimeoutMs: 100, flags: StartCapFlag.SERVEROPEN, portdata: closedPort, program: [] });
    for (let i = 0; i < 3; i++) {
      await client.request(T.STARTCAP_REQ, payload).catch(() => {});
      await waitFor(() => d.stderr().split(`127.0.0.1:${closedPort}`).length - 1 > i, 5000, "the refusal logged");
      await client.request(T.ENDCAP_REQ).catch(() => {});
    }
    client.close();
    const stderr = await d.stop();
    const lines = stderr.trimEnd().split("\n");
    for (const line of lines) expect(line).toMatch(TEXT_LINE);
    expect(stderr).not.toMatch(/^\s+at /m);
    expect(lines.filter((l) => l.includes(`cannot connect to the client's data port 127.0.0.1:${closedPort}: ECONNREFUSED`))).toHaveLength(3);
  });
});

describe("--log-format json and --log-level (issue 15)", () => {
  test("every line of a real run's standard error parses as JSON with time, level, name, message", async () => {
    const d = await daemon(["--log-format", "json", "--log-level", "debug"]);
    const client = await session(d.port);
    await client.open("lo").catch(() => {});
    await client.request(T.OPEN_REQ, encodeOpenRequestPayload(FORGED)).catch(() => {});
    client.close();
    const stderr = await d.stop();
    const lines = stderr.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(4);
    const records = lines.map((line) => JSON.parse(line) as { time: string; level: string; name: string; message: string });
    for (const r of records) {
      expect(Number.isNaN(Date.parse(r.time))).toBe(false);
      expect(["error", "warn", "info", "debug"]).toContain(r.level);
      expect(r.name).toBe("probe-rpcapd");
    }
    expect(records.some((r) => r.message.includes("refused OPEN of \"lo\\n2026"))).toBe(true);
  });

  test("--log-level warn leaves info lines out", async () => {
    const d = await daemon(["--log-level", "warn"], releasedPort());
    const client = await session(d.port);
    await client.request(T.OPEN_REQ, encodeOpenRequestPayload("nosuch")).catch(() => {});
    client.close();
    await waitFor(() => d.stderr().includes("refused OPEN"), 5000, "the warning");
    const stderr = await d.stop();
    expect(stderr).not.toContain(" info: ");
    expect(stderr).toContain(" warn: ");
  });

  test("a bad --log-level is a usage error naming the setting", async () => {
    const proc = Bun.spawn([...probeCommand(), "rpcapd", "--log-level", "loud"], { stdout: "ignore", stderr: "pipe" });
    const stderr = await new Response(proc.stderr).text();
    expect(await proc.exited).toBe(2);
    expect(stderr).toContain("--log-level wants error, warn, info or debug, not 'loud'");
    expect(stderr).not.toMatch(/^\s+at /m);
  });
});

describe("log destinations (issues 9 and 15)", () => {
  test("--log-file: lines go to the file, none to standard error", async () => {
    const file = join(dir, "rpcapd.log");
    const proc = spawnProbe(["rpcapd", "-4", "-b", "127.0.0.1", "-p", "0", "-n", "--log-file", file]);
    procs.push(proc);
    await waitFor(() => existsSync(file) && readFileSync(file, "utf8").includes("listening"), 10_000, "the log file");
    proc.kill("SIGTERM");
    await proc.exited;
    expect(await new Response(proc.stderr).text()).toBe("");
    for (const line of readFileSync(file, "utf8").trimEnd().split("\n")) expect(line).toMatch(TEXT_LINE);
  });

  test("--syslog: RFC 3164 datagrams, facility daemon, to the configured socket", async () => {
    const socketPath = join(dir, "log-a");
    const collector = await syslogCollector(socketPath);
    const proc = spawnProbe(["rpcapd", "-4", "-b", "127.0.0.1", "-p", "0", "-n", "--syslog", "--syslog-socket", socketPath]);
    procs.push(proc);
    await waitFor(() => collector.datagrams().some((d) => d.includes("listening")), 10_000, "a syslog datagram");
    const listening = collector.datagrams().find((d) => d.includes("listening"))!;
    // <30> = facility daemon (3) * 8 + severity info (6).
    expect(listening).toMatch(new RegExp(`^<30>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d probe-rpcapd\\[${proc.pid}\\]: rpcapd listening on 127\\.0\\.0\\.1:\\d+$`));
  });

  test("-d: the detached daemon logs to syslog and writes --pid-file; SIGTERM removes it", async () => {
    const socketPath = join(dir, "log-b");
    const pidFile = join(dir, "rpcapd.pid");
    const collector = await syslogCollector(socketPath);
    const parent = Bun.spawn([...probeCommand(), "rpcapd", "-d", "-4", "-b", "127.0.0.1", "-p", "0", "-n", "--syslog-socket", socketPath, "--pid-file", pidFile], {
      stdout: "ignore",
      stderr: "pipe",
    });
    expect(await parent.exited).toBe(0);
    await waitFor(() => existsSync(pidFile), 10_000, "the pid file");
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    try {
      await waitFor(() => collector.datagrams().some((d) => d.includes(`probe-rpcapd[${pid}]: rpcapd listening`)), 10_000, "the daemon's syslog line");
    } finally {
      process.kill(pid, "SIGTERM");
    }
    await waitFor(() => !existsSync(pidFile), 10_000, "the pid file removed at exit");
  });

  test("-d with no syslog socket: one line naming it, exit 1", async () => {
    const proc = Bun.spawn([...probeCommand(), "rpcapd", "-d", "-n", "--syslog-socket", join(dir, "nothing-here")], { stdout: "ignore", stderr: "pipe" });
    const stderr = await new Response(proc.stderr).text();
    expect(await proc.exited).toBe(1);
    expect(stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(stderr).toContain(join(dir, "nothing-here"));
  });
});

describe("the serve mode takes the same log flags (issue 15)", () => {
  test("--log-format json: every line of its standard error parses, the banner included", async () => {
    const { proc, stderr } = spawnProbeLoggingToFile(["-i", "lo", "--pcap-over-ip", "127.0.0.1:0", "--rpcap", "127.0.0.1:0", "--log-format", "json"], join(dir, "serve.stderr"));
    procs.push(proc);
    await waitFor(() => stderr().includes("Ctrl-C to stop") || proc.exitCode !== null, 10_000, "the serve mode's banner");
    proc.kill("SIGTERM");
    await proc.exited;
    const records = stderr().trimEnd().split("\n").map((line) => JSON.parse(line) as { level: string; name: string; message: string });
    expect(records.some((r) => r.message.startsWith("probe is serving lo"))).toBe(true);
    expect(records.every((r) => r.name === "probe")).toBe(true);
  });
});

describe("start-up failures are one line (issue 9)", () => {
  test("one line naming the address, exit 1, no stack trace", async () => {
    const taken = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const proc = Bun.spawn([...probeCommand(), "rpcapd", "-n", "-4", "-b", "127.0.0.1", "-p", String(taken.port)], { stdout: "ignore", stderr: "pipe" });
      const stderr = await new Response(proc.stderr).text();
      expect(await proc.exited).toBe(1);
      const last = stderr.trimEnd().split("\n").at(-1)!;
      expect(last).toBe(`probe: rpcapd cannot listen on 127.0.0.1:${taken.port}: the port is in use (EADDRINUSE)`);
      expect(stderr).not.toMatch(/^\s+at /m);
    } finally {
      taken.stop(true);
    }
  });

  test("-S with a missing key: one line naming the flag and file", async () => {
    const proc = Bun.spawn([...probeCommand(), "rpcapd", "-n", "-S", "-4", "-b", "127.0.0.1", "-p", "0", "-K", join(dir, "no-key.pem"), "-X", join(dir, "no-cert.pem")], {
      stdout: "ignore",
      stderr: "pipe",
    });
    const stderr = await new Response(proc.stderr).text();
    expect(await proc.exited).toBe(1);
    expect(stderr.trimEnd().split("\n").at(-1)).toBe(`probe: -K ${join(dir, "no-key.pem")}: no such file (TLS needs a key and a certificate)`);
    expect(stderr).not.toMatch(/^\s+at /m);
  });
});
