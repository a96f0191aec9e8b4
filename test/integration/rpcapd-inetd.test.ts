// rpcapd's inetd mode and --interfaces, on the wire. inetd mode: socat (nofork, so the
// connection is the child's standard input and output, as inetd and systemd's Accept=yes hand
// it over) spawns `probe rpcapd -i -n`; probe's own client captures through it. --interfaces
// (libpcap#1301): FINDALLIF lists only the named interfaces and OPEN refuses the others.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { rewriteInetdFlag, parseRpcapdConfig } from "../../src/cli/commands/rpcapd.ts";
import { RpcapClient, RpcapServerError } from "../../src/protocols/rpcap/index.ts";
import { inetdPeerAddress, socketPeer } from "../../src/daemon/inetd-peer.ts";
import { openLoopbackFlow } from "../support/loopback-traffic.ts";
import { collectStderr, probeCommand, runProbe, runTool, spawnProbe, startProbeUntil, waitFor } from "../support/probe-binary.ts";
import { processesStoppedAfterEach } from "../support/process-cleanup.ts";
import { freeTcpPort } from "../support/free-port.ts";

let dir: string;
const procs = processesStoppedAfterEach();
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "probe-inetd-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** socat listening on loopback, handing one connection to `probe rpcapd ARGS` as stdin/stdout. */
async function inetd(args: string[]): Promise<{ proc: Subprocess; port: number; log: () => string }> {
  const port = freeTcpPort();
  const command = [...probeCommand(), "rpcapd", ...args].join(" ");
  const socat = collectStderr(Bun.spawn(["socat", `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr`, `EXEC:${command},nofork`], { stdout: "ignore", stderr: "pipe", stdin: "ignore" }));
  procs.push(socat.proc);
  // Poll with ss rather than a test connection: socat hands the first connection to rpcapd.
  await waitFor(async () => (await runTool(["ss", "-Hltn", `sport = :${port}`])).includes(String(port)), 10_000, "socat listening");
  return { proc: socat.proc, port, log: socat.log };
}

describe("rpcapd -i: libpcap's inetd mode beside ExtraHop's -i IFACE", () => {
  test("-i last or before another option is inetd; -i NAME preselects NAME; --inetd is explicit", () => {
    expect(rewriteInetdFlag(["-n", "-i"])).toEqual(["-n", "--inetd"]);
    expect(rewriteInetdFlag(["-i", "-n"])).toEqual(["--inetd", "-n"]);
    expect(rewriteInetdFlag(["-i", "eth0", "-n"])).toEqual(["-i", "eth0", "-n"]);
    const inetdConfig = parseRpcapdConfig(["-i", "-n"]);
    const extrahop = parseRpcapdConfig(["-i", "lo", "-n"]);
    const both = parseRpcapdConfig(["--inetd", "-i", "lo"]);
    if (inetdConfig === "help" || extrahop === "help" || both === "help") throw new Error("help");
    expect([inetdConfig.inetd, inetdConfig.preselectedInterface]).toEqual([true, undefined]);
    expect([extrahop.inetd, extrahop.preselectedInterface]).toEqual([false, "lo"]);
    expect([both.inetd, both.preselectedInterface]).toEqual([true, "lo"]);
  });

  test("socat nofork + rpcapd -i -n: probe capture -i rpcap:// captures through it, and rpcapd exits after CLOSE", async () => {
    const flow = await openLoopbackFlow();
    try {
      const { proc, port, log } = await inetd(["-i", "-n"]);
      const out = join(dir, "inetd.pcap");
      const capture = spawnProbe(["capture", "-i", `rpcap://127.0.0.1:${port}/lo`, "-c", "6", "-w", out, `udp dst port ${flow.port}`]);
      await waitFor(() => log().includes("capturing on lo"), 10_000, "capture started through inetd rpcapd");
      await flow.send([11, 22, 33, 44, 55, 66], { gapMs: 5 });
      expect(await capture.exited).toBe(0);
      const lens = await runTool(["tshark", "-r", out, "-T", "fields", "-e", "udp.length"]);
      expect(lens.trim().split("\n").map(Number)).toEqual([19, 30, 41, 52, 63, 74]);
      // The session closed, so the rpcapd child exits and socat (nofork) with it.
      await waitFor(() => proc.exitCode !== null, 10_000, "socat and rpcapd exit after the session");
      expect(log()).toContain("from 127.0.0.1 (inetd)");
    } finally {
      flow.close();
    }
  });

  test("a peer sending garbage gets the connection closed, one log line and no stack; rpcapd exits", async () => {
    const { proc, port, log } = await inetd(["--inetd", "-n"]);
    const closed = Promise.withResolvers<void>();
    let received = 0;
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: { data: (_s, chunk) => void (received += chunk.byteLength), close: () => closed.resolve() },
    });
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await closed.promise;
    await waitFor(() => proc.exitCode !== null, 10_000, "rpcapd exit after garbage");
    const text = log();
    expect(text).not.toMatch(/\n\s+at /);
    expect(text).not.toContain("node_modules");
    expect(text).toMatch(/session 1 127\.0\.0\.1 closed: .*/);
    expect(received).toBeGreaterThan(0); // an RPCAP ERROR reply came before the close
  });

  test("the peer falls back to systemd's REMOTE_ADDR when standard input is not a socket", () => {
    // bun test's standard input is a pipe or a terminal, never a TCP socket.
    expect(socketPeer(0)).toBeUndefined();
    expect(inetdPeerAddress({ REMOTE_ADDR: "::ffff:10.1.2.3" })).toBe("10.1.2.3");
    expect(inetdPeerAddress({ REMOTE_ADDR: "fe80::1" })).toBe("fe80::1");
    expect(inetdPeerAddress({})).toBeUndefined();
  });

  test("-i with standard input not a connection: one clear line, exit status 2", async () => {
    const result = await runProbe(["rpcapd", "-n", "-i"]);
    expect(result.exitCode).toBe(2);
    const [first, ...rest] = result.stderr.trim().split("\n");
    expect(first).toContain("standard input is not a TCP connection");
    expect(rest.join("\n")).not.toContain("warn"); // refused before any other start-up work
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("rpcapd --interfaces (libpcap#1301)", () => {
  async function daemon(args: string[]) {
    // -p 0: the kernel picks the port, read back from the "listening on" line.
    const rpcapd = await startProbeUntil(["rpcapd", "-4", "-b", "127.0.0.1", "-p", "0", "-n", ...args], /rpcapd listening on 127\.0\.0\.1:(\d+)/, { procs });
    return Number(rpcapd.match[1]);
  }

  test("FINDALLIF lists only the named interfaces; OPEN of another is refused; the named one opens", async () => {
    const all = await daemon([]);
    const open = await RpcapClient.connect({ host: "127.0.0.1", port: all });
    await open.authenticate();
    const everything = (await open.findAllInterfaces()).map((i) => i.name);
    open.close();
    const other = everything.find((name) => name !== "lo");
    expect(other).toBeDefined(); // libpcap lists at least "any" beside lo

    const port = await daemon(["--interfaces", "lo"]);
    const client = await RpcapClient.connect({ host: "127.0.0.1", port });
    try {
      await client.authenticate();
      expect((await client.findAllInterfaces()).map((i) => i.name)).toEqual(["lo"]);
      const refused = await client.open(other!).then(() => null, (error: Error) => error);
      expect(refused).toBeInstanceOf(RpcapServerError);
      expect(refused!.message).toContain("not a local capture interface");
      expect((await client.open("lo")).linktype).toBe(1);
    } finally {
      client.close();
    }
  });

  test("--interfaces with nothing in it, or -i outside the list: one line, exit status 2", async () => {
    const empty = await runProbe(["rpcapd", "-n", "--interfaces", ","]);
    expect(empty.exitCode).toBe(2);
    expect(empty.stderr).toContain("--interfaces: give at least one interface name");
    const outside = await runProbe(["rpcapd", "-n", "-i", "lo", "--interfaces", "eth0"]);
    expect(outside.exitCode).toBe(2);
    expect(outside.stderr).toContain("-i lo is not among --interfaces eth0");
  });
});
