// Lockout red team (npm run bench -- robustness; issue 21, "No lockouts"). Two attacks, each
// bounded in count and time, judged by whether a real peer still gets in and how long it waits:
//  1. `probe collect --rpcap-active-listen`: SILENT_PEERS connections from as many loopback
//     addresses that never answer AUTH, then a real `probe rpcapd --active` dials in: seconds
//     until the collector reports it capturing (before the fix: refused, "64 probes already").
//  2. `probe rpcapd --users FILE`: an attacker from ATTACK_ADDRESSES loopback addresses keeps
//     ATTACK_CONNECTIONS connections open, each sending a wrong-password AUTH and never reading,
//     and redials every connection the daemon closes; meanwhile a real user logs in REAL_LOGINS
//     times from the address it used before the attack and REAL_LOGINS times from addresses it
//     never used: latency and success of each kind, and the daemon's peak RSS.
// Also runnable alone: `bun run scripts/bench/robustness-lockouts.ts`.
import { connect as netConnect, type Socket } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashPasswordLine } from "../../src/daemon/auth/index.ts";
import { encodeAuthRequest, encodeMessage, RpcapAuthType, RpcapFramer, RpcapMessageType } from "../../src/protocols/rpcap/index.ts";
import { freePort, probeBinary, watchPeakRss } from "./support/measure.ts";

/** Connections to the collector that never answer AUTH (the issue's 80), one per address. */
const SILENT_PEERS = Number(process.env.BENCH_SILENT_PEERS ?? 80);
/** Longest wait for the real probe to be accepted by the collector. */
const PROBE_WAIT_MS = 20_000;
/** Attacker addresses and open connections against rpcapd (above its 64 slots). */
const ATTACK_ADDRESSES = 100;
const ATTACK_CONNECTIONS = Number(process.env.BENCH_ATTACK_CONNECTIONS ?? 200);
/** How long the redialling attack runs, and the real logins measured during it. */
const ATTACK_MS = 20_000;
const REAL_LOGINS = 8;
/**
 * argon2id memory of the real user's hash, in KiB (BENCH_ARGON2_MEMORY_KIB); default Bun's
 * (64 MiB, what `probe passwd` writes). Each hashing thread holds this much while it checks, so
 * the daemon's peak RSS is about its base plus DEFAULT_HASH_WORKERS times this.
 */
const ARGON2_MEMORY_KIB = process.env.BENCH_ARGON2_MEMORY_KIB ? Number(process.env.BENCH_ARGON2_MEMORY_KIB) : undefined;
/** A real login not answered within this is counted as failed. */
const REAL_LOGIN_LIMIT_MS = 15_000;

interface Spawned {
  proc: ReturnType<typeof Bun.spawn>;
  log: () => string;
}

function spawnProbe(args: string[]): Spawned {
  const proc = Bun.spawn([probeBinary, ...args], { stdout: "ignore", stderr: "pipe" });
  let log = "";
  void (async () => {
    // Keep the tail only: floods make a line per refused connection.
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) log = (log + new TextDecoder().decode(chunk)).slice(-262_144);
  })();
  return { proc, log: () => log };
}

async function waitFor(check: () => boolean, limitMs: number): Promise<boolean> {
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    if (check()) return true;
    await Bun.sleep(20);
  }
  return check();
}

/** A TCP connection from a chosen loopback address; resolves once connected (or null). */
function dial(port: number, from: string, onData: (chunk: Buffer) => void = () => {}): Promise<Socket | null> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port, localAddress: from });
    socket.once("connect", () => resolve(socket));
    socket.once("error", () => resolve(null));
    socket.on("error", () => {});
    socket.on("data", onData);
  });
}

async function collectorUnderSilentPeers(): Promise<[string, string][]> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "probe-lockouts-"));
  const collector = spawnProbe(["collect", "--rpcap-active-listen", `127.0.0.1:${port}`, "-i", "lo", "-f", "udp port 9", "-w", join(dir, "out.pcap")]);
  const peers: Socket[] = [];
  let probe: Spawned | undefined;
  try {
    await waitFor(() => collector.log().includes("accepting active rpcapd connections"), 10_000);
    for (let i = 0; i < SILENT_PEERS; i++) {
      // Each from its own address, so no per-address cap does the work; they read nothing and say nothing.
      const socket = await dial(port, `127.0.3.${1 + i}`);
      if (socket) peers.push(socket);
    }
    await Bun.sleep(200);
    const closedBeforeProbe = peers.filter((s) => s.closed || s.destroyed).length;
    const started = performance.now();
    probe = spawnProbe(["rpcapd", "-v", "--active", `127.0.0.1:${port}`, "-n"]);
    const accepted = await waitFor(() => collector.log().includes("capturing on lo"), PROBE_WAIT_MS);
    const seconds = (performance.now() - started) / 1000;
    const closedAfter = peers.filter((s) => s.closed || s.destroyed).length;
    const refusedLines = (collector.log().match(/probes (already|connected already)/g) ?? []).length;
    return [
      ["collector: silent peers (never answer AUTH), one per address", `${peers.length} connected of ${SILENT_PEERS}`],
      ["collector: silent peers closed before the probe dialled", String(closedBeforeProbe)],
      ["collector: real probe (rpcapd --active) accepted", accepted ? `yes, capturing after ${seconds.toFixed(2)} s` : `no, not within ${PROBE_WAIT_MS / 1000} s`],
      ["collector: silent peers closed (evicted) by then", String(closedAfter)],
      ["collector: 'probes already' refusals logged", String(refusedLines)],
      ["collector: still running", collector.proc.exitCode === null ? "yes" : `no (exit ${collector.proc.exitCode})`],
    ];
  } finally {
    for (const socket of peers) socket.destroy();
    probe?.proc.kill("SIGTERM");
    await probe?.proc.exited;
    collector.proc.kill("SIGTERM");
    await collector.proc.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One real login (from 127.0.0.3 unless `from`): ms until AUTH_REPLY, or the error it got. */
async function realLogin(port: number, password: string, from = "127.0.0.3"): Promise<{ ms: number; error?: string }> {
  const framer = new RpcapFramer(() => 1 << 20);
  const started = performance.now();
  const { promise, resolve } = Promise.withResolvers<{ ms: number; error?: string }>();
  const timer = setTimeout(() => resolve({ ms: Infinity, error: "no answer" }), REAL_LOGIN_LIMIT_MS);
  const socket = await dial(port, from, (chunk) => {
    for (const message of framer.push(chunk)) {
      if (message.header.type === RpcapMessageType.AUTH_REPLY) resolve({ ms: performance.now() - started });
      else resolve({ ms: Infinity, error: new TextDecoder().decode(message.payload).slice(0, 60) });
    }
  });
  if (!socket) return { ms: Infinity, error: "connect failed" };
  socket.on("close", () => resolve({ ms: Infinity, error: "closed" }));
  socket.write(encodeMessage(0, RpcapMessageType.AUTH_REQ, 0, encodeAuthRequest({ authType: RpcapAuthType.PWD, username: "alice", password })));
  const result = await promise;
  clearTimeout(timer);
  socket.destroy();
  return result;
}

async function rpcapdUnderRedialling(): Promise<[string, string][]> {
  const dir = mkdtempSync(join(tmpdir(), "probe-lockouts-"));
  const users = join(dir, "users");
  const password = "correct horse battery staple";
  writeFileSync(users, `${await hashPasswordLine("alice", password, ARGON2_MEMORY_KIB ? { memoryCost: ARGON2_MEMORY_KIB } : {})}\n`, { mode: 0o600 });
  const port = await freePort();
  const daemon = spawnProbe(["rpcapd", "--users", users, "-4", "-b", "127.0.0.1", "-p", String(port)]);
  const peak = watchPeakRss(daemon.proc.pid, 50);
  const open = new Set<Socket>();
  let dials = 0;
  let stopping = false;
  try {
    await waitFor(() => daemon.log().includes("rpcapd listening"), 10_000);
    const anchor = await realLogin(port, password); // starts a hashing thread
    const idle = await realLogin(port, password);
    // One attacker connection: wrong-password AUTH, never reads; redialled when the daemon closes it.
    const attack = async (slot: number): Promise<void> => {
      while (!stopping) {
        const from = `127.0.4.${1 + (slot % ATTACK_ADDRESSES)}`;
        dials++;
        const socket = await dial(port, from);
        if (!socket) {
          await Bun.sleep(10);
          continue;
        }
        open.add(socket);
        socket.pause(); // never reads: replies pile up in the kernel buffers
        socket.write(encodeMessage(0, RpcapMessageType.AUTH_REQ, 0, encodeAuthRequest({ authType: RpcapAuthType.PWD, username: "alice", password: `guess-${dials}` })));
        await new Promise<void>((resolve) => socket.once("close", () => resolve()));
        open.delete(socket);
      }
    };
    const attackers = Array.from({ length: ATTACK_CONNECTIONS }, (_, i) => attack(i));
    const attackEnd = Date.now() + ATTACK_MS;
    await Bun.sleep(2_000); // let the attack fill the table first
    // Alternately from the address that logged in before the attack and from addresses that
    // never did (their AUTH stands no better than an attacker's fresh address).
    const logins: { ms: number; error?: string }[] = [];
    const firstTime: { ms: number; error?: string }[] = [];
    while (logins.length < REAL_LOGINS && Date.now() < attackEnd) {
      logins.push(await realLogin(port, password));
      await Bun.sleep(250);
      firstTime.push(await realLogin(port, password, `127.0.9.${1 + firstTime.length}`));
      await Bun.sleep(250);
    }
    stopping = true;
    for (const socket of open) socket.destroy();
    await Promise.all(attackers);
    const summary = (tries: { ms: number; error?: string }[]) => {
      const ok = tries.filter((l) => Number.isFinite(l.ms));
      const sorted = ok.map((l) => l.ms).sort((a, b) => a - b);
      const errors = [...new Set(tries.filter((l) => l.error).map((l) => l.error))];
      return {
        succeeded: `${ok.length} of ${tries.length}${errors.length ? ` (failures: ${errors.join("; ")})` : ""}`,
        latency: sorted.length ? `${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} / ${sorted[sorted.length - 1]!.toFixed(0)} ms` : "-",
      };
    };
    const known = summary(logins);
    const fresh = summary(firstTime);
    return [
      ["rpcapd: attacker connections open / addresses", `${ATTACK_CONNECTIONS} / ${ATTACK_ADDRESSES} (wrong-password AUTH, never read, redialled)`],
      ["rpcapd: attacker dials in all", String(dials)],
      ["rpcapd: real login, idle (anchor)", `${idle.ms.toFixed(0)} ms (first ${anchor.ms.toFixed(0)} ms)`],
      ["rpcapd: real logins under attack, known address: succeeded", known.succeeded],
      ["rpcapd: real logins under attack, known address: median / worst", known.latency],
      ["rpcapd: real logins under attack, first-time address: succeeded", fresh.succeeded],
      ["rpcapd: real logins under attack, first-time address: median / worst", fresh.latency],
      ["rpcapd: daemon peak RSS", `${peak.stop().toFixed(1)} MiB (argon2id m=${ARGON2_MEMORY_KIB ?? 65536} KiB per hashing thread)`],
      ["rpcapd: still running", daemon.proc.exitCode === null ? "yes" : `no (exit ${daemon.proc.exitCode})`],
    ];
  } finally {
    stopping = true;
    for (const socket of open) socket.destroy();
    daemon.proc.kill("SIGTERM");
    await daemon.proc.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchRobustnessLockouts(): Promise<void> {
  const rows = [...(await collectorUnderSilentPeers()), ...(await rpcapdUnderRedialling())];
  console.log("\n## robustness: lockouts (collect --rpcap-active-listen, rpcapd --users)");
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [key, value] of rows) console.log(`| ${key.padEnd(width)} | ${value}`);
}

if (import.meta.main) await benchRobustnessLockouts();
